"""One frozen settings object, built once at start-up and passed down.

Every knob has a command-line flag and a `RISKWATCH_` environment variable of
the same name (`--idle-advance` / `RISKWATCH_IDLE_ADVANCE_SECONDS` is the one
exception the domain contract fixes). Nothing else in riskwatch reads
`os.environ`; `KNOWN_ENVIRONMENT` is what deployment manifests are checked
against.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Mapping
from riskwatch.errors import RiskwatchError

DEFAULT_RULES_DIR = Path(__file__).resolve().parent.parent / "rules"
PACKAGED_RULES_DIR = Path(__file__).resolve().parent / "default_rules"


def default_rules_dir() -> Path:
    """The repository's rules/ when running from a checkout, else the packaged copy."""
    return DEFAULT_RULES_DIR if DEFAULT_RULES_DIR.is_dir() else PACKAGED_RULES_DIR


@dataclass(frozen=True)
class Settings:
    rules_dir: Path = field(default_factory=default_rules_dir)
    lateness_seconds: float = 600.0
    # DOMAIN §3: an occurred_at beyond the wall clock plus this many seconds is
    # rejected as in the future; a negative value turns the check off.
    future_tolerance_seconds: float = 3600.0
    broker: str = "localhost:9092"
    topic_prefix: str = "riskwatch."
    state_dir: Path = Path("var/state")
    web_port: int = 6066
    metrics_port: int = 9464
    idle_advance_seconds: float = 60.0
    partitions: int = 4
    tick_seconds: float = 0.25
    alertmanager_url: str | None = None
    # Delivery to Alertmanager, off the evaluation path (riskwatch.sinks.delivery;
    # docs/operations.md "Alertmanager delivery").
    alertmanager_queue_size: int = 10_000
    alertmanager_batch_size: int = 500
    alertmanager_timeout_seconds: float = 5.0
    alertmanager_max_age_seconds: float = 900.0
    alertmanager_backoff_initial_seconds: float = 0.5
    alertmanager_backoff_max_seconds: float = 60.0
    alertmanager_breaker_failures: int = 3
    alertmanager_drain_seconds: float = 5.0
    api_host: str = "127.0.0.1"
    api_port: int = 8080
    api_url: str = "http://127.0.0.1:8080"
    api_token: str | None = None
    api_tokens: str | None = None
    # People, teams and region limits of tokens (riskwatch.api.auth.load_tokens_file).
    api_tokens_file: Path | None = None
    store_dir: Path = Path("var/store")
    # Where the alert workflow log lives: "store" (SQLite under store_dir,
    # embedded) or "kafka" (the alerts and actions topics on `broker`).
    workflow_log: str = "store"
    log_level: str = "INFO"
    # API: how long an Idempotency-Key's first answer is kept (hours).
    idempotency_key_hours: float = 24.0
    # API guards (docs/operations.md, "Limits and timeouts of the API").
    api_max_body_bytes: int = 64 * 1024
    api_body_timeout_seconds: float = 10.0
    api_header_timeout_seconds: float = 5.0
    # The console shows instants in this IANA zone (the company's, not the browser's).
    console_time_zone: str = "Asia/Shanghai"
    # Change data capture into the worker (docs/ingest.md "Change data
    # capture"): mapping files or directories of them (source.format
    # debezium; environment: comma-separated), and the Debezium connector's
    # topic.prefix from which a table's topic is derived. No mappings: the
    # worker reads no change topics.
    cdc_mappings: tuple[Path, ...] = ()
    cdc_topic_prefix: str | None = None

    def with_overrides(self, **overrides: object) -> "Settings":
        """Apply command-line values that were given (None means "not given")."""
        given = {k: v for k, v in overrides.items() if v is not None}
        return replace(self, **given) if given else self


