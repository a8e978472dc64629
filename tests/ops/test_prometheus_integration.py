"""The real Prometheus scraping a real `riskwatch run` fed with simulated
events: the scrape works, the service rules evaluate on real series without
errors and stay quiet while the service is healthy, every dashboard panel's
PromQL returns data, and stopping riskwatch is noticed."""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.support.ops import (
    PROMETHEUS_DIR,
    dashboards,
    expand,
    panel_targets,
    rule_files,
    series_in,
    worker_only_series,
)
from riskwatch.models import Rejection, parse_event
from riskwatch.simulate import SimulationSettings, simulate
from tests.support.prometheus import PrometheusServer, free_port, http_get, stop_process, wait_for

pytestmark = [
    pytest.mark.prometheus,
    pytest.mark.slow,
]

JOB = "riskwatch-run"
# ~8,000 events at 1,000/s: the counters keep moving for several 1 s scrapes,
# so rates and latency quantiles have something to show.
SIMULATION = SimulationSettings(seed=11, customers=80, days=120, bad_record_rate=0.02)
FEED_RATE = 1000
# Alerts that would be false alarms on a healthy, busy riskwatch.
QUIET_WHEN_HEALTHY = ("RiskwatchWorkerDown", "RiskwatchNoEvents", "RiskwatchClockStalled", "RiskwatchDeadLettersHigh")


def riskwatch_command() -> list[str]:
    script = Path(sys.executable).with_name("riskwatch")
    return [str(script)] if script.exists() else [shutil.which("riskwatch") or "riskwatch"]


def prometheus_config(metrics_port: int) -> dict:
    """The shipped prometheus-local.yml, with the test's port, 1 s intervals
    and the shipped rule files by absolute path."""
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus-local.yml").read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s", scrape_timeout="1s")
    config["rule_files"] = [str(PROMETHEUS_DIR / pattern) for pattern in config["rule_files"]]
    (job,) = config["scrape_configs"]
    assert job["job_name"] == JOB
    job["static_configs"] = [{"targets": [f"127.0.0.1:{metrics_port}"]}]
    return config


@dataclass
class Observed:
    prometheus: PrometheusServer
    riskwatch: subprocess.Popen
    metrics_url: str
    accepted: int
    rejected: int
    start: float
    end: float


