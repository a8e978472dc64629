"""The Prometheus configuration and the service-health rules, checked by the
real promtool: the configs load, the rules parse, and the rules' unit tests
(deploy/prometheus/tests/*.yml) pass — and fail when a rule is broken."""

from __future__ import annotations

import re
import shutil

import pytest
import yaml

from tests.support.ops import OPERATIONS_DOC, PROMETHEUS_DIR, faust_sensor_series, recorded_series, riskwatch_series, rule_files, series_in
from tests.support.prometheus import promtool

pytestmark = pytest.mark.prometheus

# What the operator was promised: one alert for each of these situations.
EXPECTED_ALERTS = {
    "RiskwatchWorkerDown",
    "RiskwatchConsumerLagGrowing",
    "RiskwatchDeadLettersHigh",
    "RiskwatchNoEvents",
    "RiskwatchClockStalled",
    "RiskwatchEscalationsPilingUp",
    "RiskwatchReviewsOverdue",
}


@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus-local.yml"])
def test_promtool_accepts_the_scrape_config_and_its_rule_files(config):
    result = promtool("check", "config", config, cwd=PROMETHEUS_DIR)
    assert result.returncode == 0, result.stdout + result.stderr
    # The config must actually pull the rules in, not just parse.
    assert f"SUCCESS: {len(rule_files())} rule files found" in result.stdout + result.stderr


def test_promtool_accepts_the_rules():
    result = promtool("check", "rules", *map(str, rule_files()))
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_unit_tests_pass():
    tests = sorted(str(p.relative_to(PROMETHEUS_DIR)) for p in (PROMETHEUS_DIR / "tests").glob("*.yml"))
    assert tests, "no promtool unit tests in deploy/prometheus/tests"
    result = promtool("test", "rules", *tests, cwd=PROMETHEUS_DIR)
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_unit_tests_catch_a_broken_rule(tmp_path):
    """A worker-down alert without its 2-minute grace would page on one missed
    scrape; the unit tests must notice."""
    copy = tmp_path / "prometheus"
    shutil.copytree(PROMETHEUS_DIR, copy)
    rules_file = copy / "rules" / "riskwatch-service.yml"
    document = yaml.safe_load(rules_file.read_text())
    (worker_down,) = [r for g in document["groups"] for r in g["rules"] if r.get("alert") == "RiskwatchWorkerDown"]
    del worker_down["for"]
    rules_file.write_text(yaml.safe_dump(document, sort_keys=False))
    assert promtool("check", "rules", str(rules_file)).returncode == 0  # still valid, just wrong
    tests = sorted(str(p.relative_to(copy)) for p in (copy / "tests").glob("*.yml"))
    result = promtool("test", "rules", *tests, cwd=copy)
    assert result.returncode != 0
    assert "RiskwatchWorkerDown" in result.stdout + result.stderr


def test_every_situation_the_operator_asked_for_has_an_alert(all_rules):
    alerts = {rule["alert"] for rule in all_rules if "alert" in rule}
    assert EXPECTED_ALERTS <= alerts, f"missing: {sorted(EXPECTED_ALERTS - alerts)}"


def test_every_alert_is_unit_tested(all_rules):
    tested = set()
    for path in (PROMETHEUS_DIR / "tests").glob("*.yml"):
        for case in yaml.safe_load(path.read_text())["tests"]:
            tested |= {t["alertname"] for t in case.get("alert_rule_test", []) if t.get("exp_alerts")}
    alerts = {rule["alert"] for rule in all_rules if "alert" in rule}
    assert alerts <= tested, f"alerts never shown firing in a unit test: {sorted(alerts - tested)}"


def _github_anchor(heading: str) -> str:
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_alert_has_a_severity_and_a_runbook_section_that_exists(all_rules):
    anchors = {_github_anchor(line.lstrip("#")) for line in OPERATIONS_DOC.read_text().splitlines() if line.startswith("#")}
    for rule in all_rules:
        if "alert" not in rule:
            continue
        assert rule.get("labels", {}).get("severity") in {"page", "ticket"}, rule["alert"]
        annotations = rule.get("annotations", {})
        assert annotations.get("summary") and annotations.get("description"), rule["alert"]
        runbook = annotations.get("runbook", "")
        path, _, anchor = runbook.partition("#")
        assert path == "docs/operations.md", f"{rule['alert']}: runbook {runbook!r}"
        assert anchor in anchors, f"{rule['alert']}: no section #{anchor} in docs/operations.md"


def test_rules_only_read_series_riskwatch_exposes(all_rules):
    """A misspelt metric name makes an alert silently never fire."""
    known = riskwatch_series() | faust_sensor_series() | recorded_series() | {"up"}
    for rule in all_rules:
        unknown = series_in(rule["expr"]) - known
        assert not unknown, f"{rule.get('alert') or rule.get('record')}: unknown series {sorted(unknown)}"
