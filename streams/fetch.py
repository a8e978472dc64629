"""Records faust fetched but never handed on are fetched again.

faust's `Consumer.getmany` walks each fetched batch and stops handing
records on when its flow stops (a rebalance, table recovery) or the group
generation changes mid-batch, and skips records of partitions it no longer
counts active. It seeks back only in one of those cases (a batch arriving
while the flow is already stopped: "seek back to committed offsets"), and
aiokafka's `seek_to_committed` leaves a partition with no committed offset
where it is. Either way the consumer's fetch position is past records
nobody evaluated. Worse, faust's commit takes the acknowledged offsets from
the first one acknowledged, so once a later record of the partition is
handed on the group commits past the lost ones: events silently never
evaluated (a worker joining a group while events arrive; a source topic
deleted and created again; docs/decisions.md "Records fetched but never
handed on").

`refetch_dropped_records` replaces `getmany` with the same walk, which
remembers the last record handed on per partition and, after the batch,
seeks every partition with records left behind to the first of them: the
next fetch brings them again. A partition taken away meanwhile is left to
its next owner (which starts from the group's commit). Where faust has
itself sought back to committed offsets, only the partitions without a
committed offset (the ones aiokafka left where they were) are moved.
"""

from __future__ import annotations

import logging
from typing import Any, AsyncIterator, Mapping

log = logging.getLogger("riskwatch.worker")


def refetch_dropped_records() -> None:
    """Install the `getmany` described above on faust's consumer class (once)."""
    from faust.transport import consumer as faust_consumer

    original = faust_consumer.Consumer.getmany
    if getattr(original, "riskwatch_refetches", False):
        return

    async def getmany(self: Any, timeout: float) -> AsyncIterator[tuple[Any, Any]]:
        records, active_partitions = await self._wait_next_records(timeout)
        generation_id = self.app.consumer_generation_id
        if records is None or self.should_stop:
            return
        handed: dict[Any, int] = {}
        sought_to_committed: Mapping[Any, int | None] | None = None
        if self.flow_active:
            to_message = self._to_message
            for tp, record in self.scheduler.iterate(records):
                if not self.flow_active or self.app.consumer_generation_id != generation_id:
                    break
                if active_partitions is None or tp in active_partitions or tp in self._buffered_partitions:
                    self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))
                    handed[tp] = record.offset
                    yield tp, to_message(tp, record)
        else:
            try:
                # faust's own step here: back to the committed offsets.
                sought_to_committed = await self.seek_to_committed()
                self._read_offset.update({tp: offset if offset is not None and offset >= 0 else None
                                          for tp, offset in sought_to_committed.items()})
                self._committed_offset.update({tp: offset or None for tp, offset in sought_to_committed.items()
                                               if offset is not None})
            except Exception as error:  # noqa: BLE001 - faust logs and goes on here too
                log.warning("seek back to committed offsets while the flow is stopped failed: %s", error)
                sought_to_committed = {}
        await _fetch_left_behind(self, records, handed, sought_to_committed)

    getmany.riskwatch_refetches = True  # type: ignore[attr-defined]
    faust_consumer.Consumer.getmany = getmany


async def _fetch_left_behind(consumer: Any, records: Mapping[Any, list], handed: Mapping[Any, int],
                             sought_to_committed: Mapping[Any, int | None] | None) -> None:
    """Seek each partition of a fetched batch with records not handed on to
    the first of them (`sought_to_committed`: what faust's seek back to
    committed offsets returned, when it ran; a partition it moved is left)."""
    thread = getattr(consumer, "_thread", None)
    driver = getattr(thread, "_consumer", None)
    if driver is None:
        return
    # Table changelogs are faust's recovery's to read and leave.
    changelogs = consumer.app.tables.changelog_topics
    sought = consumer.__dict__.setdefault("_riskwatch_sought_back", {})
    for tp, batch in records.items():
        if not batch or tp.topic in changelogs:
            continue
        last_handed = handed.get(tp)
        first_left = batch[0].offset if last_handed is None else last_handed + 1
        if first_left > batch[-1].offset:
            continue
        if sought_to_committed is not None and sought_to_committed.get(tp):
            continue
        # A partition faust keeps leaving behind (one it never counts active)
        # is not chased for ever: three times from the same offset, then left.
        times = sought.get(tp, (None, 0))
        times = (first_left, times[1] + 1 if times[0] == first_left else 1)
        sought[tp] = times
        if times[1] > 3:
            if times[1] == 4:
                log.warning("%s[%d]: records from offset %d left behind three times; not fetched again",
                            tp.topic, tp.partition, first_left)
            continue
        try:
            await thread.call_thread(driver.seek, tp, first_left)
        except Exception as error:  # noqa: BLE001 - taken away by a rebalance: its next owner reads it
            log.debug("%s[%d]: records from %d left behind, not sought: %s", tp.topic, tp.partition, first_left, error)
            continue
        log.info("%s[%d]: fetched records %d to %d not handed on (flow stopped or generation changed); "
                 "fetching them again", tp.topic, tp.partition, first_left, batch[-1].offset)
