"""Build the API from Settings and serve it with uvicorn (`riskwatch api`)."""

from __future__ import annotations

import logging

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from riskwatch.alerts import AlertDesk, WorkflowStore
from riskwatch.alerts.idempotency import IdempotencyKeys, KeyIndex, LoggedIdempotencyKeys
from riskwatch.api.app import create_app
from riskwatch.api.auth import Grants, load_tokens_file, parse_tokens
from riskwatch.metrics import RiskwatchMetrics
from riskwatch.rules.loader import load_workflow_rules
from riskwatch.settings import Settings
from riskwatch.errors import RiskwatchError


log = logging.getLogger(__name__)


class ApiConfigError(RiskwatchError, RuntimeError):
    pass


def app_from_settings(settings: Settings, *, metrics: RiskwatchMetrics | None = None,
                      tokens: dict[str, str] | None = None, customer_facts=None) -> FastAPI:
    """The API and console over the workflow log settings name (store or
    Kafka). `tokens` ({token: role}) replaces RISKWATCH_API_TOKENS when given
    (`riskwatch run`'s tokens for one run); `customer_facts` the engine's view
    of a customer for the console, where the engine runs in this process. Raises ApiConfigError (no token,
    unusable rules, a bad limit or time zone), TokenConfigError, StoreError."""
    if tokens is not None:
        grants = Grants.from_roles(tokens)
    elif settings.api_tokens_file is not None:
        grants = load_tokens_file(settings.api_tokens_file, parse_tokens(settings.api_tokens))
    else:
        grants = Grants.from_roles(parse_tokens(settings.api_tokens))
    if not grants:
        raise ApiConfigError("no token configured: set RISKWATCH_API_TOKENS (token:role,...) or "
                             "RISKWATCH_API_TOKENS_FILE (people, teams, region limits)")
    rules, problems = load_workflow_rules(settings.rules_dir)
    if rules is None:
        raise ApiConfigError(f"rules in {settings.rules_dir} cannot be used:\n  " + "\n  ".join(problems))
    metrics = metrics or RiskwatchMetrics.create(CollectorRegistry())
    on_kafka = settings.workflow_log == "kafka"
    for name, value in (("RISKWATCH_IDEMPOTENCY_KEY_HOURS", settings.idempotency_key_hours),
                        ("RISKWATCH_API_MAX_BODY_BYTES", settings.api_max_body_bytes),
                        ("RISKWATCH_API_BODY_TIMEOUT_SECONDS", settings.api_body_timeout_seconds),
                        ("RISKWATCH_API_HEADER_TIMEOUT_SECONDS", settings.api_header_timeout_seconds)):
        if not value > 0:
            raise ApiConfigError(f"{name} must be positive (got {value})")
    key_lifetime = settings.idempotency_key_hours * 3600
    if on_kafka:
        # Keys on the actions topic, shared by every replica (riskwatch.alerts.idempotency).
        store = workflow_log_on_kafka(settings, KeyIndex(key_lifetime))
        keys = LoggedIdempotencyKeys(store)
    else:
        store = WorkflowStore(settings.store_dir)
        keys = IdempotencyKeys(store.path, key_lifetime)
    desk = AlertDesk(rules, store, metrics=metrics)
    # Store mode: deadlines on the watermark `riskwatch run` records in the
    # store, never on this process's wall clock (a replayed history is not
    # overdue because it is old).
    try:
        return create_app(desk, grants, rules_dir=settings.rules_dir, metrics=metrics, keeps_clock=not on_kafka,
                          service_clock=None if on_kafka else desk.service_clock,
                          tick_seconds=1.0 if on_kafka else 30.0, idempotency_keys=keys,
                          max_body_bytes=settings.api_max_body_bytes,
                          body_timeout_seconds=settings.api_body_timeout_seconds,
                          console={"time_zone": settings.console_time_zone, "customer_facts": customer_facts})
    except ValueError as error:  # the console's time zone
        raise ApiConfigError(f"RISKWATCH_CONSOLE_TIME_ZONE: {error}") from None


def workflow_log_on_kafka(settings: Settings, key_index: KeyIndex | None = None):
    """The alerts and actions topics as the desk's log (created if the worker
    has not yet); `key_index` receives the idempotency key records read."""
    from riskwatch.alerts.kafkalog import KafkaWorkflowLog, WorkflowLogUnavailable
    from riskwatch.topics import ensure_topics  # kafka-python only: no faust

    try:
        ensure_topics(settings.broker, settings.topic_prefix, settings.partitions)
        return KafkaWorkflowLog(settings.broker, settings.topic_prefix, client_id="riskwatch-api", key_index=key_index)
    except WorkflowLogUnavailable as error:
        raise ApiConfigError(str(error)) from None
    except Exception as error:
        raise ApiConfigError(f"broker {settings.broker}: {error}") from None


def serve(settings: Settings) -> None:
    run_server(app_from_settings(settings), settings)


def run_server(app: FastAPI, settings: Settings) -> None:
    """Serve `app` with uvicorn (h11) on settings.api_host:api_port, with a
    deadline on the request headers (`header_deadline_protocol`); the body
    deadline and size limit are the app's (`riskwatch.api.guards`)."""
    import uvicorn

    uvicorn.run(app, host=settings.api_host, port=settings.api_port, log_level=settings.log_level.lower(),
                http=header_deadline_protocol(settings.api_header_timeout_seconds),
                timeout_keep_alive=5, h11_max_incomplete_event_size=16 * 1024,
                log_config=None)  # riskwatch.logconfig's handler, not uvicorn's own


def header_deadline_protocol(seconds: float):
    """uvicorn's h11 protocol with a deadline on receiving a request's headers.

    uvicorn has no such timeout (its keep-alive timer is reset by every byte,
    so a client trickling a header holds the connection for as long as it
    likes: encode/uvicorn#157). The deadline starts when the connection is
    made, and on a kept-alive connection when the next request's first byte
    arrives; once the headers are parsed it is off (the body has the app's
    deadline). Past it the client gets 408 and the connection is closed."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeaderDeadline(H11Protocol):
        _deadline = None

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            if self._deadline is None and (self.cycle is None or self.cycle.response_complete):
                self._arm()
            super().data_received(data)

        def handle_events(self) -> None:
            before = self.cycle
            super().handle_events()
            if self.cycle is not before:  # a request's headers were parsed
                self._disarm()

        def connection_lost(self, exc) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(seconds, self._passed)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _passed(self) -> None:
            self._deadline = None
            if not self.transport.is_closing():
                log.warning("closed a connection from %s: request headers not received within %g s",
                            "%s:%d" % self.client if self.client else "?", seconds)
                self.transport.write(b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\n"
                                     b"connection: close\r\n\r\n")
                self.transport.close()

    return HeaderDeadline
