"""Issue 13, "Broken stores and files": rule files an operator can end up
with that used to crash `rules check` (and `/v1/rules/reload`, the same
path) with a traceback. Each is refused like every other rule problem:
file, line, reason; the running rules stay."""

from __future__ import annotations

from datetime import datetime, timezone

from fastapi.testclient import TestClient

from riskwatch.alerts import AlertDesk, WorkflowStore
from riskwatch.api import create_app
from riskwatch.rules.files import MAX_RULE_FILE_BYTES
from riskwatch.rules.response import load_response_rules

COMPLEX_KEY = ("  delivery_delay:\n", "  ? [delivery_delay, shipment_delay]\n  :\n")


def _break(rules_dir, file_name: str, right: str, wrong: str) -> None:
    path = rules_dir / file_name
    text = path.read_text(encoding="utf-8")
    assert text.count(right) == 1
    path.write_text(text.replace(right, wrong), encoding="utf-8")


def test_a_list_as_a_key_is_a_problem_at_its_line_not_a_traceback(riskwatch, rules_copy):
    _break(rules_copy, "indicators.yaml", *COMPLEX_KEY)
    done = riskwatch("rules", "check", rules_copy)
    assert done.returncode == 1
    assert done.stdout == "indicators.yaml: line 92: a key must be a single name, not a list\n"
    assert "Traceback" not in done.stderr


def test_a_mapping_as_a_key_is_refused_the_same_way(riskwatch, rules_copy):
    _break(rules_copy, "escalation.yaml", "owner_chain:", "? {owner_chain: 1}\n:")
    done = riskwatch("rules", "check", rules_copy)
    assert done.returncode == 1
    assert done.stdout.startswith("escalation.yaml: line ")
    assert done.stdout.rstrip().endswith(": a key must be a single name, not a dict")
    assert "Traceback" not in done.stderr


def test_a_rule_file_over_the_limit_is_refused_before_it_is_parsed(riskwatch, rules_copy):
    # Valid YAML (one long comment), so only the size check can refuse it.
    path = rules_copy / "targets.yaml"
    path.write_text(path.read_text(encoding="utf-8") + "#" + "x" * MAX_RULE_FILE_BYTES + "\n", encoding="utf-8")
    done = riskwatch("rules", "check", rules_copy)
    assert done.returncode == 1
    assert done.stdout == "targets.yaml: larger than 1024 KiB, the limit for a rule file: not read (is it the right file?)\n"


def test_a_deeply_nested_rule_file_is_refused_not_a_crash(riskwatch, rules_copy):
    (rules_copy / "targets.yaml").write_text("targets: " + "[" * 50_000 + "]" * 50_000 + "\n", encoding="utf-8")
    done = riskwatch("rules", "check", rules_copy)
    assert done.returncode == 1
    assert "targets.yaml: " in done.stdout
    assert "Traceback" not in done.stderr


def test_rules_reload_over_http_refuses_a_complex_key_and_keeps_the_running_rules(tmp_path, rules_copy):
    rules, problems = load_response_rules(rules_copy)
    assert problems == []
    desk = AlertDesk(rules, WorkflowStore(tmp_path / "store"))
    app = create_app(desk, {"tok-operator-0123456789": "operator"}, rules_dir=rules_copy, tick_seconds=0,
                     clock=lambda: datetime(2026, 3, 1, tzinfo=timezone.utc))
    client = TestClient(app)
    _break(rules_copy, "indicators.yaml", *COMPLEX_KEY)
    response = client.post("/v1/rules/reload", headers={"Authorization": "Bearer tok-operator-0123456789"})
    assert response.status_code == 409
    assert response.json()["problems"] == ["indicators.yaml: line 92: a key must be a single name, not a list"]
    assert desk.rules is rules
