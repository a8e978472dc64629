"""Poison input goes to the dead-letter topic with its origin; the worker keeps going."""

from __future__ import annotations

import json

import pytest

from riskwatch.sinks.kafka import DEAD_LETTER_MAX_VALUE_BYTES
from tests.support.kafka import read_topic, wait_processed, wait_until

pytestmark = pytest.mark.kafka

GOOD = {
    "event_id": "good-1", "type": "order.placed", "occurred_at": "2026-03-01T09:00:00+08:00",
    "order_id": "O-1", "customer_id": "C-1", "amount": "1200.50", "currency": "CNY",
}


def _huge() -> bytes:
    record = dict(GOOD, event_id="huge-1", note="x" * 1_040_000)
    return json.dumps(record).encode()


POISON = {
    "not_json": b"{this is not json",
    "invalid_field": json.dumps(dict(GOOD, event_id="bad-amount", amount="-5")).encode(),
    "unknown_type": json.dumps(dict(GOOD, event_id="bad-type", type="order.teleported")).encode(),
    "missing_field": json.dumps({k: v for k, v in GOOD.items() if k != "customer_id"}).encode(),
    "too_large": _huge(),
    # A mistyped year: refused before it can move the shared clock (DOMAIN §3).
    "future": json.dumps(dict(GOOD, event_id="bad-year", occurred_at="2062-03-01T09:00:00+08:00")).encode(),
}


def test_poison_records_land_in_the_dead_letter_topic_with_their_origin(kafka_broker, start_worker, topic_prefix):
    from kafka import KafkaProducer

    worker = start_worker()
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap, max_request_size=2 * 1024 * 1024)
    origins = {}
    for kind, value in POISON.items():
        sent = producer.send(f"{topic_prefix}orders", key=b"C-1", value=value).get(timeout=30)
        origins[kind] = (sent.topic, sent.partition, sent.offset)
    producer.send(f"{topic_prefix}orders", key=b"C-1", value=json.dumps(GOOD).encode()).get(timeout=30)
    producer.close()

    wait_processed([worker], 1)
    wait_until(lambda: worker.metric_sum("riskwatch_dead_letters_total") >= len(POISON), 30, what="dead letters counted")
    letters = read_topic(kafka_broker.bootstrap, f"{topic_prefix}dead-letter", idle_seconds=2)
    by_kind = {}
    for record in letters:
        headers = {name: value.decode() for name, value in record.headers}
        by_kind[headers["riskwatch.reason.kind"]] = (record, headers)
    assert set(by_kind) == set(POISON)

    for kind, original in POISON.items():
        record, headers = by_kind[kind]
        topic, partition, offset = origins[kind]
        assert headers["riskwatch.source.topic"] == topic
        assert headers["riskwatch.source.partition"] == str(partition)
        assert headers["riskwatch.source.offset"] == str(offset)
        assert headers["riskwatch.reason"], kind
        assert record.key == b"C-1"
        if kind == "too_large":
            assert record.value == original[:DEAD_LETTER_MAX_VALUE_BYTES]
            assert "1040" in headers["riskwatch.truncated"]
        else:
            assert record.value == original, "the dead letter carries the original bytes unchanged"
            assert "riskwatch.truncated" not in headers
    assert "amount" in by_kind["invalid_field"][1]["riskwatch.reason"]
    assert "customer_id" in by_kind["missing_field"][1]["riskwatch.reason"]
    assert "in the future" in by_kind["future"][1]["riskwatch.reason"]

    # The worker is still alive and evaluating.
    assert worker.process.poll() is None
    assert worker.metric_sum('riskwatch_events_processed_total{type="order.placed"}') == 1
    assert worker.metric_sum('riskwatch_events_rejected_total{reason="too_large"}') == 1
