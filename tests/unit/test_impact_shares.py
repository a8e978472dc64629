"""Impact as a share of a business reference: the `by_share` score, the rule
checks around it, and the customer purchase record it reads
(riskwatch/engine/exposure.py)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from riskwatch.engine import exposure
from riskwatch.engine.scoring import score
from riskwatch.rules import check_rules
from riskwatch.rules.schema import Score


def ts(year: int, month: int, day: int = 15) -> float:
    return datetime(year, month, day, 12, tzinfo=timezone.utc).timestamp()


SHARES = Score.model_validate({
    "value": 0.05, "reference": "customer_trailing_12m_purchases",
    "by_share": [{"above": 0.10, "value": 0.12}, {"above": 0.30, "value": 0.32}],
})


# --- the score ----------------------------------------------------------------

def test_a_share_step_applies_strictly_above_its_bound():
    assert score(SHARES, 0.0, amount_cny=100_000, customer_class=None, reference_cny=1_000_000) == 0.05   # 10%: not above
    assert score(SHARES, 0.0, amount_cny=100_001, customer_class=None, reference_cny=1_000_000) == 0.12
    assert score(SHARES, 0.0, amount_cny=400_000, customer_class=None, reference_cny=1_000_000) == 0.32


def test_against_a_reference_of_nothing_any_amount_is_all_at_stake():
    assert score(SHARES, 0.0, amount_cny=1, customer_class=None, reference_cny=0) == 0.32
    assert score(SHARES, 0.0, amount_cny=0, customer_class=None, reference_cny=0) == 0.05


def test_without_a_reference_the_share_steps_are_not_guessed():
    assert score(SHARES, 0.0, amount_cny=10_000_000, customer_class=None) == 0.05


# --- the rule files --------------------------------------------------------------

def edit(rules_copy, old: str, new: str) -> list[str]:
    path = rules_copy / "indicators.yaml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return check_rules(rules_copy)


def test_share_steps_without_a_reference_are_refused(rules_copy):
    problems = edit(rules_copy, "      reference: segment_amount_due\n", "")
    assert problems == ["indicators.yaml: indicators.collection_rate.impact: "
                        "by_share needs a reference: the amount the share at stake is measured against"]


def test_a_reference_the_indicator_does_not_compute_is_refused(rules_copy):
    problems = edit(rules_copy, "      reference: segment_amount_due\n", "      reference: customer_trailing_12m_purchases\n")
    assert problems == ["indicators.yaml: indicators.collection_rate.impact.reference: 'customer_trailing_12m_purchases' "
                        "is not known to this indicator (it offers: segment_amount_due)"]


def test_an_unknown_reference_is_refused_naming_the_field(rules_copy):
    problems = edit(rules_copy, "      reference: segment_amount_due\n", "      reference: annual_budget\n")
    assert len(problems) == 1
    assert problems[0].startswith("indicators.yaml: indicators.collection_rate.impact.reference: must be one of")


def test_a_class_floor_must_be_given_for_every_class(rules_copy):
    problems = edit(rules_copy, "D: 100000, unknown: 500000}", "D: 100000}")
    assert problems == ["indicators.yaml: references.customer_trailing_12m_purchases.floor_by_class.unknown: required"]


def test_the_shipped_rules_name_their_references(rules):
    for indicator_id in ("delivery_delay", "payment_overdue", "key_account_decline", "credit_limit_breach"):
        assert rules.indicators[indicator_id].impact.reference == "customer_trailing_12m_purchases"
    assert rules.indicators["customer_churn_rate"].impact.reference == "segment_trailing_12m_purchases"
    assert rules.indicators["collection_rate"].impact.reference == "segment_amount_due"
    assert rules.indicators["sales_target_lag"].impact.reference == "target_to_date"
    floors = rules.references.customer_trailing_12m_purchases.floor_by_class
    assert (floors.A, floors.B, floors.C) == (10_000_000, 5_000_000, 500_000)   # DOMAIN §2 class bounds


# --- the purchase record -------------------------------------------------------------

def monthly_orders(state: dict, months: list[tuple[int, int]], fen: int) -> None:
    for year, month in months:
        exposure.record_order(state, "C1", ts(year, month), fen)


def months_from(year: int, month: int, count: int) -> list[tuple[int, int]]:
    index = year * 12 + month - 1
    return [((index + n) // 12, (index + n) % 12 + 1) for n in range(count)]


def test_the_reference_is_the_12_full_months_before_the_instant(rules):
    state: dict = {}
    monthly_orders(state, months_from(2024, 1, 30), 100_000_00)     # 100k CNY a month, Jan 2024 - Jun 2026
    exposure.record_order(state, "C1", ts(2026, 6, 20), 900_000_00)   # the month in progress does not count
    assert exposure.customer_reference_cny(state, rules, "C1", "C", ts(2026, 6, 25)) == 1_200_000


def test_a_young_history_is_annualized_and_never_below_the_class_floor(rules):
    state: dict = {}
    monthly_orders(state, months_from(2026, 1, 4), 300_000_00)      # seen since January (a partial month)
    # February and March, full: 600k in two months is 3.6M a year.
    assert exposure.customer_reference_cny(state, rules, "C1", "C", ts(2026, 4, 2)) == 3_600_000
    assert exposure.customer_reference_cny(state, rules, "C1", "B", ts(2026, 4, 2)) == 5_000_000
    # In its first month nothing full has been seen: the floor of its class.
    assert exposure.customer_reference_cny({}, rules, "C1", "A", ts(2026, 1, 20)) == 10_000_000
    assert exposure.customer_reference_cny({}, rules, "C1", None, ts(2026, 1, 20)) == 500_000


def test_a_customer_that_stopped_buying_a_year_ago_has_nothing_to_measure_against(rules):
    state: dict = {}
    monthly_orders(state, months_from(2024, 1, 14), 100_000_00)     # last order February 2025
    assert exposure.customer_reference_cny(state, rules, "C1", "A", ts(2026, 4, 1)) == 0


def test_the_record_stays_bounded_whatever_the_history():
    state: dict = {}
    monthly_orders(state, months_from(2016, 1, 120), 1_00)
    assert len(state["x:C1"]) == 2 + exposure.KEEP_MONTHS


def test_a_cancelled_order_is_taken_back_out_of_its_month(rules):
    state: dict = {}
    monthly_orders(state, months_from(2025, 1, 15), 100_000_00)
    exposure.record_order(state, "C1", ts(2026, 2, 3), 1_200_000_00)
    assert exposure.customer_reference_cny(state, rules, "C1", "C", ts(2026, 3, 10)) == 2_400_000
    exposure.record_order(state, "C1", ts(2026, 2, 3), -1_200_000_00)
    assert exposure.customer_reference_cny(state, rules, "C1", "C", ts(2026, 3, 10)) == 1_200_000


@pytest.mark.parametrize("order", [lambda xs: xs, lambda xs: list(reversed(xs)), lambda xs: xs[1::2] + xs[::2]])
def test_the_record_is_the_same_whatever_order_the_months_arrive_in(order):
    amounts = [(year, month, 10_000 * (n + 1)) for n, (year, month) in enumerate(months_from(2024, 11, 20))]
    expected: dict = {}
    for year, month, fen in amounts:
        exposure.record_order(expected, "C1", ts(year, month), fen)
    state: dict = {}
    for year, month, fen in order(amounts):
        exposure.record_order(state, "C1", ts(year, month), fen)
    assert state == expected


def test_an_order_and_its_cancellation_leave_the_same_record_whichever_came_first():
    from riskwatch import testing as t
    from riskwatch.testing import Scenario

    order = t.order_placed("O-1", "C1", 500, at="2026-01-31T12:00:00Z")
    cancellation = t.order_cancelled("O-1", "C1", at="2026-01-31T12:05:00Z")
    placed_first = Scenario().feed(order, cancellation).engine.state
    cancelled_first = Scenario().feed(cancellation, order).engine.state
    assert placed_first["x:C1"] == cancelled_first["x:C1"]
    # January was seen either way: February is then the first full month counted.
    assert exposure.purchases_in_window(placed_first["x:C1"], exposure.month_of(ts(2026, 3, 1))) == (0, 1)
