"""Issue 13, "Hostile or broken input to the API".

Found: a lone surrogate in a comment (`"a\\ud800"`) and a snooze `until` of
`9999-12-31T23:59:59-23:59` gave 500 (the 422 handler failed echoing the
input; the conversion to UTC overflowed); reasons with CR, LF, ESC or NUL
were stored raw and printed raw by `riskwatch alerts show`, so a comment could
forge an audit line or drive the terminal; whitespace-only reasons were
accepted; a 422 echoed the whole input back. Right: 422 naming the field;
instants outside 2000..2100 refused; control characters other than newline
and tab refused; a reason needs visible text; the terminal escapes what it
prints; error answers carry a short excerpt at most.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

import riskwatch.cli.api as cli_api
from riskwatch.alerts import AlertDesk, WorkflowStore
from riskwatch.api import create_app
from riskwatch.cli import main
from riskwatch.rules.response import load_response_rules
from riskwatch.settings import default_rules_dir
from workflow.records import T0, change_record

pytestmark = pytest.mark.api

OFFICER, OPERATOR, READER = "officer-token-0123456789", "operator-token-0123456789", "readonly-token-0123456789"
TOKENS = {OFFICER: "officer", OPERATOR: "operator", READER: "readonly"}
ALERT = "al-0000000000000001"


def H(token: str = OFFICER) -> dict:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


@pytest.fixture
def client(tmp_path):
    rules, problems = load_response_rules(default_rules_dir())
    assert problems == []
    desk = AlertDesk(rules, WorkflowStore(tmp_path))
    desk.ingest(change_record())
    return TestClient(create_app(desk, TOKENS, clock=lambda: T0, tick_seconds=0))


def trail(client) -> list[dict]:
    return client.get("/v1/actions", headers=H()).json()


def refused_field(response) -> str:
    assert response.status_code == 422, response.text
    return response.json()["detail"][0]["loc"][-1]


def test_a_lone_surrogate_in_a_comment_is_422_naming_the_field(client):
    # Written as the JSON escape a client sends: json.dumps would refuse nothing.
    response = client.post(f"/v1/alerts/{ALERT}/comments", content=b'{"reason": "a\\ud800"}', headers=H())
    assert refused_field(response) == "reason"
    assert response.json()["detail"][0]["input"] == "a\\ud800"
    assert trail(client) == []


def test_a_lone_surrogate_anywhere_in_an_engine_record_is_422(client):
    record = json.dumps(change_record("al-2")).replace('"summary": "', '"summary": "\\udc80', 1).encode()
    response = client.post("/v1/alert-changes", content=record, headers=H(OPERATOR))
    assert response.status_code == 422 and "summary" in response.json()["detail"][0]["msg"]
    assert client.get("/v1/alerts/al-2", headers=H()).status_code == 404


@pytest.mark.parametrize("until", ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59",
                                   "1999-12-31T23:59:59Z", "2101-01-01T00:00:00Z", "2100-12-31T23:59:59-00:01"])
def test_a_snooze_outside_the_business_range_is_422_naming_until(client, until):
    response = client.post(f"/v1/alerts/{ALERT}/snooze", json={"reason": "later", "until": until}, headers=H())
    assert refused_field(response) == "until" and "2000" in response.json()["detail"][0]["msg"]
    assert trail(client) == []


def test_the_last_instant_of_2100_is_still_accepted(client):
    response = client.post(f"/v1/alerts/{ALERT}/snooze", json={"reason": "later", "until": "2100-12-31T23:59:59Z"},
                           headers=H())
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("path,param", [("/v1/alerts", "since"), ("/v1/register", "until")])
def test_a_filter_instant_outside_the_range_is_422(client, path, param):
    response = client.get(path, params={param: "9999-12-31T23:59:59-23:59"}, headers=H())
    assert refused_field(response) == param


def test_an_engine_record_from_year_9999_is_422(client):
    record = change_record("al-3") | {"raised_at": "9999-12-31T23:59:59-23:59"}
    assert refused_field(client.post("/v1/alert-changes", json=record, headers=H(OPERATOR))) == "raised_at"


@pytest.mark.parametrize("reason", ["paid\r2026-04-01T08:00:00+00:00  resolve  ceo (director)", "\x1b[2J\x1b[Hall clear",
                                    "nul\x00byte", "del\x7f", "c1\x85next", "\u202eesolved"])
def test_control_characters_in_a_reason_are_refused(client, reason):
    response = client.post(f"/v1/alerts/{ALERT}/resolve", json={"reason": reason}, headers=H())
    assert refused_field(response) == "reason"
    assert client.get(f"/v1/alerts/{ALERT}", headers=H()).json()["status"] == "open"


@pytest.mark.parametrize("reason", ["", " ", "\n\t  \n", "\u3000"])
def test_a_reason_needs_visible_text(client, reason):
    assert refused_field(client.post(f"/v1/alerts/{ALERT}/resolve", json={"reason": reason}, headers=H())) == "reason"


def test_newlines_and_tabs_are_text(client):
    response = client.post(f"/v1/alerts/{ALERT}/comments", json={"reason": "called:\n\t- finance\n\t- sales"},
                           headers=H())
    assert response.status_code == 200 and trail(client)[0]["reason"] == "called:\n\t- finance\n\t- sales"


@pytest.mark.parametrize("field,body", [
    ("reason", {"reason": "x" * 60_000}),
    ("colour", {"reason": "ok", "colour": "y" * 60_000}),
])
def test_an_error_answer_carries_a_short_excerpt_not_the_input(client, field, body):
    response = client.post(f"/v1/alerts/{ALERT}/comments", json=body, headers=H())
    assert refused_field(response) == field
    assert len(response.content) < 1000
    shown = response.json()["detail"][0].get("input")
    assert shown is None or len(shown) <= 41


def test_the_terminal_escapes_what_it_prints(client, monkeypatch):
    """An engine record (control characters are the engine's data, not
    refused) with ESC and CR in its summary, and a comment with a newline:
    `alerts show` prints each on its own line, escaped."""
    record = change_record("al-4") | {"summary": "Invoice \x1b[31mINV-1\x1b[0m\roverdue"}
    assert client.post("/v1/alert-changes", json=record, headers=H(OPERATOR)).status_code == 202
    forged = "called\n2026-04-01T09:00:00+00:00  resolve        ceo (director): paid"
    assert client.post("/v1/alerts/al-4/comments", json={"reason": forged}, headers=H()).status_code == 200
    monkeypatch.setattr(cli_api.httpx, "Client",
                        lambda base_url, headers, timeout: TestClient(client.app, base_url=base_url, headers=headers))
    shown = CliRunner().invoke(main, ["alerts", "show", "al-4"],
                               env={"RISKWATCH_API_URL": "http://testserver", "RISKWATCH_API_TOKEN": READER})
    assert shown.exit_code == 0, shown.output
    assert "\x1b" not in shown.output and "\r" not in shown.output
    assert "Invoice \\x1b[31mINV-1\\x1b[0m\\roverdue" in shown.output
    (comment,) = [line for line in shown.output.splitlines() if "comment" in line]
    assert comment.endswith("called\\n2026-04-01T09:00:00+00:00  resolve        ceo (director): paid")
    assert not any(line.lstrip().startswith("2026-04-01T09:00:00") for line in shown.output.splitlines())
