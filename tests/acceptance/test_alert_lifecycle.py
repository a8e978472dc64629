"""How one alert lives: it is raised once, changes tier as the risk grows,
and is resolved (never deleted) when the condition clears — always under
the same alert_id. In-process through riskwatch.testing.Scenario."""

from __future__ import annotations

from riskwatch import testing as t
from riskwatch.testing import Scenario, at_plus

DUE = "2026-03-01T00:00:00Z"


def key_account_invoice() -> Scenario:
    """A 4M CNY invoice of a key (A-class) account with no purchase history yet: 40% of
    the 10M CNY a year its class stands for (rules/indicators.yaml, `references`)."""
    return Scenario().feed(
        t.customer_profile("BIGCO", "A", credit_limit=50_000_000, at="2026-01-10T09:00:00Z"),
        t.invoice_issued("INV-BIG", "BIGCO", "4000000.00", due_at=DUE, at="2026-02-01T09:00:00Z"),
    )


def test_a_key_account_invoice_of_40_percent_of_its_annual_purchases_goes_from_orange_to_red_past_60_days():
    story = key_account_invoice().advance_to(at_plus(DUE, days=31))
    first = story.alert("payment_overdue", "INV-BIG")
    assert (first["tier"], first["owner"]) == ("orange", "sales_leadership_group")
    story.advance_to(at_plus(DUE, days=61))
    now = story.alert("payment_overdue", "INV-BIG")
    assert now["alert_id"] == first["alert_id"]
    assert now["tier"] == "red"
    assert now["owner"] == "crisis_team"
    assert now["change"] == "tier_changed"
    assert now["probability"] > 0.7 and now["impact"] > 0.3 and now["controllability"] < 0.5
    assert (now["amount_at_stake_cny"], now["impact_reference_cny"]) == (4_000_000, 10_000_000)
    assert [c["change"] for c in story.changes] == ["raised", "tier_changed"]


def test_a_written_off_invoice_resolves_its_overdue_alert():
    story = key_account_invoice().advance_to(at_plus(DUE, days=40))
    story.feed(t.invoice_written_off("INV-BIG", "BIGCO", at=at_plus(DUE, days=45)))
    alert = story.alert("payment_overdue", "INV-BIG")
    assert alert["status"] == "resolved"
    assert alert["resolution"] == "written off"


def test_an_eta_beyond_72_hours_makes_an_open_delay_alert_more_probable():
    promised = "2026-03-10T12:00:00Z"
    plain = Scenario().feed(t.delivery_scheduled("SHP-1", "C1", promised_at=promised, at="2026-03-03T09:00:00Z"))
    plain.advance_to(at_plus(promised, hours=80))
    warned = Scenario().feed(
        t.delivery_scheduled("SHP-1", "C1", promised_at=promised, at="2026-03-03T09:00:00Z"),
        t.eta_updated("SHP-1", "C1", eta=at_plus(promised, hours=150), at="2026-03-09T12:00:00Z"),
    )
    warned.advance_to(at_plus(promised, hours=80))
    assert warned.alert("delivery_delay", "SHP-1")["probability"] > plain.alert("delivery_delay", "SHP-1")["probability"]


def test_an_eta_alone_raises_nothing_before_the_promise_is_72_hours_past():
    promised = "2026-03-10T12:00:00Z"
    story = Scenario().feed(
        t.delivery_scheduled("SHP-1", "C1", promised_at=promised, at="2026-03-03T09:00:00Z"),
        t.eta_updated("SHP-1", "C1", eta=at_plus(promised, hours=150), at="2026-03-09T12:00:00Z"),
    )
    story.advance_to(at_plus(promised, hours=72))
    assert story.alerts() == []


# --- the tier an alert closes at ------------------------------------------------------------

PROMISED = "2026-03-10T12:00:00Z"


def big_late_shipment() -> Scenario:
    """A 4M CNY order of a new A-class customer (40% of its class's 10M a year):
    orange once 72 h late, red beyond 168 h."""
    return Scenario().feed(
        t.order_placed("ORD-9", "C1", "4000000.00", customer_tier="A", at="2026-03-03T09:00:00Z"),
        t.delivery_scheduled("SHP-9", "C1", promised_at=PROMISED, order_id="ORD-9", at="2026-03-03T09:05:00Z"),
    )


def test_a_late_shipment_delivered_past_168_hours_closes_red_though_it_was_worked_as_orange():
    story = big_late_shipment().advance_to(at_plus(PROMISED, hours=100))
    assert story.alert("delivery_delay", "SHP-9")["tier"] == "orange"
    # Delivered 168 h 5 min late: read with the clock 10 minutes behind, before it reached 168 h.
    story.feed(t.delivered("SHP-9", "C1", delivered_at=at_plus(PROMISED, hours=168, minutes=5)))
    closed = story.alert("delivery_delay", "SHP-9")
    assert (closed["status"], closed["tier"], closed["owner"]) == ("resolved", "red", "crisis_team")
    assert closed["observed"] == 168.0833


def test_the_closing_tier_is_the_same_whether_or_not_the_clock_passed_168_hours_before_the_delivery():
    delivery = t.delivered("SHP-9", "C1", delivered_at=at_plus(PROMISED, hours=168, minutes=5), event_id="dlv-9")
    behind = big_late_shipment().advance_to(at_plus(PROMISED, hours=100)).feed(delivery)
    # Another partition's events took the shared clock a minute short of the delivery.
    ahead = big_late_shipment().advance_to(at_plus(PROMISED, hours=100)).advance_to(at_plus(PROMISED, hours=168, minutes=4))
    assert ahead.alert("delivery_delay", "SHP-9")["tier"] == "red"
    ahead.feed(delivery)
    assert ahead.outcome() == behind.outcome()


def test_an_invoice_mostly_paid_before_60_days_closes_at_the_tier_of_what_stayed_open():
    # 4M open for this class A customer is red past 60 days; 2.5M (25%) is orange.
    story = key_account_invoice().advance_to(at_plus(DUE, days=35))
    story.feed(t.payment_received("INV-BIG", "BIGCO", "1500000.00", at=at_plus(DUE, days=40)))
    story.advance_to(at_plus(DUE, days=65))
    assert story.alert("payment_overdue", "INV-BIG")["tier"] == "orange"
    story.feed(t.payment_received("INV-BIG", "BIGCO", "2500000.00", at=at_plus(DUE, days=70)))
    closed = story.alert("payment_overdue", "INV-BIG")
    assert (closed["status"], closed["tier"], closed["observed"]) == ("resolved", "orange", 70.0)


def test_an_invoice_paid_in_full_past_60_days_closes_red_though_the_clock_had_not_reached_60_days():
    story = key_account_invoice().advance_to(at_plus(DUE, days=45))
    assert story.alert("payment_overdue", "INV-BIG")["tier"] == "orange"
    story.feed(t.payment_received("INV-BIG", "BIGCO", "4000000.00", at=at_plus(DUE, days=60, minutes=5)))
    closed = story.alert("payment_overdue", "INV-BIG")
    assert (closed["status"], closed["tier"]) == ("resolved", "red")
