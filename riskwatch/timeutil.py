"""Durations as risk officers write them ("72h", "30d", "90m") and instants."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from riskwatch.errors import RiskwatchError

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


def split_duration(text: str) -> tuple[str, str] | None:
    """A duration as written ("72h", "1.5d") split into its number and unit
    letter (s, m, h, d, w), both as written; None for other text."""
    match = _DURATION.match(str(text))
    return None if match is None else (match.group(1), match.group(2))


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


# The range of instants a person may name on purpose (`replay --until`, a
# snooze's end): a business reads and plans this century. Wider than any
# record's life and narrow enough that moving the clock there finishes (the
# engine evaluates periodic indicators once per period up to the instant:
# 2100 is about 75 years of daily evaluations from now, ~10 s for a small
# business; year 9998 would run for hours). Event timestamps keep the wider
# FIRST_YEAR..LAST_YEAR: an export is refused record by record, not whole.
BUSINESS_START = datetime(2000, 1, 1, tzinfo=timezone.utc)
BUSINESS_END = datetime(2101, 1, 1, tzinfo=timezone.utc)  # exclusive: all of 2100 is in range


class InstantError(RiskwatchError, ValueError):
    """Text that is not an RFC 3339 instant in the range asked for; the message says why."""


def parse_instant(text: str) -> datetime:
    """An aware datetime from RFC 3339 text with a date, a time and an offset
    (`2026-03-01T09:00:00+08:00`, `...Z`); the offset is kept.

    DOMAIN §3 "Timestamps": the same shape events must have; a bare date, a
    number, or a time without an offset are refused rather than guessed.
    Raises InstantError (a ValueError) naming what is wrong."""
    value = text.strip() if isinstance(text, str) else text
    if not isinstance(value, str) or not RFC3339.fullmatch(value):
        raise InstantError(f"{text!r} is not an RFC 3339 instant with a date, a time and an offset "
                           f"(e.g. 2026-03-31T23:59:59+08:00 or 2026-03-31T15:59:59Z)")
    if not RFC3339_IN_RANGE.fullmatch(value):
        raise InstantError(f"{text!r}: the year must be from {FIRST_YEAR} to {LAST_YEAR}")
    normalised = value[:-1] + "+00:00" if value[-1] in "Zz" else value
    try:
        return datetime.fromisoformat(normalised.replace("t", "T", 1))
    except ValueError as error:  # the shape is right but the day is not (Feb 30)
        raise InstantError(f"{text!r} is not a valid instant: {error}") from None


def parse_business_instant(text: str) -> datetime:
    """`parse_instant`, and the instant must lie in the business range
    [BUSINESS_START, BUSINESS_END) (2000-01-01 to the end of 2100, UTC).
    Raises InstantError naming the range."""
    value = text.strip() if isinstance(text, str) else text
    in_years = isinstance(value, str) and (not RFC3339.fullmatch(value) or RFC3339_IN_RANGE.fullmatch(value))
    moment = parse_instant(text) if in_years else None
    if moment is None or not BUSINESS_START <= moment < BUSINESS_END:
        raise InstantError(f"{text!r} is outside the range riskwatch works in "
                           f"({BUSINESS_START:%Y-%m-%d} to {BUSINESS_END.year - 1}-12-31, UTC)")
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


def duration_as_written(span: timedelta) -> str:
    """A duration the way the rule files write it ("3d", "72h", "90m", "45s"):
    the largest unit that divides it exactly. For texts a person reads next
    to the rule that set them (an escalation's reason), where str(timedelta)
    would print "3 days, 0:00:00"."""
    seconds = int(span.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


ZERO = timedelta(0)
