"""Source topics written with transactions, as many ERPs and Kafka Connect
do (issue 13): the worker reads committed records only, its committed
offset reaches the end of every partition although commit markers take
offsets, and deadlines fire on partitions whose last record is a marker."""

from __future__ import annotations

import json
import time

import pytest

from streams.app import app_id
from tests.support.kafka import read_topic, wait_processed, wait_until

pytestmark = pytest.mark.kafka

DAY = 86400


def _at(day: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(1772323200 + day * DAY))  # 2026-03-01


def _order(n: int, customer: str, day: float) -> dict:
    return {"event_id": f"o-{n}", "type": "order.placed", "occurred_at": _at(day), "order_id": f"O-{n}",
            "customer_id": customer, "amount": "1200.50", "currency": "CNY"}


def _shipment(shipment: str, order: str, customer: str, day: float, promised_day: float) -> dict:
    return {"event_id": f"d-{shipment}", "type": "delivery.scheduled", "occurred_at": _at(day),
            "shipment_id": shipment, "order_id": order, "customer_id": customer, "promised_at": _at(promised_day)}


def _orders_lag(broker: str, prefix: str) -> int | None:
    from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

    admin = KafkaAdminClient(bootstrap_servers=broker)
    consumer = KafkaConsumer(bootstrap_servers=broker, group_id=None)
    try:
        topic = f"{prefix}orders"
        partitions = [TopicPartition(topic, p) for p in range(4)]
        ends = consumer.end_offsets(partitions)
        committed = admin.list_group_offsets(app_id(prefix)).get(app_id(prefix), {})
        return sum(end - (committed[tp].offset if tp in committed else 0) for tp, end in ends.items())
    finally:
        consumer.close()
        admin.close()


def test_transactional_sources_are_read_committed_and_fully_committed(kafka_broker, start_worker, topic_prefix):
    from kafka import KafkaProducer

    from riskwatch.sinks.kafka import route_line, topic_name

    worker = start_worker()
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap, transactional_id=f"{topic_prefix}erp", acks="all")
    producer.init_transactions()

    def transaction(events: list[dict], commit: bool) -> None:
        producer.begin_transaction()
        for event in events:
            line = json.dumps(event).encode()
            stream, key = route_line(line)
            producer.send(topic_name(topic_prefix, stream), key=key, value=line)
        producer.flush()
        if commit:
            producer.commit_transaction()
        else:
            producer.abort_transaction()

    sent = 0
    for batch in range(20):
        events = [_order(batch * 10 + i, f"C-{i}", day=batch + i / 10) for i in range(10)]
        if batch == 0:
            # Promised for day 2: overdue long before the last transaction's day 19.
            events[1] = _shipment("S-1", "O-1", "C-1", day=0.1, promised_day=2)
        transaction(events, commit=True)
        sent += len(events)
        if batch == 10:
            # Rolled back: a replay of the committed records never sees these.
            transaction([_order(900, "C-aborted", day=10.5), _shipment("S-aborted", "O-900", "C-aborted", 10.5, 11)],
                        commit=False)
    producer.close()

    wait_processed([worker], sent)
    # Every partition's last record is a commit marker: the committed offset reaches it all the same.
    try:
        wait_until(lambda: _orders_lag(kafka_broker.bootstrap, topic_prefix) == 0, 60, 0.5,
                   "the group to commit the orders topic to its end")
    except AssertionError as stuck:
        # Once in several loaded CI runs the commit stopped short: what the
        # worker logged is the only account of where.
        raise AssertionError(f"{stuck}: lag {_orders_lag(kafka_broker.bootstrap, topic_prefix)}\n"
                             f"{worker.tail_log(120)}") from None
    assert worker.metric_sum("riskwatch_events_processed_total") == sent
    # The deadline fires on a partition whose last record is a commit marker.
    alerts = wait_until(lambda: [r.value for r in read_topic(kafka_broker.bootstrap, f"{topic_prefix}alerts", 1.0)
                                 if b"S-1" in r.value], 60, 1.0, "the overdue delivery's alert")
    assert alerts
    changelog = read_topic(kafka_broker.bootstrap, f"{app_id(topic_prefix)}-state-changelog")
    assert not [r for r in changelog if b"C-aborted" in (r.key or b"") or b"S-aborted" in (r.key or b"")]
    assert not [r for r in read_topic(kafka_broker.bootstrap, f"{topic_prefix}alerts", 1.0) if b"aborted" in r.value]
