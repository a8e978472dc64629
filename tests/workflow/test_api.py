"""The HTTP API from each role's side: 401 before anything, 403 for the wrong
role, 422 naming the field, every change in the audit trail with who and why."""

from __future__ import annotations

import shutil
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from riskwatch.alerts import AlertDesk, WorkflowStore
from riskwatch.api import create_app

from .conftest import REPO
from .records import T0, change_record, next_change

pytestmark = pytest.mark.api

TOKENS = {"tok-officer": "officer", "tok-director": "director", "tok-operator": "operator", "tok-readonly": "readonly"}
ALERT = "al-0000000000000001"


class Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


def auth(role: str, actor: str | None = None) -> dict:
    headers = {"Authorization": f"Bearer tok-{role}"}
    if actor:
        headers["X-Riskwatch-Actor"] = actor
    return headers


@pytest.fixture
def clock():
    return Clock(T0 + timedelta(hours=1))


@pytest.fixture
def desk(tmp_path, response_rules):
    return AlertDesk(response_rules, WorkflowStore(tmp_path))


@pytest.fixture
def client(desk, clock):
    desk.ingest(change_record())
    app = create_app(desk, TOKENS, clock=clock, rules_dir=REPO / "rules", tick_seconds=0)
    return TestClient(app)


# Every route, with a valid body, and the roles allowed on it.
ROUTES = [
    ("GET", "/v1/alerts", None, {"officer", "director", "operator", "readonly"}),
    ("GET", f"/v1/alerts/{ALERT}", None, {"officer", "director", "operator", "readonly"}),
    ("POST", f"/v1/alerts/{ALERT}/ack", {"reason": "mine"}, {"officer", "director"}),
    ("POST", f"/v1/alerts/{ALERT}/start", {}, {"officer", "director"}),
    ("POST", f"/v1/alerts/{ALERT}/steps/1", {"note": "called"}, {"officer", "director"}),
    ("POST", f"/v1/alerts/{ALERT}/snooze", {"reason": "holiday", "until_recovery": True}, {"officer", "director"}),
    ("POST", f"/v1/alerts/{ALERT}/unsnooze", {}, {"officer", "director"}),
    ("POST", f"/v1/alerts/{ALERT}/resolve", {"reason": "paid"}, {"officer", "director"}),
    ("POST", f"/v1/alerts/{ALERT}/comments", {"reason": "note"}, {"officer", "director"}),
    ("POST", "/v1/alert-changes", change_record("al-2"), {"operator"}),
    ("GET", "/v1/actions", None, {"officer", "director", "operator", "readonly"}),
    ("POST", "/v1/plans", {"plan": "credit_tightening", "alert_id": ALERT, "reason": "r"}, {"director"}),
    ("GET", "/v1/plans", None, {"officer", "director", "operator", "readonly"}),
    ("POST", "/v1/plans/pl-x/steps/1", {}, {"officer", "director"}),
    ("POST", "/v1/plans/pl-x/close", {"reason": "done"}, {"director"}),
    ("GET", "/v1/reviews", None, {"officer", "director", "operator", "readonly"}),
    ("POST", "/v1/reviews/rv-x", {"whys": ["a"], "root_cause": "b"}, {"officer", "director"}),
    ("POST", "/v1/reviews/rv-x/signoff", {}, {"director"}),
    ("GET", "/v1/register", None, {"officer", "director", "operator", "readonly"}),
    ("POST", "/v1/rules/reload", None, {"operator"}),
    ("GET", "/v1/health", None, {"operator", "readonly"}),
]


@pytest.mark.parametrize("method,path,body,allowed", ROUTES, ids=[f"{m} {p}" for m, p, _, _ in ROUTES])
def test_no_or_unknown_token_is_401_before_anything_else(client, method, path, body, allowed):
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic dG9rLW9mZmljZXI="}):
        # Even a body that would be a 422 gets 401 first.
        response = client.request(method, path, headers=headers, content=b"{not json")
        assert response.status_code == 401, response.text
        assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("method,path,body,allowed", ROUTES, ids=[f"{m} {p}" for m, p, _, _ in ROUTES])
def test_wrong_role_is_403_and_right_role_is_not(client, method, path, body, allowed):
    for role in ("officer", "director", "operator", "readonly"):
        response = client.request(method, path, headers=auth(role), json=body)
        if role in allowed:
            assert response.status_code not in (401, 403), (role, response.text)
            assert response.status_code < 500
        else:
            assert response.status_code == 403, (role, response.text)
            # A wrong role with a broken body is still 403, not 422.
            assert client.request(method, path, headers=auth(role), content=b"{").status_code == 403


def test_unknown_path_needs_a_token_too(client):
    assert client.get("/v1/nothing").status_code == 401
    assert client.get("/v1/nothing", headers=auth("readonly")).status_code == 404


def test_openapi_document_is_served(client):
    document = client.get("/openapi.json").json()
    assert "/v1/alerts/{alert_id}/ack" in document["paths"]
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


