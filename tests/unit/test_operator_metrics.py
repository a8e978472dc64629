"""The heat-map and response-compliance series operators chart in Grafana."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from prometheus_client import CollectorRegistry

from riskwatch import testing as t
from riskwatch.alerts import open_desk
from riskwatch.metrics import RiskwatchMetrics
from riskwatch.rules import load_rules
from riskwatch.service import EmbeddedService
from riskwatch.settings import Settings, default_rules_dir


def sample(metrics: RiskwatchMetrics, name: str, labels: dict) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def overdue_invoice_service() -> tuple[EmbeddedService, RiskwatchMetrics, list[dict]]:
    metrics = RiskwatchMetrics.create(CollectorRegistry())
    changes: list[dict] = []
    service = EmbeddedService(load_rules(default_rules_dir()), metrics=metrics, sinks=[changes.append])
    for event in (
        t.invoice_issued("INV-1", "C-1", 60_000, due_at="2026-03-01T00:00:00Z", at="2026-02-01T00:00:00Z"),
        t.invoice_issued("INV-2", "C-2", 80_000, due_at="2026-03-01T00:00:00Z", at="2026-02-01T00:00:00Z"),
    ):
        service.feed(json.dumps(event))
    service.advance_to(datetime.fromisoformat("2026-04-01T00:00:00+00:00"))
    return service, metrics, changes


def test_the_heat_map_counts_every_open_alert_in_its_probability_and_impact_band():
    _, metrics, changes = overdue_invoice_service()
    open_alerts = {c["alert_id"]: c for c in changes if c["status"] == "open"}
    assert len(open_alerts) == 2
    # Two invoices 31 days overdue, 12% and 16% of the annual purchases assumed for a
    # customer of unknown class (500k CNY): probability 0.55, impact 0.12 in the default rules.
    assert sample(metrics, "riskwatch_risk_matrix_alerts_open", {"probability_band": "0.5-0.7", "impact_band": "0.1-0.2"}) == 2
    total = sum(s.value for s in metrics.risk_matrix_alerts_open.collect()[0].samples)
    assert total == 2


def test_an_acknowledgement_before_respond_by_counts_in_time_and_a_missed_one_late(tmp_path):
    _, _, changes = overdue_invoice_service()
    metrics = RiskwatchMetrics.create(CollectorRegistry())
    desk = open_desk(Settings(store_dir=tmp_path), metrics=metrics, persistent=False)
    for change in changes:
        desk(change)
    first, second = sorted({c["alert_id"]: c for c in changes}.values(), key=lambda c: c["alert_id"])
    respond_by = datetime.fromisoformat(first["respond_by"].replace("Z", "+00:00"))
    desk.act("acknowledge", now=respond_by - timedelta(minutes=5), actor="lin", role="officer",
             alert_id=first["alert_id"], reason="on it")
    desk.tick(respond_by + timedelta(hours=1))
    tier = first["tier"]
    assert sample(metrics, "riskwatch_alert_responses_total", {"tier": tier, "outcome": "in_time"}) == 1
    assert sample(metrics, "riskwatch_alert_responses_total", {"tier": second["tier"], "outcome": "late"}) == 1
