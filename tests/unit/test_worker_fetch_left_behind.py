"""Records faust's fetch loop takes from the consumer but never hands on are
fetched again (streams/fetch.py).

Seen on the real stack: a worker joining a group, or a source topic created
again, lost the first records of a partition (the flow stopped or the group
generation changed while faust walked a fetched batch) and the group then
committed past them. The race cannot be provoked on demand, so faust's
consumer is a stand-in here and the assertions are on where the consumer is
sought after each batch: the next fetch must bring what was left behind.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import NamedTuple

from faust.transport import consumer as faust_consumer

from streams.fetch import refetch_dropped_records

refetch_dropped_records()


class TP(NamedTuple):
    topic: str
    partition: int


ORDERS, PAYMENTS, CHANGELOG = TP("orders", 0), TP("payments", 1), TP("worker-state-changelog", 0)


class Record(NamedTuple):
    offset: int


class Driver:
    def __init__(self):
        self.seeks: list[tuple[TP, int]] = []

    def seek(self, tp, offset):
        self.seeks.append((tp, offset))


class Thread:
    def __init__(self, driver):
        self._consumer = driver

    async def call_thread(self, fun, *args):
        return fun(*args)


class FaustConsumer:
    """What faust's `Consumer.getmany` reads of its consumer."""

    def __init__(self, batch: dict, active=None, committed: dict | None = None, flow_active: bool = True):
        self.driver = Driver()
        self._thread = Thread(self.driver)
        self.batch, self.active = batch, active
        self.committed = committed or {}
        self.flow_active = flow_active
        self.should_stop = False
        self._buffered_partitions: set = set()
        self._read_offset: dict = defaultdict(lambda: None)
        self._committed_offset: dict = {}
        self.app = SimpleNamespace(consumer_generation_id=1, monitor=SimpleNamespace(track_tp_end_offset=lambda *a: None),
                                   tables=SimpleNamespace(changelog_topics={CHANGELOG.topic}))
        self.scheduler = SimpleNamespace(iterate=lambda records: ((tp, r) for tp, rs in records.items() for r in rs))
        self.on_message = None      # called with each message handed on; may stop the flow

    async def _wait_next_records(self, timeout):
        return self.batch, self.active

    def highwater(self, tp):
        return 100

    def _to_message(self, tp, record):
        return (tp, record.offset)

    async def seek_to_committed(self):
        return {tp: self.committed.get(tp) for tp in self.batch}


def _drain(consumer: FaustConsumer) -> list:
    async def walk():
        handed = []
        async for tp, message in faust_consumer.Consumer.getmany(consumer, 1.0):
            handed.append(message)
            if consumer.on_message is not None:
                consumer.on_message(message)
        return handed

    # The suite leaves a loop marked running on the main thread.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, walk()).result()


def _records(*offsets: int) -> list[Record]:
    return [Record(offset) for offset in offsets]


def test_a_batch_handed_on_whole_is_not_fetched_again():
    consumer = FaustConsumer({ORDERS: _records(3, 4), PAYMENTS: _records(7)})
    assert _drain(consumer) == [(ORDERS, 3), (ORDERS, 4), (PAYMENTS, 7)]
    assert consumer.driver.seeks == []


def test_records_left_when_the_flow_stops_mid_batch_are_fetched_again_from_the_first_left():
    consumer = FaustConsumer({ORDERS: _records(3, 4, 5), PAYMENTS: _records(7, 8)})

    def rebalance_after_the_second(message):
        if message == (ORDERS, 4):
            consumer.flow_active = False

    consumer.on_message = rebalance_after_the_second
    assert _drain(consumer) == [(ORDERS, 3), (ORDERS, 4)]
    assert consumer.driver.seeks == [(ORDERS, 5), (PAYMENTS, 7)]


def test_records_left_when_the_generation_changes_mid_batch_are_fetched_again():
    consumer = FaustConsumer({ORDERS: _records(0, 1), PAYMENTS: _records(0, 1)})

    def new_generation(message):
        consumer.app.consumer_generation_id = 2

    consumer.on_message = new_generation
    assert _drain(consumer) == [(ORDERS, 0)]
    assert consumer.driver.seeks == [(ORDERS, 1), (PAYMENTS, 0)]


def test_records_of_a_partition_not_counted_active_are_fetched_again():
    consumer = FaustConsumer({ORDERS: _records(3), PAYMENTS: _records(7, 8)}, active={ORDERS})
    assert _drain(consumer) == [(ORDERS, 3)]
    assert consumer.driver.seeks == [(PAYMENTS, 7)]


def test_with_the_flow_stopped_only_partitions_without_a_commit_are_moved():
    # faust seeks back to the committed offsets; aiokafka leaves a partition
    # the group never committed where it is, past the records dropped.
    consumer = FaustConsumer({ORDERS: _records(3, 4), PAYMENTS: _records(0, 1)}, committed={ORDERS: 2},
                             flow_active=False)
    assert _drain(consumer) == []
    assert consumer.driver.seeks == [(PAYMENTS, 0)]
    assert consumer._read_offset[ORDERS] == 2 and consumer._committed_offset == {ORDERS: 2}


def test_table_changelogs_are_left_to_faust_recovery():
    consumer = FaustConsumer({CHANGELOG: _records(10, 11)}, active=set())
    assert _drain(consumer) == []
    assert consumer.driver.seeks == []


def test_a_partition_left_behind_from_the_same_offset_is_chased_three_times_then_left():
    consumer = FaustConsumer({PAYMENTS: _records(7, 8)}, active=set())
    for _ in range(5):
        _drain(consumer)
    assert consumer.driver.seeks == [(PAYMENTS, 7)] * 3
