"""Issue 13, "Concurrent users": a person's action retried after a timeout
must not be recorded twice. Every state-changing request takes an
`Idempotency-Key`: the same key and request give the first answer again and
record nothing; the same key with another request is 422 naming the header.
"""

from __future__ import annotations

import json
import socket
import time

import httpx
import pytest
from fastapi.testclient import TestClient

from riskwatch.alerts import AlertDesk, WorkflowStore
from riskwatch.alerts.idempotency import IdempotencyKeys
from riskwatch.api import create_app
from riskwatch.rules.response import load_response_rules
from riskwatch.settings import default_rules_dir
from support.alertmanager import free_port
from support.api import running_api
from workflow.records import T0, change_record

pytestmark = pytest.mark.api

OFFICER, OTHER, OPERATOR = "officer-token-0123456789", "officer-token-9876543210", "operator-token-0123456789"
DIRECTOR = "director-token-0123456789"
TOKENS = {OFFICER: "officer", OTHER: "officer", OPERATOR: "operator", DIRECTOR: "director"}
ALERT = "al-0000000000000001"


def H(token: str = OFFICER, key: str | None = None) -> dict:
    return {"Authorization": f"Bearer {token}"} | ({"Idempotency-Key": key} if key else {})


@pytest.fixture
def desk(tmp_path):
    rules, problems = load_response_rules(default_rules_dir())
    assert problems == []
    desk = AlertDesk(rules, WorkflowStore(tmp_path))
    desk.ingest(change_record())
    return desk


@pytest.fixture
def client(desk):
    return TestClient(create_app(desk, TOKENS, clock=lambda: T0, tick_seconds=0))


def comments(client) -> list[str]:
    return [a["reason"] for a in client.get("/v1/actions", headers=H()).json() if a["kind"] == "comment"]


def test_a_comment_sent_twice_with_one_key_is_recorded_once(client):
    first = client.post(f"/v1/alerts/{ALERT}/comments", json={"reason": "called the customer"}, headers=H(key="k-1"))
    again = client.post(f"/v1/alerts/{ALERT}/comments", json={"reason": "called the customer"}, headers=H(key="k-1"))
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert comments(client) == ["called the customer"]
    # Without a key a retry is a second comment: the key is what makes it safe.
    client.post(f"/v1/alerts/{ALERT}/comments", json={"reason": "called the customer"}, headers=H())
    assert len(comments(client)) == 2


def test_a_retried_acknowledgement_is_the_same_200_not_already_acknowledged(client):
    first = client.post(f"/v1/alerts/{ALERT}/ack", json={}, headers=H(key="ack-1"))
    assert first.status_code == 200
    assert client.post(f"/v1/alerts/{ALERT}/ack", json={}, headers=H(key="ack-1")).json() == first.json()
    # A new key is a new request: the state refuses it.
    assert client.post(f"/v1/alerts/{ALERT}/ack", json={}, headers=H(key="ack-2")).status_code == 409
    assert [a["kind"] for a in client.get("/v1/actions", headers=H()).json()] == ["acknowledge"]


def test_a_retried_plan_trigger_is_one_plan(client):
    body = {"plan": "credit_tightening", "alert_id": ALERT, "reason": "repeat offender"}
    first = client.post("/v1/plans", json=body, headers=H(DIRECTOR, key="plan-1"))
    again = client.post("/v1/plans", json=body, headers=H(DIRECTOR, key="plan-1"))
    assert first.status_code == again.status_code == 201 and again.json()["plan_id"] == first.json()["plan_id"]
    assert len(client.get("/v1/plans", headers=H()).json()) == 1


def test_one_key_for_another_request_is_422_naming_the_header(client):
    client.post(f"/v1/alerts/{ALERT}/comments", json={"reason": "first"}, headers=H(key="k-2"))
    other = client.post(f"/v1/alerts/{ALERT}/comments", json={"reason": "second"}, headers=H(key="k-2"))
    assert other.status_code == 422 and other.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]
    elsewhere = client.post(f"/v1/alerts/{ALERT}/ack", json={"reason": "first"}, headers=H(key="k-2"))
    assert elsewhere.status_code == 422
    assert comments(client) == ["first"]


def test_keys_belong_to_their_token(client):
    client.post(f"/v1/alerts/{ALERT}/comments", json={"reason": "mine"}, headers=H(OFFICER, key="same"))
    theirs = client.post(f"/v1/alerts/{ALERT}/comments", json={"reason": "theirs"}, headers=H(OTHER, key="same"))
    assert theirs.status_code == 200 and comments(client) == ["mine", "theirs"]


@pytest.mark.parametrize("key", ["", "a" * 129, "two words"])
def test_a_malformed_key_is_422(client, key):
    response = client.post(f"/v1/alerts/{ALERT}/comments", json={"reason": "x"},
                           headers={"Authorization": f"Bearer {OFFICER}", "Idempotency-Key": key})
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]
    assert comments(client) == []


def test_keys_are_forgotten_after_their_lifetime(tmp_path):
    keys = IdempotencyKeys(tmp_path / "keys.sqlite3", lifetime_seconds=3600)
    assert keys.claim("s", "k", "h1", now=1000.0).outcome == "new"
    keys.complete("s", "k", 200, "application/json", b"{}")
    assert keys.claim("s", "k", "h1", now=1000.0 + 3599).outcome == "replay"
    assert keys.claim("s", "k", "h2", now=1000.0 + 3599).outcome == "mismatch"
    assert keys.claim("s", "k", "h2", now=1000.0 + 3601).outcome == "new"
    assert keys.claim("s", "k", "h2", now=1000.0 + 3602).outcome == "pending"  # not completed yet


def test_an_action_retried_after_a_timeout_is_recorded_once(tmp_path):
    """The officer's request reaches the real API but the answer never comes
    back (the client gave up); the terminal retries with the same key."""
    tokens = f"{OFFICER}:officer,{OPERATOR}:operator"
    with running_api(free_port(), RISKWATCH_API_TOKENS=tokens, RISKWATCH_STORE_DIR=str(tmp_path / "store"),
                     RISKWATCH_LOG_LEVEL="WARNING") as url:
        assert httpx.post(url + "/v1/alert-changes", json=change_record(), headers=H(OPERATOR)).status_code == 202
        body = json.dumps({"reason": "customer promised payment friday"}).encode()
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(f"POST /v1/alerts/{ALERT}/comments HTTP/1.1\r\nHost: {host}\r\n"
                         f"Authorization: Bearer {OFFICER}\r\nIdempotency-Key: retry-1\r\n"
                         f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
            sock.settimeout(0.05)
            try:
                sock.recv(1)  # the client times out after a moment and drops the connection
            except TimeoutError:
                pass
        deadline = time.monotonic() + 5
        while True:  # as the terminal would: 409 while the first request is still being processed
            retried = httpx.post(f"{url}/v1/alerts/{ALERT}/comments", content=body, timeout=10,
                                 headers=H(key="retry-1") | {"Content-Type": "application/json"})
            if retried.status_code != 409 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert retried.status_code == 200, retried.text
        trail = httpx.get(url + "/v1/actions", headers=H()).json()
        assert [a["reason"] for a in trail if a["kind"] == "comment"] == ["customer promised payment friday"]
