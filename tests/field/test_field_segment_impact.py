"""Issue 12, "Tiers that mean something", for segment-level risk: churn is
weighed by what the lost customers bought, so a segment losing its smallest
accounts is not the same alarm as one losing its largest."""

from __future__ import annotations

from datetime import timedelta

from riskwatch import testing as t
from riskwatch.testing import Scenario

START = t.instant("2026-01-05T09:00:00Z")


def segment_losing(leaving_weekly_cny: int, staying_weekly_cny: int) -> dict:
    """20 C-class customers ordering every week; five of them stop after 12 weeks."""
    story = [t.customer_profile(f"C-{n:02d}", "C", at=START) for n in range(20)]
    for week in range(26):
        for n in range(20):
            leaving = n < 5
            if leaving and week >= 12:
                continue
            amount = leaving_weekly_cny if leaving else staying_weekly_cny
            story.append(t.order_placed(f"O-{week}-{n}", f"C-{n:02d}", amount, at=START + timedelta(weeks=week, minutes=n)))
    result = Scenario().feed(*story).advance_to(START + timedelta(weeks=26))
    [alert] = result.alerts("customer_churn_rate")
    return alert


def test_losing_a_quarter_of_the_segments_largest_buyers_is_an_alarm_for_the_leadership_group():
    alert = segment_losing(leaving_weekly_cny=50_000, staying_weekly_cny=2_000)
    assert alert["observed"] == 0.25
    assert (alert["tier"], alert["owner"]) == ("orange", "sales_leadership_group")
    assert alert["amount_at_stake_cny"] / alert["impact_reference_cny"] > 0.5


def test_losing_a_quarter_of_its_smallest_buyers_is_a_frontline_retention_call():
    alert = segment_losing(leaving_weekly_cny=2_000, staying_weekly_cny=50_000)
    assert alert["observed"] == 0.25
    assert (alert["tier"], alert["owner"]) == ("blue", "frontline_team")
    assert alert["amount_at_stake_cny"] / alert["impact_reference_cny"] < 0.1
    assert alert["playbook"]["steps"][0]["owner"] == "customer_success_manager"
