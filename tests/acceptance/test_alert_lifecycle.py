"""How one alert lives: it is raised once, changes tier as the risk grows,
and is resolved (never deleted) when the condition clears — always under
the same alert_id. In-process through riskwatch.testing.Scenario."""

from __future__ import annotations

from riskwatch import testing as t
from riskwatch.testing import Scenario, at_plus

DUE = "2026-03-01T00:00:00Z"


def key_account_invoice() -> Scenario:
    return Scenario().feed(
        t.customer_profile("BIGCO", "A", credit_limit=50_000_000, at="2026-01-10T09:00:00Z"),
        t.invoice_issued("INV-BIG", "BIGCO", "2000000.00", due_at=DUE, at="2026-02-01T09:00:00Z"),
    )


def test_a_large_a_class_invoice_unpaid_past_60_days_goes_from_orange_to_red():
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
