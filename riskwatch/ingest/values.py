"""Cell values to the event contract's field values (DOMAIN §3).

A source row holds whatever its reader gives: text from a CSV, numbers,
dates and text from a spreadsheet (python-calamine), ints, floats, ISO text
and None from JSON or a database change event. Each converter here takes one
such value and returns the contract's form (text for ids and words, a
decimal string for money, RFC 3339 text with an offset for instants), or
raises `Unmappable` with the reason a person reads next to the row and
column. They check what the contract checks (sizes, patterns, ranges), so an
event built from converted values passes `riskwatch.models.parse_event`.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from riskwatch.models import MAX_ID_CHARS, MAX_TEXT_CHARS
from riskwatch.timeutil import FIRST_YEAR, LAST_YEAR
from riskwatch.errors import RiskwatchError


class Unmappable(RiskwatchError):
    """One value that cannot become a contract field; `reason` says why,
    without the column (the caller knows which column it read)."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


_ECHO = 40


def echo(value: object) -> str:
    """The offending value as a person would recognise it in the export, cut short."""
    text = value if isinstance(value, str) else str(value)
    cut = text[:_ECHO] + ("..." if len(text) > _ECHO else "")
    return repr(cut) if isinstance(value, str) else cut


def is_empty(value: object) -> bool:
    """None, "" and text of spaces only are an empty cell; 0 and False are values."""
    return value is None or (isinstance(value, str) and not value.strip())


