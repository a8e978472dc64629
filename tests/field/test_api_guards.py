"""Issue 13, "Hostile or broken input to the API": body size, security
headers, the documentation page, and the tokens the API starts with.

Found: no body size limit (a 20 MB body blocked the event loop for 7 s and
its 422 echoed 10 MB back); no security headers; /docs loaded the Swagger UI
from a CDN; any token was accepted at start-up. Right: 413 above a
configurable limit (64 KiB), nosniff / no-store / a CSP on every answer, no
/docs page (the OpenAPI document stays), tokens of 16+ characters, each once.
"""

from __future__ import annotations

import subprocess

import pytest
from fastapi.testclient import TestClient

from riskwatch.alerts import AlertDesk
from riskwatch.api import create_app
from riskwatch.api.auth import TokenConfigError, parse_tokens
from riskwatch.rules.response import load_response_rules
from riskwatch.settings import default_rules_dir
from support.alertmanager import free_port
from support.api import RISKWATCH, clean_env
from workflow.records import T0, change_record

pytestmark = pytest.mark.api

OFFICER = "officer-token-0123456789"
ALERT = "al-0000000000000001"
H = {"Authorization": f"Bearer {OFFICER}"}


def app_client(**options) -> TestClient:
    rules, problems = load_response_rules(default_rules_dir())
    assert problems == []
    desk = AlertDesk(rules)
    desk.ingest(change_record())
    return TestClient(create_app(desk, {OFFICER: "officer"}, clock=lambda: T0, tick_seconds=0, **options))


@pytest.fixture
def client():
    return app_client()


def comments(client) -> list:
    return [a for a in client.get("/v1/actions", headers=H).json() if a["kind"] == "comment"]


def test_a_body_above_64_kib_is_413_and_not_echoed(client):
    body = b'{"reason": "' + b"x" * (64 * 1024) + b'"}'
    response = client.post(f"/v1/alerts/{ALERT}/comments", content=body, headers=H | {"Content-Type": "application/json"})
    assert response.status_code == 413 and "65536" in response.json()["detail"]
    assert len(response.content) < 200 and comments(client) == []


def test_a_chunked_body_without_length_is_cut_at_the_limit_too(client):
    def trickle():
        for _ in range(100):
            yield b"x" * 1024
    response = client.post(f"/v1/alerts/{ALERT}/comments", content=trickle(),
                           headers=H | {"Content-Type": "application/json"})
    assert response.status_code == 413 and comments(client) == []


def test_the_limit_is_configurable_and_a_body_under_it_is_served():
    small = app_client(max_body_bytes=100)
    assert small.post(f"/v1/alerts/{ALERT}/comments", json={"reason": "y" * 200}, headers=H).status_code == 413
    assert small.post(f"/v1/alerts/{ALERT}/comments", json={"reason": "short"}, headers=H).status_code == 200


@pytest.mark.parametrize("method,path,headers,status", [
    ("GET", "/v1/alerts", H, 200),
    ("GET", "/v1/alerts", {}, 401),
    ("GET", "/v1/alerts/al-none", H, 404),
    ("POST", f"/v1/alerts/{ALERT}/resolve", H, 422),
    ("GET", "/openapi.json", {}, 200),
    ("GET", "/healthz", {}, 200),
])
def test_every_answer_carries_the_security_headers(client, method, path, headers, status):
    response = client.request(method, path, headers=headers, json={} if method == "POST" else None)
    assert response.status_code == status
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-security-policy"].startswith("default-src 'self'")


def test_no_documentation_page_loads_scripts_from_a_cdn(client):
    for path in ("/docs", "/redoc"):
        assert client.get(path).status_code == 401          # not a public page any more
        assert client.get(path, headers=H).status_code == 404
    assert "/v1/alerts" in client.get("/openapi.json").json()["paths"]


@pytest.mark.parametrize("spec,named", [
    ("short-token:officer", "entry 1 (role officer) has a token of 11 characters; tokens need at least 16"),
    (f"{OFFICER}:officer,{OFFICER}:director", "entry 2 (role director) repeats the token of entry 1"),
])
def test_weak_or_repeated_tokens_are_refused_without_printing_them(spec, named):
    with pytest.raises(TokenConfigError) as error:
        parse_tokens(spec)
    assert named in str(error.value)
    assert "short-token" not in str(error.value) and OFFICER not in str(error.value)


def test_the_api_does_not_start_on_a_short_token(tmp_path):
    done = subprocess.run([RISKWATCH, "api", "--port", str(free_port())], capture_output=True, text=True, timeout=60,
                          env=clean_env(RISKWATCH_API_TOKENS="secret:officer", RISKWATCH_STORE_DIR=str(tmp_path)))
    assert done.returncode == 1
    assert "RISKWATCH_API_TOKENS: entry 1 (role officer) has a token of 6 characters" in done.stderr
    assert "secret" not in done.stderr.replace("RISKWATCH", "")