@pytest.mark.parametrize("path,body,field", [
    (f"/v1/alerts/{ALERT}/resolve", {}, "reason"),
    (f"/v1/alerts/{ALERT}/resolve", {"reason": ""}, "reason"),
    (f"/v1/alerts/{ALERT}/snooze", {"reason": "x"}, "until"),
    (f"/v1/alerts/{ALERT}/snooze", {"reason": "x", "until": "2026-01-01T00:00:00+00:00"}, "until"),
    (f"/v1/alerts/{ALERT}/snooze", {"reason": "x", "until": "tomorrow"}, "until"),
    (f"/v1/alerts/{ALERT}/ack", {"reason": "x", "colour": "red"}, "colour"),
    (f"/v1/alerts/{ALERT}/steps/1", {"skipped": "perhaps"}, "skipped"),
])
def test_bad_body_is_422_naming_the_field(client, path, body, field):
    response = client.post(path, headers=auth("officer"), json=body)
    assert response.status_code == 422, response.text
    assert any(error["loc"][-1] == field for error in response.json()["detail"]), response.text


@pytest.mark.parametrize("body,field", [
    ({"plan": "no_such_plan", "alert_id": ALERT, "reason": "r"}, "plan"),
    ({"plan": "price_war_response", "alert_id": ALERT, "reason": "r"}, "plan"),
    ({"plan": "credit_tightening", "alert_id": ALERT, "reason": "r", "currency": "yuan"}, "currency"),
    ({"plan": "credit_tightening", "alert_id": ALERT}, "reason"),
    ({"plan": "credit_tightening", "alert_id": ALERT, "reason": "r", "committed_amount": -1}, "committed_amount"),
])
def test_bad_plan_trigger_is_422_naming_the_field(client, body, field):
    response = client.post("/v1/plans", headers=auth("director"), json=body)
    assert response.status_code == 422, response.text
    assert any(error["loc"][-1] == field for error in response.json()["detail"]), response.text


def test_unknown_alert_404_and_refused_transition_409(client):
    assert client.post("/v1/alerts/al-missing/ack", headers=auth("officer"), json={}).status_code == 404
    assert client.post(f"/v1/alerts/{ALERT}/ack", headers=auth("officer"), json={}).status_code == 200
    response = client.post(f"/v1/alerts/{ALERT}/ack", headers=auth("officer"), json={})
    assert response.status_code == 409 and "acknowledged" in response.json()["detail"]


def test_a_day_at_the_desk_is_recorded_with_who_when_why(client, desk, clock):
    ann = auth("officer", actor="Ann Li")
    body = client.post(f"/v1/alerts/{ALERT}/ack", headers=ann, json={"reason": "taking it"}).json()
    assert body["status"] == "acknowledged" and body["acknowledged_by"].startswith("Ann Li (token ")
    body = client.post(f"/v1/alerts/{ALERT}/steps/1", headers=ann, json={"note": "called finance"}).json()
    assert body["status"] == "in_progress" and body["steps"][0]["status"] == "done"
    plan = client.post("/v1/plans", headers=auth("director", actor="Dora"),
                       json={"plan": "credit_tightening", "alert_id": ALERT, "reason": "repeat offender"})
    assert plan.status_code == 201, plan.text
    plan_id = plan.json()["plan_id"]
    assert client.post(f"/v1/plans/{plan_id}/steps/1", headers=ann, json={"note": "review done"}).json()["steps"][0]["status"] == "done"
    body = client.post(f"/v1/alerts/{ALERT}/resolve", headers=ann, json={"reason": "paid in full"}).json()
    assert body["status"] == "resolved" and body["resolution_reason"] == "paid in full"
    (review,) = client.get("/v1/reviews", headers=auth("readonly")).json()
    assert review["due_at"] == (clock.now + timedelta(hours=48)).isoformat()
    submitted = client.post(f"/v1/reviews/{review['review_id']}", headers=ann,
                            json={"whys": ["paid late", "cash flow", "lost customer", "no forecast", "no review"],
                                  "root_cause": "no credit review", "corrective_actions": ["quarterly review"]})
    assert submitted.json()["status"] == "submitted"
    signed = client.post(f"/v1/reviews/{review['review_id']}/signoff", headers=auth("director", actor="Dora"), json={})
    assert signed.json()["status"] == "signed_off"
    trail = client.get("/v1/actions", headers=auth("readonly")).json()
    kinds = [a["kind"] for a in trail]
    assert kinds == ["acknowledge", "step_done", "plan_triggered", "plan_step_done", "resolve",
                     "review_submitted", "review_signed_off"]
    assert all(a["actor"] and a["role"] and a["at"] for a in trail)
    assert trail[0]["reason"] == "taking it" and trail[0]["role"] == "officer"
    assert "tok-officer" not in str(trail)
    shown = client.get(f"/v1/alerts/{ALERT}", headers=auth("readonly")).json()
    assert [a["kind"] for a in shown["audit"]] == ["acknowledge", "step_done", "plan_triggered", "resolve"]


