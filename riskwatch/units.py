"""Observed values and thresholds as a person reads them.

An indicator measures in one of three units (`hours`, `days`, `ratio`) and
fires strictly beyond its threshold (DOMAIN §4: a delay of exactly 72 h
raises nothing, 72 h and one second does). What is printed must say the same
thing as the numbers: a value beyond the threshold never prints as equal to
it ("72.0 h above threshold 72.0 h") and a value within it never prints as
beyond. So a value is shown with just enough precision to stand, as printed,
on its own side of the printed threshold:

    hours   "72 h 5 min"      (minutes; seconds and fractions only when needed)
    days    "30 days 4 h"     (hours; minutes and finer only when needed)
    ratio   "100.3%"          (a tenth of a percent; more decimals when needed)

Thresholds print exactly, in the same units ("72 h", "30 days", "100%").
`reading` is the one place this is decided: the alert's summary, the lines
of `riskwatch run`, the API's alert views and its terminal client all use it.
`round_beside` keeps the stored `observed` of an alert record on the same
side of its threshold when it is rounded.
"""

from __future__ import annotations

import math
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Context, Decimal, localcontext
from typing import NamedTuple

UNITS = ("hours", "days", "ratio")
DIRECTIONS = ("above", "below")

_MINUTE, _HOUR, _DAY = Decimal(60), Decimal(3600), Decimal(86400)
# A unit's values are worked in an exact base: seconds for durations, percent for ratios.
_BASE = {"hours": _HOUR, "days": _DAY, "ratio": Decimal(100)}
# The steps a value may be shown at, coarsest first. The first is what a risk
# officer reads by default; the finer ones only come in when the coarser
# would print the value on the threshold or on its wrong side.
_FINE = tuple(Decimal(1).scaleb(-n) for n in range(0, 7))              # 1 s ... 1 µs
_STEPS = {
    "hours": (_MINUTE, *_FINE),
    "days": (_HOUR, _MINUTE, *_FINE),
    "ratio": tuple(Decimal(1).scaleb(-n) for n in range(1, 10)),      # 0.1% ... 1e-9 %
}
_SIGN = {"above": ">", "below": "<", "at": "="}
# Wide enough to hold any float's decimal expansion times 86400 to a microsecond.
_EXACT = Context(prec=400)


class Reading(NamedTuple):
    """One observed value against its threshold, as printed.

    `value` and `threshold` are the texts ("72 h 5 min", "72 h"); `relation`
    is where the value stands against the threshold, "above", "below" or
    "at" (the printed texts say the same); `beyond` is True when that is
    strictly beyond in the indicator's direction, i.e. a breach.
    """

    value: str
    threshold: str
    relation: str
    beyond: bool

    @property
    def sign(self) -> str:
        """">", "<" or "=" between the printed value and threshold ("?" for a value that is not a number)."""
        return _SIGN.get(self.relation, "?")

    def comparison(self) -> str:
        """"72 h 5 min > 72 h": for one-line views."""
        return f"{self.value} {self.sign} {self.threshold}"

    def __str__(self) -> str:
        """"72 h 5 min (above threshold 72 h)": for sentences."""
        return f"{self.value} ({self.relation} threshold {self.threshold})"


def reading(value: float, threshold: float, unit: str, direction: str = "above") -> Reading:
    """`value` against `threshold`, both in `unit` ("hours", "days" or
    "ratio", a fraction: 1.003 is 100.3%), for an indicator that fires
    strictly `direction` ("above" or "below") its threshold.

    The value is rounded (half up) at the coarsest of its unit's steps at
    which it still prints on its true side of the printed threshold (or on
    it, when it is exactly the threshold); a difference finer than the
    finest step is rounded away from the threshold. Raises ValueError naming
    an unknown unit or direction.
    """
    if unit not in _BASE:
        raise ValueError(f"unit {unit!r} is not one of {', '.join(UNITS)}")
    if direction not in DIRECTIONS:
        raise ValueError(f"direction {direction!r} is not one of {', '.join(DIRECTIONS)}")
    if not (math.isfinite(value) and math.isfinite(threshold)):
        return _not_finite(value, threshold, unit, direction)
    with localcontext(_EXACT):
        shown_threshold = _exact(threshold, unit)
        exact_value = _exact(value, unit)
        relation = _relation(exact_value, shown_threshold)
        value_text = None
        for step in _STEPS[unit]:
            candidate = _to_step(exact_value, step, ROUND_HALF_UP)
            if _relation(candidate, shown_threshold) == relation:
                value_text = _text(candidate, unit, step)
                break
        if value_text is None and relation == "at":
            value_text = _text(shown_threshold, unit, None)   # a threshold finer than any step
        elif value_text is None:
            finest = _STEPS[unit][-1]
            away = _to_step(exact_value, finest, ROUND_CEILING if relation == "above" else ROUND_FLOOR)
            value_text = _text(away, unit, finest)
        threshold_text = _text(shown_threshold, unit, None)
    return Reading(value_text, threshold_text, relation, relation == direction)


