"""The tier an alert closes at does not depend on the clock.

A late shipment or an overdue invoice steps up a tier as its measurement
grows. The clock that measures it is the latest event time seen less the
allowed lateness; in the Kafka worker it is shared by every partition, so
when the delivery or the payment is read it can stand anywhere between the
last evaluation and the clearing fact itself. The same events must still
close the alert at the same tier (DOMAIN §4: the same alerts in `replay` and
in the worker, whatever the partitioning)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import NamedTuple

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from riskwatch import testing as t
from riskwatch.engine.scoring import score
from riskwatch.contracts import Tier
from riskwatch.testing import Scenario

START = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
# A day, as in the streams tests: read as they come, the events leave the clock
# a day behind the delivery or the payment, often short of a breakpoint.
LATENESS = 86400.0
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
RULES = t.default_rules()

classes = st.sampled_from(["A", "B", "C", "D"])


class Story(NamedTuple):
    events: list[dict]      # in event-time order, the clearing fact last
    cleared: datetime       # when the delivery or the settlement happened
    eta_late: bool = False  # the latest ETA was itself beyond the 72 h threshold


@st.composite
def late_shipment(draw) -> Story:
    """A shipment delivered more than 72 h late."""
    customer_class = draw(classes)
    promised = START + timedelta(days=7, minutes=draw(st.integers(0, 59)))
    events = [
        t.customer_profile("C1", customer_class, at=START),
        t.order_placed("ORD-1", "C1", draw(st.sampled_from([20_000, 900_000, 1_500_000])), at=START + timedelta(hours=1)),
        t.delivery_scheduled("SHP-1", "C1", promised_at=promised, order_id="ORD-1", at=START + timedelta(hours=2)),
    ]
    eta_late = False
    if draw(st.booleans()):
        eta = promised + timedelta(hours=draw(st.integers(0, 240)))
        events.append(t.eta_updated("SHP-1", "C1", eta=eta, at=promised - timedelta(hours=draw(st.integers(1, 48)))))
        eta_late = eta > promised + timedelta(hours=72)
    # Around the breakpoints (120 h, 168 h), where the clock decides most.
    delay = timedelta(hours=draw(st.sampled_from([96, 120, 144, 168, 192])), minutes=draw(st.integers(-1440, 1440)))
    delivered = promised + max(delay, timedelta(hours=72, minutes=1))
    events.append(t.delivered("SHP-1", "C1", delivered_at=delivered))
    return Story(events, delivered, eta_late)


@st.composite
def overdue_invoice(draw) -> Story:
    """An invoice settled (paid off in instalments, or written off) more than 30 days after its due date."""
    customer_class = draw(classes)
    due = START + timedelta(days=20)
    amount = draw(st.sampled_from([80_000, 1_200_000, 3_000_000]))
    events = [
        t.customer_profile("C1", customer_class, at=START),
        t.invoice_issued("INV-1", "C1", amount, due_at=due, at=START + timedelta(hours=1)),
    ]
    # Around the breakpoints (60 and 90 days overdue).
    overdue = timedelta(days=draw(st.sampled_from([45, 60, 75, 90, 105])), minutes=draw(st.integers(-1440, 1440)))
    settled = due + max(overdue, timedelta(days=30, minutes=1))
    instalments = sorted(due + timedelta(days=day, minutes=minute)
                         for day, minute in draw(st.lists(st.tuples(st.integers(1, 119), st.integers(0, 59)), max_size=3)))
    paid = 0
    for when in instalments:
        if when < settled:
            events.append(t.payment_received("INV-1", "C1", amount // 4, at=when))
            paid += amount // 4
    if draw(st.booleans()):
        events.append(t.payment_received("INV-1", "C1", amount - paid, at=settled))
    else:
        events.append(t.invoice_written_off("INV-1", "C1", at=settled))
    return Story(events, settled)


def with_the_clock_moved(events: list[dict], instants: list[datetime]) -> Scenario:
    """The events in order, the clock moved to each instant once every event up to it
    was read: as other partitions' events move a worker's shared clock, within the
    allowed lateness (no event is older than the clock when it is read)."""
    story = Scenario(lateness_seconds=LATENESS)
    pending = sorted(instants)
    for event in events:
        occurred = t.instant(event["occurred_at"])
        while pending and pending[0] <= occurred:
            story.advance_to(pending.pop(0))
        story.feed(event)
    return story


def clock_instants(cleared: datetime) -> st.SearchStrategy[list[datetime]]:
    """Where the clock may stand when the clearing fact is read: within the lateness before it."""
    return st.lists(st.integers(0, int(LATENESS)).map(lambda s: cleared - timedelta(seconds=s)), max_size=3)


@PROPERTY
@given(st.data(), st.one_of(late_shipment(), overdue_invoice()))
def test_wherever_the_clock_stands_within_the_lateness_the_alert_closes_at_the_same_tier(data, story):
    instants = data.draw(clock_instants(story.cleared))
    read_as_they_come = Scenario(lateness_seconds=LATENESS).feed(*story.events).outcome()
    [(status, _)] = read_as_they_come.values()
    assert status == "resolved"
    assert with_the_clock_moved(story.events, instants).outcome() == read_as_they_come


@PROPERTY
@given(st.data(), late_shipment())
def test_a_late_shipment_closes_at_the_tier_its_final_delay_scores(data, story):
    instants = data.draw(clock_instants(story.cleared))
    closed = with_the_clock_moved(story.events, instants).alert("delivery_delay", "SHP-1")
    assert closed["status"] == "resolved"
    promised = next(t.instant(e["promised_at"]) for e in story.events if e["type"] == "delivery.scheduled")
    final_delay = (story.cleared - promised) / timedelta(hours=1)
    assert closed["observed"] == round(final_delay, 4)
    assert closed["tier"] == tier_of("delivery_delay", final_delay, closed["amount_at_stake_cny"],
                                     closed["customer_class"], story.eta_late, closed["impact_reference_cny"])


# --- the shipped rules: a worse measurement never scores a lower tier -----------------------------

def tier_of(indicator_id: str, observed: float, amount_cny: float, customer_class: str, eta_late: bool = False,
            reference_cny: float | None = None) -> str:
    indicator = RULES.indicators[indicator_id]
    return RULES.classify(*(score(spec, observed, amount_cny, customer_class, eta_late, reference_cny)
                            for spec in (indicator.probability, indicator.impact, indicator.controllability)))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["delivery_delay", "payment_overdue"]), st.floats(0, 2000), st.floats(0, 2000),
       st.floats(0, 1e8), st.floats(0, 1e8), classes, st.booleans(), st.floats(0, 2e8))
def test_with_the_shipped_rules_longer_and_larger_never_scores_a_lower_tier(
    indicator_id, observed, more_observed, amount, more_amount, customer_class, eta_late, reference
):
    # What makes the highest stretch of an episode the final one for these indicators
    # (one alert: one customer reference for every stretch).
    low = tier_of(indicator_id, observed, amount, customer_class, eta_late, reference)
    high = tier_of(indicator_id, observed + more_observed, amount + more_amount, customer_class, eta_late, reference)
    assert Tier(high).rank >= Tier(low).rank
