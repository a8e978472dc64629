"""A batch whose output the broker refuses is never committed as done
(issue 13): its other events are applied, the one event that cannot be
stored goes to the dead-letter topic with its reason, and only then does the
group's committed offset move past it."""

from __future__ import annotations

import json

import pytest

from riskwatch.sinks.kafka import HEADER_KIND, HEADER_OFFSET, HEADER_REASON, describe_headers
from streams.app import app_id
from tests.support.kafka import produce_lines, read_topic, wait_caught_up, wait_processed, wait_until

pytestmark = pytest.mark.kafka


def _order(n: int, customer: str) -> bytes:
    return json.dumps({
        "event_id": f"o-{n}", "type": "order.placed", "occurred_at": f"2026-03-01T09:{n:02d}:00+08:00",
        "order_id": f"O-{n}", "customer_id": customer, "amount": "1200.50", "currency": "CNY",
    }).encode()


# A profile with three 1,000-character fields: each within the event
# contract, together above the 2,000-byte changelog records of small_changelog.
BIG_PROFILE = json.dumps({
    "event_id": "p-big", "type": "customer.profile", "occurred_at": "2026-03-01T08:00:00+08:00",
    "customer_id": "C-big", "tier": "A", "region": "r" * 1000, "segment": "g" * 1000, "sales_rep": "s" * 1000,
}).encode()


def small_changelog(broker: str, topic_prefix: str) -> None:
    """Create the worker's changelog topic before it starts, taking records of at most 2,000 bytes."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    admin = KafkaAdminClient(bootstrap_servers=broker)
    try:
        admin.create_topics([NewTopic(f"{app_id(topic_prefix)}-state-changelog", num_partitions=4,
                                      replication_factor=1, topic_configs={"max.message.bytes": "2000"})])
    finally:
        admin.close()


def test_an_event_whose_state_the_changelog_refuses_is_dead_lettered_and_the_rest_of_its_batch_is_kept(
        kafka_broker, start_worker, topic_prefix):
    # The changelog takes records up to 2,000 bytes: an ordinary customer's
    # state is far below it; a profile with three 1,000-character fields
    # (each within the event contract) is above it.
    small_changelog(kafka_broker.bootstrap, topic_prefix)
    worker = start_worker()
    profile = BIG_PROFILE
    orders = [_order(n, f"C-{n % 7}") for n in range(1, 41)]
    # One send: the profile shares a batch with the orders of its partition.
    produce_lines(kafka_broker.bootstrap, topic_prefix, [*orders[:20], profile, *orders[20:]])

    wait_processed([worker], len(orders))
    dead = wait_until(lambda: read_topic(kafka_broker.bootstrap, f"{topic_prefix}dead-letter", idle_seconds=1.0),
                      60, 0.5, "the dead letter")
    wait_caught_up(kafka_broker.bootstrap, topic_prefix)

    # What else was dead-lettered, if anything: its key, source and reason say which record and why.
    # (A str message: pytest prints it whole, where a list is cut to one line.)
    assert len(dead) == 1, "\n".join(
        f"{d.key!r} at {d.topic}[{d.partition}]@{d.offset}: {describe_headers(d.headers)}; value {d.value[:300]!r}"
        for d in dead)
    headers = describe_headers(dead[0].headers)
    assert headers[HEADER_KIND] == "processing_failed"
    assert "MessageSizeTooLarge" in headers[HEADER_REASON]
    assert dead[0].value == profile
    assert int(headers[HEADER_OFFSET]) >= 0
    # Every order's customer has its state on the changelog; the refused profile's customer none.
    changelog = read_topic(kafka_broker.bootstrap, f"{app_id(topic_prefix)}-state-changelog")
    keys = {json.loads(record.key) for record in changelog}
    assert {key.split("|", 1)[1] for key in keys if key.split("|", 1)[1].startswith("c:")} == {
        f"c:C-{n}" for n in range(7)}
    assert worker.metric_sum("riskwatch_events_processed_total") == len(orders)
    assert worker.process.poll() is None, worker.tail_log()


def test_a_worker_restarted_after_a_refused_batch_does_not_read_it_again(kafka_broker, start_worker, topic_prefix):
    """The committed offset is past the dead-lettered event: a second worker
    generation neither dead-letters it again nor re-applies the orders."""
    small_changelog(kafka_broker.bootstrap, topic_prefix)
    worker = start_worker()
    profile = BIG_PROFILE
    produce_lines(kafka_broker.bootstrap, topic_prefix, [_order(1, "C-big"), profile, _order(2, "C-big")])
    wait_processed([worker], 2)
    wait_until(lambda: read_topic(kafka_broker.bootstrap, f"{topic_prefix}dead-letter", idle_seconds=1.0),
               60, 0.5, "the dead letter")
    wait_caught_up(kafka_broker.bootstrap, topic_prefix)
    worker.stop()

    again = start_worker()
    wait_until(lambda: again.get("/readyz")[0] == 200, 60, 0.5, "the second worker")
    assert again.metric_sum("riskwatch_events_processed_total") == 0
    assert len(read_topic(kafka_broker.bootstrap, f"{topic_prefix}dead-letter")) == 1
