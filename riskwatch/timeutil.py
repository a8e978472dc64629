"""Durations as risk officers write them ("72h", "30d", "90m") and instants."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str | int | float) -> float:
    """Seconds in a duration like "72h"; a bare number is seconds."""
    if isinstance(text, bool):
        raise ValueError("must be a duration like 72h, 30d or 15m")
    if isinstance(text, (int, float)):
        if text < 0:
            raise ValueError("must not be negative")
        return float(text)
    match = _DURATION.match(str(text))
    if not match:
        raise ValueError(f"{text!r} is not a duration like 72h, 30d or 15m")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def parse_instant(text: str) -> datetime:
    """An RFC 3339 instant with offset (a bare date means midnight UTC)."""
    value = text.strip()
    if value.endswith("Z") or value.endswith("z"):
        value = value[:-1] + "+00:00"
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        if "T" in value or " " in value:
            raise ValueError(f"{text!r} has no timezone offset")
        moment = moment.replace(tzinfo=timezone.utc)
    return moment


def to_epoch(moment: datetime) -> float:
    return moment.timestamp()


def from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=timezone.utc)


def iso(seconds: float | None) -> str | None:
    """Event-time instants in records: UTC, second precision unless finer is needed."""
    if seconds is None:
        return None
    moment = datetime.fromtimestamp(seconds, tz=timezone.utc)
    if moment.microsecond == 0:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return moment.isoformat().replace("+00:00", "Z")


def human_duration(seconds: float) -> str:
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.1f} days"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.0f} min"


ZERO = timedelta(0)
