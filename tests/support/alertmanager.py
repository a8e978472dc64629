"""Run the real Alertmanager (Debian package `prometheus-alertmanager`) for a test.

`webhook_receiver()` is a small HTTP server that records what Alertmanager
delivers; `test_config()` turns deploy/alertmanager/alertmanager.yml into a
config whose receivers all post to that server (path = receiver name) with
the waits shortened, everything else (routes, grouping, inhibition) kept;
`running_alertmanager()` starts the binary on a free loopback port with a
temporary storage dir, without clustering, and stops it afterwards.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import httpx
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY_CONFIG = REPO / "deploy" / "alertmanager" / "alertmanager.yml"
ALERTMANAGER = shutil.which("prometheus-alertmanager") or "/usr/bin/prometheus-alertmanager"
AMTOOL = shutil.which("amtool") or "/usr/bin/amtool"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Webhook:
    """What Alertmanager posted, as (receiver path, payload) pairs."""

    def __init__(self, server: ThreadingHTTPServer):
        self.server = server
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        self.posts: list[tuple[str, dict]] = []
        self.lock = threading.Lock()

    def received(self, receiver: str | None = None) -> list[dict]:
        with self.lock:
            return [p for r, p in self.posts if receiver is None or r == receiver]

    def wait_for(self, predicate, timeout: float = 15.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                posts = list(self.posts)
            found = [p for r, p in posts if predicate(r, p)]
            if found:
                return found
            time.sleep(0.1)
        raise AssertionError(f"no matching webhook post within {timeout}s; got {[(r, p.get('status'), p.get('groupLabels')) for r, p in posts]}")


@contextmanager
def webhook_receiver() -> Iterator[Webhook]:
    holder: dict[str, Webhook] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's naming)
            length = int(self.headers.get("content-length") or 0)
            payload = json.loads(self.rfile.read(length) or b"{}")
            hook = holder["hook"]
            with hook.lock:
                hook.posts.append((self.path.strip("/"), payload))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):  # keep the test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    holder["hook"] = Webhook(server)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield holder["hook"]
    finally:
        server.shutdown()
        server.server_close()


def _shorten(route: dict, top: bool) -> None:
    # Waits in seconds instead of minutes and hours; a zero wait stays zero.
    if top or "group_wait" in route:
        route["group_wait"] = "0s" if route.get("group_wait") == "0s" else "1s"
    route["group_interval"] = "1s"
    route["repeat_interval"] = "1h"
    for child in route.get("routes", []):
        _shorten(child, False)


def config_for_test(webhook_url: str, source: Path = DEPLOY_CONFIG) -> dict:
    config = yaml.safe_load(source.read_text())
    for receiver in config["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = f"{webhook_url}/{receiver['name']}"
    _shorten(config["route"], True)
    config["templates"] = [str(source.parent / t) for t in config.get("templates", [])]
    return config


class Alertmanager:
    def __init__(self, url: str, process: subprocess.Popen, log_path: Path):
        self.url = url
        self.process = process
        self.log_path = log_path

    def alerts(self, **filters) -> list[dict]:
        params = [("filter", f'{k}="{v}"') for k, v in filters.items()]
        response = httpx.get(self.url + "/api/v2/alerts", params=params, timeout=5)
        response.raise_for_status()
        return response.json()

    def wait_for_alerts(self, predicate, timeout: float = 10.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        alerts: list[dict] = []
        while time.monotonic() < deadline:
            alerts = self.alerts()
            if predicate(alerts):
                return alerts
            time.sleep(0.1)
        raise AssertionError(f"alertmanager state not reached within {timeout}s: {alerts}")


@contextmanager
def running_alertmanager(config: dict, workdir: Path, port: int | None = None) -> Iterator[Alertmanager]:
    """`port`: a given loopback port (to start it again where riskwatch posts), else a free one."""
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / "alertmanager.yml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    port = port or free_port()
    log_path = workdir / "alertmanager.log"
    log_file = log_path.open("wb")
    process = subprocess.Popen(
        [ALERTMANAGER, f"--config.file={config_path}", f"--storage.path={workdir / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=", "--log.level=info"],
        stdout=log_file, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"alertmanager exited: {log_path.read_text()[-2000:]}")
            try:
                if httpx.get(url + "/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"alertmanager not ready: {log_path.read_text()[-2000:]}")
            time.sleep(0.1)
        yield Alertmanager(url, process, log_path)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log_file.close()
