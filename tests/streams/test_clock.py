"""The shared clock: an idle service still fires absence deadlines, and says so."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import pytest

from tests.support.kafka import alert_changes, produce_lines, wait_processed, wait_until

pytestmark = pytest.mark.kafka


def _at(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def test_an_idle_worker_advances_the_clock_and_fires_the_overdue_alert(kafka_broker, start_worker, topic_prefix):
    lateness, idle = 600.0, 1.0
    worker = start_worker(lateness=lateness, idle_advance=idle)
    due = datetime(2026, 3, 1, tzinfo=timezone.utc)
    # The last event puts the clock 3 s short of "30 days past due": only the
    # wall clock can carry it over.
    last = due + timedelta(days=30, seconds=lateness - 3)
    events = [
        {"event_id": "i-1", "type": "invoice.issued", "occurred_at": _at(due - timedelta(days=30)),
         "invoice_id": "INV-IDLE", "customer_id": "C-IDLE", "amount": 50000, "due_at": _at(due)},
        {"event_id": "o-1", "type": "order.placed", "occurred_at": _at(last),
         "order_id": "O-LAST", "customer_id": "C-OTHER", "amount": 10},
    ]
    produce_lines(kafka_broker.bootstrap, topic_prefix, [json.dumps(e).encode() for e in events])
    wait_processed([worker], 2)
    produced_at = time.monotonic()
    assert not [c for c in alert_changes(kafka_broker.bootstrap, topic_prefix, 0.5) if c["indicator"] == "payment_overdue"]

    def overdue() -> list[dict]:
        return [c for c in alert_changes(kafka_broker.bootstrap, topic_prefix, 0.3)
                if c["indicator"] == "payment_overdue" and c["subject"]["id"] == "INV-IDLE"]

    raised = wait_until(overdue, 20, 0.2, "the overdue alert from the idle clock")
    waited = time.monotonic() - produced_at
    assert raised[0]["status"] == "open"
    assert waited >= 2.0, "the clock must not jump ahead of the wall clock"
    assert worker.metric_sum("riskwatch_idle_clock_advances_total") >= 1


def test_idle_advance_zero_keeps_the_clock_still(kafka_broker, start_worker, topic_prefix):
    worker = start_worker(lateness=600.0, idle_advance=0)
    due = datetime(2026, 3, 1, tzinfo=timezone.utc)
    events = [
        {"event_id": "i-1", "type": "invoice.issued", "occurred_at": _at(due - timedelta(days=30)),
         "invoice_id": "INV-STILL", "customer_id": "C-1", "amount": 50000, "due_at": _at(due)},
        {"event_id": "o-1", "type": "order.placed", "occurred_at": _at(due + timedelta(days=30, seconds=598)),
         "order_id": "O-1", "customer_id": "C-2", "amount": 10},
    ]
    produce_lines(kafka_broker.bootstrap, topic_prefix, [json.dumps(e).encode() for e in events])
    wait_processed([worker], 2)
    time.sleep(4)
    assert not [c for c in alert_changes(kafka_broker.bootstrap, topic_prefix, 0.5) if c["indicator"] == "payment_overdue"]
    assert worker.metric_sum("riskwatch_idle_clock_advances_total") == 0
