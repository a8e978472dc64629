"""The tier matrix of rules/matrix.yaml (DOMAIN §2): complete, monotone, and
faithful to the four seed rows of the plan."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from riskwatch.rules.schema import TIER_ORDER
from riskwatch.testing import default_rules

RANK = {tier: len(TIER_ORDER) - index for index, tier in enumerate(TIER_ORDER)}  # red 4 ... blue 1
PROPERTY = settings(max_examples=400, deadline=None)

unit = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
# The bounds themselves are where a matrix goes wrong: sample them often.
edges = st.sampled_from([0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 0.8, 1.0])
value = unit | edges


def open_interval(low: float, high: float):
    return st.floats(min_value=low, max_value=high, exclude_min=True, exclude_max=True, allow_nan=False)


def half_open_top(low: float):
    return st.floats(min_value=low, max_value=1.0, exclude_min=True, allow_nan=False)


def half_open_bottom(high: float):
    return st.floats(min_value=0.0, max_value=high, exclude_max=True, allow_nan=False)


def classify(probability: float, impact: float, controllability: float) -> str:
    return default_rules().classify(probability, impact, controllability)


@PROPERTY
@given(value, value, value)
def test_every_point_of_the_cube_gets_exactly_one_of_the_four_tiers(p, i, c):
    matrix = default_rules().matrix
    tier = classify(p, i, c)
    assert tier in TIER_ORDER
    # "exactly one": the row that wins is the first row whose bounds hold, and
    # it is the tier returned; the catch-all guarantees one always holds.
    values = {"probability": p, "impact": i, "controllability": c}
    holding = [r.tier for r in matrix.rules if all(b.holds(values[b.dimension]) for b in r.bounds)]
    assert holding and holding[0] == tier


def worse(dimension: str, a: float, b: float) -> tuple[float, float]:
    """(better, worse) value of a dimension: higher P or I is worse, lower C is worse."""
    low, high = sorted((a, b))
    return (high, low) if dimension == "controllability" else (low, high)


@pytest.mark.parametrize("dimension", ["probability", "impact", "controllability"])
@PROPERTY
@given(value, value, value, value)
def test_worsening_one_dimension_never_lowers_the_tier(dimension, p, i, c, other):
    """Raising P or I, or lowering C, never lowers the tier."""
    point = {"probability": p, "impact": i, "controllability": c}
    better, worse_value = worse(dimension, point[dimension], other)
    before = classify(**{**point, dimension: better})
    after = classify(**{**point, dimension: worse_value})
    assert RANK[after] >= RANK[before]


@PROPERTY
@given(value, value, value, value, value, value)
def test_a_point_worse_in_every_dimension_is_never_a_lower_tier(p1, i1, c1, p2, i2, c2):
    worse = (max(p1, p2), max(i1, i2), min(c1, c2))
    assert RANK[classify(*worse)] >= RANK[classify(p1, i1, c1)]


@PROPERTY
@given(half_open_top(0.70), half_open_top(0.30), half_open_bottom(0.50))
def test_seed_row_red_core_supplier_outage(p, i, c):
    assert classify(p, i, c) == "red"


@PROPERTY
@given(open_interval(0.50, 0.70), open_interval(0.20, 0.30), open_interval(0.50, 0.70))
def test_seed_row_orange_competitor_launch(p, i, c):
    assert classify(p, i, c) == "orange"


@PROPERTY
@given(open_interval(0.30, 0.50), open_interval(0.10, 0.20), half_open_top(0.70))
def test_seed_row_yellow_channel_inventory_backlog(p, i, c):
    assert classify(p, i, c) == "yellow"


@PROPERTY
@given(half_open_bottom(0.30), half_open_bottom(0.10), half_open_top(0.80))
def test_seed_row_blue_single_complaint(p, i, c):
    assert classify(p, i, c) == "blue"


@pytest.mark.parametrize("p, i, c, tier", [
    (0.9, 0.5, 0.2, "red"),        # key customer bankrupt
    (0.6, 0.25, 0.6, "orange"),    # competitor launch
    (0.4, 0.15, 0.8, "yellow"),    # channel inventory backlog
    (0.1, 0.05, 0.9, "blue"),      # single complaint
    (0.6, 0.12, 0.6, "yellow"),    # a gap of the seed table: the matrix's comment says yellow
    (0.0, 0.0, 1.0, "blue"),
    (1.0, 1.0, 0.0, "red"),
])
def test_examples_a_risk_officer_knows(p, i, c, tier):
    assert classify(p, i, c) == tier
