"""One service clock for all workers (DOMAIN.md §4).

Every worker publishes the latest event time it has seen to a small clock
topic, keyed by worker; every worker reads the whole topic (outside the
consumer group, so each sees every record) and takes the maximum. The
watermark is that maximum less the allowed lateness, exactly as in a replay.

When no event has arrived anywhere for `idle_advance` seconds the clock moves
on by wall-clock time: the maximum becomes the last real one plus the time
since that event arrived. The advanced value is published too, so all
workers (and a restarted one) keep the same clock; records published by idle
advance never count as activity.
"""

from __future__ import annotations

import asyncio
import logging
import time

import orjson

from riskwatch.engine.clock import Watermark

log = logging.getLogger(__name__)


class SharedClock:
    """The worker's side of the clock topic, over the engine's `Watermark`.

    `lateness_seconds` as the engines' allowed lateness; `idle_advance_seconds`
    the idle rule (0 turns it off); `worker` the key of this worker's records.
    Times are Unix seconds. The arithmetic (latest event time less the
    lateness, never moving back, a floor from idle advance) is the engine's
    `riskwatch.engine.clock.Watermark`; this class adds what the topic needs:
    this worker's own latest event time to publish, and when activity was
    last seen for the idle rule.
    """

    def __init__(self, lateness_seconds: float, idle_advance_seconds: float, worker: str):
        self.watermark = Watermark(lateness_seconds)
        self.idle_advance = float(idle_advance_seconds)
        self.worker = worker
        self.own_max: float | None = None        # latest event time this worker applied
        self.last_activity_wall = time.time()
        self._published: tuple | None = None

    @property
    def lateness(self) -> float:
        return self.watermark.lateness

    @property
    def events_max(self) -> float | None:
        """The latest event time any worker applied."""
        return self.watermark.max_event_ts

    @property
    def idle_max(self) -> float | None:
        """The latest idle-advanced time any worker published (an event time: the floor plus the lateness)."""
        floor = self.watermark.floor_ts
        return None if floor is None else floor + self.watermark.lateness

    def observe_event(self, event_ts: float, wall: float | None = None) -> None:
        if self.own_max is None or event_ts > self.own_max:
            self.own_max = event_ts
        self._raise_events_max(event_ts, wall)

    def observe_record(self, record: dict, wall: float | None = None) -> None:
        """A record from the clock topic (ours or another worker's)."""
        events_ts = record.get("max_event_ts")
        if isinstance(events_ts, (int, float)):
            self._raise_events_max(float(events_ts), wall)
        idle_ts = record.get("idle_ts")
        if isinstance(idle_ts, (int, float)):
            self.watermark.advance_to(float(idle_ts) - self.watermark.lateness)

    def _raise_events_max(self, ts: float, wall: float | None) -> None:
        top = self.watermark.max_event_ts
        if top is None or ts > top:
            self.watermark.observe(ts)
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
        idle_max = self.idle_max
        if idle_max is not None and candidate <= idle_max:
            return False
        self.watermark.advance_to(candidate - self.watermark.lateness)
        return True

    @property
    def max_ts(self) -> float | None:
        """The clock as an event time: the watermark plus the lateness."""
        now = self.watermark.now
        return None if now is None else now + self.watermark.lateness

    @property
    def watermark_ts(self) -> float | None:
        """The service clock (Unix seconds), or None before any event."""
        return self.watermark.now

    def record_to_publish(self) -> bytes | None:
        """This worker's clock record when it changed since the last one."""
        current = (self.own_max, self.idle_max)
        if current == self._published or current == (None, None):
            return None
        self._published = current
        return orjson.dumps({"worker": self.worker, "max_event_ts": self.own_max, "idle_ts": self.idle_max})


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