@pytest.fixture(scope="module")
def observed(tmp_path_factory) -> Observed:
    workdir = tmp_path_factory.mktemp("prometheus-integration")
    lines = list(simulate(SIMULATION))
    rejected = sum(isinstance(parse_event(line), Rejection) for line in lines)
    events = workdir / "events.jsonl"
    events.write_bytes(b"\n".join(lines) + b"\n")

    metrics_port = free_port()
    prometheus = PrometheusServer.start(prometheus_config(metrics_port), workdir / "prometheus")
    log = (workdir / "riskwatch.log").open("wb")
    riskwatch = subprocess.Popen(
        riskwatch_command() + ["run", "--metrics-port", str(metrics_port), "--input", str(events),
                               "--rate", str(FEED_RATE), "--quiet"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    start = time.time()
    try:
        metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        wait_for(lambda: b"riskwatch_events_processed_total" in http_get(metrics_url), 30,
                 what="riskwatch run serving /metrics")
        # Every event scraped: the counters in Prometheus reach what was fed.
        wait_for(lambda: prometheus.value(f'sum(riskwatch_events_processed_total{{job="{JOB}"}})') == len(lines) - rejected,
                 60, what="Prometheus seeing every event evaluated")
        end = time.time()
        # A few more evaluations so range windows (20 s) and every rule see the whole run.
        wait_for(lambda: prometheus.rules_evaluated_since(end + 2), 30, what="rules evaluated after the feed")
        yield Observed(prometheus, riskwatch, metrics_url, len(lines) - rejected, rejected, start, end)
    except Exception:
        log.flush()
        print((workdir / "riskwatch.log").read_text(errors="replace")[-4000:])
        print(prometheus.log()[-4000:])
        raise
    finally:
        stop_process(riskwatch)
        log.close()
        prometheus.stop()


def test_prometheus_scrapes_riskwatch_run(observed):
    (target,) = [t for t in observed.prometheus.targets() if t["labels"]["job"] == JOB]
    assert target["health"] == "up", target.get("lastError")
    assert target["scrapeUrl"] == observed.metrics_url


def test_prometheus_counts_every_event_fed_and_every_line_refused(observed):
    prometheus = observed.prometheus
    assert observed.rejected > 0, "the simulation should include spoilt records"
    assert prometheus.value(f'sum(riskwatch_events_processed_total{{job="{JOB}"}})') == observed.accepted
    assert prometheus.value(f'sum(riskwatch_events_rejected_total{{job="{JOB}"}})') == observed.rejected
    # Pre-created label combinations: a panel shows 0, not "no data".
    assert len(prometheus.query(f'riskwatch_alerts_open{{job="{JOB}"}}')) == 4
    assert len(prometheus.query(f'riskwatch_alerts_raised_total{{job="{JOB}"}}')) == 8 * 4


def test_the_simulated_business_shows_risk_in_prometheus(observed):
    prometheus = observed.prometheus
    assert prometheus.value(f'sum(riskwatch_alerts_raised_total{{job="{JOB}"}})') > 0
    indicators = prometheus.query(f'sum by (indicator) (riskwatch_alerts_raised_total{{job="{JOB}"}}) > 0')
    assert len(indicators) >= 2, indicators
    # The clock is event time: 120 simulated days past the simulation's start.
    watermark = prometheus.value(f'riskwatch_watermark_seconds{{job="{JOB}"}}')
    assert watermark > SIMULATION.start.timestamp() + 100 * 86400
    assert prometheus.value(f'riskwatch_up{{job="{JOB}", component="run"}}') == 1


def test_every_shipped_rule_is_loaded_and_evaluates_without_error(observed):
    groups = observed.prometheus.rule_groups()
    loaded = {(g["file"], r["name"]) for g in groups for r in g["rules"]}
    shipped = {(str(path), rule.get("alert") or rule.get("record"))
               for path in rule_files() for g in yaml.safe_load(path.read_text())["groups"] for rule in g["rules"]}
    assert loaded == shipped
    broken = [(r["name"], r.get("lastError")) for g in groups for r in g["rules"] if r["health"] != "ok"]
    assert not broken


def test_recording_rules_produce_series_from_riskwatch(observed):
    rate = observed.prometheus.value(f'riskwatch:events_processed:rate5m{{job="{JOB}"}}')
    assert rate is not None and rate > 0


def test_a_healthy_busy_riskwatch_raises_no_service_alert(observed):
    states = {r["name"]: r["state"] for g in observed.prometheus.rule_groups() for r in g["rules"] if r["type"] == "alerting"}
    for alert in QUIET_WHEN_HEALTHY:
        assert states[alert] == "inactive", f"{alert} is {states[alert]} on a healthy service"


def _finite_points(result: list[dict]) -> int:
    return sum(1 for series in result for _, value in series["values"] if math.isfinite(float(value)))


@pytest.mark.parametrize("expr", [pytest.param(expr, id=name) for name, expr in panel_targets()])
def test_dashboard_query_returns_data(observed, expr):
    query = expand(expr)
    result = observed.prometheus.query_range(query, observed.start, observed.end + 5, step=1)
    if series_in(expr) <= worker_only_series():
        # Consumer lag, commit latency, rebalances: faust's sensor, not in
        # `riskwatch run`. The query must still be valid PromQL (no error above).
        assert result == [], "worker-only series in riskwatch run?"
        return
    assert _finite_points(result) > 0, f"no data for {query}"


def test_the_job_variable_offers_riskwatch_run(observed):
    for dashboard in dashboards().values():
        (variable,) = [v for v in dashboard["templating"]["list"] if v["name"] == "job"]
        metric = variable["query"]["query"].removeprefix("label_values(").split(",")[0]
        assert JOB in observed.prometheus.label_values("job", metric)


def test_stopping_riskwatch_makes_the_worker_down_alert_pending(observed):
    """Runs last in this module: it stops the riskwatch process."""
    observed.riskwatch.terminate()
    observed.riskwatch.wait(timeout=15)

    def worker_down():
        return [a for a in observed.prometheus.alerts_of("RiskwatchWorkerDown") if a["labels"].get("job") == JOB]

    (alert,) = wait_for(worker_down, 20, what="RiskwatchWorkerDown pending")
    assert alert["state"] == "pending"  # for: 2m, so not firing yet
    assert alert["annotations"]["runbook"] == "docs/operations.md#riskwatchworkerdown"
