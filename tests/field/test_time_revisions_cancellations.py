"""Time as real business streams carry it (issue 12, items 4, 5, 9, 10, 11;
DOMAIN §3 "Revisions", "Cancellation", §4): revisions hold by event time,
cancelled orders owe no delivery, late facts keep an alert's history
truthful, price cuts are decided at the watermark, and a reused event id is
a conflict."""

from __future__ import annotations

from riskwatch import testing as t
from riskwatch.testing import Scenario


# --- item 4: revisions arriving out of order ------------------------------------------

def shipment_revisions() -> tuple[dict, dict, dict, dict]:
    order = t.order_placed("SO-77", "C77", 50_000, at="2024-03-01T08:00:00Z")
    latest = t.delivery_scheduled("SH-77", "C77", order_id="SO-77", promised_at="2024-03-12T00:00:00Z", at="2024-03-01T09:04:00Z")
    earlier = t.delivery_scheduled("SH-77", "C77", order_id="SO-77", promised_at="2024-03-05T00:00:00Z", at="2024-03-01T09:00:00Z")
    delivered = t.delivered("SH-77", "C77", delivered_at="2024-03-11T00:00:00Z", at="2024-03-11T00:00:00Z")
    return order, latest, earlier, delivered


def test_the_schedule_with_the_latest_event_time_holds_whatever_arrives_first():
    order, latest, earlier, delivered = shipment_revisions()
    in_event_time_order = Scenario().feed(order, earlier, latest, delivered).advance_to("2024-04-01T00:00:00Z")
    swapped = Scenario().feed(order, latest, earlier, delivered).advance_to("2024-04-01T00:00:00Z")
    assert in_event_time_order.alerts() == []
    assert swapped.alerts() == []


def test_a_re_issued_invoice_keeps_the_terms_of_its_latest_issue():
    first = t.invoice_issued("INV-R", "C1", 10_000, due_at="2024-01-31T00:00:00Z", at="2024-01-01T09:00:00Z")
    re_issued = t.invoice_issued("INV-R", "C1", 10_000, due_at="2024-03-31T00:00:00Z", at="2024-01-01T09:05:00Z")
    for arrival in ((first, re_issued), (re_issued, first)):
        story = Scenario().feed(*arrival).advance_to("2024-03-15T00:00:00Z")
        assert story.alerts() == [], arrival    # due end of March: not overdue in mid-March


def test_the_latest_profile_holds_whatever_arrives_first():
    old = t.customer_profile("C1", "B", credit_limit=1_000_000, at="2024-01-01T09:00:00Z")
    new = t.customer_profile("C1", "B", credit_limit=10_000, at="2024-01-01T09:05:00Z")
    invoice = t.invoice_issued("INV-P", "C1", 50_000, due_at="2024-03-01T00:00:00Z", at="2024-01-02T09:00:00Z")
    for arrival in ((old, new, invoice), (new, old, invoice)):
        story = Scenario().feed(*arrival).advance_to("2024-01-02T12:00:00Z")
        assert story.alert("credit_limit_breach", "C1")["status"] == "open", arrival


# --- item 5: cancelled orders ----------------------------------------------------------

def cancelled_order(cancelled_at: str) -> list[dict]:
    return [
        t.order_placed("SO-55", "C55", 86_000, customer_tier="B", at="2024-06-01T09:00:00Z"),
        t.delivery_scheduled("SH-55", "C55", order_id="SO-55", promised_at="2024-06-05T10:00:00Z", at="2024-06-01T09:30:00Z"),
        t.order_cancelled("SO-55", "C55", at=cancelled_at),
    ]


def test_a_cancelled_order_raises_no_delivery_delay():
    story = Scenario().feed(*cancelled_order("2024-06-06T09:00:00Z")).advance_to("2024-07-01T00:00:00Z")
    assert story.alerts() == []


def test_a_cancellation_arriving_before_the_shipment_is_scheduled_still_counts():
    order, shipment, cancellation = cancelled_order("2024-06-01T09:20:00Z")
    story = Scenario().feed(order, cancellation, shipment).advance_to("2024-07-01T00:00:00Z")
    assert story.alerts() == []


def test_an_open_delay_alert_is_resolved_when_the_order_is_cancelled():
    order, shipment, cancellation = cancelled_order("2024-06-10T09:00:00Z")
    story = Scenario().feed(order, shipment).advance_to("2024-06-09T00:00:00Z")
    assert story.alert("delivery_delay", "SH-55")["status"] == "open"
    story.feed(cancellation).advance_to("2024-07-01T00:00:00Z")
    alert = story.alert("delivery_delay", "SH-55")
    assert alert["status"] == "resolved"
    assert alert["resolution"] == "order cancelled"
    assert cancellation["event_id"] in alert["evidence"]


