"""Competitor reference price (DOMAIN §4): the previous observation of the
same (competitor, sku), in CNY whatever the currency it was quoted in."""

from __future__ import annotations

from riskwatch import testing as t
from riskwatch.testing import Scenario


def observe(*prices) -> Scenario:
    """(competitor, sku, price[, currency]) observations, one a day from 1 February,
    then the clock a day on (a cut is decided once the watermark passes it)."""
    story = Scenario()
    for day, (competitor, sku, price, *currency) in enumerate(prices, start=1):
        story.feed(t.price_observed(competitor, sku, price, currency=(currency or ["CNY"])[0],
                                    at=f"2026-02-{day:02d}T12:00:00Z"))
    return story.advance_to(f"2026-02-{len(prices) + 1:02d}T12:00:00Z")


def test_another_competitors_lower_price_is_not_a_cut():
    assert observe(("Apex", "SKU-1", 1000), ("Borealis", "SKU-1", 850)).outcome() == {}


def test_another_skus_lower_price_is_not_a_cut():
    assert observe(("Apex", "SKU-1", 1000), ("Apex", "SKU-2", 850)).outcome() == {}


def test_a_gradual_slide_of_five_percent_steps_is_measured_step_by_step():
    assert observe(("Apex", "SKU-1", 1000), ("Apex", "SKU-1", 950), ("Apex", "SKU-1", 900),
                   ("Apex", "SKU-1", 855)).outcome() == {}


def test_prices_in_other_currencies_are_compared_in_cny():
    # 1000 USD is 7100 CNY at the rule files' rate: 7000 CNY is a 1.4% cut, 6000 CNY a 15.5% cut.
    assert observe(("Apex", "SKU-1", 1000, "USD"), ("Apex", "SKU-1", 7000)).outcome() == {}
    [alert] = observe(("Apex", "SKU-1", 1000, "USD"), ("Apex", "SKU-1", 6000)).alerts()
    assert alert["observed"] == round(1 - 6000 / 7100, 4)


def test_a_deeper_cut_while_open_updates_the_same_alert():
    story = observe(("Apex", "SKU-1", 1000), ("Apex", "SKU-1", 880), ("Apex", "SKU-1", 700))
    assert [c["change"] for c in story.changes][0] == "raised"
    assert len({c["alert_id"] for c in story.changes}) == 1
    assert story.alerts()[0]["observed"] == 0.3       # still measured against 1000, the price before the war
