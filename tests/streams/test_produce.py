"""`riskwatch produce` and `simulate --to-kafka` against a real broker:
every line is either acknowledged by the broker or reported by line number
with its reason, and the command then exits non-zero (issue 13)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.support.kafka import RISKWATCH, read_topic

pytestmark = pytest.mark.kafka


def _order(n: int, **extra: object) -> bytes:
    return json.dumps({
        "event_id": f"o-{n}", "type": "order.placed", "occurred_at": "2026-03-01T09:00:00+08:00",
        "order_id": f"O-{n}", "customer_id": f"C-{n % 5}", "amount": "1200.50", "currency": "CNY", **extra,
    }).encode()


def _produce(broker, prefix: str, path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(RISKWATCH), "produce", str(path), "--broker", broker.bootstrap, "--topic-prefix", prefix],
                          capture_output=True, text=True, timeout=120)


def _orders_on_topic(broker, prefix: str) -> list[bytes]:
    return [record.value for record in read_topic(broker.bootstrap, f"{prefix}orders", idle_seconds=2.0)]


def test_an_oversize_line_is_refused_by_line_number_and_every_other_line_arrives(kafka_broker, topic_prefix, tmp_path):
    lines = [_order(n) for n in range(1, 18)]
    lines[1] = _order(2, note="x" * 1_100_000)          # line 2: 1.1 MB
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")

    done = _produce(kafka_broker, topic_prefix, path)

    assert done.returncode == 1, done.stderr
    assert f"{path}:2: not sent: line is {len(lines[1])} bytes; the limit is 1000000" in done.stderr
    assert "sent 16 events" in done.stderr and "1 lines not sent" in done.stderr
    held = _orders_on_topic(kafka_broker, topic_prefix)
    assert sorted(held) == sorted(lines[:1] + lines[2:])


def test_lines_the_broker_refuses_are_reported_and_lines_that_shared_their_batch_still_arrive(
        kafka_broker, topic_prefix, tmp_path):
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    # The topic accepts records up to 20 kB: a 50 kB line passes the
    # contract's 1 MB limit but not the broker.
    admin = KafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap)
    try:
        admin.create_topics([NewTopic(f"{topic_prefix}orders", num_partitions=1, replication_factor=1,
                                      topic_configs={"max.message.bytes": "20000"})])
    finally:
        admin.close()
    lines = [_order(n) for n in range(1, 18)]
    lines[4] = _order(5, note="y" * 50_000)
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")

    done = _produce(kafka_broker, topic_prefix, path)

    assert done.returncode == 1, done.stderr
    assert f"{path}:5: not sent: the broker refused it as too large" in done.stderr
    assert "sent 16 events" in done.stderr, done.stderr
    assert sorted(_orders_on_topic(kafka_broker, topic_prefix)) == sorted(lines[:4] + lines[5:])


def test_a_line_with_no_known_type_makes_produce_exit_non_zero(kafka_broker, topic_prefix, tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_bytes(_order(1) + b"\n" + b'{"type": "order.teleported"}\n' + _order(3) + b"\n")

    done = _produce(kafka_broker, topic_prefix, path)

    assert done.returncode == 1
    assert f"{path}:2: not sent: no known event type" in done.stderr
    assert len(_orders_on_topic(kafka_broker, topic_prefix)) == 2
