"""The risk register and customer pages over HTTP as a browser speaks it:
filters answer what the API's /v1/register answers, the CSV and XLSX
exports hold exactly the filtered rows (numbers as numbers, Chinese intact),
a customer's page lists exactly its alerts, and the customer is reached from
an alert and by search.

A real `riskwatch run` fills the store with four simulated months; a real
`riskwatch api` serves the console over it. (Region-limited sessions: see
`riskwatch.console.register`'s docstring; tested once such tokens exist.)"""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime, time, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import httpx
import pytest
from openpyxl import load_workbook

from support.console import TOKENS, Browserless, alert_ids, text_of

pytestmark = [pytest.mark.api, pytest.mark.slow]
ZONE = ZoneInfo("Asia/Shanghai")  # the console's default time zone


def api(url: str, path: str, **params):
    response = httpx.get(url + path, params={k: v for k, v in params.items() if v is not None},
                         headers={"Authorization": f"Bearer {TOKENS['readonly']}"}, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def person(url: str, language: str = "en") -> Browserless:
    who = Browserless(url, language)
    assert who.sign_in("readonly").status_code == 303
    return who


def day_bounds(since: str | None, until: str | None) -> dict[str, str]:
    """The instants the register's day filters stand for: `since` 00:00 and
    the day after `until` 00:00 in the console's zone."""
    bounds = {}
    if since:
        bounds["since"] = datetime.combine(datetime.fromisoformat(since).date(), time(0), ZONE).isoformat()
    if until:
        bounds["until"] = datetime.combine(datetime.fromisoformat(until).date() + timedelta(days=1), time(0),
                                           ZONE).isoformat()
    return bounds


def every_page(reader: Browserless, query: str) -> list[str]:
    shown, page = [], 1
    while True:
        text = reader.get(f"/console/register?{query}&page={page}").text
        shown += alert_ids(text)
        if 'rel="next"' not in text:
            return shown
        page += 1


def csv_rows(response: httpx.Response) -> list[dict[str, str]]:
    assert response.content.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs to read UTF-8
    return list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))


FILTERS = [
    {},
    {"tier": "blue"},
    {"indicator": "payment_overdue", "customer_class": "A"},
    {"status": "resolved", "owner": "frontline_team"},
    {"status": "open"},
    {"since": "2024-02-01", "until": "2024-02-29"},
    {"tier": "yellow", "since": "2024-03-15"},
]


@pytest.mark.parametrize("filters", FILTERS, ids=lambda f: urlencode(f) or "everything")
def test_the_register_shows_what_the_apis_register_gives_for_the_same_filter(read_only_console, filters):
    reader = person(read_only_console)
    query = urlencode(filters)
    expected = api(read_only_console, "/v1/register", **{k: v for k, v in filters.items() if k not in ("since", "until")},
                   **day_bounds(filters.get("since"), filters.get("until")))
    page = reader.get(f"/console/register?{query}")
    assert page.status_code == 200
    text = text_of(page.text)
    counts = expected["counts"]
    assert re.search(rf"\b{counts['alerts']} alerts? ", text) and re.search(rf"\b{counts['plans']} plans? ", text)
    assert re.search(rf"\b{counts['reviews']} reviews?\b", text)
    assert sorted(every_page(reader, query)) == sorted(a["alert_id"] for a in expected["alerts"])
    shown_reviews = re.findall(r'data-review-id="([^"]+)"', page.text)
    assert sorted(shown_reviews) == sorted(r["review_id"] for r in expected["reviews"])[:200] or len(shown_reviews) == 200


def test_a_region_filter_gives_the_apis_alerts_of_that_region(read_only_console):
    reader = person(read_only_console)
    listed = [a for a in api(read_only_console, "/v1/register")["alerts"] if a["region"] == "south"]
    assert listed and sorted(every_page(reader, "region=south")) == sorted(a["alert_id"] for a in listed)


def test_the_csv_export_holds_exactly_the_filtered_alerts_plans_and_reviews(read_only_console):
    reader = person(read_only_console)
    filters = {"tier": "blue", "since": "2024-02-01", "until": "2024-03-31"}
    expected = api(read_only_console, "/v1/register", tier="blue", **day_bounds(filters["since"], filters["until"]))
    response = reader.get(f"/console/register/export.csv?{urlencode(filters)}")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert re.fullmatch(r'attachment; filename="riskwatch-register-\d{8}\.csv".*',
                        response.headers["content-disposition"])
    rows = csv_rows(response)
    assert sorted(r["Alert id"] for r in rows) == sorted(a["alert_id"] for a in expected["alerts"]) and rows
    by_id = {a["alert_id"]: a for a in expected["alerts"]}
    for row in rows:
        alert = by_id[row["Alert id"]]
        assert row["Tier"] == "Blue" and row["Customer class"] == (alert["customer_class"] or "")
        raised = datetime.fromisoformat(alert["raised_at"].replace("Z", "+00:00")).astimezone(ZONE)
        assert row["Raised (Asia/Shanghai)"] == raised.strftime("%Y-%m-%d %H:%M:%S")
        assert row["Amount at stake (CNY)"] == "" or re.fullmatch(r"\d+\.\d\d", row["Amount at stake (CNY)"])
    for table, key, id_key in (("reviews", "Review id", "review_id"), ("plans", "Plan id", "plan_id")):
        listed = csv_rows(reader.get(f"/console/register/export.csv?{urlencode(filters)}&table={table}"))
        assert sorted(r[key] for r in listed) == sorted(x[id_key] for x in expected[table])


