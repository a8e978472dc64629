"""The real `riskwatch api` process fed by real engine output (`riskwatch
replay`), worked from the terminal (`riskwatch alerts ...`, `riskwatch plan
trigger`), restarted without losing anything, and fuzzed by schemathesis."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from support.alertmanager import free_port
from support.api import clean_env, running_api


pytestmark = [pytest.mark.api, pytest.mark.slow]

BIN = Path(sys.executable).parent
RISKWATCH = str(BIN / "riskwatch")
EVENTS = Path(__file__).parent / "data" / "overdue_and_price_war.jsonl"
TOKENS = "tok-officer-0123456789:officer,tok-director-0123456789:director,tok-operator-0123456789:operator,tok-readonly-0123456789:readonly"


def api_process(store: Path, port: int):
    return running_api(port, RISKWATCH_API_TOKENS=TOKENS, RISKWATCH_STORE_DIR=str(store), RISKWATCH_LOG_LEVEL="WARNING")


def cli(url: str, token: str, *args: str) -> subprocess.CompletedProcess:
    env = clean_env(RISKWATCH_API_URL=url, RISKWATCH_API_TOKEN=token)
    return subprocess.run([RISKWATCH, *args], env=env, capture_output=True, text=True, timeout=60)


def replayed_changes() -> list[dict]:
    result = subprocess.run([RISKWATCH, "replay", str(EVENTS), "--until", "2026-04-20T00:00:00Z"],
                            env=clean_env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def H(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_engine_alerts_worked_from_the_terminal_survive_a_restart(tmp_path):
    changes = replayed_changes()
    by_indicator = {c["indicator"]: c["alert_id"] for c in changes}
    overdue, price = by_indicator["payment_overdue"], by_indicator["competitor_price_cut"]
    port = free_port()
    with api_process(tmp_path / "store", port) as url:
        for change in changes:
            response = httpx.post(url + "/v1/alert-changes", json=change, headers=H("tok-operator-0123456789"))
            assert response.status_code == 202, response.text
        # The engine resolved the overdue invoice when it was paid: 2.5M CNY, a
        # quarter of what an A-class account buys in a year, was an orange alert,
        # so a 48 h review is waiting.
        reviews = httpx.get(url + "/v1/reviews", headers=H("tok-readonly-0123456789")).json()
        assert [r["alert_id"] for r in reviews] == [overdue]
        # The price-war alert is still open: the officer works it from the terminal.
        listed = cli(url, "tok-officer-0123456789", "alerts", "list", "--status", "open", "--json")
        assert listed.returncode == 0, listed.stderr
        assert [a["alert_id"] for a in json.loads(listed.stdout)] == [price]
        assert cli(url, "tok-readonly-0123456789", "alerts", "ack", price).returncode == 1  # read-only: 403
        ack = cli(url, "tok-officer-0123456789", "alerts", "ack", price, "--reason", "pricing team informed", "--as", "Ann")
        assert ack.returncode == 0, ack.stderr
        step = cli(url, "tok-officer-0123456789", "alerts", "step", price, "1", "--note", "cut confirmed in east region")
        assert step.returncode == 0 and "[x] 1." in step.stdout
        refused = cli(url, "tok-director-0123456789", "plan", "trigger", "price_war_response", "--alert", price,
                      "--reason", "protect key accounts", "--amount", "6000000", "--budget", "100000000")
        assert refused.returncode == 1 and "committed_amount" in refused.stderr
        plan = cli(url, "tok-director-0123456789", "plan", "trigger", "price_war_response", "--alert", price,
                   "--reason", "protect key accounts", "--amount", "2000000", "--budget", "100000000", "--json")
        assert plan.returncode == 0, plan.stderr
        plan_id = json.loads(plan.stdout)["plan_id"]
        snooze = cli(url, "tok-officer-0123456789", "alerts", "snooze", price, "--reason", "waiting for the package",
                     "--until-recovery")
        assert snooze.returncode == 0, snooze.stderr
        shown = cli(url, "tok-readonly-0123456789", "alerts", "show", price)
        assert "acknowledge" in shown.stdout and "Ann" in shown.stdout
        before_alert = httpx.get(f"{url}/v1/alerts/{price}", headers=H("tok-readonly-0123456789")).json()
        before_audit = httpx.get(url + "/v1/actions", headers=H("tok-readonly-0123456789")).json()
        before_plan = httpx.get(f"{url}/v1/plans/{plan_id}", headers=H("tok-readonly-0123456789")).json()
    with api_process(tmp_path / "store", free_port()) as url:
        after_alert = httpx.get(f"{url}/v1/alerts/{price}", headers=H("tok-readonly-0123456789")).json()
        after_audit = httpx.get(url + "/v1/actions", headers=H("tok-readonly-0123456789")).json()
        assert after_audit[:len(before_audit)] == before_audit
        assert after_alert["status"] == "snoozed" and after_alert["acknowledged_by"].startswith("Ann")
        assert after_alert["steps"][0] == before_alert["steps"][0]
        assert httpx.get(f"{url}/v1/plans/{plan_id}", headers=H("tok-readonly-0123456789")).json()["fund"] == before_plan["fund"]
        resolve = cli(url, "tok-officer-0123456789", "alerts", "resolve", price, "--reason", "competitor price back")
        assert resolve.returncode == 0, resolve.stderr
        assert len(httpx.get(url + "/v1/reviews", headers=H("tok-readonly-0123456789")).json()) == 2


def test_cli_without_token_or_server_says_so(tmp_path):
    result = subprocess.run([RISKWATCH, "alerts", "list"], env=clean_env(), capture_output=True, text=True)
    assert result.returncode == 2 and "RISKWATCH_API_TOKEN" in result.stderr
    result = cli(f"http://127.0.0.1:{free_port()}", "tok", "alerts", "list")
    assert result.returncode == 2 and "cannot reach" in result.stderr


def test_api_refuses_to_start_without_tokens(tmp_path):
    result = subprocess.run([RISKWATCH, "api", "--port", str(free_port())],
                            env=clean_env(RISKWATCH_STORE_DIR=str(tmp_path)), capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "RISKWATCH_API_TOKENS" in result.stderr


@pytest.mark.parametrize("token", ["tok-director-0123456789", "tok-operator-0123456789"])
def test_schemathesis_finds_no_server_error(tmp_path, token):
    port = free_port()
    with api_process(tmp_path / "store", port) as url:
        for change in replayed_changes():
            httpx.post(url + "/v1/alert-changes", json=change, headers=H("tok-operator-0123456789"))
        result = subprocess.run(
            [str(BIN / "schemathesis"), "run", url + "/openapi.json", "--checks", "not_a_server_error",
             "-H", f"Authorization: Bearer {token}", "--max-examples", "30", "--seed", "1",
             "--phases", "examples,coverage,fuzzing", "--request-timeout", "10"],
            capture_output=True, text=True, timeout=240, cwd=tmp_path, env=clean_env())
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
