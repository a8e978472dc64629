"""Money as real exports carry it (issue 12, items 1–3 and 6; DOMAIN §3 "Money",
"Credit limit"): amounts are exact in their document's currency, a payment
without a currency is in its invoice's, a currency without a rate is refused,
and a credit limit of 0 is a credit hold."""

from __future__ import annotations

from riskwatch import testing as t
from riskwatch.testing import Scenario

LATER = "2024-12-31T00:00:00Z"


def test_a_price_in_a_currency_without_a_rate_is_refused_naming_it_not_taken_as_cny():
    # Item 1: 800 CNY, then 150 SGD a day later. Taken 1:1 that is an 81% cut (red).
    story = Scenario().feed(
        t.price_observed("RivalCo", "SKU-9", "800.00", at="2024-05-01T09:00:00+08:00"),
        t.price_observed("RivalCo", "SKU-9", "150.00", currency="SGD", at="2024-05-02T09:00:00+08:00"),
    ).advance_to("2024-05-03T09:00:00+08:00")
    assert story.alerts() == []
    [refused] = story.rejections
    assert refused.kind == "unknown_currency"
    assert "currency" in refused.reason and "'SGD'" in refused.reason and "no rate" in refused.reason


def test_a_refused_currency_leaves_the_clock_where_it_was():
    story = Scenario().feed(
        t.invoice_issued("INV-1", "C1", 1000, due_at="2024-01-31T00:00:00Z", at="2024-01-01T00:00:00Z"),
        # Dated far later: had it moved the clock, INV-1 would be overdue.
        t.order_placed("SO-1", "C1", 5000, currency="SGD", at="2024-06-01T00:00:00Z"),
    )
    assert story.alerts() == [] and story.engine.watermark.isoformat().startswith("2023-12-31T23:50")


def test_an_order_in_a_currency_without_a_rate_is_refused_too():
    story = Scenario().feed(t.order_placed("SO-1", "C1", 5000, currency="XAU"))
    assert [r.kind for r in story.rejections] == ["unknown_currency"]


def test_a_payment_without_a_currency_settles_its_foreign_currency_invoice():
    # Item 2: 12,000 USD due 4 Feb, 12,000.00 paid on 1 Feb with no currency field.
    story = Scenario().feed(
        t.invoice_issued("INV-US-7", "C-US", "12000.00", currency="USD",
                         due_at="2024-02-04T00:00:00Z", at="2024-01-05T00:00:00Z"),
        t.payment_received("INV-US-7", "C-US", "12000.00", at="2024-02-01T00:00:00Z"),
    ).advance_to(LATER)
    assert story.alerts() == []


def test_a_partly_paid_foreign_currency_invoice_shows_its_balance_in_its_own_currency():
    story = Scenario().feed(
        t.invoice_issued("INV-US-8", "C-US", "12000.00", currency="USD",
                         due_at="2024-02-04T00:00:00Z", at="2024-01-05T00:00:00Z"),
        t.payment_received("INV-US-8", "C-US", "2000.00", at="2024-02-01T00:00:00Z"),
    ).advance_to("2024-03-10T00:00:00Z")
    alert = story.alert("payment_overdue", "INV-US-8")
    assert "10,000.00 USD" in alert["summary"]
    assert alert["amount_at_stake_cny"] == 71_000.00     # at the rules' 7.1 CNY per USD


def test_a_payment_in_another_currency_than_its_invoice_is_converted_at_the_rules_rates():
    # 1,000 USD is 7,100 CNY at the shipped rate: paying 7,100 CNY settles it.
    story = Scenario().feed(
        t.invoice_issued("INV-US-9", "C-US", "1000.00", currency="USD",
                         due_at="2024-02-04T00:00:00Z", at="2024-01-05T00:00:00Z"),
        t.payment_received("INV-US-9", "C-US", "7100.00", currency="CNY", at="2024-02-01T00:00:00Z"),
    ).advance_to(LATER)
    assert story.alerts() == []


def test_two_payments_that_add_up_to_the_invoice_settle_it_exactly():
    # Item 3: 19,169.67 USD paid as 8,852.43 + 10,317.24; converted one by one they left 0.01 CNY "open".
    story = Scenario().feed(
        t.invoice_issued("INV-US-10", "C-US", "19169.67", currency="USD",
                         due_at="2024-03-02T00:00:00Z", at="2024-02-01T00:00:00Z"),
        t.payment_received("INV-US-10", "C-US", "8852.43", currency="USD", at="2024-02-20T00:00:00Z"),
        t.payment_received("INV-US-10", "C-US", "10317.24", currency="USD", at="2024-02-28T00:00:00Z"),
    ).advance_to(LATER)
    assert story.alerts() == []


def test_a_credit_limit_of_zero_is_a_credit_hold_any_receivable_breaches_it():
    # Item 6: a limit of 0.01 alerted, a limit of 0 did not.
    story = Scenario().feed(
        t.customer_profile("C-HOLD", "B", credit_limit="0", at="2024-04-01T00:00:00Z"),
        t.invoice_issued("INV-H1", "C-HOLD", "60000", due_at="2024-05-01T00:00:00Z", at="2024-04-02T09:00:00Z"),
    ).advance_to("2024-04-02T12:00:00Z")
    alert = story.alert("credit_limit_breach", "C-HOLD")
    assert alert is not None and alert["status"] == "open"
    assert "credit hold" in alert["summary"]


def test_no_credit_limit_at_all_is_nothing_to_check():
    story = Scenario().feed(
        t.customer_profile("C-FREE", "B", at="2024-04-01T00:00:00Z"),
        t.invoice_issued("INV-F1", "C-FREE", "60000", due_at="2024-05-01T00:00:00Z", at="2024-04-02T09:00:00Z"),
    ).advance_to("2024-04-02T12:00:00Z")
    assert story.alert("credit_limit_breach", "C-FREE") is None


def test_a_credit_hold_ends_when_the_receivable_is_paid():
    story = Scenario().feed(
        t.customer_profile("C-HOLD", "B", credit_limit="0", at="2024-04-01T00:00:00Z"),
        t.invoice_issued("INV-H1", "C-HOLD", "60000", due_at="2024-05-01T00:00:00Z", at="2024-04-02T09:00:00Z"),
    ).advance_to("2024-04-02T12:00:00Z")
    story.feed(t.payment_received("INV-H1", "C-HOLD", "60000", at="2024-04-03T09:00:00Z")).advance_to(
        "2024-04-03T12:00:00Z")
    assert story.alert("credit_limit_breach", "C-HOLD")["status"] == "resolved"