def text_of(value: object) -> str:
    """A non-empty cell as text, without surrounding spaces. Integral floats
    (a spreadsheet stores every number as one) lose their `.0`, so customer
    1001 typed as a number is "1001", not "1001.0". Raises Unmappable for a
    JSON array or object (see `single_value`)."""
    if isinstance(value, str):
        return value.strip()
    single_value(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e16:
            return str(int(value))
        return repr(value)
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    return str(value)


def single_value(value: object) -> object:
    """`value`, or Unmappable when it is a JSON array or object (a JSON line's
    or a change event's): its text ("['C1', 'C2']") would pass for an id or
    a word, and which of its items is meant is not the mapping's to guess."""
    if isinstance(value, (list, tuple, dict)):
        kind = "object" if isinstance(value, dict) else "array"
        raise Unmappable(f"a JSON {kind}, not a single value")
    return value


def to_identifier(text: str) -> str:
    if len(text) > MAX_ID_CHARS:
        raise Unmappable(f"{echo(text)} is longer than {MAX_ID_CHARS} characters (got {len(text)})")
    return text


def to_text(text: str) -> str:
    if len(text) > MAX_TEXT_CHARS:
        raise Unmappable(f"longer than {MAX_TEXT_CHARS} characters (got {len(text)})")
    return text


_CURRENCY = re.compile(r"[A-Z]{3}")


def to_currency(text: str) -> str:
    if not _CURRENCY.fullmatch(text):
        raise Unmappable(f"{echo(text)} is not an ISO 4217 currency code such as CNY")
    return text


_CLASSES = frozenset("ABCD")


def to_class(text: str) -> str:
    if text not in _CLASSES:
        raise Unmappable(f"{echo(text)} is not a customer class A, B, C or D (map the export's words with `map`)")
    return text


_MINUS = ("-", "\u2212")


class MoneyReader:
    """Amounts as the export writes them to a decimal string ("1234.50").

    `decimal` is the decimal separator ("." or ","), `thousands` the
    grouping separator ("" for none; "," "." " " "'" or a no-break space);
    grouping must be in threes, so "1,234.56" under a decimal comma is
    refused rather than read as 1.23456. Numbers a spreadsheet or a database
    gives are taken exactly as Python prints them (the shortest text that
    reads back as the same float), never rounded. Negative amounts, more
    than 6 decimals (trailing zeros aside) or 18 integer digits are refused,
    as the contract refuses them.
    """

    __slots__ = ("decimal", "thousands", "_pattern")

    def __init__(self, decimal: str = ".", thousands: str = ""):
        self.decimal = decimal
        self.thousands = thousands
        grouped = rf"[0-9]{{1,3}}(?:{re.escape(thousands)}[0-9]{{3}})+|" if thousands else ""
        self._pattern = re.compile(rf"({grouped}[0-9]+)(?:{re.escape(decimal)}([0-9]+))?")

    def __call__(self, value: object) -> str:
        if isinstance(value, bool):
            raise Unmappable(f"{echo(value)} is not an amount")
        if isinstance(value, int):
            text = str(value)
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise Unmappable(f"{echo(value)} is not an amount")
            text = str(int(value)) if value.is_integer() and abs(value) < 1e16 else repr(value)
            if "e" in text or "E" in text:
                text = format(Decimal(text), "f")
        elif isinstance(value, Decimal):
            text = format(value, "f")
        elif isinstance(value, str):
            return self._text(value)
        else:
            raise Unmappable(f"{echo(value)} is not an amount")
        if text.startswith("-"):
            raise Unmappable(f"{echo(value)} is negative; amounts must be >= 0")
        return self._checked(*text.partition(".")[::2], value)

    def _text(self, value: str) -> str:
        text = value.strip()
        match = self._pattern.fullmatch(text)
        if match is None:
            if text.startswith(_MINUS):
                raise Unmappable(f"{echo(value)} is negative; amounts must be >= 0")
            raise Unmappable(f"{echo(value)} is not an amount" + self._expected())
        whole, fraction = match.group(1), match.group(2) or ""
        if self.thousands:
            whole = whole.replace(self.thousands, "")
        return self._checked(whole, fraction, value)

    def _checked(self, whole: str, fraction: str, value: object) -> str:
        if len(fraction) > 6:
            fraction = fraction.rstrip("0")   # 12.5000000 is 12.5
        if len(whole) > 18 or len(fraction) > 6:
            raise Unmappable(f"{echo(value)} has more digits than an amount may (18 before the point, 6 after)")
        return f"{whole}.{fraction}" if fraction else whole

    def _expected(self) -> str:
        point = "decimal point" if self.decimal == "." else "decimal comma"
        grouping = f", thousands separator {self.thousands!r}" if self.thousands else ""
        return f" (digits with a {point}{grouping}, at most 6 decimals)"


# Named timestamp formats; anything else is a strptime format.
ISO = "iso"
EXCEL = "excel"
EPOCH_FORMATS = {"epoch_seconds": 1.0, "epoch_millis": 1e3, "epoch_micros": 1e6}
EPOCH_DAYS = "epoch_days"
NAMED_FORMATS = (ISO, EXCEL, *EPOCH_FORMATS, EPOCH_DAYS)
NUMBER_FORMATS = frozenset({EXCEL, EPOCH_DAYS, *EPOCH_FORMATS})
_TIME_DIRECTIVES = ("%H", "%I", "%M", "%S", "%p", "%X", "%c", "%T", "%R")
_EXCEL_EPOCH = datetime(1899, 12, 30)   # serial 1 is 1900-01-01 in the 1900 date system
_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_UNIX_DAY0 = date(1970, 1, 1)


def zone(name: str) -> tzinfo:
    """An IANA time zone ("Asia/Shanghai", "UTC") or a fixed offset ("+08:00").
    Raises ValueError naming the zone when it is not known."""
    match = re.fullmatch(r"([+-])([01][0-9]|2[0-3]):?([0-5][0-9])", name)
    if match:
        sign = -1 if match.group(1) == "-" else 1
        return timezone(sign * timedelta(hours=int(match.group(2)), minutes=int(match.group(3))))
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (an IANA name such as Asia/Shanghai, UTC, or an offset "
                         f"such as +08:00)") from None


def time_of_day(text: str) -> time:
    """"23:59", "23:59:59" -> a time; ValueError otherwise."""
    for pattern in ("%H:%M:%S", "%H:%M"):
        try:
            return datetime.strptime(text, pattern).time()
        except ValueError:
            continue
    raise ValueError(f"{text!r} is not a time of day HH:MM or HH:MM:SS")


def check_format(fmt: str) -> None:
    """ValueError when `fmt` is neither a named format nor a strptime format
    that names a date (year, month and day) and reads back what it writes."""
    if fmt in NAMED_FORMATS:
        return
    if "%" not in fmt:
        raise ValueError(f"{fmt!r} is not a timestamp format: name one of {', '.join(NAMED_FORMATS)}, "
                         f"or give a strptime format such as %d/%m/%Y")
    if "%Z" in fmt:
        raise ValueError(f"{fmt!r}: %Z (a zone name) is not read reliably; use %z (an offset) or the mapping's timezone")
    probe = datetime(2031, 12, 28, 21, 47, 39, tzinfo=timezone(timedelta(hours=8)))
    try:
        written = probe.strftime(fmt)
        read = datetime.strptime(written, fmt)
    except ValueError as error:
        raise ValueError(f"bad timestamp format {fmt!r}: {error}") from None
    if read.date() != probe.date():
        raise ValueError(f"bad timestamp format {fmt!r}: it does not name a whole date (year, month and day)")


class TimestampReader:
    """Cell values to RFC 3339 text with an offset, as the contract wants.

    `formats`: tried in order; each a strptime format, or one of the named
    formats: `iso` (ISO 8601 date or date-time, with or without an offset),
    `excel` (a spreadsheet serial number: days since 1899-12-30, the
    fraction the time of day), `epoch_seconds`, `epoch_millis`,
    `epoch_micros` (an instant in UTC), `epoch_days` (a date: days since
    1970-01-01; Debezium's io.debezium.time.Date). `zone`: the time zone of
    values without an offset. `at`: the time of day given to date-only
    values (a due date at 23:59:59, an issue date at 00:00).

    Date and datetime cells (python-calamine reads a date-formatted cell as
    one) are taken as they are; a number is read only when a number format is
    named, never guessed to be Unix time (DOMAIN §3 "Timestamps"). Exports
    repeat the same dates on many rows, so results are kept in a small
    bounded cache per reader.
    """

    __slots__ = ("formats", "zone", "at", "_cache", "_numbers")

    CACHE_SIZE = 8192

    def __init__(self, formats: tuple[str, ...], zone: tzinfo, at: time = time(0, 0)):
        self.formats = formats
        self.zone = zone
        self.at = at
        self._cache: dict = {}
        self._numbers = [f for f in formats if f in NUMBER_FORMATS]

    def __call__(self, value: object) -> str:
        cache = self._cache
        try:
            return cache[value]
        except KeyError:
            pass
        except TypeError:       # an unhashable value: read it uncached
            return self._read(value)
        result = self._read(value)
        if len(cache) >= self.CACHE_SIZE:
            cache.clear()
        cache[value] = result
        return result

    def _read(self, value: object) -> str:
        if isinstance(value, datetime):
            instant = value if value.tzinfo is not None else value.replace(tzinfo=self.zone)
        elif isinstance(value, date):
            instant = datetime.combine(value, self.at, self.zone)
        elif isinstance(value, bool):
            raise Unmappable(f"{echo(value)} is not a timestamp")
        elif isinstance(value, (int, float)):
            instant = self._number(value, value)
        elif isinstance(value, str):
            instant = self._text(value.strip(), value)
        else:
            raise Unmappable(f"{echo(value)} is not a timestamp")
        if not FIRST_YEAR <= instant.year <= LAST_YEAR:
            raise Unmappable(f"{echo(value)} is in the year {instant.year}: must be from {FIRST_YEAR} to {LAST_YEAR}")
        return instant.isoformat()

    def _number(self, number: float, original: object) -> datetime:
        if not self._numbers:
            raise Unmappable(f"{echo(original)} is a number, not a date in format {self._described()} "
                             f"(name excel or an epoch_* format to read numbers)")
        if not math.isfinite(number):
            raise Unmappable(f"{echo(original)} is not a timestamp")
        fmt = self._numbers[0]
        try:
            if fmt == EXCEL:
                if number < 1:
                    raise Unmappable(f"{echo(original)} is not an Excel serial date (days since 1899-12-30)")
                if float(number).is_integer():
                    return datetime.combine(_EXCEL_EPOCH.date() + timedelta(days=int(number)), self.at, self.zone)
                # Milliseconds are the spreadsheet's precision; rounding there undoes float noise.
                moment = _EXCEL_EPOCH + timedelta(milliseconds=round(number * 86_400_000))
                return moment.replace(tzinfo=self.zone)
            if fmt == EPOCH_DAYS:
                if not float(number).is_integer():
                    raise Unmappable(f"{echo(original)} is not a whole number of days")
                return datetime.combine(_UNIX_DAY0 + timedelta(days=int(number)), self.at, self.zone)
            seconds = number / EPOCH_FORMATS[fmt]
            return _UNIX_EPOCH + timedelta(seconds=seconds)
        except OverflowError:
            raise Unmappable(f"{echo(original)} is out of range for format {fmt}") from None

    def _text(self, text: str, original: object) -> datetime:
        if not text:
            raise Unmappable("empty")
        for fmt in self.formats:
            if fmt in NUMBER_FORMATS:
                try:
                    number = float(text) if "." in text or "e" in text.lower() else int(text)
                except ValueError:
                    continue
                return self._number(number, original)
            if fmt == ISO:
                try:
                    parsed = datetime.fromisoformat(text)
                except ValueError:
                    continue
                if "T" not in text and " " not in text and ":" not in text and "t" not in text:
                    return datetime.combine(parsed.date(), self.at, self.zone)   # a date alone
                return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=self.zone)
            try:
                parsed = datetime.strptime(text, fmt)
            except ValueError:
                continue
            if not any(directive in fmt for directive in _TIME_DIRECTIVES):
                return datetime.combine(parsed.date(), self.at, self.zone)
            return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=self.zone)
        raise Unmappable(f"{echo(original)} is not a date in format {self._described()}")

    def _described(self) -> str:
        return " or ".join(self.formats)
