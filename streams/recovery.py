"""A table recovery that stops receiving changelog records is started again.

faust restores the worker's state after each rebalance by reading every
owned changelog partition up to the highwater it noted at the start
(`Recovery._slurp_changelogs`), and waits for nothing else: if the records
still to come never reach it, the worker stays "not ready" for good, its
source partitions paused. faust's fetch walk drops records without a trace
when the flow stops or the generation changes under it, or a record's
delivery is cut short by a suspended flow (`Consumer._drain_messages`), and
only a new rebalance seeks back; faust's own guard for the other cause,
offsets holding no records (transaction markers), runs only for
transactional apps. A worker whose source topic was deleted and created
again stalled that way with a quarter of the restored records still to come
(the recreated-topic test, once in CI).

`RecoveryWatch` looks every few seconds. When the recovery's changelog
offsets have not moved for `STALL_SECONDS` while some partition is still
short of its highwater, each such partition is fetched again from the
record after the last one restored (the fetch position moves back; nothing
restored twice is applied twice: recovery skips offsets it has seen). If it
stalls again at the same offsets and the consumer's position is already past
the highwater, the offsets left hold no records for this consumer
(read_committed: markers, aborted records) and the partition counts as
restored, which is faust's own rule for transactional apps. Each step is
logged with the highwaters, offsets and positions, so a stall is explained in
the worker's log.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Mapping

log = logging.getLogger("riskwatch.worker")

# How long a recovery may receive no changelog record, with records still to
# come, before its partitions are fetched again. faust's own wait for a
# record is 5 s; a restore from a live broker delivers within a second.
STALL_SECONDS = 15.0
CHECK_SECONDS = 5.0


@dataclass(frozen=True)
class Step:
    """What to do for one stalled changelog partition: `fetch_from` an offset
    again, or `restored` (its remaining offsets hold no records)."""

    tp: Hashable
    action: str          # "fetch_from" | "restored"
    offset: int          # the offset to fetch from, or the highwater taken as restored


@dataclass
class StallRule:
    """The watch's decision, apart from faust (tests drive it with plain values).

    `highwaters` and `offsets` are the recovery's: the last offset of each
    active changelog partition at the recovery's start, and the last one
    restored (-1: none). `positions` are the consumer's fetch positions (the
    next offset it will fetch; None: unknown). Returns the steps for the
    partitions short of their highwater once nothing was restored for
    `stall_seconds`; `now` in seconds (monotonic)."""

    stall_seconds: float = STALL_SECONDS
    _progress: tuple = ()
    _since: float | None = None
    _fetched_again: dict = field(default_factory=dict)  # tp -> offsets at the fetch again

    def reset(self) -> None:
        self._progress, self._since = (), None
        self._fetched_again.clear()

    def decide(self, highwaters: Mapping[Any, int | None], offsets: Mapping[Any, int | None],
               positions: Mapping[Any, int | None], now: float) -> list[Step]:
        short = {tp: high for tp, high in highwaters.items()
                 if high is not None and high >= 0 and (offsets.get(tp) if offsets.get(tp) is not None else -1) < high}
        if not short:
            self.reset()
            return []
        progress = tuple(sorted((repr(tp), offsets.get(tp)) for tp in highwaters))
        if progress != self._progress or self._since is None:
            self._progress, self._since = progress, now
            return []
        if now - self._since < self.stall_seconds:
            return []
        self._since = now  # the next step waits a whole stall period again
        steps = []
        for tp, high in sorted(short.items(), key=lambda item: repr(item[0])):
            restored = offsets.get(tp)
            restored = -1 if restored is None else restored
            position = positions.get(tp)
            if self._fetched_again.get(tp) == restored and position is not None and position > high:
                steps.append(Step(tp, "restored", high))
                continue
            self._fetched_again[tp] = restored
            steps.append(Step(tp, "fetch_from", restored + 1))
        return steps


class RecoveryWatch:
    """Drives `StallRule` against a faust app's table recovery (`check`, from a timer)."""

    def __init__(self, app: Any, clock: Callable[[], float] = time.monotonic):
        self.app = app
        self.rule = StallRule()
        self.clock = clock
        self.steps_taken = 0

    async def check(self) -> list[Step]:
        recovery = self.app.tables.recovery
        if not recovery.in_recovery:
            self.rule.reset()
            return []
        highwaters = dict(recovery.active_highwaters)
        offsets = dict(recovery.active_offsets)
        consumer = self.app.consumer
        positions: dict[Any, int | None] = {}
        for tp in highwaters:
            try:
                positions[tp] = await consumer.position(tp)
            except Exception as error:  # noqa: BLE001 - taken away by a rebalance: the next recovery starts over
                log.debug("position of %s not known: %s", tp, error)
                positions[tp] = None
        steps = self.rule.decide(highwaters, offsets, positions, self.clock())
        if not steps:
            return []
        log.warning("table recovery received no changelog record for %.0f s: highwaters %s, restored to %s, "
                    "fetch positions %s, paused %s",
                    self.rule.stall_seconds, _show(highwaters), _show(offsets), _show(positions),
                    sorted(f"{tp.topic}[{tp.partition}]" for tp in getattr(consumer, "_paused_partitions", ())))
        for step in steps:
            if step.action == "restored":
                # faust's own rule when positions pass the highwater (detect_aborted_tx).
                recovery.active_offsets[step.tp] = step.offset
                log.warning("%s[%d]: fetch position past highwater %d with nothing more received: "
                            "its remaining offsets hold no records; restored", step.tp.topic, step.tp.partition,
                            step.offset)
                continue
            try:
                consumer.resume_partitions([step.tp])
                await consumer.seek(step.tp, step.offset)
            except Exception as error:  # noqa: BLE001 - taken away by a rebalance meanwhile
                log.warning("%s[%d]: not fetched again: %s", step.tp.topic, step.tp.partition, error)
                continue
            log.warning("%s[%d]: fetching the changelog again from offset %d", step.tp.topic, step.tp.partition,
                        step.offset)
        self.steps_taken += len(steps)
        return steps


def _show(values: Mapping[Any, Any]) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]={value}" for tp, value in sorted(values.items(), key=repr))
