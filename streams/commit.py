"""Offsets of a deleted topic are never committed to the topic created again.

aiokafka retries an offset commit that the broker answers with "unknown
topic or partition" (a retriable error) every 100 ms until it succeeds. When
a source topic is deleted while the worker's commit of its offsets is under
way, that commit keeps going through the rebalance that follows and lands as
soon as a topic of the same name exists again: the group's offsets for the
new, empty topic are the old topic's, and the new topic's first records are
skipped, never evaluated (the recreated-topic test lost 4 of 8 that way, the
group reporting every partition committed to its end). Kafka removes a
deleted topic's committed offsets; a commit for it has nothing left to mean.

`forget_commits_of_deleted_topics` replaces aiokafka's commit loop with the
same loop, except that on "unknown topic or partition" each topic of the
commit is committed on its own once, and the topics the broker does not
know are dropped from it (logged), the rest committed as before.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger("riskwatch.worker")


def forget_commits_of_deleted_topics() -> None:
    """Install the commit loop described above on aiokafka's group coordinator (once)."""
    from aiokafka import errors as Errors
    from aiokafka.consumer.group_coordinator import GroupCoordinator

    if getattr(GroupCoordinator.commit_offsets, "riskwatch_forgets_deleted", False):
        return

    async def commit_offsets(self: Any, assignment: Any, offsets: Any) -> None:
        offsets = dict(offsets)
        while offsets:
            await self.ensure_coordinator_known()
            try:
                async with self._commit_lock:
                    await asyncio.shield(self._do_commit_offsets(assignment, offsets))
            except (Errors.UnknownMemberIdError, Errors.IllegalGenerationError,
                    Errors.RebalanceInProgressError) as exc:
                raise Errors.CommitFailedError(
                    "Commit cannot be completed since the group has already "
                    "rebalanced and may have assigned the partitions "
                    "to another member") from exc
            except Errors.UnknownTopicOrPartitionError:
                offsets = await _without_unknown_topics(self, assignment, offsets)
            except Errors.KafkaError as err:
                if not err.retriable:
                    raise
                await asyncio.sleep(self._retry_backoff_ms / 1000)
            else:
                return

    commit_offsets.riskwatch_forgets_deleted = True  # type: ignore[attr-defined]
    GroupCoordinator.commit_offsets = commit_offsets


async def _without_unknown_topics(coordinator: Any, assignment: Any, offsets: dict) -> dict:
    """Commit each topic of `offsets` alone once; the offsets still to commit
    (every topic but those the broker answered "unknown topic or partition")."""
    from aiokafka import errors as Errors

    kept: dict = {}
    for topic in sorted({tp.topic for tp in offsets}):
        part = {tp: offset for tp, offset in offsets.items() if tp.topic == topic}
        try:
            async with coordinator._commit_lock:
                await asyncio.shield(coordinator._do_commit_offsets(assignment, part))
        except Errors.UnknownTopicOrPartitionError:
            log.warning("offsets of %s not committed: the broker no longer has the topic (deleted); "
                        "a topic created again under its name is read from its own start", topic)
        except Errors.KafkaError:
            kept.update(part)  # the loop's own handling decides (rebalance, back-off)
    if kept:
        await asyncio.sleep(coordinator._retry_backoff_ms / 1000)
    return kept
