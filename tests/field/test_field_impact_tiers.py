"""Issue 12, "Tiers that mean something": the tier of an overdue invoice is
the money at stake relative to what its customer buys in a year, as a credit
controller reckons it, not any invoice 31 days late going to the sales
leadership group."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from riskwatch import testing as t
from riskwatch.testing import Scenario, at_plus

DUE = "2026-03-01T00:00:00Z"


def buying(customer_id: str, customer_class: str, monthly_cny: int, months: int = 14) -> list[dict]:
    """A customer's profile and one order a month for `months` months before March 2026."""
    first = datetime(2026, 3, 10, tzinfo=timezone.utc) - timedelta(days=round(30.44 * months))
    events = [t.customer_profile(customer_id, customer_class, at=first - timedelta(days=1))]
    for n in range(months):
        events.append(t.order_placed(f"{customer_id}-ORD-{n}", customer_id, monthly_cny,
                                     at=first + timedelta(days=round(30.44 * n))))
    return events


def overdue(customer_id: str, customer_class: str, monthly_cny: int, invoice_cny: int, days: int, *history) -> dict:
    story = Scenario().feed(
        *buying(customer_id, customer_class, monthly_cny), *history,
        t.invoice_issued("INV-1", customer_id, invoice_cny, due_at=DUE, at="2026-02-01T09:00:00Z"),
    )
    story.advance_to(at_plus(DUE, days=days))
    return story.alert("payment_overdue", "INV-1")


def test_an_invoice_of_2_percent_of_annual_purchases_31_days_late_is_a_frontline_matter():
    alert = overdue("ACME", "C", 100_000, 24_000, days=31)       # 24k of 1.2M a year
    assert alert["status"] == "open"
    assert (alert["tier"], alert["owner"]) == ("blue", "frontline_team")
    assert alert["respond_by"] == "2026-04-01T00:00:00Z"         # raised 31 March: within 24 h
    assert (alert["amount_at_stake_cny"], alert["impact_reference_cny"]) == (24_000, 1_200_000)


def test_2_percent_stays_with_the_frontline_even_at_a_key_account():
    alert = overdue("BIGCO", "A", 1_000_000, 240_000, days=31)   # 240k of 12M a year
    assert alert["tier"] == "blue"


def test_40_percent_of_an_a_class_customers_annual_purchases_90_days_late_is_red():
    alert = overdue("BIGCO", "A", 1_000_000, 4_800_000, days=91)  # 4.8M of 12M a year
    assert (alert["tier"], alert["owner"]) == ("red", "crisis_team")
    assert alert["impact_reference_cny"] == 12_000_000


def test_the_same_invoice_climbs_the_tiers_as_it_ages():
    tiers = [overdue("BIGCO", "A", 1_000_000, 4_800_000, days=days)["tier"] for days in (31, 61, 91)]
    assert tiers == ["orange", "red", "red"]


def test_a_small_accounts_unpaid_invoice_is_not_a_crisis_for_the_company():
    # 40% of a D-class customer's 120k a year, 91 days late: the leadership group, not the crisis team.
    alert = overdue("SHOP", "D", 10_000, 48_000, days=91)
    assert alert["tier"] == "orange"


def test_more_of_the_customers_year_at_stake_is_never_a_lower_tier():
    ranks = {"blue": 0, "yellow": 1, "orange": 2, "red": 3}
    tiers = [overdue("MIDCO", "B", 500_000, amount, days=61)["tier"] for amount in (300_000, 900_000, 1_500_000, 2_400_000)]
    assert tiers == ["blue", "yellow", "orange", "orange"]      # 5%, 15%, 25%, 40% of 6M a year
    assert [ranks[t] for t in tiers] == sorted(ranks[t] for t in tiers)


def test_a_new_customers_first_invoice_is_measured_against_what_its_class_buys_in_a_year():
    # No purchase history at all: a B-class customer stands for at least 5M a year, so
    # 400k is 8% of it (a frontline matter), not 100% of nothing.
    story = Scenario().feed(
        t.customer_profile("NEWCO", "B", at="2026-01-20T09:00:00Z"),
        t.invoice_issued("INV-1", "NEWCO", 400_000, due_at=DUE, at="2026-02-01T09:00:00Z"),
    ).advance_to(at_plus(DUE, days=31))
    alert = story.alert("payment_overdue", "INV-1")
    assert (alert["tier"], alert["impact_reference_cny"]) == ("blue", 5_000_000)


def test_a_cancelled_order_is_not_part_of_what_the_customer_buys():
    big = t.order_placed("ACME-BIG", "ACME", 1_200_000, at="2026-01-12T10:00:00Z")
    cancelled = t.order_cancelled("ACME-BIG", "ACME", at="2026-01-13T10:00:00Z")
    kept = overdue("ACME", "C", 100_000, 300_000, 31, big)
    withdrawn = overdue("ACME", "C", 100_000, 300_000, 31, big, cancelled)
    assert (kept["impact_reference_cny"], kept["tier"]) == (2_400_000, "yellow")        # 12.5%
    assert (withdrawn["impact_reference_cny"], withdrawn["tier"]) == (1_200_000, "orange")   # 25%


def test_an_alert_open_for_over_a_year_is_still_measured_against_the_reference_it_was_raised_with():
    # The customer keeps buying; by the time a part payment comes, 15 months on, the
    # months the invoice was first measured against have long left the window. The
    # share still open is 200k of the 1.2M a year the customer bought when it fell overdue.
    story = Scenario().feed(
        *buying("ACME", "C", 100_000),
        t.invoice_issued("INV-1", "ACME", 300_000, due_at=DUE, at="2026-02-01T09:00:00Z"),
    ).advance_to(at_plus(DUE, days=31))
    raised = story.alert("payment_overdue", "INV-1")
    for n in range(15):
        story.feed(t.order_placed(f"LATER-{n}", "ACME", 400_000, at=at_plus(DUE, days=40 + 30 * n)))
    story.feed(t.payment_received("INV-1", "ACME", 100_000, at=at_plus(DUE, days=480)))
    later = story.alert("payment_overdue", "INV-1")
    assert raised["impact_reference_cny"] == later["impact_reference_cny"] == 1_200_000
    assert (raised["tier"], raised["amount_at_stake_cny"]) == ("orange", 300_000)     # 25%
    assert (later["status"], later["tier"], later["amount_at_stake_cny"]) == ("open", "yellow", 200_000)   # 16.7%
