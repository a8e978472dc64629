"""One logging configuration for every riskwatch command.

riskwatch's own log lines (the desk, the sinks, the API and uvicorn under
it) go to stderr in one of two shapes, chosen by where stderr goes:

- not a terminal (a container, systemd, a file): JSON lines, one object per
  record: `time` (RFC 3339, UTC, milliseconds), `level`, `logger`,
  `message`, and `exception` (the formatted traceback) when there is one;
  a log collector parses them without a pattern.
- a terminal: `2026-03-01T09:00:00.123Z WARNING riskwatch.alerts.desk: ...`.

The level is RISKWATCH_LOG_LEVEL (settings.LOG_LEVELS). What a command
prints as its result or report (alert lines, summaries, refusals) is
output, not logging, and keeps its own plain form.
"""

from __future__ import annotations

import logging
import sys
from datetime import datetime, timezone
from typing import TextIO

import orjson


def _utc(created: float) -> str:
    moment = datetime.fromtimestamp(created, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class JsonLinesFormatter(logging.Formatter):
    """A log record as one JSON object on one line (no newline inside: a
    message with line breaks is escaped by the JSON encoding)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": _utc(record.created), "level": record.levelname, "logger": record.name,
                 "message": record.getMessage()}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        return orjson.dumps(entry, default=str).decode()


class TerminalFormatter(logging.Formatter):
    """`time level logger: message` for a person reading a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_utc(record.created)} {record.levelname:<7} {record.name}: {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is when a record is emitted, so a
    command run in-process (click's test runner swaps stderr) never leaves
    a handler on a closed stream."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def configure_logging(level: str, stream: TextIO | None = None, *, json_lines: bool | None = None) -> logging.Handler:
    """Install riskwatch's handler on the root logger at `level` (a name from
    settings.LOG_LEVELS, any case), writing to `stream` (default: stderr at
    the time of each record). A handler an earlier call installed is
    replaced; others (a test runner's) are left. `json_lines` defaults to
    "stderr is not a terminal". Returns the handler. Raises ValueError for
    an unknown level (settings refuse it first)."""
    number = logging.getLevelName(level.upper())
    if not isinstance(number, int):
        raise ValueError(f"unknown log level {level!r}")
    target = sys.stderr if stream is None else stream
    if json_lines is None:
        json_lines = not (hasattr(target, "isatty") and target.isatty())
    handler = _StderrHandler() if stream is None else logging.StreamHandler(stream)
    handler.setFormatter(JsonLinesFormatter() if json_lines else TerminalFormatter())
    handler._riskwatch = True  # type: ignore[attr-defined]
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_riskwatch", False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(number)
    # Libraries log through the root handler too (uvicorn runs with
    # log_config=None so it does not install its own).
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        library = logging.getLogger(name)
        library.handlers.clear()
        library.propagate = True
    # httpx logs every request at INFO: the client commands' own output is the answer.
    logging.getLogger("httpx").setLevel(max(number, logging.WARNING))
    return handler