# Environment variable -> Settings field. Explicit, so a manifest can be
# checked against it and a typo in a deployment is caught by a test.
ENVIRONMENT_FIELDS: dict[str, str] = {
    "RISKWATCH_RULES": "rules_dir",
    "RISKWATCH_LATENESS_SECONDS": "lateness_seconds",
    "RISKWATCH_FUTURE_TOLERANCE_SECONDS": "future_tolerance_seconds",
    "RISKWATCH_BROKER": "broker",
    "RISKWATCH_TOPIC_PREFIX": "topic_prefix",
    "RISKWATCH_STATE_DIR": "state_dir",
    "RISKWATCH_WEB_PORT": "web_port",
    "RISKWATCH_METRICS_PORT": "metrics_port",
    "RISKWATCH_IDLE_ADVANCE_SECONDS": "idle_advance_seconds",
    "RISKWATCH_PARTITIONS": "partitions",
    "RISKWATCH_TICK_SECONDS": "tick_seconds",
    "RISKWATCH_ALERTMANAGER": "alertmanager_url",
    "RISKWATCH_ALERTMANAGER_QUEUE_SIZE": "alertmanager_queue_size",
    "RISKWATCH_ALERTMANAGER_BATCH_SIZE": "alertmanager_batch_size",
    "RISKWATCH_ALERTMANAGER_TIMEOUT_SECONDS": "alertmanager_timeout_seconds",
    "RISKWATCH_ALERTMANAGER_MAX_AGE_SECONDS": "alertmanager_max_age_seconds",
    "RISKWATCH_ALERTMANAGER_BACKOFF_INITIAL_SECONDS": "alertmanager_backoff_initial_seconds",
    "RISKWATCH_ALERTMANAGER_BACKOFF_MAX_SECONDS": "alertmanager_backoff_max_seconds",
    "RISKWATCH_ALERTMANAGER_BREAKER_FAILURES": "alertmanager_breaker_failures",
    "RISKWATCH_ALERTMANAGER_DRAIN_SECONDS": "alertmanager_drain_seconds",
    "RISKWATCH_API_HOST": "api_host",
    "RISKWATCH_API_PORT": "api_port",
    "RISKWATCH_API_URL": "api_url",
    "RISKWATCH_API_TOKEN": "api_token",
    "RISKWATCH_API_TOKENS": "api_tokens",
    "RISKWATCH_API_TOKENS_FILE": "api_tokens_file",
    "RISKWATCH_STORE_DIR": "store_dir",
    "RISKWATCH_WORKFLOW_LOG": "workflow_log",
    "RISKWATCH_LOG_LEVEL": "log_level",
    "RISKWATCH_IDEMPOTENCY_KEY_HOURS": "idempotency_key_hours",
    "RISKWATCH_API_MAX_BODY_BYTES": "api_max_body_bytes",
    "RISKWATCH_API_BODY_TIMEOUT_SECONDS": "api_body_timeout_seconds",
    "RISKWATCH_API_HEADER_TIMEOUT_SECONDS": "api_header_timeout_seconds",
    "RISKWATCH_CONSOLE_TIME_ZONE": "console_time_zone",
    "RISKWATCH_CDC_MAPPINGS": "cdc_mappings",
    "RISKWATCH_CDC_TOPIC_PREFIX": "cdc_topic_prefix",
}
KNOWN_ENVIRONMENT = frozenset(ENVIRONMENT_FIELDS)
WORKFLOW_LOGS = ("store", "kafka")
# Python's level names (any case); riskwatch.logconfig applies them.
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class SettingsError(RiskwatchError, ValueError):
    pass


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from the environment; unknown RISKWATCH_ variables are refused."""
    environ = os.environ if environ is None else environ
    types = {f.name: f.type for f in fields(Settings)}
    values: dict[str, object] = {}
    for name, raw in environ.items():
        if not name.startswith("RISKWATCH_"):
            continue
        if name not in ENVIRONMENT_FIELDS:
            raise SettingsError(f"{name}: unknown setting (known: {', '.join(sorted(KNOWN_ENVIRONMENT))})")
        attr = ENVIRONMENT_FIELDS[name]
        values[attr] = _convert(name, raw, str(types[attr]))
    if values.get("workflow_log", "store") not in WORKFLOW_LOGS:
        raise SettingsError(f"RISKWATCH_WORKFLOW_LOG: {values['workflow_log']!r} is not one of {', '.join(WORKFLOW_LOGS)}")
    if "log_level" in values:
        values["log_level"] = check_log_level(values["log_level"], "RISKWATCH_LOG_LEVEL")
    return Settings(**values)


def check_log_level(value: object, name: str) -> str:
    """`value` as an upper-case name from LOG_LEVELS; raises SettingsError
    naming the setting `name` and the accepted values otherwise."""
    text = str(value or "").strip().upper()
    if text not in LOG_LEVELS:
        raise SettingsError(f"{name}: {value!r} is not a log level (accepted: {', '.join(LOG_LEVELS)}, any case)")
    return text


def _convert(name: str, raw: str, type_name: str) -> object:
    try:
        if type_name.startswith("tuple"):
            # A list of paths, comma-separated (a comma in a file name is not worth a quoting rule).
            return tuple(Path(part.strip()) for part in raw.split(",") if part.strip())
        if "Path" in type_name:
            return Path(raw)
        if type_name.startswith("float"):
            value = float(raw)
            if value != value:  # NaN compares false with everything: every check would pass or fail silently
                raise ValueError
            return value
        if type_name.startswith("int"):
            return int(raw)
    except ValueError:
        raise SettingsError(f"{name}: {raw!r} is not a number") from None
    return raw or None
