"""Journeys through the console in a real browser (Debian's Chromium, driven
by Playwright): an officer from a notification link to acknowledged and a
step done on a phone, a director's price-war plan, a read-only user, the
Chinese pages, a live alert and the heat map. A screenshot of every page,
desktop and 360 px wide, is left under test-output/screenshots.

A real `riskwatch run` fills the store with four simulated months; a real
`riskwatch api` serves the console over it."""

from __future__ import annotations

import re
from collections import Counter

import httpx
import pytest

from support.console import TOKENS
from tests.support.browser import screenshot

pytestmark = [pytest.mark.api, pytest.mark.browser, pytest.mark.slow]


def api(url: str, path: str, role: str = "readonly", method: str = "GET", **kw):
    response = httpx.request(method, url + path, headers={"Authorization": f"Bearer {TOKENS[role]}"}, timeout=30, **kw)
    assert response.status_code < 300, response.text
    return response.json()


def sign_in(page, url: str, role: str, name: str = "", then: str = "/console/"):
    page.goto(f"{url}{then}")
    page.fill('input[name="token"]', TOKENS[role])
    if name:
        page.fill('input[name="name"]', name)
    page.locator('form[action="/console/login"] button[type="submit"]').click()
    page.wait_for_url(re.compile(re.escape(then.split("#")[0]) + "$"))


def test_an_officer_goes_from_a_notification_link_to_acknowledged_and_a_step_done_on_a_phone(console, page):
    alert_id = next(a["alert_id"] for a in api(console, "/v1/alerts?limit=1000&status=open")
                    if len(a["steps"]) >= 2)
    phone = page("phone", locale="en-US")
    sign_in(phone, console, "officer", "Ann Lee", then=f"/console/alerts/{alert_id}")  # the notification's link
    assert phone.evaluate("window.innerWidth") == 360
    card = phone.locator(f'[data-alert-id="{alert_id}"]')
    assert card.is_visible()
    screenshot(phone, "alert-phone")
    with phone.expect_navigation(url=re.compile(f"/console/alerts/{alert_id}$")):
        phone.locator('[data-action="ack"]').tap()                       # tap 1
    with phone.expect_navigation(url=re.compile(f"/console/alerts/{alert_id}$")):
        phone.locator('[data-step="1"] [data-action="step-done"]').tap()  # tap 2
    assert phone.locator('[data-step="1"].step-done').count() == 1
    assert phone.locator('[data-action="ack"]').count() == 0

    shown = api(console, f"/v1/alerts/{alert_id}")
    assert shown["status"] == "in_progress" and shown["acknowledged_by"].startswith("Ann Lee")
    assert shown["steps"][0]["status"] == "done" and shown["steps"][0]["done_by"].startswith("Ann Lee")
    assert [a["kind"] for a in shown["audit"] if a["role"] == "officer"] == ["acknowledge", "step_done"]


def test_a_director_triggers_a_price_war_plan_and_sees_the_fund_committed(console, page):
    price_cut = next(a for a in api(console, "/v1/alerts?limit=1000&indicator=competitor_price_cut")
                     if a["status"] != "resolved")
    desktop = page("desktop", locale="en-US")
    sign_in(desktop, console, "director", "Wang Fang", then=f"/console/alerts/{price_cut['alert_id']}")
    form = desktop.locator('form[action="/console/plans"]')
    form.locator('select[name="plan"]').select_option("price_war_response")
    form.locator('input[name="reason"]').fill("protect the east region's key accounts")
    form.locator('input[name="committed_amount"]').fill("750000")
    form.locator('input[name="annual_sales_budget"]').fill("100000000")
    screenshot(desktop, "alert-director-desktop")
    form.locator('[data-action="trigger-plan"]').click()
    desktop.wait_for_url(re.compile(r"/console/plans#pl-"))
    fund = desktop.locator(".fund").first
    assert "¥750,000.00" in fund.inner_text() and "¥5,000,000.00" in fund.inner_text()
    assert "¥4,250,000.00" in fund.locator(".left").inner_text()
    screenshot(desktop, "plans-desktop")
    plans = api(console, f"/v1/plans?alert_id={price_cut['alert_id']}")
    assert [(p["plan"], p["fund"]["committed_amount"]) for p in plans] == [("price_war_response", 750000.0)]