def test_a_cancelled_order_leaves_the_key_account_decline_as_if_never_ordered():
    # A-class orders: 1M in each of three 90-day windows, but the recent one cancelled.
    events = [t.customer_profile("KA", "A", at="2024-01-01T00:00:00Z")]
    for n, day in enumerate(("2024-01-10", "2024-04-15", "2024-07-10")):
        events.append(t.order_placed(f"SO-K{n}", "KA", 1_000_000, at=f"{day}T09:00:00Z"))
    events.append(t.order_cancelled("SO-K2", "KA", at="2024-07-11T09:00:00Z"))
    story = Scenario().feed(*events).advance_to("2024-07-20T00:00:00Z")
    assert story.alert("key_account_decline", "KA")["status"] == "open"


# --- item 9: facts reported late -------------------------------------------------------

def test_a_payment_dated_before_the_deadline_resolves_without_rewriting_history():
    invoice = t.invoice_issued("INV-9", "C9", 40_000, due_at="2024-01-31T00:00:00Z", at="2024-01-01T09:00:00Z")
    unrelated = t.order_placed("SO-X", "C-OTHER", 1000, at="2024-03-03T00:00:00Z")
    story = Scenario().feed(invoice, unrelated)
    raised = story.alert("payment_overdue", "INV-9")
    assert raised["status"] == "open" and raised["raised_at"].startswith("2024-03-01")
    story.feed(t.payment_received("INV-9", "C9", 40_000, at="2024-02-28T00:00:00Z"))
    alert = story.alert("payment_overdue", "INV-9")
    assert alert["status"] == "resolved"
    assert alert["raised_at"].startswith("2024-03-01")
    assert "2024-02-28" in alert["resolution"] and "before the deadline" in alert["resolution"]
    assert all(not step["due_at"].startswith("1970") for step in alert["playbook"]["steps"])
    assert "1970" not in repr(story.changes)


def test_a_proof_of_delivery_uploaded_days_late_resolves_without_rewriting_history():
    story = Scenario().feed(
        t.delivery_scheduled("SH-9", "C9", order_id="SO-9", promised_at="2024-03-01T00:00:00Z", at="2024-02-20T00:00:00Z"),
        t.order_placed("SO-X", "C-OTHER", 1000, at="2024-03-06T00:00:00Z"),
    )
    assert story.alert("delivery_delay", "SH-9")["raised_at"].startswith("2024-03-04")
    story.feed(t.delivered("SH-9", "C9", delivered_at="2024-03-02T10:00:00Z", at="2024-03-06T01:00:00Z"))
    alert = story.alert("delivery_delay", "SH-9")
    assert alert["status"] == "resolved" and alert["raised_at"].startswith("2024-03-04")
    assert "2024-03-02" in alert["resolution"] and "before the deadline" in alert["resolution"]
    assert "1970" not in repr(story.changes)


# --- item 10: a price observation late within the lateness ---------------------------------

def test_a_price_observation_late_within_the_lateness_gives_the_in_order_alerts():
    first = t.price_observed("RivalCo", "SKU-1", 100, at="2024-05-01T10:00:00Z")
    lower = t.price_observed("RivalCo", "SKU-1", 85, at="2024-05-01T10:06:00Z")
    between = t.price_observed("RivalCo", "SKU-1", 90, at="2024-05-01T10:03:00Z")
    in_order = Scenario().feed(first, between, lower).advance_to("2024-05-02T00:00:00Z")
    late = Scenario().feed(first, lower, between).advance_to("2024-05-02T00:00:00Z")
    assert in_order.changes == []     # 10% exactly, then 5.6%
    assert late.changes == []         # not a raise withdrawn later: nothing at all


# --- item 11: an event id reused with different content ------------------------------------

def test_an_event_id_reused_for_another_payment_is_a_conflict_and_not_applied():
    story = Scenario().feed(
        t.invoice_issued("INV-A", "C1", 5000, due_at="2024-02-01T00:00:00Z", at="2024-01-01T00:00:00Z"),
        t.invoice_issued("INV-B", "C1", 5000, due_at="2024-02-01T00:00:00Z", at="2024-01-01T00:00:00Z"),
        t.payment_received("INV-A", "C1", 5000, at="2024-01-20T00:00:00Z", event_id="BANKREF-1"),
        t.payment_received("INV-B", "C1", 5000, at="2024-01-21T00:00:00Z", event_id="BANKREF-1"),
    ).advance_to("2024-04-01T00:00:00Z")
    [refused] = story.rejections
    assert refused.kind == "conflict"
    assert refused.reason == "event_id 'BANKREF-1' reused with different content; not applied"
    assert story.alert("payment_overdue", "INV-A") is None
    assert story.alert("payment_overdue", "INV-B")["status"] == "open"


def test_the_same_event_delivered_again_is_a_duplicate_not_a_conflict():
    payment = t.payment_received("INV-A", "C1", 5000, at="2024-01-20T00:00:00Z", event_id="BANKREF-2")
    reordered_with_an_extra_field = dict(reversed(list(payment.items())), exported_by="erp-7")
    story = Scenario().feed(payment, dict(payment), reordered_with_an_extra_field)
    assert story.rejections == [] and story.engine.stats["duplicate"] == 2
