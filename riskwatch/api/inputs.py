"""What the API accepts as text and time, and how it names what it refuses.

Free text a person writes (reasons, notes, comments, the 5-Why) is stored in
the audit trail and printed in terminals: control characters other than
newline and tab could forge an audit line or drive the terminal (ESC
sequences), bidirectional overrides could make a line read other than it is
stored, and a lone UTF-16 surrogate cannot be stored as UTF-8 at all. Such
text is refused (422 naming the field); a reason needs visible text.

Instants must lie in a sane business range, 2000-01-01T00:00:00Z up to (not
including) 2101-01-01T00:00:00Z: "9999-12-31T23:59:59-23:59" is a typo or a
probe, and its conversion to UTC overflows.

Error answers echo at most a short, escaped excerpt of what was sent
(`excerpt`), never the input itself.
"""

from __future__ import annotations

import unicodedata
from datetime import datetime, timezone
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, Field

EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(2101, 1, 1, tzinfo=timezone.utc)  # exclusive: the last instant of 2100 is accepted
EXCERPT_CHARS = 40
# Trojan-source characters: they reorder how a line is shown, not what it holds.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def text_problem(value: str) -> str | None:
    """Why `value` cannot be stored as a person's text; None when it can.
    Refused: lone surrogates, control characters (Unicode Cc) other than
    newline and tab, bidirectional overrides and isolates."""
    for index, char in enumerate(value):
        if "\ud800" <= char <= "\udfff":
            return f"character {index + 1} is a lone UTF-16 surrogate (U+{ord(char):04X}), not text"
        if char in _BIDI_CONTROLS:
            return f"character {index + 1} is a bidirectional control (U+{ord(char):04X})"
        if char not in "\n\t" and unicodedata.category(char) == "Cc":
            return (f"character {index + 1} is a control character (U+{ord(char):04X}); "
                    "only newline and tab are allowed")
    return None


def _person_text(value: str) -> str:
    problem = text_problem(value)
    if problem is not None:
        raise ValueError(problem)
    if not any(not c.isspace() for c in value):
        raise ValueError("needs visible text, not only spaces")
    return value


def _business_instant(value: datetime) -> datetime:
    # Checked on the written year first: converting year 9999 at -23:59 to UTC overflows.
    if not EARLIEST.year - 1 <= value.year <= LATEST.year or not EARLIEST <= value.astimezone(timezone.utc) < LATEST:
        raise ValueError("must lie between 2000-01-01T00:00:00Z and 2100-12-31T23:59:59Z")
    return value


# A person's text: a reason, a note, a comment, a why.
Text = Annotated[str, Field(min_length=1, max_length=2000), AfterValidator(_person_text)]
# An identifier (alert, plan): visible ASCII.
Identifier = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[!-~]+$")]
# An instant (RFC 3339 with offset) in the business range.
Instant = Annotated[AwareDatetime, AfterValidator(_business_instant)]


def surrogate_paths(value: Any, path: tuple = ()) -> list[tuple]:
    """Paths in a JSON-like value (dicts, lists, strings, keys included)
    to strings holding a lone surrogate, which no UTF-8 store can keep."""
    if isinstance(value, str):
        return [path] if any("\ud800" <= c <= "\udfff" for c in value) else []
    if isinstance(value, dict):
        found = []
        for key, item in value.items():
            found += surrogate_paths(key, path + (str(key).encode("utf-8", "backslashreplace").decode(),))[:1]
            found += surrogate_paths(item, path + (str(key).encode("utf-8", "backslashreplace").decode(),))
        return found
    if isinstance(value, list):
        return [p for index, item in enumerate(value) for p in surrogate_paths(item, path + (index,))]
    return []


def excerpt(value: Any) -> str | None:
    """A short, printable excerpt of a refused input: at most EXCERPT_CHARS
    characters, anything not printable escaped (\\n, \\x1b, \\ud800), "…"
    when cut. None for values that are not text or numbers (a whole object
    is never echoed)."""
    if isinstance(value, bool) or value is None:
        return None if value is None else str(value).lower()
    if isinstance(value, (int, float)):
        value = str(value)
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    cut = value[:EXCERPT_CHARS]
    shown = "".join(c if c.isprintable() and not "\ud800" <= c <= "\udfff" else escape_char(c) for c in cut)
    return shown + ("…" if len(value) > EXCERPT_CHARS else "")


def escape_char(char: str) -> str:
    code = ord(char)
    if char == "\n":
        return "\\n"
    if char == "\t":
        return "\\t"
    if char == "\r":
        return "\\r"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def validation_errors(errors: list[dict]) -> list[dict]:
    """Pydantic/FastAPI errors as the API answers them: loc, msg, type, and
    an `input` excerpt when the input was text or a number."""
    out = []
    for error in errors:
        item = {"loc": [part if isinstance(part, int) else excerpt(str(part)) for part in error.get("loc", ())],
                "msg": excerpt_message(str(error.get("msg", ""))),
                "type": error.get("type", "value_error")}
        shown = excerpt(error.get("input"))
        if shown is not None:
            item["input"] = shown
        out.append(item)
    return out


def excerpt_message(message: str) -> str:
    # Messages are ours or pydantic's; a JSON decode message can quote the body.
    return "".join(c if c.isprintable() and not "\ud800" <= c <= "\udfff" else escape_char(c) for c in message[:300])
