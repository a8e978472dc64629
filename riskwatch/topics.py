"""The deployment's Kafka topics: their names, and creating them before faust subscribes.

kafka-python only (no faust), so the API and the CLI use it as the worker does.

A consumer that subscribes to a topic that does not exist yet only notices
it at its next metadata refresh (`metadata.max.age.ms`, five minutes by
default), so a worker started before the first producer would sit idle.
The worker therefore creates its topics up front, all with the same
partition count so faust co-partitions them; existing topics are left as
they are.
"""

from __future__ import annotations

import logging
import time

from riskwatch.sinks.kafka import ACTIONS, ALERTS, DEAD_LETTER, SOURCE_STREAMS, topic_name

log = logging.getLogger(__name__)

SEGMENT_FACTS = "segment-facts"
CLOCK = "clock"


def worker_topics(prefix: str, partitions: int) -> dict[str, tuple[int, dict[str, str]]]:
    """Topic name -> (partitions, configs)."""
    compacted = {"cleanup.policy": "compact"}
    topics = {topic_name(prefix, stream): (partitions, {}) for stream in SOURCE_STREAMS}
    topics[topic_name(prefix, SEGMENT_FACTS)] = (partitions, {})
    # One record per alert change keyed by alert_id: compaction keeps the
    # latest state of every alert (DOMAIN.md §7).
    topics[topic_name(prefix, ALERTS)] = (partitions, compacted)
    topics[topic_name(prefix, DEAD_LETTER)] = (partitions, {})
    # The audit trail of the alert workflow: never compacted, never expired.
    topics[topic_name(prefix, ACTIONS)] = (partitions, {"retention.ms": "-1"})
    topics[topic_name(prefix, CLOCK)] = (1, compacted)
    return topics


def ensure_topics(broker: str, prefix: str, partitions: int, timeout: float = 60.0) -> list[str]:
    """Create the missing worker topics; returns the names created."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import KafkaError, TopicAlreadyExistsError

    deadline = time.monotonic() + timeout
    while True:
        try:
            admin = KafkaAdminClient(bootstrap_servers=broker.split(","), client_id="riskwatch-topics")
            break
        except KafkaError as error:
            if time.monotonic() > deadline:
                raise
            log.warning("broker %s not reachable yet (%s); retrying", broker, error)
            time.sleep(1.0)
    try:
        existing = set(admin.list_topics())
        wanted = worker_topics(prefix, partitions)
        missing = [
            NewTopic(name, num_partitions=count, replication_factor=1, topic_configs=configs)
            for name, (count, configs) in wanted.items()
            if name not in existing
        ]
        created = []
        for topic in missing:
            try:
                admin.create_topics([topic])
                created.append(topic.name)
            except TopicAlreadyExistsError:  # another worker won the race
                pass
        return created
    finally:
        admin.close()


def changelog_topic(prefix: str) -> str:
    """The state table's changelog: faust names it `<app id>-<table>-changelog`."""
    base = prefix.rstrip(".-_") or "riskwatch"
    return f"{base}-worker-state-changelog"


def copartitioned_topics(prefix: str) -> list[str]:
    """The topics partition p of which must live together: every source, segment-facts, the changelog."""
    return [*(topic_name(prefix, stream) for stream in SOURCE_STREAMS), topic_name(prefix, SEGMENT_FACTS),
            changelog_topic(prefix)]


def copartition_problem(counts: dict[str, int | None]) -> str | None:
    """What is wrong when the co-partitioned topics differ in partition count; None when they agree.

    `counts` maps topic name -> partition count (None or absent: the
    topic does not exist yet, which is not a problem: the worker or faust
    creates it with the common count). Partition p of a source topic is
    evaluated by the engine whose state is partition p of the changelog
    (docs/streams.md, Topology), so a source with more partitions than the
    changelog has records no state partition can hold (faust fails them
    with "Unrecognized partition"), and one with fewer moves keys between
    engines. The message names every topic and count and what to do.
    """
    known = {name: count for name, count in counts.items() if count}
    if len(set(known.values())) <= 1:
        return None
    listed = ", ".join(f"{name} has {count}" for name, count in sorted(known.items()))
    most = max(known.values())
    return (f"topics are not co-partitioned: {listed} partitions. Every source topic, the segment-facts "
            f"topic and the state changelog need the same count; the worker will not process until they "
            f"do. Raise the others to {most} (or recreate the raised one) as docs/operations.md "
            f"\"Repartitioning the source topics\" describes.")


def partition_counts(broker: str, names: list[str], timeout: float = 30.0) -> dict[str, int | None]:
    """Topic name -> partition count on the broker (None when the topic does not exist)."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(bootstrap_servers=broker.split(","), group_id=None,
                             request_timeout_ms=int(timeout * 1000))
    try:
        existing = consumer.topics()
        return {name: (len(consumer.partitions_for_topic(name) or ()) or None) if name in existing else None
                for name in names}
    finally:
        consumer.close()
