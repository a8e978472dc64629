"""Durations as risk officers write them ("72h", "30d", "90m") and instants."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

# RFC 3339 §5.6 date-time, with the §5.6 note's allowances: a lower-case
# "t"/"z" and a space between date and time. Seconds are required; a leap
# second (:60) is refused because a datetime cannot hold it. Ranges are
# checked here so that a wrong field gets one clear reason; the day of the
# month (Feb 30) is checked when the instant is built. [0-9], not \d: the
# pattern also runs in pydantic-core's regex engine, where \d is any
# Unicode digit.
_YEAR = "[0-9]{4}"
_REST = (
    "-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
    "[Tt ](?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:[.][0-9]+)?"
    "(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
)
RFC3339 = re.compile(_YEAR + _REST)
# RFC 3339 allows years 0000-9999. The engine adds deadlines and month ends to
# instants and writes them back as dates, which fails near either end (year 0,
# year 10000); no business record lies there, so such a year is a typo to
# report rather than a crash. The year as written: 1900 to 9998.
FIRST_YEAR, LAST_YEAR = 1900, 9998
RFC3339_IN_RANGE = re.compile("^(?:19[0-9]{2}|[2-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])" + _REST + "$")

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
