"""A breach never reads as no breach (issue 12, item 13; DOMAIN §4 strict
thresholds): whatever the value and threshold, the printed value stands on
the same side of the printed threshold as the numbers do, and the printed
threshold is the threshold itself. Checked by reading the texts back."""

from __future__ import annotations

import math
import re
from decimal import Decimal

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from riskwatch.units import reading, round_beside

PROPERTY = settings(max_examples=300, deadline=None)
BASE = {"hours": Decimal(3600), "days": Decimal(86400), "ratio": Decimal(100)}
RANGE = {"hours": (-1e3, 1e5), "days": (-1e2, 1e4), "ratio": (-10.0, 100.0)}
_PART = re.compile(r"(\d+(?:\.\d+)?) (days?|h|min|s)")
_DURATION = re.compile(rf"(-?)({_PART.pattern}(?: {_PART.pattern})*)")
_SECONDS = {"day": 86400, "days": 86400, "h": 3600, "min": 60, "s": 1}


def read_back(text: str, unit: str) -> Decimal:
    """A printed value in its unit's base (seconds, or percent), or AssertionError if it is not one."""
    if unit == "ratio":
        assert re.fullmatch(r"-?\d+(\.\d+)?%", text), text
        return Decimal(text[:-1])
    match = _DURATION.fullmatch(text)
    assert match, text
    total = sum(Decimal(n) * _SECONDS[u] for n, u in _PART.findall(match.group(2)))
    return -total if match.group(1) else total


def exact(number: float, unit: str) -> Decimal:
    return Decimal(repr(number)) * BASE[unit]


@st.composite
def value_and_threshold(draw):
    unit = draw(st.sampled_from(sorted(RANGE)))
    low, high = RANGE[unit]
    threshold = draw(st.floats(min_value=low, max_value=high))
    # Values a hair's breadth from the threshold are where rounding lies.
    value = draw(st.one_of(
        st.floats(min_value=low, max_value=high),
        st.floats(min_value=1e-12, max_value=1.0).map(lambda d: threshold + d),
        st.floats(min_value=1e-12, max_value=1.0).map(lambda d: threshold - d),
        st.sampled_from([math.nextafter(threshold, math.inf), math.nextafter(threshold, -math.inf), threshold]),
    ))
    return value, threshold, unit


@PROPERTY
@given(value_and_threshold(), st.sampled_from(["above", "below"]))
@example((72 + 5 / 60, 72.0, "hours"), "above")
@example((72 + 0.1 / 3600, 72.0, "hours"), "above")
@example((30 + 4 / 24, 30.0, "days"), "above")
@example((1.003, 1.0, "ratio"), "above")
@example((0.9499999, 0.95, "ratio"), "below")
def test_the_printed_value_stands_on_its_true_side_of_the_printed_threshold(case, direction):
    value, threshold, unit = case
    shown = reading(value, threshold, unit, direction)
    printed_value, printed_threshold = read_back(shown.value, unit), read_back(shown.threshold, unit)
    assert printed_threshold == exact(threshold, unit)
    true_side = (value > threshold) - (value < threshold)
    printed_side = (printed_value > printed_threshold) - (printed_value < printed_threshold)
    assert printed_side == true_side, shown
    assert shown.relation == {1: "above", -1: "below", 0: "at"}[true_side]
    assert shown.beyond == (value > threshold if direction == "above" else value < threshold)


@PROPERTY
@given(value_and_threshold())
def test_a_value_strictly_beyond_never_prints_as_its_threshold(case):
    value, threshold, unit = case
    if value == threshold:
        return
    direction = "above" if value > threshold else "below"
    shown = reading(value, threshold, unit, direction)
    assert shown.beyond
    assert shown.value != shown.threshold
    assert shown.sign == (">" if direction == "above" else "<")
    printed = read_back(shown.value, unit)
    assert printed > exact(threshold, unit) if direction == "above" else printed < exact(threshold, unit)


@PROPERTY
@given(value_and_threshold())
@example((72 + 0.1 / 3600, 72.0, "hours"))
@example((0.15000001, 0.15, "ratio"))
def test_the_stored_observed_keeps_its_side_of_the_threshold(case):
    value, threshold, _unit = case
    stored = round_beside(value, threshold)
    assert (stored > threshold) - (stored < threshold) == (value > threshold) - (value < threshold)
    assert abs(stored - value) <= 1e-4 + 1e-9 * abs(value)


def test_the_everyday_precision_is_minutes_hours_and_tenths_of_a_percent():
    assert str(reading(72 + 5 / 60, 72, "hours", "above")) == "72 h 5 min (above threshold 72 h)"
    assert str(reading(30 + 4 / 24, 30, "days", "above")) == "30 days 4 h (above threshold 30 days)"
    assert str(reading(1.003, 1.0, "ratio", "above")) == "100.3% (above threshold 100%)"
    assert reading(0.9499, 0.95, "ratio", "below").comparison() == "94.99% < 95%"
    assert reading(72, 72, "hours", "above").comparison() == "72 h = 72 h"


def test_an_unknown_unit_or_direction_is_named():
    with pytest.raises(ValueError, match="unit 'weeks'"):
        reading(1.0, 1.0, "weeks", "above")
    with pytest.raises(ValueError, match="direction 'over'"):
        reading(1.0, 1.0, "hours", "over")
