"""Any text a client sends as a reason is either stored as sent (200) or
refused naming the field (422), never a server error; what is stored holds
no control character other than newline and tab (issue 13, hostile input)."""

from __future__ import annotations

import json
import unicodedata

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings, strategies as st

from riskwatch.alerts import AlertDesk
from riskwatch.api import create_app
from riskwatch.rules.response import load_response_rules
from riskwatch.settings import default_rules_dir
from workflow.records import T0, change_record

TOKEN = "officer-token-0123456789"
ALERT = "al-0000000000000001"


@pytest.fixture(scope="module")
def client():
    rules, problems = load_response_rules(default_rules_dir())
    assert problems == []
    desk = AlertDesk(rules)
    desk.ingest(change_record())
    return TestClient(create_app(desk, {TOKEN: "officer"}, clock=lambda: T0, tick_seconds=0),
                      raise_server_exceptions=False)


# Every code point, surrogates included, as a client can write them with JSON escapes.
any_text = st.text(st.characters(codec=None, min_codepoint=0, max_codepoint=0x10FFFF), max_size=60)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(reason=any_text)
def test_a_reason_is_stored_as_sent_or_refused_naming_it(client, reason):
    body = json.dumps({"reason": reason}).encode()  # ASCII with \uXXXX escapes: lone surrogates survive
    response = client.post(f"/v1/alerts/{ALERT}/comments", content=body,
                           headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    assert response.status_code in (200, 422), response.text
    if response.status_code == 422:
        assert response.json()["detail"][0]["loc"] == ["body", "reason"]
        return
    stored = response.json()["reason"]
    assert stored == reason and any(not c.isspace() for c in stored)
    assert all(c in "\n\t" or unicodedata.category(c) not in ("Cc", "Cs") for c in stored)
