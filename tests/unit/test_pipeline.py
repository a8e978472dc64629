"""The pipeline every shell uses: one path from raw bytes to the stages, in one order."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from prometheus_client import CollectorRegistry

from riskwatch import testing as t
from riskwatch.alerts import open_desk
from riskwatch.engine import Engine
from riskwatch.metrics import RiskwatchMetrics
from riskwatch.models import Rejection
from riskwatch.pipeline import Stage, Summary, build_pipeline
from riskwatch.runner import RunLoop
from riskwatch.service import EmbeddedService
from riskwatch.settings import Settings

DUE = "2026-03-01T00:00:00Z"
A_MONTH_PAST_DUE = datetime(2026, 4, 1, tzinfo=timezone.utc)


def overdue_invoice(invoice_id: str = "INV-1") -> str:
    return json.dumps(t.invoice_issued(invoice_id, "C-1", 60_000, due_at=DUE, at="2026-02-01T00:00:00Z"))


class Recording(Stage):
    """A stage that notes what reached it and when it was ticked."""

    def __init__(self, name: str, seen: list, passes_on: bool = True):
        self.name, self.seen, self.passes_on = name, seen, passes_on

    def __call__(self, records):
        self.seen.append((self.name, [r.alert_id for r in records]))
        return records if self.passes_on else []

    def tick(self, clock):
        self.seen.append((self.name, "tick", clock))


class FakeAlertmanager:
    def __init__(self):
        self.sent, self.ticks, self.closed = [], 0, False

    def send(self, record):
        self.sent.append(record)

    def tick(self, now=None):
        self.ticks += 1

    def close(self, timeout=None):
        self.closed = True


def test_the_stages_come_in_one_order_count_desk_alertmanager_sinks(tmp_path):
    desk = open_desk(Settings(store_dir=tmp_path), persistent=False)
    pipeline = build_pipeline(metrics=RiskwatchMetrics.create(CollectorRegistry()), summary=Summary(), desk=desk,
                              alertmanager=FakeAlertmanager(), sinks=[print])
    assert [stage.name for stage in pipeline.stages] == ["count", "desk", "alertmanager", "deliver"]
    assert [stage.name for stage in build_pipeline().stages] == []


def test_sinks_get_the_published_record_and_the_shell_gets_the_engines_changes_back():
    engine = Engine(t.default_rules())
    printed: list[dict] = []
    pipeline = build_pipeline(sinks=[printed.append])
    pipeline.evaluate(engine, overdue_invoice())
    changes = engine.advance_to(A_MONTH_PAST_DUE)
    assert changes and changes[0].indicator == "payment_overdue"
    assert pipeline.publish(changes) == changes   # what the worker sends on: the changes themselves
    assert printed == [c.to_json() for c in changes]
    assert printed[0]["alert_id"] == changes[0].alert_id and printed[0]["tier"] == changes[0].tier.value
    assert not {"raised_ts", "tier_since", "inputs"} & set(printed[0])


def test_a_record_is_refused_by_the_parser_the_future_check_or_the_engine_and_nothing_follows():
    engine = Engine(t.default_rules())
    pipeline = build_pipeline(future_tolerance_seconds=3600, wall_clock=lambda: 1_767_225_600.0)  # 2026-01-01
    assert pipeline.evaluate(engine, b"{not json").rejection.kind == "not_json"
    next_year = json.dumps(t.order_placed("O-1", "C-1", at="2027-01-01T00:00:00Z"))
    verdict = pipeline.evaluate(engine, next_year)
    assert verdict.rejection.kind == "future" and verdict.outcome is None and verdict.changes == []
    assert engine.watermark is None  # refused before it could move the clock
    assert pipeline.evaluate(engine, next_year, wall=1_830_297_600.0).rejection is None  # a wall clock in 2028
    event = pipeline.admit(json.dumps(t.order_placed("O-2", "C-1", at="2025-12-01T00:00:00Z", currency="XXX")))
    assert not isinstance(event, Rejection)
    verdict = pipeline.apply(engine, event)
    assert verdict.rejection.kind == "unknown_currency" and verdict.changes == []


def test_each_stage_gets_what_the_one_before_passed_on_and_an_empty_list_ends_the_line():
    seen: list = []
    pipeline = build_pipeline()
    pipeline.stages = [Recording("first", seen), Recording("stopper", seen, passes_on=False), Recording("never", seen)]
    engine = Engine(t.default_rules())
    pipeline.evaluate(engine, overdue_invoice())
    change, = engine.advance_to(A_MONTH_PAST_DUE)
    assert pipeline.publish([change]) == []
    assert seen == [("first", [change.alert_id]), ("stopper", [change.alert_id])]
    assert pipeline.publish([]) == [] and len(seen) == 2
    pipeline.tick(A_MONTH_PAST_DUE)
    assert [entry[0] for entry in seen[2:]] == ["first", "stopper", "never"]


def test_without_a_desk_alertmanager_gets_every_record_and_with_one_only_its_timer():
    alone = FakeAlertmanager()
    service = EmbeddedService(t.default_rules(), alertmanager=alone)
    service.feed(overdue_invoice())
    service.advance_to(A_MONTH_PAST_DUE)
    assert [r["indicator"] for r in alone.sent] == ["payment_overdue"]
    assert "raised_ts" not in alone.sent[0]
    service.tick()
    service.close()
    assert alone.ticks == 1 and alone.closed

    notified = FakeAlertmanager()
    desk = open_desk(Settings(), persistent=False, notify=notified.send)
    service = EmbeddedService(t.default_rules(), desk=desk, alertmanager=notified)
    service.feed(overdue_invoice())
    service.advance_to(A_MONTH_PAST_DUE)
    # The desk's view, with its workflow status, not the engine's record.
    assert len(notified.sent) == 1 and "workflow" in notified.sent[0]
    service.tick()
    assert notified.ticks == 1


def test_the_desk_stage_records_each_change_and_keeps_the_service_clock_on_tick(tmp_path):
    desk = open_desk(Settings(store_dir=tmp_path))
    service = EmbeddedService(t.default_rules(), desk=desk)
    service.feed(overdue_invoice())
    changes = service.advance_to(A_MONTH_PAST_DUE)
    assert desk.alert(changes[0].alert_id, A_MONTH_PAST_DUE)["status"] == "open"
    assert desk.service_clock() is None
    service.tick()
    assert desk.service_clock() == service.engine.watermark


def test_the_summary_and_the_metrics_count_the_same_changes():
    metrics = RiskwatchMetrics.create(CollectorRegistry())
    service = EmbeddedService(t.default_rules(), metrics=metrics)
    first = overdue_invoice("INV-1")
    service.feed(first)
    service.feed(first)   # a redelivery: the same event id and content
    service.feed(overdue_invoice("INV-2"))
    service.feed(b"not json")
    service.advance_to(A_MONTH_PAST_DUE)
    summary = service.summary
    assert (summary.records, summary.accepted, dict(summary.rejected_by_kind)) == (4, 3, {"not_json": 1})
    assert sum(summary.raised.values()) == 2 and sum(summary.open_by_tier.values()) == 2
    raised = sum(s.value for s in metrics.alerts_raised.collect()[0].samples if s.name.endswith("_total"))
    assert raised == 2
    assert metrics.registry.get_sample_value("riskwatch_events_processed_total", {"type": "invoice.issued"}) == 3
    assert metrics.registry.get_sample_value("riskwatch_events_duplicate_total") == 1


def test_the_run_loop_feeds_ticks_the_pipeline_and_stops_on_a_signal():
    service = EmbeddedService(t.default_rules())
    ticks: list = []
    service.tick = lambda: ticks.append(service.engine.watermark)
    said: list[str] = []
    loop = RunLoop(service, say=said.append, tick_seconds=3600)
    records = [(n, overdue_invoice(f"INV-{n}")) for n in range(1, 6)]

    def stop_after_two():
        for number, line in records:
            if number == 3:
                loop.stop()
            yield number, line

    loop.run(stop_after_two(), "test")
    assert service.summary.records == 2 and loop.line == 3
    assert len(ticks) == 1 and ticks[0] is not None   # the final tick, on the clock where the input ended
    assert said[-1].startswith("riskwatch run: stopped (signal)")
