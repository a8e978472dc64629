"""riskwatch.testing: the builders and Scenario other projects test with."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from riskwatch import testing as t
from riskwatch.models import Rejection, parse_event


def test_builders_make_events_the_parser_accepts_with_fresh_ids():
    first = t.invoice_issued("INV-1", "C1", 250_000, due_at="2026-03-01T00:00:00Z", at="2026-02-01T09:00:00Z")
    second = t.payment_received("INV-1", "C1", "250000.00", at="2026-03-02T09:00:00Z")
    assert first["event_id"] != second["event_id"]
    assert first["amount"] == "250000"
    for event in (first, second):
        assert not isinstance(parse_event(json.dumps(event)), Rejection)


def test_builders_take_datetimes_and_refuse_naive_ones():
    aware = datetime(2026, 3, 1, tzinfo=timezone.utc)
    assert t.delivered("SHP-1", "C1", delivered_at=aware)["delivered_at"] == "2026-03-01T00:00:00Z"
    with pytest.raises(ValueError):
        t.delivered("SHP-1", "C1", delivered_at=datetime(2026, 3, 1))


def test_extra_fields_and_own_event_ids_pass_through():
    event = t.order_placed("O-1", "C1", 10, event_id="mine", channel="web")
    assert event["event_id"] == "mine" and event["channel"] == "web"


def test_a_scenario_reports_final_alerts_by_indicator_and_subject():
    story = t.Scenario().feed(
        t.invoice_issued("INV-1", "C1", 1000, due_at="2026-03-01T00:00:00Z", at="2026-02-01T09:00:00Z"),
        "not json",
    )
    story.advance_to("2026-04-01T00:00:00Z")
    assert len(story.rejections) == 1
    alert = story.alert("payment_overdue", "INV-1")
    assert alert is not None and alert["status"] == "open"
    assert story.alert("payment_overdue", "INV-2") is None
    assert story.outcome() == {alert["alert_id"]: ("open", alert["tier"])}
    story.feed(t.payment_received("INV-1", "C1", 1000, at="2026-04-01T09:00:00Z"))
    assert story.alert("payment_overdue", "INV-1")["status"] == "resolved"
    assert len(story.changes) == 2


def test_to_jsonl_writes_one_event_per_line():
    text = t.to_jsonl([t.order_cancelled("O-1", "C1"), t.invoice_written_off("I-1", "C1")])
    assert [json.loads(line)["type"] for line in text.splitlines()] == ["order.cancelled", "invoice.written_off"]
