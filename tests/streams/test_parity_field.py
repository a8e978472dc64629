"""DOMAIN §3/§4 on real-export situations hold in the Kafka worker exactly as
in `riskwatch replay` (issue 12): revisions arriving out of order, cancelled
orders, a price observation late within the lateness, a foreign-currency
invoice paid without a currency, and the refusals (a reused event id, a
currency without a rate) that go to the dead-letter topic."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from riskwatch import testing as t
from riskwatch.engine import alert_id_for
from tests.support.kafka import (
    alert_changes,
    conflicting_versions,
    event_time_chunks,
    processed,
    produce_lines,
    read_topic,
    replay_states,
    wait_alerts,
    wait_until,
)

pytestmark = pytest.mark.kafka

LATENESS = 600.0


def field_events() -> list[dict]:
    """In arrival order: event time, except where a revision or a price arrives minutes late."""
    return [
        t.invoice_issued("INV-US-7", "C-US", "12000.00", currency="USD", due_at="2024-02-04T00:00:00Z",
                         at="2024-01-05T00:00:00Z"),
        t.invoice_issued("INV-OD", "C1", "50000", due_at="2024-02-01T00:00:00Z", at="2024-01-06T00:00:00Z"),
        t.payment_received("INV-OD", "C1", "100", at="2024-01-20T00:00:00Z", event_id="BANKREF-1"),
        t.payment_received("INV-US-7", "C-US", "12000.00", at="2024-02-01T00:00:00Z"),
        # The same bank reference for another payment of the same customer: a conflict.
        t.payment_received("INV-OD", "C1", "49900", at="2024-02-02T00:00:00Z", event_id="BANKREF-1"),
        t.order_placed("SO-77", "C77", 50_000, at="2024-03-01T08:00:00Z"),
        t.delivery_scheduled("SH-77", "C77", order_id="SO-77", promised_at="2024-03-12T00:00:00Z", at="2024-03-01T09:04:00Z"),
        t.delivery_scheduled("SH-77", "C77", order_id="SO-77", promised_at="2024-03-05T00:00:00Z", at="2024-03-01T09:00:00Z"),
        t.delivered("SH-77", "C77", delivered_at="2024-03-11T00:00:00Z"),
        t.price_observed("RivalCo", "SKU-1", 100, at="2024-05-01T10:00:00Z"),
        t.price_observed("RivalCo", "SKU-1", 85, at="2024-05-01T10:06:00Z"),
        t.price_observed("RivalCo", "SKU-1", 90, at="2024-05-01T10:03:00Z"),
        t.price_observed("RivalCo", "SKU-2", 100, at="2024-05-02T10:00:00Z"),
        t.price_observed("RivalCo", "SKU-2", 70, at="2024-05-03T10:00:00Z"),
        t.price_observed("RivalCo", "SKU-3", "150.00", currency="SGD", at="2024-05-04T10:00:00Z"),
        t.order_placed("SO-55", "C55", 86_000, customer_tier="B", at="2024-06-01T09:00:00Z"),
        t.delivery_scheduled("SH-55", "C55", order_id="SO-55", promised_at="2024-06-05T10:00:00Z", at="2024-06-01T09:30:00Z"),
        t.order_placed("SO-56", "C56", 86_000, customer_tier="B", at="2024-06-01T09:00:00Z"),
        t.delivery_scheduled("SH-56", "C56", order_id="SO-56", promised_at="2024-06-05T10:00:00Z", at="2024-06-01T09:30:00Z"),
        t.order_cancelled("SO-55", "C55", at="2024-06-06T09:00:00Z"),
        t.order_placed("SO-X1", "C-OTHER", 1000, at="2024-06-09T00:00:00Z"),
        t.order_cancelled("SO-56", "C56", at="2024-06-10T09:00:00Z"),
        t.order_placed("SO-X2", "C-OTHER", 1000, at="2024-08-01T00:00:00Z"),
    ]


def test_worker_and_replay_agree_on_revisions_cancellations_and_late_prices(
        kafka_broker, start_worker, topic_prefix, tmp_path: Path):
    lines = [json.dumps(event).encode() for event in field_events()]
    path = tmp_path / "field.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    replayed = replay_states(path, "--lateness", str(LATENESS))
    # What a risk officer must see, in replay first: alert_id -> status.
    assert {alert_id: status for alert_id, (_, status) in replayed.items()} == {
        alert_id_for("payment_overdue", "invoice", "INV-OD"): "open",
        alert_id_for("competitor_price_cut", "price", "RivalCo/SKU-2"): "open",
        alert_id_for("delivery_delay", "shipment", "SH-56"): "resolved",
    }

    worker = start_worker(lateness=LATENESS)
    # As a live business emits them, five minutes of event time at a time; a
    # refused event counts as handled once it is dead-lettered.
    done = 0
    for chunk in event_time_chunks(lines, 300.0):
        done += produce_lines(kafka_broker.bootstrap, topic_prefix, chunk)
        wait_until(lambda: processed([worker]) + worker.metric_sum("riskwatch_dead_letters_total") >= done,
                   60, what=f"{done} events handled")
    wait_alerts(kafka_broker.bootstrap, topic_prefix, replayed)
    changes = alert_changes(kafka_broker.bootstrap, topic_prefix)
    assert conflicting_versions(changes) == []
    cancelled = [c for c in changes if c["subject"]["id"] == "SH-56"][-1]
    assert cancelled["resolution"] == "order cancelled"

    wait_until(lambda: worker.metric_sum("riskwatch_dead_letters_total") >= 2, 30, what="two dead letters")
    letters = read_topic(kafka_broker.bootstrap, f"{topic_prefix}dead-letter", idle_seconds=2)
    reasons = sorted(dict(letter.headers)["riskwatch.reason"].decode() for letter in letters)
    assert len(reasons) == 2
    assert any("event_id 'BANKREF-1' reused with different content" in reason for reason in reasons)
    assert any("no rate for 'SGD'" in reason for reason in reasons)
