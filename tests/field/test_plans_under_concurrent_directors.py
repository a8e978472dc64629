"""Issue 13, "Concurrent users": contingency plans.

Found: 20 parallel triggers of the same plan on the same alert created 20
active plans; three sequential triggers of 40,000 each against a 50,000 fund
cap (5% of a 1,000,000 annual sales budget) were all accepted, 120,000
committed. Right: one active plan per (alert, plan) unless the director asks
for another (recorded); the price-response fund is a budget summed over its
period (rules/contingency_plans.yaml: the calendar year at +08:00), a trigger
past it is a 409 saying what is left, or an override recorded in the trail.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from fastapi.testclient import TestClient

from riskwatch.alerts import AlertDesk, WorkflowStore
from riskwatch.api import create_app
from riskwatch.rules.response import load_response_rules
from riskwatch.settings import default_rules_dir
from support.alertmanager import free_port
from support.api import running_api
from workflow.records import change_record

pytestmark = pytest.mark.api

DIRECTOR = "director-token-0123456789"
OPERATOR = "operator-token-0123456789"
TOKENS = {DIRECTOR: "director", OPERATOR: "operator"}
H = {"Authorization": f"Bearer {DIRECTOR}"}
PRICE_ALERTS = ["al-price-east", "al-price-west", "al-price-north"]


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock():
    return Clock(datetime(2026, 6, 1, 9, 0, tzinfo=timezone.utc))


@pytest.fixture
def client(tmp_path, clock):
    rules, problems = load_response_rules(default_rules_dir())
    assert problems == []
    desk = AlertDesk(rules, WorkflowStore(tmp_path))
    desk.ingest(change_record("al-overdue"))
    for alert_id in PRICE_ALERTS:
        desk.ingest(change_record(alert_id, indicator="competitor_price_cut", customer_id=alert_id))
    return TestClient(create_app(desk, TOKENS, clock=clock, tick_seconds=0))


def price_war(alert_id: str, amount: float, **extra) -> dict:
    return {"plan": "price_war_response", "alert_id": alert_id, "reason": "protect key accounts",
            "committed_amount": amount, "annual_sales_budget": 1_000_000, **extra}


def test_twenty_parallel_triggers_of_one_plan_make_one_active_plan(tmp_path):
    body = {"plan": "credit_tightening", "alert_id": "al-overdue", "reason": "repeat offender"}
    with running_api(free_port(), RISKWATCH_API_TOKENS=f"{DIRECTOR}:director,{OPERATOR}:operator",
                     RISKWATCH_STORE_DIR=str(tmp_path / "store"), RISKWATCH_LOG_LEVEL="WARNING") as url:
        fed = httpx.post(url + "/v1/alert-changes", json=change_record("al-overdue"),
                         headers={"Authorization": f"Bearer {OPERATOR}"})
        assert fed.status_code == 202
        statuses: Counter = Counter()
        counted = threading.Lock()
        barrier = threading.Barrier(20, timeout=30)

        def trigger():
            with httpx.Client(base_url=url, headers=H, timeout=30) as http:
                barrier.wait()
                status = http.post("/v1/plans", json=body).status_code
            with counted:
                statuses[status] += 1

        threads = [threading.Thread(target=trigger) for _ in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert statuses == Counter({201: 1, 409: 19})
        plans = httpx.get(url + "/v1/plans", params={"alert_id": "al-overdue"}, headers=H).json()
        assert [p["status"] for p in plans] == ["active"]
        # Asked for explicitly, a second one runs alongside, and says so.
        second = httpx.post(url + "/v1/plans", json=body | {"another": True}, headers=H)
        assert second.status_code == 201 and second.json()["another_alongside"] == [plans[0]["plan_id"]]


def test_the_refusal_says_which_plan_is_active_and_closing_it_frees_the_alert(client):
    body = {"plan": "credit_tightening", "alert_id": "al-overdue", "reason": "r"}
    first = client.post("/v1/plans", json=body, headers=H).json()["plan_id"]
    refused = client.post("/v1/plans", json=body, headers=H)
    assert refused.status_code == 409 and first in refused.json()["detail"] and "another" in refused.json()["detail"]
    client.post(f"/v1/plans/{first}/close", json={"reason": "done", "outcome": "closed"}, headers=H)
    assert client.post("/v1/plans", json=body, headers=H).status_code == 201


def test_three_commitments_of_40000_against_a_50000_fund(client):
    assert client.post("/v1/plans", json=price_war(PRICE_ALERTS[0], 40_000), headers=H).status_code == 201
    refused = client.post("/v1/plans", json=price_war(PRICE_ALERTS[1], 40_000), headers=H)
    assert refused.status_code == 409, refused.text
    answer = refused.json()
    assert (answer["left"], answer["cap"], answer["committed"], answer["currency"], answer["period"]) == \
        ("10000.00", "50000.00", "40000.00", "CNY", "2026")
    assert "10000.00 CNY" in answer["detail"] and "budget_override" in answer["detail"]
    # What is left can still be committed.
    assert client.post("/v1/plans", json=price_war(PRICE_ALERTS[1], 10_000), headers=H).status_code == 201
    # Past the budget only with a reason, which the audit trail keeps.
    over = client.post("/v1/plans", json=price_war(PRICE_ALERTS[2], 40_000, budget_override="board approved 2026-05-30"),
                       headers=H)
    assert over.status_code == 201, over.text
    assert over.json()["fund"]["budget_override"] == "board approved 2026-05-30"
    trail = client.get("/v1/actions", params={"subject": PRICE_ALERTS[2]}, headers=H).json()
    assert trail[-1]["data"]["plan"]["fund"]["budget_override"] == "board approved 2026-05-30"
    committed = sum(p["fund"]["committed_amount"] for p in client.get("/v1/plans", headers=H).json())
    assert committed == 90_000


def test_the_budget_period_restarts_at_midnight_beijing_time_and_a_cancelled_plan_frees_its_money(client, clock):
    clock.now = datetime(2026, 12, 31, 15, 59, tzinfo=timezone.utc)           # 23:59 in Beijing
    first = client.post("/v1/plans", json=price_war(PRICE_ALERTS[0], 50_000), headers=H)
    assert first.status_code == 201
    assert client.post("/v1/plans", json=price_war(PRICE_ALERTS[1], 1), headers=H).status_code == 409
    client.post(f"/v1/plans/{first.json()['plan_id']}/close", json={"reason": "not needed", "outcome": "cancelled"},
                headers=H)
    assert client.post("/v1/plans", json=price_war(PRICE_ALERTS[1], 50_000), headers=H).status_code == 201
    clock.now += timedelta(minutes=1)                                          # 2027 in Beijing
    fresh = client.post("/v1/plans", json=price_war(PRICE_ALERTS[2], 50_000), headers=H)
    assert fresh.status_code == 201 and fresh.json()["fund"]["budget_period"] == "2027"


def test_the_budget_stated_for_the_period_cannot_be_changed_by_the_next_trigger(client):
    assert client.post("/v1/plans", json=price_war(PRICE_ALERTS[0], 40_000), headers=H).status_code == 201
    bigger = client.post("/v1/plans", json=price_war(PRICE_ALERTS[1], 40_000, annual_sales_budget=10_000_000), headers=H)
    assert bigger.status_code == 422 and bigger.json()["detail"][0]["loc"][-1] == "annual_sales_budget"
    unstated = price_war(PRICE_ALERTS[1], 40_000)
    del unstated["annual_sales_budget"]
    assert client.post("/v1/plans", json=unstated, headers=H).status_code == 409  # the period's budget holds
    dollars = client.post("/v1/plans", json=price_war(PRICE_ALERTS[1], 1_000, currency="USD"), headers=H)
    assert dollars.status_code == 422 and dollars.json()["detail"][0]["loc"][-1] == "currency"
