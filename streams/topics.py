"""Create the worker's topics before faust subscribes.

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
