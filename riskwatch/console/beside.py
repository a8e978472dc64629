"""The console (and the API) served beside `riskwatch run`, in a thread.

`riskwatch run` records alert changes and its service clock in the workflow
store; the console reads that store through its own desk, exactly as a
`riskwatch api` process beside `run` would, so what a person does in the
console is recorded once, in the same store, with the same checks.

Tokens: RISKWATCH_API_TOKENS when it is set; otherwise `run` makes one
random token per role for this run only (a newcomer has nothing to
configure), prints them, and writes them to `<store_dir>/console-tokens`
(mode 0600) so they can be copied later. They stop working when the run
ends.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

from riskwatch.api.auth import ROLES, parse_tokens
from riskwatch.settings import Settings
from riskwatch.errors import RiskwatchError

TOKENS_FILE = "console-tokens"
log = logging.getLogger(__name__)


@dataclass
class ConsoleServer:
    """A console being served: `url` ("http://127.0.0.1:8080/"), `tokens`
    ({token: role}) and, when they were made for this run, `tokens_file`."""

    url: str
    tokens: dict[str, str]
    tokens_file: Path | None
    _server: object
    _thread: threading.Thread

    def stop(self, timeout: float = 5.0) -> None:
        self._server.stop()
        self._thread.join(timeout)


class ConsoleNotServed(RiskwatchError, RuntimeError):
    """The console could not start (port taken, store or rules unusable); `run` goes on without it."""


def run_tokens(settings: Settings) -> tuple[dict[str, str], Path | None]:
    """({token: role}, file written or None): RISKWATCH_API_TOKENS when set,
    else a fresh token per role written to `<store_dir>/console-tokens`."""
    configured = parse_tokens(settings.api_tokens)
    if configured:
        return configured, None
    tokens = {f"rw-{role}-{secrets.token_urlsafe(18)}": role for role in ROLES}
    path = Path(settings.store_dir) / TOKENS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write("# riskwatch run: console sign-in tokens for this run only (role token)\n")
        for token, role in tokens.items():
            handle.write(f"{role} {token}\n")
    return tokens, path


def serve_console(settings: Settings, host: str, port: int, customer_facts=None) -> ConsoleServer:
    """Start the API and console on host:port (0 picks a free port) in a
    daemon thread over the store in settings.store_dir (`customer_facts`: the
    engine's view of a customer for the customer page), and return at once
    with its address: the socket is bound here, the app is built and served
    in the thread (its imports take a second `run` need not wait for).
    Raises ConsoleNotServed when the tokens or the port are unusable; a
    problem building the app (unusable rules or store) is logged by the
    thread, and `run` goes on without a console."""
    from riskwatch.api.auth import TokenConfigError

    try:
        tokens, tokens_file = run_tokens(settings)
    except (TokenConfigError, OSError) as error:
        raise ConsoleNotServed(str(error)) from None
    listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as error:
        listener.close()
        raise ConsoleNotServed(f"cannot listen on {host}:{port}: {error.strerror or error} "
                               f"(--console-port picks another; 0 a free one)") from None
    listener.listen(128)
    bound_port = listener.getsockname()[1]
    holder = _Serving()
    thread = threading.Thread(target=holder.serve, args=(settings, tokens, listener, customer_facts), name="console-http",
                              daemon=True)
    thread.start()
    shown_host = f"[{host}]" if ":" in host else host
    return ConsoleServer(f"http://{shown_host}:{bound_port}/", tokens, tokens_file, holder, thread)


class _Serving:
    """The console's server thread: builds the app, then serves until told to exit."""

    def __init__(self):
        self.server = None
        self.should_exit = False

    def serve(self, settings: Settings, tokens: dict[str, str], listener: socket.socket, customer_facts=None) -> None:
        import uvicorn

        from riskwatch.alerts import StoreError
        from riskwatch.api.auth import TokenConfigError
        from riskwatch.api.server import ApiConfigError, app_from_settings, header_deadline_protocol

        try:
            app = app_from_settings(settings.with_overrides(workflow_log="store"), tokens=tokens,
                                    customer_facts=customer_facts)
        except (ApiConfigError, TokenConfigError, StoreError, OSError) as error:
            log.error("console not served: %s", error)
            listener.close()
            return
        config = uvicorn.Config(app, log_config=None, log_level="warning", timeout_keep_alive=5,
                                timeout_graceful_shutdown=2, h11_max_incomplete_event_size=16 * 1024,
                                http=header_deadline_protocol(settings.api_header_timeout_seconds))
        self.server = uvicorn.Server(config)
        if self.should_exit:
            listener.close()
            return
        self.server.run(sockets=[listener])

    def stop(self) -> None:
        self.should_exit = True
        if self.server is not None:
            self.server.should_exit = True
