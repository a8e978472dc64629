"""The worker's shared clock: the clock topic's protocol over the engine's Watermark."""

from __future__ import annotations

import orjson

from riskwatch.engine.clock import Watermark
from streams.clock import SharedClock


def test_the_shared_clock_is_the_latest_event_time_of_any_worker_less_the_lateness():
    clock = SharedClock(600, 0, "w1")
    assert isinstance(clock.watermark, Watermark) and clock.watermark_ts is None
    clock.observe_event(10_000, wall=1.0)
    clock.observe_record({"worker": "w2", "max_event_ts": 12_000, "idle_ts": None}, wall=2.0)
    clock.observe_event(11_000, wall=3.0)          # behind what w2 applied: the clock stays
    assert clock.watermark_ts == 11_400
    # This worker publishes its own latest event time, not the other worker's.
    assert orjson.loads(clock.record_to_publish()) == {"worker": "w1", "max_event_ts": 11_000, "idle_ts": None}
    assert clock.record_to_publish() is None        # nothing new since


def test_idle_advance_moves_the_clock_by_wall_time_and_is_published_as_a_floor():
    clock = SharedClock(600, 5, "w1")
    clock.observe_event(10_000, wall=100.0)
    assert not clock.idle_tick(wall=104.0)
    assert clock.idle_tick(wall=107.0)
    assert clock.watermark_ts == 10_000 + 7 - 600
    record = orjson.loads(clock.record_to_publish())
    assert record["idle_ts"] == 10_007
    other = SharedClock(600, 0, "w2")
    other.observe_record(record)
    assert other.watermark_ts == clock.watermark_ts
    clock.observe_event(10_001, wall=108.0)         # a real event behind the advanced clock: it does not go back
    assert clock.watermark_ts == 10_007 - 600
