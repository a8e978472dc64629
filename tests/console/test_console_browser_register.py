"""The risk register and a customer's page in a real browser (Debian's
Chromium, driven by Playwright), on a desktop and a 360 px phone: filter
the register, follow a customer link, find a customer by search. Screenshots
are left under test-output/screenshots.

A real `riskwatch run` fills the store with four simulated months; a real
`riskwatch api` serves the console over it."""

from __future__ import annotations

import re

import httpx
import pytest

from support.console import TOKENS
from tests.support.browser import screenshot

pytestmark = [pytest.mark.api, pytest.mark.browser, pytest.mark.slow]


def api(url: str, path: str, **params):
    response = httpx.get(url + path, params=params, headers={"Authorization": f"Bearer {TOKENS['readonly']}"},
                         timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def sign_in(page, url: str, then: str):
    page.goto(f"{url}{then}")
    page.fill('input[name="token"]', TOKENS["officer"])
    page.locator('form[action="/console/login"] button[type="submit"]').click()
    page.wait_for_url(re.compile(re.escape(then.split("?")[0]) + r"(\?.*)?$"))


@pytest.mark.parametrize("kind", ["desktop", "phone"])
def test_the_register_filters_and_leads_to_a_customers_page(read_only_console, page, kind):
    view = page(kind, locale="en-US")
    sign_in(view, read_only_console, "/console/register")
    if kind == "phone":
        assert view.evaluate("window.innerWidth") == 360
    screenshot(view, f"register-{kind}")

    expected = api(read_only_console, "/v1/register", indicator="payment_overdue")["counts"]["alerts"]
    view.select_option('select[name="indicator"]', "payment_overdue")
    with view.expect_navigation():
        view.locator('form[action="/console/register"] button[type="submit"]').click()
    assert f"{expected} alerts" in view.locator(".register-counts").inner_text()
    rows = view.locator("table.register tbody tr[data-alert-id]")
    assert rows.count() == min(expected, 100) and rows.first.is_visible()
    screenshot(view, f"register-filtered-{kind}")

    link = rows.first.locator("a.customer-link")
    customer = link.get_attribute("data-customer-id")
    with view.expect_navigation(url=re.compile(f"/console/customers/{customer}$")):
        link.click()
    assert view.locator("h1").inner_text().endswith(customer)
    assert view.locator('[data-alert-id]').count() >= 1
    screenshot(view, f"customer-{kind}")


def test_a_customer_is_found_by_the_beginning_of_its_id_in_chinese(read_only_console, page):
    customer = next(a["alert"]["subject"]["customer_id"] for a in api(read_only_console, "/v1/alerts", limit=1000)
                    if a["indicator"] == "delivery_delay")
    view = page("desktop", locale="zh-CN")
    sign_in(view, read_only_console, "/console/register")
    view.fill('input[data-search="customer"]', customer[:-2])
    with view.expect_navigation():
        view.locator('form[action="/console/customers"] button[type="submit"]').click()
    assert view.locator(f'tr[data-customer-id="{customer}"]').is_visible()
    assert "未解除预警涉及金额" in view.locator("table.customers thead").inner_text()
    screenshot(view, "customers-search-zh")
    with view.expect_navigation(url=re.compile(f"/console/customers/{customer}$")):
        view.locator(f'tr[data-customer-id="{customer}"] a').click()
    assert "客户等级" in view.locator("dl.facts").inner_text()
