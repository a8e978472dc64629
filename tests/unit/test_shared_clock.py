"""The worker's shared clock: the clock topic's protocol over the engine's InputWatermark."""

from __future__ import annotations

import orjson

from riskwatch.engine.clock import InputWatermark
from streams.clock import SharedClock

ORDERS, PAYMENTS = "riskwatch.orders", "riskwatch.payments"


def record(worker: str, *inputs: tuple, idle_ts: float | None = None) -> dict:
    return {"worker": worker, "inputs": [list(entry) for entry in inputs], "max_event_ts": None, "idle_ts": idle_ts}


def test_the_shared_clock_is_the_slowest_busy_topic_partition_of_any_worker_less_the_lateness():
    clock = SharedClock(600, 0, "w1", [(ORDERS, 0), (PAYMENTS, 0), (ORDERS, 1), (PAYMENTS, 1)])
    assert isinstance(clock.watermark, InputWatermark) and clock.watermark_ts is None
    clock.report({(ORDERS, 0): (50_000.0, False), (PAYMENTS, 0): (10_000.0, False)}, wall=1.0)
    assert clock.watermark_ts is None            # partition 1 not heard of yet
    clock.observe_record(record("w2", (ORDERS, 1, 40_000.0, False), (PAYMENTS, 1, None, True)), wall=2.0)
    # Orders read ahead on partition 0 cannot make partition 0's payments late.
    assert clock.watermark_ts == 9_400
    clock.report({(ORDERS, 0): (50_000.0, False), (PAYMENTS, 0): (12_000.0, True)}, wall=3.0)
    assert clock.watermark_ts == 39_400          # payments at their end: the next slowest
    clock.observe_record(record("w2", (ORDERS, 1, 40_000.0, True), (PAYMENTS, 1, None, True)), wall=4.0)
    clock.report({(ORDERS, 0): (50_000.0, True), (PAYMENTS, 0): (12_000.0, True)}, wall=5.0)
    assert clock.watermark_ts == 49_400          # all at their end: the latest event time, as a replay
    published = orjson.loads(clock.record_to_publish())
    assert published["worker"] == "w1" and published["max_event_ts"] == 50_000
    assert published["inputs"] == [[ORDERS, 0, 50_000.0, True], [PAYMENTS, 0, 12_000.0, True]]
    assert clock.record_to_publish() is None     # nothing new since


def test_a_report_behind_what_is_known_of_a_partition_changes_nothing():
    clock = SharedClock(600, 0, "w1", [(ORDERS, 0)])
    clock.observe_record(record("gone", (ORDERS, 0, 30_000.0, False)))
    # The worker that took the partition over has read nothing yet: it does not move the clock back.
    clock.observe_record(record("new", (ORDERS, 0, None, True)))
    clock.observe_record(record("new", (ORDERS, 0, 20_000.0, True)))
    assert clock.watermark_ts == 29_400 and clock.progress((ORDERS, 0)) == 30_000
    clock.observe_record(record("new", (ORDERS, 0, 30_000.0, True)))   # the same progress, said later: idle
    assert clock.watermark.idle == {(ORDERS, 0)}


def test_idle_advance_moves_the_clock_by_wall_time_and_is_published():
    clock = SharedClock(600, 5, "w1", [(ORDERS, 0)])
    clock.report({(ORDERS, 0): (10_000.0, True)}, wall=100.0)
    assert not clock.idle_tick(wall=104.0)
    assert clock.idle_tick(wall=107.0)
    assert clock.watermark_ts == 10_000 + 7 - 600
    published = orjson.loads(clock.record_to_publish())
    assert published["idle_ts"] == 10_007
    other = SharedClock(600, 0, "w2")
    other.observe_record(published)
    assert other.watermark_ts == clock.watermark_ts
    clock.report({(ORDERS, 0): (10_001.0, True)}, wall=108.0)   # behind the advanced clock: it does not go back
    assert clock.watermark_ts == 10_007 - 600


def test_progress_on_a_topic_behind_the_others_is_activity_for_the_idle_rule():
    clock = SharedClock(600, 5, "w1", [(ORDERS, 0), (PAYMENTS, 0)])
    clock.report({(ORDERS, 0): (90_000.0, True), (PAYMENTS, 0): (10_000.0, False)}, wall=100.0)
    clock.report({(ORDERS, 0): (90_000.0, True), (PAYMENTS, 0): (20_000.0, False)}, wall=104.0)
    # A backlog draining on one topic is not an idle service, though the latest event time stands still.
    assert not clock.idle_tick(wall=107.0)
    assert clock.watermark_ts == 19_400
