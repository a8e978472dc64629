"""A source topic deleted and created again while the worker runs (issue 13):
its records are read within the consumer's metadata age (30 s), not after
the five minutes aiokafka's default took ("Ignoring missing topic")."""

from __future__ import annotations

import json
import time

import pytest

from tests.support.kafka import produce_lines, wait_processed, wait_until

pytestmark = pytest.mark.kafka


def _order(n: int) -> bytes:
    return json.dumps({"event_id": f"o-{n}", "type": "order.placed", "occurred_at": "2026-03-01T09:00:00+08:00",
                       "order_id": f"O-{n}", "customer_id": f"C-{n}", "amount": "10", "currency": "CNY"}).encode()


def test_a_recreated_source_topic_is_read_again_within_a_minute(kafka_broker, start_worker, topic_prefix):
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    worker = start_worker()
    produce_lines(kafka_broker.bootstrap, topic_prefix, [_order(n) for n in range(4)])
    wait_processed([worker], 4)

    topic = f"{topic_prefix}orders"
    admin = KafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap)
    try:
        admin.delete_topics([topic])
        wait_until(lambda: topic not in admin.list_topics(), 30, 0.5, "the topic to be deleted")
        time.sleep(2)
        try:
            admin.create_topics([NewTopic(topic, num_partitions=4, replication_factor=1)])
        except TopicAlreadyExistsError:
            pass  # the worker's metadata request created it again (the broker auto-creates, 4 partitions)
    finally:
        admin.close()
    started = time.monotonic()
    produce_lines(kafka_broker.bootstrap, topic_prefix, [_order(n) for n in range(4, 12)])

    wait_processed([worker], 12, timeout=90)
    assert time.monotonic() - started < 90
    assert worker.process.poll() is None
    # What the operator's dashboard shows for it: the topic's partitions as the worker's consumer sees them.
    shown = worker.metrics()
    assert shown[f'riskwatch_source_topic_partitions{{topic="{topic}"}}'] == 4
    assert shown[f'riskwatch_source_topic_partitions{{topic="{topic_prefix}payments"}}'] == 4


def test_a_commit_under_way_when_its_topic_is_deleted_does_not_land_on_the_topic_created_again(kafka_broker,
                                                                                             topic_prefix):
    """The worker's commit loop (streams/commit.py) on the real broker: a
    commit of a deleted topic's offsets, still being retried when a topic of
    the same name is created again, must not become the new topic's offsets
    (its first records would be skipped, never evaluated)."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.structs import OffsetAndMetadata
    from kafka import KafkaAdminClient, KafkaProducer
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    from streams.commit import forget_commits_of_deleted_topics

    forget_commits_of_deleted_topics()
    topic = f"{topic_prefix}orders"
    admin = KafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap)
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap)

    def recreate() -> None:
        try:
            admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
        except TopicAlreadyExistsError:
            pass  # the consumer's metadata request created it again (the broker auto-creates)
        wait_until(lambda: topic in admin.list_topics(), 30, 0.2, "the topic to be created again")

    async def scenario() -> int | None:
        tp = TopicPartition(topic, 0)
        consumer = AIOKafkaConsumer(bootstrap_servers=kafka_broker.bootstrap, group_id=f"{topic_prefix}group",
                                    enable_auto_commit=False, auto_offset_reset="earliest")
        await consumer.start()
        try:
            consumer.assign([tp])
            await consumer.getmany(tp, timeout_ms=5000)
            admin.delete_topics([topic])
            wait_until(lambda: topic not in admin.list_topics(), 30, 0.2, "the topic to be deleted")
            commit = asyncio.ensure_future(consumer.commit({tp: OffsetAndMetadata(3, "")}))
            await asyncio.sleep(1.0)  # aiokafka would be retrying it every 100 ms by now
            await asyncio.get_running_loop().run_in_executor(None, recreate)
            await asyncio.wait_for(commit, 30)
            return await consumer.committed(tp)
        finally:
            await consumer.stop()

    try:
        admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
        for n in range(3):
            producer.send(topic, value=_order(n), partition=0)
        producer.flush()
        # Its own loop in its own thread: the session may already run one in this thread.
        with ThreadPoolExecutor(1) as thread:
            committed = thread.submit(asyncio.run, scenario()).result(timeout=120)
    finally:
        producer.close()
        admin.close()
    assert committed is None, f"the deleted topic's offset {committed} was committed to the topic created again"
