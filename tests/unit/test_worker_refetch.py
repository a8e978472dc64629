"""Records the consumer fetched but faust never handed on are fetched again
(streams/app.py `Processor._fetch_again`), and offsets still without records
after that are taken as transaction markers.

Seen on the real stack: after a two-worker rebalance under load one worker's
fetch position stood at the end of two partitions while none of their records
had reached the engine; the worker counted them as caught up and the stream
stalled (or, with earlier records handed on, their offsets were committed as
markers: events never evaluated). The loss is a race inside faust's fetch
loop that cannot be provoked on demand, so here the consumer is a stand-in
holding the same positions and offsets, and the assertions are on what the
worker asks of it: where it seeks and what it counts as caught up.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import pytest

import streams.app as worker_app
from streams.app import Processor


class TP(NamedTuple):
    topic: str
    partition: int


class Driver:
    """aiokafka's consumer as the worker uses it here."""

    def __init__(self, position: int, committed: int | None, beginning: int = 0):
        self.position_value = position
        self.committed_value = committed
        self.beginning = beginning
        self.seeks: list[tuple[TP, int]] = []

    async def committed(self, tp):
        return self.committed_value

    async def beginning_offsets(self, tps):
        return {tp: self.beginning for tp in tps}

    def seek(self, tp, offset):
        self.seeks.append((tp, offset))
        self.position_value = offset

    def last_stable_offset(self, tp):
        return None


class Thread:
    def __init__(self, driver: Driver):
        self._consumer = driver

    async def call_thread(self, fun, *args):
        result = fun(*args)
        return await result if asyncio.iscoroutine(result) else result


class Consumer:
    """faust's consumer: highwater, read offsets, acknowledged offsets."""

    def __init__(self, driver: Driver, end: int):
        self._thread = Thread(driver)
        self.end = end
        self._read_offset: dict = defaultdict(lambda: None)
        self._committed_offset: dict = {}
        self._acked: dict = defaultdict(list)
        self._acked_index: dict = defaultdict(set)

    def highwater(self, tp):
        return self.end

    async def position(self, tp):
        return self._thread._consumer.position_value


class App:
    def __init__(self, consumer: Consumer):
        self.consumer = consumer


def processor(consumer: Consumer) -> Processor:
    p = Processor.__new__(Processor)
    p.app = App(consumer)
    p.positions = {}
    p._handed = {}
    p._refetched = {}
    return p


def settle(monkeypatch) -> None:
    """No waiting: a partition counts as settled on the second look."""
    monkeypatch.setattr(worker_app, "SETTLE_SECONDS", 0.0)


def caught_up(p: Processor, tp: TP) -> bool:
    # On a thread of its own: earlier tests in the same process may leave an
    # event loop marked as running on the main thread.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, p._caught_up([tp])).result() == [tp]


TP2 = TP("acme.customers", 2)


def test_records_fetched_but_never_handed_on_are_fetched_again_from_the_groups_commit(monkeypatch):
    settle(monkeypatch)
    driver = Driver(position=17, committed=None)
    p = processor(Consumer(driver, end=17))
    assert not caught_up(p, TP2)        # first look: not settled yet
    assert not caught_up(p, TP2)        # settled: nothing handed on, position past the commit
    assert driver.seeks == [(TP2, 0)]   # from the log's start: the group never committed
    # Fetched again: the records come, are evaluated, and the partition is caught up.
    p.app.consumer._read_offset[TP2] = 16
    p.positions[TP2] = 16
    driver.position_value = 17
    assert caught_up(p, TP2)
    assert driver.seeks == [(TP2, 0)]


def test_an_idle_partition_at_its_commit_is_caught_up_without_seeking(monkeypatch):
    settle(monkeypatch)
    driver = Driver(position=120, committed=120)
    p = processor(Consumer(driver, end=120))
    assert not caught_up(p, TP2)
    assert caught_up(p, TP2)
    assert caught_up(p, TP2)
    assert driver.seeks == []


