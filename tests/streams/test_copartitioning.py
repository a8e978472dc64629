"""Partitions added to a source topic (issue 13): the worker refuses, with a
message naming the topics and counts, instead of crash-looping on
"Unrecognized partition"; nothing is committed or dead-lettered meanwhile."""

from __future__ import annotations

import json
import time

import pytest

from tests.support.kafka import produce_lines, read_topic, wait_processed, wait_until

pytestmark = pytest.mark.kafka


def _order(n: int, customer: str) -> bytes:
    return json.dumps({"event_id": f"o-{n}", "type": "order.placed", "occurred_at": "2026-03-01T09:00:00+08:00",
                       "order_id": f"O-{n}", "customer_id": customer, "amount": "10", "currency": "CNY"}).encode()


def _raise_orders_to_six(broker: str, prefix: str) -> None:
    from kafka import KafkaAdminClient
    from kafka.admin import NewPartitions

    admin = KafkaAdminClient(bootstrap_servers=broker)
    try:
        admin.create_partitions({f"{prefix}orders": NewPartitions(total_count=6)})
    finally:
        admin.close()


def test_a_worker_started_on_topics_of_different_counts_refuses_with_the_counts(kafka_broker, start_worker,
                                                                               topic_prefix):
    first = start_worker()
    first.stop()
    _raise_orders_to_six(kafka_broker.bootstrap, topic_prefix)

    worker = start_worker(wait=False)
    worker.process.wait(timeout=120)

    assert worker.process.returncode == 3
    log = worker.tail_log()
    assert f"{topic_prefix}orders has 6" in log and f"{topic_prefix}deliveries has 4" in log
    assert "docs/operations.md" in log


def test_partitions_added_while_running_make_the_worker_not_ready_and_nothing_is_lost(kafka_broker, start_worker,
                                                                                      topic_prefix):
    worker = start_worker()
    produce_lines(kafka_broker.bootstrap, topic_prefix, [_order(n, f"C-{n}") for n in range(8)])
    wait_processed([worker], 8)

    _raise_orders_to_six(kafka_broker.bootstrap, topic_prefix)

    # Seen at the next metadata refresh (at most 30 s) and the rebalance it causes.
    wait_until(lambda: "not co-partitioned" in worker.get("/readyz")[1], 120, 1.0, "/readyz to name the problem")
    assert worker.get("/readyz")[0] == 503
    assert f"{topic_prefix}orders has 6" in worker.get("/readyz")[1]
    produce_lines(kafka_broker.bootstrap, topic_prefix, [_order(n, f"C-{n}") for n in range(8, 40)])
    time.sleep(10)  # what a batch would need; the worker must neither exit nor apply them
    assert worker.process.poll() is None, worker.tail_log()
    assert worker.metric_sum("riskwatch_events_processed_total") == 8
    assert read_topic(kafka_broker.bootstrap, f"{topic_prefix}dead-letter", idle_seconds=1.0) == []
