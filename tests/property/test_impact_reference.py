"""The customer reference an impact share is measured against
(`customer_trailing_12m_purchases`) is a function of the facts, not of the
order they arrive in within the allowed lateness (DOMAIN §4), and what it
keeps per customer stays bounded however long the history (DOMAIN §3)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from riskwatch import testing as t
from riskwatch.engine import exposure
from riskwatch.testing import Scenario

LATENESS = timedelta(minutes=10)
PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def month_start(index: int) -> datetime:
    """The first instant of the index-th month from January 2025."""
    return datetime(2025 + index // 12, index % 12 + 1, 1, tzinfo=timezone.utc)


# Instants a few minutes either side of a month's start: where "the months before"
# is decided, and where events overtake each other across the boundary.
near_a_month_start = st.builds(
    lambda month, minutes: month_start(month) + timedelta(minutes=minutes),
    st.integers(0, 17), st.integers(-9, 9),
)


@st.composite
def purchase_history(draw) -> list[dict]:
    """A customer's orders (some cancelled) and an invoice falling overdue at a month's start."""
    events = [t.customer_profile("C1", draw(st.sampled_from("ABCD")), at=month_start(0) - timedelta(days=1))]
    for number, placed in enumerate(draw(st.lists(near_a_month_start, min_size=1, max_size=12))):
        amount = draw(st.sampled_from([5_000, 120_000, 2_500_000]))
        events.append(t.order_placed(f"O-{number}", "C1", amount, at=placed))
        if draw(st.integers(0, 4)) == 0:
            events.append(t.order_cancelled(f"O-{number}", "C1", at=placed + timedelta(minutes=draw(st.integers(0, 9)))))
    deadline = draw(near_a_month_start)
    due = deadline - timedelta(days=30)
    amount = draw(st.sampled_from([20_000, 400_000, 4_000_000]))
    events.append(t.invoice_issued("INV-1", "C1", amount, due_at=due, at=due - timedelta(days=20)))
    for sequence, event in enumerate(events):
        event["event_id"] = f"e{sequence:03d}"
    return sorted(events, key=lambda e: (e["occurred_at"], e["event_id"]))


def shuffled_within_lateness(events: list[dict], rng: random.Random) -> list[dict]:
    """An arrival order where an event overtakes only events less than the lateness older than it."""
    jitter = LATENESS.total_seconds() - 1
    keyed = [(t.instant(e["occurred_at"]).timestamp() + rng.uniform(0, jitter), i, e) for i, e in enumerate(events)]
    return [e for _, _, e in sorted(keyed)]


def the_overdue_alert(events: list[dict]) -> tuple:
    story = Scenario(lateness_seconds=LATENESS.total_seconds()).feed(*events)
    story.advance_to(month_start(20))
    assert story.rejections == []
    alert = story.alert("payment_overdue", "INV-1")
    return alert["tier"], alert["impact"], alert["impact_reference_cny"]


@PROPERTY
@given(purchase_history(), st.integers(0, 2**32))
def test_the_reference_and_the_tier_do_not_depend_on_arrival_order_within_the_lateness(events, seed):
    assert the_overdue_alert(shuffled_within_lateness(events, random.Random(seed))) == the_overdue_alert(events)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 120), st.integers(-5_000_00, 5_000_000_00)), min_size=1, max_size=60))
def test_the_purchase_record_stays_bounded_and_never_negative(orders):
    state: dict = {}
    for month, fen in orders:
        exposure.record_order(state, "C1", month_start(month).timestamp() + 3600, fen)
    record = state.get("x:C1")
    if record is not None:
        assert len(record) <= 2 + exposure.KEEP_MONTHS
        assert all(amount >= 0 for amount in record[2:])