def test_a_read_only_user_sees_no_action_and_a_forged_post_gets_403(console, page):
    alert_id = api(console, "/v1/alerts?limit=1&status=open")[0]["alert_id"]
    desktop = page("desktop", locale="en-US")
    sign_in(desktop, console, "readonly", then=f"/console/alerts/{alert_id}")
    assert desktop.locator("[data-action]").count() == 0
    csrf = desktop.evaluate("document.querySelector('input[name=csrf]').value")  # the sign-out form's
    forged = desktop.request.post(f"{console}/console/alerts/{alert_id}/ack", form={"csrf": csrf},
                                  headers={"Origin": console})
    assert forged.status == 403
    assert api(console, f"/v1/alerts/{alert_id}")["status"] == "open"


def test_the_chinese_pages_show_chinese_labels_and_yuan(console, page):
    phone = page("phone", locale="zh-CN")
    sign_in(phone, console, "readonly")
    assert phone.locator("html").get_attribute("lang") == "zh-CN"
    assert phone.locator("h1").first.inner_text().startswith("待办")
    body = phone.locator("body").inner_text()
    assert "负责人" in body and "待处理" in body and re.search(r"¥\d{1,3}(,\d{3})*\.\d\d", body)
    for name, path in (("inbox", "/console/"), ("heatmap", "/console/heatmap"), ("plans", "/console/plans"),
                       ("reviews", "/console/reviews"), ("rules", "/console/rules")):
        phone.goto(console + path)
        screenshot(phone, f"{name}-zh-phone")
    phone.locator("a.lang").click()  # the switch: English from now on
    phone.goto(console + "/console/")
    assert phone.locator("html").get_attribute("lang") == "en"


# Elements of the tier and status words drawn over more than one line: an
# inline word broken across lines has several client rects; an inline-block
# badge grows taller than two of its font sizes.
BROKEN_WORDS = """() => [...document.querySelectorAll('.tier, .status')].filter(el => {
  const size = parseFloat(getComputedStyle(el).fontSize);
  return el.getClientRects().length > 1 || el.getBoundingClientRect().height > 2 * size;
}).map(el => el.textContent.trim())"""


@pytest.mark.parametrize("locale", ["zh-CN", "en-US"])
def test_tier_and_status_words_are_never_broken_across_lines(console, page, locale):
    """A narrow column broke 蓝色 into 蓝 / 色 in a round badge and 待处理
    into 待处 / 理 on the desktop inbox and register."""
    desktop = page("desktop", locale=locale)
    sign_in(desktop, console, "director")
    for name, path in (("inbox", "/console/"), ("register", "/console/register")):
        desktop.goto(console + path)
        screenshot(desktop, f"{name}-{locale}-desktop")
        assert desktop.locator(".tier").count() > 0 and desktop.locator(".status").count() > 0, path
        assert desktop.evaluate(BROKEN_WORDS) == [], path


def test_a_new_alert_appears_in_an_open_inbox_without_reloading(console, page):
    desktop = page("desktop", locale="en-US")
    sign_in(desktop, console, "officer")
    screenshot(desktop, "inbox-desktop")
    desktop.evaluate("window.__not_reloaded = true")
    template = api(console, "/v1/alerts?limit=1&tier=blue")[0]["alert"]
    change = {**template, "alert_id": "al-live-0000000001", "tier": "red", "status": "open", "change": "raised",
              "sequence": 1, "subject": {**template["subject"], "id": "LIVE-1"}}
    api(console, "/v1/alert-changes", role="operator", method="POST", json=change)
    row = desktop.locator('[data-alert-id="al-live-0000000001"]')
    row.wait_for(timeout=15_000)
    assert desktop.evaluate("window.__not_reloaded") is True
    assert desktop.locator("[data-alert-id]").first.get_attribute("data-alert-id") == "al-live-0000000001"


def test_the_heat_map_cells_count_what_the_api_lists(console, page):
    desktop = page("desktop", locale="en-US")
    sign_in(desktop, console, "readonly", then="/console/heatmap")
    cells = desktop.locator("[data-cell]")
    shown = {cells.nth(n).get_attribute("data-cell"): int(cells.nth(n).get_attribute("data-count"))
             for n in range(cells.count())}
    listed = api(console, "/v1/alerts?limit=1000")
    expected = Counter(f"{min(int(a['alert']['probability'] * 10), 9)}-{min(int(a['alert']['impact'] * 10), 9)}"
                       for a in listed if a["status"] != "resolved")
    assert shown == dict(expected)
    screenshot(desktop, "heatmap-desktop")
    busiest = max(shown, key=shown.get)
    desktop.locator(f'[data-cell="{busiest}"]').click()
    desktop.wait_for_url(re.compile(r"cell="))
    assert desktop.locator("tbody [data-alert-id]").count() == min(shown[busiest], 50)
    for name, path in (("reviews", "/console/reviews"), ("rules", "/console/rules")):
        desktop.goto(console + path)
        screenshot(desktop, f"{name}-desktop")