def test_the_xlsx_export_holds_the_filtered_rows_with_numbers_as_numbers_and_chinese_intact(read_only_console):
    reader = person(read_only_console, language="zh-CN,zh;q=0.9")
    filters = {"indicator": "payment_overdue"}
    expected = api(read_only_console, "/v1/register", indicator="payment_overdue")
    response = reader.get(f"/console/register/export.xlsx?{urlencode(filters)}")
    assert response.status_code == 200
    assert re.fullmatch(r'attachment; filename="riskwatch-register-\d{8}\.xlsx".*',
                        response.headers["content-disposition"])
    book = load_workbook(io.BytesIO(response.content), read_only=True)
    assert book.sheetnames == ["预警", "预案", "复盘"]
    header, *rows = list(book["预警"].iter_rows(values_only=True))
    assert "指标" in header and "涉及金额（人民币元）" in header
    column = {name: index for index, name in enumerate(header)}
    assert sorted(r[column["预警编号"]] for r in rows) == sorted(a["alert_id"] for a in expected["alerts"])
    assert {r[column["指标"]] for r in rows} == {"应收账款逾期"}  # "Invoice overdue" in the catalogue
    # What it is about and the unit in words of the export's language, not codes.
    assert {r[column["对象类型"]] for r in rows} == {"发票"} and {r[column["单位"]] for r in rows} == {"天"}
    amounts = [r[column["涉及金额（人民币元）"]] for r in rows]
    # Numbers, not text (a whole amount reads back as an int).
    assert all(isinstance(a, (int, float)) for a in amounts) and sum(amounts) > 0
    assert all(isinstance(r[column["观测值"]], (int, float)) for r in rows)
    assert all(isinstance(r[column["触发时间（Asia/Shanghai）"]], datetime) for r in rows)
    reviews = list(book["复盘"].iter_rows(values_only=True))[1:]
    assert sorted(r[0] for r in reviews) == sorted(r["review_id"] for r in expected["reviews"])


def test_a_customers_page_lists_exactly_its_alerts_and_is_reached_from_an_alert(read_only_console):
    reader = person(read_only_console)
    everything = api(read_only_console, "/v1/alerts", limit=1000)
    assert len(everything) < 1000  # the whole desk, so "exactly" is checked against all of it
    invoice = next(a for a in everything if a["indicator"] == "payment_overdue")
    customer = invoice["alert"]["subject"]["customer_id"]
    alert_page = reader.get(f"/console/alerts/{invoice['alert_id']}").text
    assert f'href="/console/customers/{customer}"' in alert_page

    page = reader.get(f"/console/customers/{customer}")
    assert page.status_code == 200
    theirs = [a for a in everything
              if customer in (a["alert"].get("customer_id"), (a["alert"].get("subject") or {}).get("customer_id"))]
    assert sorted(alert_ids(page.text)) == sorted(a["alert_id"] for a in theirs)
    text = text_of(page.text)
    assert f"Customer class {invoice['customer_class']}" in text and f"Region {invoice['region']}" in text
    open_ones = [a for a in theirs if a["status"] != "resolved"]
    assert f"Open alerts {len(open_ones)}" in text and f"Past alerts {len(theirs) - len(open_ones)}" in text


def test_a_credit_limit_customer_shows_its_reading_and_search_finds_customers_by_prefix(read_only_console):
    reader = person(read_only_console)
    credit = next(a for a in api(read_only_console, "/v1/alerts", limit=1000, indicator="credit_limit_breach"))
    customer = credit["alert"]["subject"]["id"]
    text = text_of(reader.get(f"/console/customers/{customer}").text)
    assert "Receivables against the credit limit:" in text

    exact = reader.get(f"/console/customers?q={customer.lower()}")
    assert exact.status_code == 303 and exact.headers["location"] == f"/console/customers/{customer}"
    prefix = customer[:-1]
    found = re.findall(r'<tr data-customer-id="([^"]+)"', reader.get(f"/console/customers?q={prefix}").text)
    assert customer in found and all(c.startswith(prefix) for c in found)
    assert reader.get("/console/customers/CUST-NOBODY").status_code == 404


def test_the_register_links_each_alerts_customer_and_refuses_a_date_that_is_not_one(read_only_console):
    reader = person(read_only_console)
    page = reader.get("/console/register?indicator=delivery_delay").text
    assert re.search(r'<a href="/console/customers/CUST-\d+" class="customer-link"', page)
    bad = reader.get("/console/register?since=31/01/2024")
    assert bad.status_code == 422 and "since" in text_of(bad.text)
    anonymous = Browserless(read_only_console)
    assert anonymous.get("/console/register/export.csv").status_code == 303  # to the sign-in page, no data


def test_exported_instants_are_whole_seconds_in_the_consoles_zone_whoever_recorded_them():
    """A plan started by a person is stamped with microseconds, an alert's
    instants are not: one column of an export should read alike."""
    from riskwatch.console.i18n import Formatter
    from riskwatch.console.register import csv_chunks

    columns = [("plan_id", "Plan id", "text"), ("started_at", "Started (Asia/Shanghai)", "instant")]
    rows = [{"plan_id": "pl-1", "started_at": "2026-12-02T00:53:49.554242+00:00"},
            {"plan_id": "pl-2", "started_at": "2026-12-02T00:53:49Z"}]
    text = b"".join(csv_chunks(rows, columns, Formatter("en"), "Asia/Shanghai")).decode("utf-8-sig")
    written = list(csv.DictReader(io.StringIO(text)))
    assert [r["Started (Asia/Shanghai)"] for r in written] == ["2026-12-02 08:53:49", "2026-12-02 08:53:49"]