@pytest.mark.parametrize("left_at, seeks", [
    (12, [(TP2, 10)]),               # the consumer moved past the markers when it fetched them again
    (10, [(TP2, 10), (TP2, 12)]),    # aiokafka left it at their start: put back past them
])
def test_a_gap_after_the_last_record_is_fetched_once_more_before_it_is_taken_for_markers(monkeypatch, left_at, seeks):
    settle(monkeypatch)
    driver = Driver(position=12, committed=5)
    consumer = Consumer(driver, end=12)
    p = processor(consumer)
    # Records up to offset 9 handed on and evaluated; 10 and 11 never came.
    consumer._read_offset[TP2] = 9
    p.positions[TP2] = 9
    assert not caught_up(p, TP2)
    assert not caught_up(p, TP2)
    assert driver.seeks == [(TP2, 10)]
    # Nothing came the second time either: markers. Acknowledged, caught up, no third fetch.
    driver.position_value = left_at
    assert not caught_up(p, TP2)
    assert caught_up(p, TP2)
    assert sorted(consumer._acked[TP2]) == [10, 11]
    assert caught_up(p, TP2)
    assert driver.seeks == seeks


def test_after_a_restart_markers_past_the_commit_do_not_hold_the_partition_back(monkeypatch):
    settle(monkeypatch)
    driver = Driver(position=31, committed=30)
    p = processor(Consumer(driver, end=31))
    assert not caught_up(p, TP2)
    assert not caught_up(p, TP2)
    assert driver.seeks == [(TP2, 30)]
    assert not caught_up(p, TP2)
    assert caught_up(p, TP2)
    assert driver.seeks == [(TP2, 30), (TP2, 31)]


def skipped_processor(consumer: Consumer) -> Processor:
    p = processor(consumer)
    p._unevaluated = {}
    p._skipped_fetched = {}
    p._in_flight = 0
    return p


def test_records_handed_on_but_skipped_by_fausts_stream_are_fetched_again(monkeypatch):
    """faust's stream iterator skips a record it dequeues while its flow
    control is stopped, after the fetch loop handed it on: faust's read offset
    (handed) stays ahead of what was evaluated (done) for good."""
    monkeypatch.setattr(worker_app, "SKIPPED_AFTER_SECONDS", 0.0)
    driver = Driver(position=2, committed=None)
    consumer = Consumer(driver, end=2)
    p = skipped_processor(consumer)
    consumer._read_offset[TP2] = 1      # offsets 0 and 1 handed on
    p.positions[TP2] = 0                # only 0 evaluated
    assert not caught_up(p, TP2)        # first look
    assert not caught_up(p, TP2)        # unchanged since: fetched again from offset 1
    assert driver.seeks == [(TP2, 1)]
    # faust's drain loop would drop offset 1 below a read offset of 1: it goes back too.
    assert consumer._read_offset[TP2] == 0
    assert not caught_up(p, TP2) and driver.seeks == [(TP2, 1)]  # once
    # Fetched again and evaluated: caught up.
    consumer._read_offset[TP2] = 1
    p.positions[TP2] = 1
    assert caught_up(p, TP2)


def test_records_handed_on_are_not_fetched_again_while_a_batch_is_under_way(monkeypatch):
    monkeypatch.setattr(worker_app, "SKIPPED_AFTER_SECONDS", 0.0)
    driver = Driver(position=2, committed=None)
    consumer = Consumer(driver, end=2)
    p = skipped_processor(consumer)
    consumer._read_offset[TP2] = 1
    p.positions[TP2] = 0
    p._in_flight = 1                    # a batch retrying its output, say
    for _ in range(3):
        assert not caught_up(p, TP2)
    assert driver.seeks == []


def test_records_handed_on_and_still_being_evaluated_are_left_to_the_batch():
    driver = Driver(position=2, committed=None)
    consumer = Consumer(driver, end=2)
    p = skipped_processor(consumer)     # SKIPPED_AFTER_SECONDS as shipped
    consumer._read_offset[TP2] = 1
    p.positions[TP2] = 0
    for _ in range(3):
        assert not caught_up(p, TP2)
    assert driver.seeks == []
