"""One service clock for all workers (DOMAIN.md §4).

Every worker publishes to a small clock topic, keyed by worker, the
progress of each source topic partition it owns: the latest event time
whose output the broker holds, and whether the partition has nothing left
to read (idle: its consumer is at the end). Every worker reads the whole
topic (outside the consumer group, so each sees every record). The clock is
the engine's `InputWatermark` over every source topic partition: the
slowest one that is not idle, less the allowed lateness, so a topic read
ahead of the others (a backlog arrives in fetch order, not event-time
order) cannot move the clock past events still unread elsewhere; with every
partition idle it is the latest event time seen anywhere less the lateness,
exactly as in a replay. It never moves back.

A partition's progress is a fact about the partition, whoever read it: a
report with lower progress than one already seen (a worker that has just
taken the partition over, a stale record of a worker that left) changes
nothing, and the same progress reported later replaces the idle flag.

When no progress was made anywhere for `idle_advance` seconds the clock
moves on by wall-clock time: it becomes the latest event time plus the time
since progress was last seen, less the lateness. The advanced value is
published too, so all workers (and a restarted one) keep the same clock;
records published by idle advance never count as activity.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Iterable

import orjson

from riskwatch.engine.clock import InputWatermark

log = logging.getLogger(__name__)

# A source topic partition: (topic name, partition number).
Input = tuple[str, int]


class SharedClock:
    """The worker's side of the clock topic, over the engine's `InputWatermark`.

    `lateness_seconds` as the engines' allowed lateness; `idle_advance_seconds`
    the idle rule (0 turns it off); `worker` the key of this worker's
    records; `inputs` the source topic partitions the deployment has (the
    clock waits until each has been reported, or is idle). Times are Unix
    seconds.
    """

    def __init__(self, lateness_seconds: float, idle_advance_seconds: float, worker: str,
                 inputs: Iterable[Input] = ()):
        self.watermark = InputWatermark(lateness_seconds, inputs)
        self.idle_advance = float(idle_advance_seconds)
        self.worker = worker
        self.own: dict[Input, tuple[float | None, bool]] = {}   # this worker's last report
        self.idle_ts: float | None = None        # latest idle-advanced time any worker published (an event time)
        self.last_activity_wall = time.time()
        self._published: tuple | None = None

    @property
    def lateness(self) -> float:
        return self.watermark.lateness

    @property
    def own_max(self) -> float | None:
        """The latest event time of the partitions this worker reported."""
        times = [progress for progress, _ in self.own.values() if progress is not None]
        return max(times) if times else None

    @property
    def events_max(self) -> float | None:
        """The latest event time of any source partition."""
        return self.watermark.max_event_ts

    def progress(self, tp: Input) -> float | None:
        """The latest event time of `tp` any worker has reported (None: none yet)."""
        return self.watermark.progress.get(tp)

    def report(self, inputs: dict[Input, tuple[float | None, bool]], wall: float | None = None) -> None:
        """This worker's partitions: tp -> (progress, idle). Taken at once
        (the clock does not wait for its own record to come back) and
        published by `record_to_publish`."""
        self.own = dict(inputs)
        for tp, (progress, idle) in inputs.items():
            self._take(tp, progress, idle, wall)

    def observe_record(self, record: dict, wall: float | None = None) -> None:
        """A record from the clock topic (ours or another worker's)."""
        inputs = record.get("inputs")
        if isinstance(inputs, list):
            for entry in inputs:
                try:
                    topic, partition, progress, idle = entry
                    tp = (str(topic), int(partition))
                    progress = None if progress is None else float(progress)
                except (TypeError, ValueError):
                    continue
                self._take(tp, progress, bool(idle), wall)
        idle_ts = record.get("idle_ts")
        if isinstance(idle_ts, (int, float)):
            self._idle_to(float(idle_ts))

    def _idle_to(self, idle_ts: float) -> None:
        if self.idle_ts is None or idle_ts > self.idle_ts:
            self.idle_ts = idle_ts
            self.watermark.advance_to(idle_ts - self.watermark.lateness)

    def _take(self, tp: Input, progress: float | None, idle: bool, wall: float | None) -> None:
        if self.watermark.report(tp, progress, idle):
            self.last_activity_wall = time.time() if wall is None else wall

    def idle_tick(self, wall: float | None = None) -> bool:
        """Advance by wall-clock time when idle; True when the clock moved."""
        top = self.watermark.max_event_ts
        if self.idle_advance <= 0 or top is None:
            return False
        wall = time.time() if wall is None else wall
        idle_for = wall - self.last_activity_wall
        if idle_for < self.idle_advance:
            return False
        candidate = top + idle_for
        if self.idle_ts is not None and candidate <= self.idle_ts:
            return False
        self._idle_to(candidate)
        return True

    @property
    def max_ts(self) -> float | None:
        """The clock as an event time: the watermark plus the lateness."""
        now = self.watermark.now
        return None if now is None else now + self.watermark.lateness

    @property
    def watermark_ts(self) -> float | None:
        """The service clock (Unix seconds), or None before every partition was reported."""
        return self.watermark.now

    def record_to_publish(self) -> bytes | None:
        """This worker's clock record when it changed since the last one.

        {"worker", "inputs": [[topic, partition, progress, idle], ...],
        "max_event_ts" (its latest event time), "idle_ts" (the idle-advanced
        time, an event time, or null)}."""
        inputs = sorted([topic, partition, progress, idle] for (topic, partition), (progress, idle) in self.own.items())
        idle_ts = self.idle_ts
        current = (tuple(map(tuple, inputs)), idle_ts)
        if current == self._published or (not inputs and idle_ts is None):
            return None
        self._published = current
        return orjson.dumps({"worker": self.worker, "inputs": inputs, "max_event_ts": self.own_max, "idle_ts": idle_ts})


async def follow_clock_topic(clock: SharedClock, broker: str, topic: str, stopped: asyncio.Event) -> None:
    """Read every record of the clock topic into `clock` until `stopped`.

    A plain aiokafka consumer without a group: each worker must see all of it,
    which a faust agent (one owner per partition) would not give.
    """
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=broker.split(","),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=50,
    )
    while not stopped.is_set():
        try:
            await consumer.start()
            break
        except Exception as error:  # broker not reachable yet: keep trying
            log.warning("clock topic %s: %s; retrying", topic, error)
            await asyncio.sleep(1.0)
    try:
        while not stopped.is_set():
            batches = await consumer.getmany(timeout_ms=200, max_records=1000)
            for records in batches.values():
                for record in records:
                    try:
                        clock.observe_record(orjson.loads(record.value))
                    except (orjson.JSONDecodeError, TypeError, AttributeError):
                        log.warning("clock topic %s: ignoring unreadable record at offset %s", topic, record.offset)
    finally:
        await consumer.stop()
