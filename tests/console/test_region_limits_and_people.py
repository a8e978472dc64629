"""Tokens that name people and are limited to regions (RISKWATCH_API_TOKENS_FILE):
a regional director sees, lists and acts on only its regions' alerts, plans
and reviews, through the API and the console alike; people are assigned
alerts and find them under "mine" and "my team's"; escalation still follows
the owner roles.

A real `riskwatch run` fills the store; a real `riskwatch api` serves it."""

from __future__ import annotations

import hashlib
import io
import re
import subprocess

import httpx
import pytest

from support.alertmanager import free_port
from support.api import clean_env, running_api
from support.console import RISKWATCH, Browserless, alert_ids, copy_store, text_of

pytestmark = [pytest.mark.api, pytest.mark.slow]

EAST_DIRECTOR = "tok-east-director-0123456789"
EAST_OFFICER = "tok-east-officer-0123456789"
NORTH_OFFICER = "tok-north-officer-0123456789"
LIMITED_READER = "tok-limited-reader-0123456789"
HEAD_OFFICE = "tok-head-office-0123456789"
TOKENS_FILE = f"""\
tokens:
  - token_sha256: {hashlib.sha256(EAST_DIRECTOR.encode()).hexdigest()}
    role: director
    person: Li Wei
    team: east-sales
    regions: [east]
  - token: {EAST_OFFICER}
    role: officer
    person: Zhao Min
    team: east-sales
    regions: [east]
  - token: {NORTH_OFFICER}
    role: officer
    person: Chen Jie
    team: north-sales
    regions: [north]
  - token: {LIMITED_READER}
    role: readonly
  - token: {HEAD_OFFICE}
    role: director
    person: Head Office
roles:
  readonly: {{regions: [east]}}
"""


@pytest.fixture()
def api_url(store_template, tmp_path):
    store = copy_store(store_template, tmp_path / "store")
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(TOKENS_FILE)
    with running_api(free_port(), RISKWATCH_API_TOKENS_FILE=str(tokens), RISKWATCH_STORE_DIR=str(store),
                     RISKWATCH_LOG_LEVEL="WARNING") as url:
        yield url


def call(url: str, token: str, path: str, method: str = "GET", **kw) -> httpx.Response:
    return httpx.request(method, url + path, headers={"Authorization": f"Bearer {token}"}, timeout=30, **kw)


def _sheet_text(workbook: bytes) -> bytes:
    """Every cell's text of an XLSX file (its shared strings and sheets)."""
    import zipfile

    with zipfile.ZipFile(io.BytesIO(workbook)) as archive:
        return b"".join(archive.read(name) for name in archive.namelist() if name.startswith("xl/"))


def signed_in(url: str, token: str) -> Browserless:
    person = Browserless(url, "en")
    response = person.http.post("/console/login", data={"token": token}, headers={"Origin": url})
    assert response.status_code == 303
    person.get("/console/")
    return person


