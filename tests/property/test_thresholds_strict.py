"""Thresholds are strict (DOMAIN §4): exactly at the threshold raises
nothing, anything beyond does. The clock is the watermark (latest event time
less 10 minutes) or an explicit advance, as `replay --until` does."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from hypothesis import example, given, settings
from hypothesis import strategies as st

from riskwatch import testing as t
from riskwatch.testing import Scenario, at_plus, instant

PROPERTY = settings(max_examples=60, deadline=None)
DUE = "2026-03-01T00:00:00Z"
PROMISED = "2026-03-10T12:00:00Z"
HOUR, DAY = 3600, 86400


def unpaid_invoice(clock_offset_seconds: int) -> Scenario:
    story = Scenario().feed(t.invoice_issued("INV-1", "C1", "250000.00", due_at=DUE, at="2026-02-01T09:00:00Z"))
    return story.advance_to(at_plus(DUE, days=30, seconds=clock_offset_seconds))


def undelivered_shipment(clock_offset_seconds: int) -> Scenario:
    story = Scenario().feed(t.delivery_scheduled("SHP-1", "C1", promised_at=PROMISED, at="2026-03-03T09:00:00Z"))
    return story.advance_to(at_plus(PROMISED, hours=72, seconds=clock_offset_seconds))


# --- payment overdue > 30 days -------------------------------------------------------

def test_an_invoice_exactly_30_days_overdue_raises_nothing():
    assert unpaid_invoice(0).alerts() == []


def test_an_invoice_30_days_and_one_second_overdue_raises_payment_overdue():
    [alert] = unpaid_invoice(1).alerts()
    assert alert["indicator"] == "payment_overdue"
    assert alert["subject"]["id"] == "INV-1"
    assert alert["status"] == "open"


@PROPERTY
@given(st.integers(min_value=-3 * DAY, max_value=3 * DAY))
@example(0)
@example(1)
@example(-1)
def test_overdue_alerts_exactly_when_the_clock_is_past_30_days(offset):
    alerts = unpaid_invoice(offset).alerts("payment_overdue")
    assert len(alerts) == (1 if offset > 0 else 0)


def test_the_event_clock_lags_the_latest_event_by_the_allowed_lateness():
    story = Scenario().feed(t.invoice_issued("INV-1", "C1", "250000.00", due_at=DUE, at="2026-02-01T09:00:00Z"))
    # An unrelated event 30 days + 10 minutes after due: the clock is exactly at the deadline.
    story.feed(t.price_observed("Apex", "SKU-9", 100, at=at_plus(DUE, days=30, minutes=10)))
    assert story.alerts("payment_overdue") == []
    story.feed(t.price_observed("Apex", "SKU-9", 100, at=at_plus(DUE, days=30, minutes=10, seconds=1)))
    assert len(story.alerts("payment_overdue")) == 1


def test_an_invoice_paid_before_the_deadline_never_alerts():
    story = Scenario().feed(
        t.invoice_issued("INV-1", "C1", "250000.00", due_at=DUE, at="2026-02-01T09:00:00Z"),
        t.payment_received("INV-1", "C1", "250000.00", at=at_plus(DUE, days=29)),
    )
    story.advance_to(at_plus(DUE, days=90))
    assert story.alerts() == []


def test_a_partial_payment_leaves_the_invoice_overdue():
    story = Scenario().feed(
        t.invoice_issued("INV-1", "C1", "250000.00", due_at=DUE, at="2026-02-01T09:00:00Z"),
        t.payment_received("INV-1", "C1", "249999.99", at=at_plus(DUE, days=5)),
    )
    story.advance_to(at_plus(DUE, days=31))
    [alert] = story.alerts("payment_overdue")
    assert alert["status"] == "open"


# --- delivery delay > 72 h -----------------------------------------------------------

def test_a_shipment_undelivered_exactly_72_hours_after_its_promise_raises_nothing():
    assert undelivered_shipment(0).alerts() == []


def test_a_shipment_undelivered_72_hours_and_one_second_after_its_promise_alerts():
    [alert] = undelivered_shipment(1).alerts()
    assert (alert["indicator"], alert["subject"]["id"], alert["status"]) == ("delivery_delay", "SHP-1", "open")


@PROPERTY
@given(st.integers(min_value=-2 * DAY, max_value=2 * DAY))
@example(0)
@example(1)
def test_delay_alerts_exactly_when_the_clock_is_past_72_hours(offset):
    assert len(undelivered_shipment(offset).alerts("delivery_delay")) == (1 if offset > 0 else 0)


@PROPERTY
@given(st.integers(min_value=-2 * DAY, max_value=2 * DAY))
@example(0)
@example(1)
def test_a_delivery_more_than_72_hours_late_is_recorded_and_exactly_72_is_not(offset):
    delivered_at = at_plus(PROMISED, hours=72, seconds=offset)
    story = Scenario().feed(
        t.delivery_scheduled("SHP-1", "C1", promised_at=PROMISED, at="2026-03-03T09:00:00Z"),
        t.delivered("SHP-1", "C1", delivered_at=delivered_at),
    )
    story.advance_to(at_plus(delivered_at, days=10))
    alerts = story.alerts("delivery_delay")
    if offset > 0:
        [alert] = alerts
        assert alert["status"] == "resolved"
        assert alert["observed"] > 72
    else:
        assert alerts == []


# --- competitor price cut > 10 % -------------------------------------------------------

def price_story(reference, price) -> Scenario:
    """Two observations, then the clock a day on: a cut is decided once the watermark passes it."""
    return Scenario().feed(
        t.price_observed("Apex", "SKU-1", reference, at="2026-02-01T12:00:00Z"),
        t.price_observed("Apex", "SKU-1", price, at="2026-02-04T12:00:00Z"),
    ).advance_to("2026-02-05T12:00:00Z")


def test_a_cut_of_exactly_ten_percent_raises_nothing():
    assert price_story(1000, 900).alerts() == []


def test_a_cut_just_beyond_ten_percent_starts_the_price_war_response():
    [alert] = price_story(1000, "899.99").alerts()
    assert alert["indicator"] == "competitor_price_cut"
    assert alert["playbook"]["id"] == "price_war_response"
    assert alert["subject"] == {"kind": "price", "id": "Apex/SKU-1", "competitor": "Apex", "sku": "SKU-1"}


def test_a_cut_of_exactly_ten_percent_on_a_price_with_cents_raises_nothing():
    assert price_story("1.10", "0.99").alerts() == []
    assert price_story("100.40", "90.36").alerts() == []


cents = st.integers(min_value=1, max_value=2_000_000)


@PROPERTY
@given(cents)
@example(110)
def test_a_cut_of_exactly_ten_percent_never_alerts_whatever_the_price(reference_tenths):
    reference = Decimal(reference_tenths) / 10
    assert price_story(reference, reference * Decimal("0.9")).alerts() == []


@PROPERTY
@given(cents, st.integers(min_value=1, max_value=500))
def test_a_cut_beyond_ten_percent_always_alerts(reference_tenths, extra_cents):
    reference = Decimal(reference_tenths) / 10
    price = reference * Decimal("0.9") - Decimal(extra_cents) / 100
    if price < 0:
        price = Decimal(0)
    assert len(price_story(reference, price).alerts("competitor_price_cut")) == 1


@PROPERTY
@given(st.integers(min_value=100, max_value=100_000), st.integers(min_value=0, max_value=1000))
def test_integer_prices_alert_exactly_beyond_ten_percent(reference, cut_permille):
    # Whole-yuan prices where the cut is an exact per-mille of the reference.
    if reference * cut_permille % 1000:
        reference = reference - reference % 1000 + 1000
    price = reference - reference * cut_permille // 1000
    alerts = price_story(reference, price).alerts("competitor_price_cut")
    assert len(alerts) == (1 if cut_permille > 100 else 0)


# --- customer churn rate > 15 % -----------------------------------------------------------

SEGMENT_START = instant("2026-01-05T09:00:00Z")


def churn_story(base: int, churned: int) -> Scenario:
    """`base` C-class customers order on 5 January; all but `churned` order again 60 days
    later; the clock then moves to 100 days after the first orders."""
    story = Scenario()
    for number in range(base):
        customer = f"C{number:03d}"
        story.feed(t.customer_profile(customer, "C", at=SEGMENT_START))
    for number in range(base):
        story.feed(t.order_placed(f"O1-{number}", f"C{number:03d}", 10_000, customer_tier="C",
                                  at=SEGMENT_START + timedelta(minutes=number)))
    for number in range(churned, base):
        story.feed(t.order_placed(f"O2-{number}", f"C{number:03d}", 10_000, customer_tier="C",
                                  at=SEGMENT_START + timedelta(days=60, minutes=number)))
    return story.advance_to(SEGMENT_START + timedelta(days=100))


def test_three_of_twenty_customers_churning_is_exactly_15_percent_and_raises_nothing():
    assert churn_story(20, 3).alerts("customer_churn_rate") == []


def test_four_of_twenty_customers_churning_raises_churn_for_the_segment():
    [alert] = churn_story(20, 4).alerts("customer_churn_rate")
    assert alert["subject"]["id"] == "C"
    assert alert["status"] == "open"
    assert alert["observed"] == 0.2
    assert alert["playbook"]["id"] == "churn_retention"


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=10, max_value=40).flatmap(
    lambda base: st.tuples(st.just(base), st.integers(min_value=0, max_value=base))))
def test_churn_alerts_exactly_when_the_share_is_beyond_15_percent(base_and_churned):
    base, churned = base_and_churned
    alerts = churn_story(base, churned).alerts("customer_churn_rate")
    assert len(alerts) == (1 if churned / base > 0.15 else 0)


def test_a_segment_below_the_minimum_base_is_not_evaluated():
    assert churn_story(9, 9).alerts("customer_churn_rate") == []