def test_audit_trail_cannot_be_edited_through_the_api(client):
    client.post(f"/v1/alerts/{ALERT}/ack", headers=auth("officer"), json={"reason": "x"})
    for method in ("PUT", "PATCH", "DELETE", "POST"):
        response = client.request(method, "/v1/actions", headers=auth("operator"), json={})
        assert response.status_code == 405, (method, response.status_code)
    assert len(client.get("/v1/actions", headers=auth("operator")).json()) == 1


def test_escalation_happens_on_the_clock_and_shows_in_the_register(client, clock):
    clock.now = T0 + timedelta(hours=9)
    shown = client.get(f"/v1/alerts/{ALERT}", headers=auth("readonly")).json()
    assert shown["owner"] == "general_manager"
    assert shown["escalations"][0]["reason"].startswith("not acknowledged by")
    register = client.get("/v1/register", headers=auth("director"), params={"owner": "general_manager"}).json()
    assert [a["alert_id"] for a in register["alerts"]] == [ALERT]
    assert client.get("/v1/register", headers=auth("director"), params={"tier": "red"}).json()["counts"]["alerts"] == 0


def test_register_filters(client, desk):
    desk.ingest(change_record("al-2", tier="blue", owner="frontline_team", customer_class="C", indicator="delivery_delay"))
    get = lambda **p: [a["alert_id"] for a in client.get("/v1/register", headers=auth("readonly"), params=p).json()["alerts"]]
    assert sorted(get()) == [ALERT, "al-2"]
    assert get(tier="blue") == ["al-2"]
    assert get(customer_class="A") == [ALERT]
    assert get(indicator="delivery_delay", status="open") == ["al-2"]
    assert get(since="2027-01-01T00:00:00Z") == []


def test_alert_changes_fed_over_http(client):
    record = next_change(change_record(), status="resolved", change="resolved")
    assert client.post("/v1/alert-changes", headers=auth("operator"), json=record).status_code == 202
    assert client.get(f"/v1/alerts/{ALERT}", headers=auth("readonly")).json()["status"] == "resolved"
    bad = client.post("/v1/alert-changes", headers=auth("operator"), json={**record, "tier": "purple"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"][-1] == "tier"


def test_rules_reload_refuses_broken_files(tmp_path, desk, clock):
    rules_dir = tmp_path / "rules"
    shutil.copytree(REPO / "rules", rules_dir)
    client = TestClient(create_app(desk, TOKENS, clock=clock, rules_dir=rules_dir, tick_seconds=0))
    assert client.post("/v1/rules/reload", headers=auth("operator")).json()["reloaded"] is True
    running = desk.rules
    (rules_dir / "escalation.yaml").write_text("owner_chain: []\n")
    response = client.post("/v1/rules/reload", headers=auth("operator"))
    assert response.status_code == 409
    assert any(p.startswith("escalation.yaml: owner_chain:") for p in response.json()["problems"])
    assert desk.rules is running


def test_rules_reload_refuses_a_role_the_owner_chain_does_not_know(tmp_path, desk, clock):
    """A misspelt owner in matrix.yaml: the reload is refused naming it, the running rules stay."""
    rules_dir = tmp_path / "rules"
    shutil.copytree(REPO / "rules", rules_dir)
    client = TestClient(create_app(desk, TOKENS, clock=clock, rules_dir=rules_dir, tick_seconds=0))
    running = desk.rules
    matrix = rules_dir / "matrix.yaml"
    matrix.write_text(matrix.read_text().replace("    owner: frontline_team\n", "    owner: frontlne_team\n"))
    response = client.post("/v1/rules/reload", headers=auth("operator"))
    assert response.status_code == 409
    assert response.json()["problems"] == [
        "matrix.yaml: response.blue.owner: unknown role 'frontlne_team' "
        "(not in escalation.yaml owner_chain; did you mean 'frontline_team'?)"
    ]
    assert desk.rules is running
    assert [a["kind"] for a in client.get("/v1/actions", headers=auth("readonly")).json()].count("rules_reloaded") == 0
    matrix.write_text((REPO / "rules" / "matrix.yaml").read_text())
    assert client.post("/v1/rules/reload", headers=auth("operator")).json()["reloaded"] is True


def test_api_restart_keeps_everything(tmp_path, response_rules, clock):
    first = TestClient(create_app(AlertDesk(response_rules, WorkflowStore(tmp_path)), TOKENS, clock=clock, tick_seconds=0))
    first.post("/v1/alert-changes", headers=auth("operator"), json=change_record())
    first.post(f"/v1/alerts/{ALERT}/ack", headers=auth("officer"), json={"reason": "mine"})
    before = first.get(f"/v1/alerts/{ALERT}", headers=auth("readonly")).json()
    second = TestClient(create_app(AlertDesk(response_rules, WorkflowStore(tmp_path)), TOKENS, clock=clock, tick_seconds=0))
    after = second.get(f"/v1/alerts/{ALERT}", headers=auth("readonly")).json()
    assert after == before and after["status"] == "acknowledged"