def test_a_region_limited_token_sees_nothing_of_another_region_anywhere(api_url):
    everything = call(api_url, HEAD_OFFICE, "/v1/alerts?limit=1000").json()
    regions = {a["region"] for a in everything}
    assert {"east", "north"} <= regions
    north_alert = next(a for a in everything if a["region"] == "north" and a["status"] != "resolved"
                       and a["indicator"] == "payment_overdue")
    # Head office triggers a plan on a north alert and works a north review: things east must not see.
    plan = call(api_url, HEAD_OFFICE, "/v1/plans", "POST", json={
        "plan": "credit_tightening", "alert_id": north_alert["alert_id"], "reason": "head office"})
    assert plan.status_code == 201, plan.text
    resolved_north = next((a for a in everything if a["region"] == "north" and a["review_ids"]), None)

    for token in (EAST_DIRECTOR, LIMITED_READER):
        listed = call(api_url, token, "/v1/alerts?limit=1000").json()
        assert listed and {a["region"] for a in listed} == {"east"}
        assert call(api_url, token, "/v1/alerts?limit=1000&region=north").json() == []
        assert call(api_url, token, f"/v1/alerts/{north_alert['alert_id']}").status_code == 404
        register = call(api_url, token, "/v1/register").json()
        assert {a["region"] for a in register["alerts"]} == {"east"}
        east_ids = {a["alert_id"] for a in register["alerts"]}
        assert all(p["alert_id"] in east_ids for p in register["plans"] + register["reviews"])
        assert all(p["alert_id"] in east_ids for p in call(api_url, token, "/v1/plans").json())
        assert all(r["alert_id"] in east_ids for r in call(api_url, token, "/v1/reviews").json())
        assert call(api_url, token, f"/v1/plans/{plan.json()['plan_id']}").status_code == 404
        if resolved_north is not None:
            assert call(api_url, token, f"/v1/reviews/{resolved_north['review_ids'][0]}").status_code == 404
        trail = call(api_url, token, "/v1/actions?limit=1000").json()
        assert trail and all(r.get("alert_id") in east_ids or r["subject_key"] == "rules"
                             or r.get("plan_id") or r.get("review_id") for r in trail)
        assert not any(r.get("alert_id") == north_alert["alert_id"] for r in trail)
        assert call(api_url, token, f"/v1/actions?subject={north_alert['alert_id']}").json() == []

    # Acting on another region's alert is as if it did not exist.
    assert call(api_url, EAST_DIRECTOR, f"/v1/alerts/{north_alert['alert_id']}/ack", "POST", json={}).status_code == 404
    refused = call(api_url, EAST_DIRECTOR, "/v1/plans", "POST", json={
        "plan": "credit_tightening", "alert_id": north_alert["alert_id"], "reason": "x"})
    assert refused.status_code == 404

    # The console, for the same token: inbox, alert page, heat map, plans, reviews.
    east = signed_in(api_url, EAST_DIRECTOR)
    pages = [east.get(f"/console/?page={n}").text for n in (1, 2, 3)]
    shown = [i for page in pages for i in alert_ids(page)]
    by_id = {a["alert_id"]: a for a in everything}
    assert shown and {by_id[i]["region"] for i in shown} == {"east"}
    assert east.get(f"/console/alerts/{north_alert['alert_id']}").status_code == 404
    assert east.post(f"/console/alerts/{north_alert['alert_id']}/ack").status_code == 404
    heat = east.get("/console/heatmap").text
    assert sum(int(n) for n in re.findall(r'data-count="(\d+)"', heat)) == sum(
        1 for a in everything if a["region"] == "east" and a["status"] != "resolved")
    # The register, its exports and the customer pages.
    register = east.get("/console/register").text
    assert north_alert["alert_id"] not in register and alert_ids(register)
    csv_export = east.get("/console/register/export.csv")
    assert csv_export.status_code == 200 and north_alert["alert_id"] not in csv_export.text
    exported = [line.split(",")[0] for line in csv_export.text.lstrip("\ufeff").splitlines()[1:]]
    assert exported and {by_id[i]["region"] for i in exported} == {"east"}
    xlsx = east.get("/console/register/export.xlsx")
    assert xlsx.status_code == 200 and north_alert["alert_id"].encode() not in _sheet_text(xlsx.content)
    north_customer = north_alert["alert"]["subject"].get("customer_id") or north_alert["alert"].get("customer_id")
    east_customers = {a["alert"]["subject"].get("customer_id") or a["alert"].get("customer_id")
                      for a in everything if a["region"] == "east"}
    if north_customer not in east_customers:
        assert east.get(f"/console/customers/{north_customer}").status_code == 404
        assert north_customer not in east.get(f"/console/customers?q={north_customer[:3]}").text
    plans_page = east.get("/console/plans").text
    assert north_alert["alert_id"] not in plans_page
    if resolved_north is not None:
        assert resolved_north["review_ids"][0] not in east.get("/console/reviews").text


def test_people_are_assigned_and_find_their_alerts_under_mine_and_their_teams(api_url):
    east_alerts = [a for a in call(api_url, HEAD_OFFICE, "/v1/alerts?limit=1000&region=east").json()
                   if a["status"] == "open"]
    first, second = east_alerts[0]["alert_id"], east_alerts[1]["alert_id"]
    zhao = signed_in(api_url, EAST_OFFICER)
    assert zhao.post(f"/console/alerts/{first}/assign", assignee="me").status_code == 303
    li = signed_in(api_url, EAST_DIRECTOR)
    assert li.post(f"/console/alerts/{second}/assign", assignee="Li Wei").status_code == 303
    assert li.post(f"/console/alerts/{second}/assign", assignee="Somebody Else").status_code == 422

    shown = call(api_url, HEAD_OFFICE, f"/v1/alerts/{first}").json()
    assert shown["assignee"] == "Zhao Min" and shown["owner"] == east_alerts[0]["owner"]  # the owner role stays
    assert [a["actor"].split(" (")[0] for a in shown["audit"] if a["kind"] == "assign"] == ["Zhao Min"]
    assert alert_ids(zhao.get("/console/?view=mine").text) == [first]
    assert set(alert_ids(zhao.get("/console/?view=team").text)) == {first, second}
    assert alert_ids(li.get("/console/?view=mine").text) == [second]
    chen = signed_in(api_url, NORTH_OFFICER)
    assert alert_ids(chen.get("/console/?view=team").text) == []
    # Through the API too, with the token's person as the actor.
    response = call(api_url, EAST_OFFICER, f"/v1/alerts/{second}/assign", "POST", json={"assignee": None})
    assert response.status_code == 200 and response.json()["assignee"] is None
    assert "Zhao Min" in text_of(zhao.get(f"/console/alerts/{first}").text)


def test_a_broken_tokens_file_is_refused_naming_the_entry_and_field(tmp_path):
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text("tokens:\n  - token: short\n    role: director\n")
    result = subprocess.run([RISKWATCH, "api", "--port", str(free_port()), "--tokens-file", str(tokens)],
                            env=clean_env(RISKWATCH_STORE_DIR=str(tmp_path / "store")), capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 1 and "tokens[0].token" in result.stderr and "16" in result.stderr
    tokens.write_text("tokens:\n  - token: tok-0123456789abcdef\n    role: director\n    regions: []\n")
    result = subprocess.run([RISKWATCH, "api", "--port", str(free_port()), "--tokens-file", str(tokens)],
                            env=clean_env(RISKWATCH_STORE_DIR=str(tmp_path / "store")), capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 1 and "tokens[0]: regions" in result.stderr