def span(seconds: float) -> str:
    """A rule's window (seconds) as its file states it: "90 days", "1 day",
    "36 h", "45 min"; used in alert texts so they follow the configured
    window instead of the seed plan's figure."""
    whole = int(round(seconds))
    if whole % 86400 == 0 and whole:
        days = whole // 86400
        return f"{days} day" if days == 1 else f"{days} days"
    if whole % 3600 == 0 and whole:
        return f"{whole // 3600} h"
    if whole % 60 == 0 and whole:
        return f"{whole // 60} min"
    return f"{whole} s"


def round_beside(value: float, threshold: float, digits: int = 4) -> float:
    """`value` rounded to `digits` decimals, unless that would move it onto
    or across `threshold`: then rounded away from the threshold instead (or,
    when even that cannot tell them apart, or the value is the threshold
    itself, kept as it is). A stored measurement keeps the side of the
    threshold it was measured on (DOMAIN §4: thresholds are strict)."""
    rounded = round(value, digits)
    side = _side(value, threshold)
    if _side(rounded, threshold) == side:
        return rounded
    if side != 0 and math.isfinite(value):
        with localcontext(_EXACT):
            away = Decimal(repr(float(value))).quantize(Decimal(1).scaleb(-digits),
                                                        rounding=ROUND_CEILING if side > 0 else ROUND_FLOOR)
        if _side(float(away), threshold) == side:
            return float(away)
    return value


def _side(value: float, threshold: float) -> int:
    return (value > threshold) - (value < threshold)


def _exact(number: float, unit: str) -> Decimal:
    # The shortest decimal that reads back as this float: what a person would
    # have typed (0.07, not 0.07000000000000000666), so 7% prints as 7%.
    return Decimal(repr(float(number))) * _BASE[unit]


def _relation(value: Decimal, threshold: Decimal) -> str:
    if value > threshold:
        return "above"
    if value < threshold:
        return "below"
    return "at"


def _to_step(amount: Decimal, step: Decimal, rounding: str) -> Decimal:
    return (amount / step).to_integral_value(rounding=rounding) * step


def _text(amount: Decimal, unit: str, step: Decimal | None) -> str:
    """`amount` in its unit's base, printed; `step` is the precision it was
    rounded to (None: exact, trailing zeros dropped)."""
    if unit == "ratio":
        if step is not None:
            return f"{amount.quantize(step):f}%"
        return f"{_plain(amount)}%"
    sign = "-" if amount < 0 else ""
    rest = abs(amount)
    parts = []
    if unit == "days":
        days, rest = divmod(rest, _DAY)
        if days:
            parts.append(f"{int(days)} day" + ("" if days == 1 else "s"))
    hours, rest = divmod(rest, _HOUR)
    if hours:
        parts.append(f"{int(hours)} h")
    minutes, rest = divmod(rest, _MINUTE)
    if minutes:
        parts.append(f"{int(minutes)} min")
    if rest:
        parts.append(f"{_plain(rest)} s")
    if not parts:
        return "0 days" if unit == "days" else "0 h"
    return sign + " ".join(parts)


def _plain(amount: Decimal) -> str:
    """A decimal without exponent or trailing zeros: 20, 0.4, 15.5."""
    return f"{amount.normalize():f}"


def _not_finite(value: float, threshold: float, unit: str, direction: str) -> Reading:
    def text(number: float) -> str:
        if math.isnan(number):
            return "not a number"
        if math.isinf(number):
            return ("-" if number < 0 else "") + "∞"
        with localcontext(_EXACT):
            return _text(_exact(number, unit), unit, None)

    if math.isnan(value) or math.isnan(threshold):
        return Reading(text(value), text(threshold), "unknown", False)
    relation = "above" if value > threshold else "below" if value < threshold else "at"
    return Reading(text(value), text(threshold), relation, relation == direction)
