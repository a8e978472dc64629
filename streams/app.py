"""The faust app: topics, one table, two agents, one timer, three web pages.

Topology (prefix `riskwatch.` by default, P partitions everywhere so faust
co-partitions all of it: partition p of every topic and of the table's
changelog lives on the same worker):

  orders, deliveries, payments,        --evaluate-->  alerts (key alert_id)
  competitor-prices, customers (raw)        |   \\-->  dead-letter (bad input)
                                            v
                               segment-facts (key segment)  --aggregate-->  alerts
  clock (1 partition, read by every worker)  <-- timer --> advances engines

Each source partition p has its own core `Engine` whose state lives in the
table under `e<p>|`; each segment-facts partition q a `SegmentEngine` under
`s<q>|`. Engines are (re)built from the table after every rebalance, once
faust has recovered the table, and only for partitions this worker actively
owns (standbys only keep the table warm). Alert records held in a rebuilt
partition are re-sent: identical records under the same key, which a
consumer of the compacted alerts topic does not see as new, and which make
a crash between "state written" and "alert sent" harmless.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import logging
import os
import random
import socket
import time
from dataclasses import dataclass, field
from typing import Any

import faust
import orjson
from aiokafka.structs import TopicPartition
from aiohttp.web import Response
from faust.sensors.prometheus import FaustMetrics
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from riskwatch.contracts import AlertChange
from riskwatch.engine import Engine, SegmentEngine
from riskwatch.engine.clock import InputWatermark
from riskwatch.ingest import map_row
from riskwatch.ingest.cdc import CdcPlan
from riskwatch.ingest.debezium import CdcRecord, map_changes
from riskwatch.metrics import CDC_OUTCOMES, RiskwatchMetrics
from riskwatch.models import Rejection
from riskwatch.pipeline import EventCounts, build_pipeline
from riskwatch.rules import load_rules
from riskwatch.settings import Settings
from riskwatch.sinks.kafka import (
    ALERTS,
    DEAD_LETTER,
    HEADER_KIND,
    SOURCE_STREAMS,
    alert_record,
    dead_letter,
    route_event,
    topic_name,
)
from streams.clock import SharedClock, follow_clock_topic
from streams.commit import forget_commits_of_deleted_topics
from streams.fetch import refetch_dropped_records
from streams.monitor import WorkerMonitor
from streams.state import PartitionState
from riskwatch.topics import CLOCK, SEGMENT_FACTS
from streams.workflow import WorkerDesk
from riskwatch.errors import RiskwatchError

log = logging.getLogger("riskwatch.worker")
DESK_TICK_SECONDS = 1.0

# Records an agent takes at a time, and how long it waits for a batch to
# fill before processing what it has (this bounds the latency a batch adds).
# faust's take waits the whole `within` even with records already buffered,
# so it is paid once per batch; a backlog fills 500 at once and never waits.
# 5 ms (with a 2 ms producer linger) against 10 and 5: p50 19.6 against 29.7
# ms and p99 59 against 89 ms, medians of 4 interleaved pairs at half the
# drain rate (docs/decisions.md); 2 ms with no linger was no better at p99.
BATCH_EVENTS = 500
BATCH_WITHIN_SECONDS = 0.005

# How stale the consumer's topic metadata may get. A recreated source topic
# is dropped from the subscription ("Ignoring missing topic") and partitions
# added to a source topic go unnoticed until the next refresh; aiokafka's
# default is five minutes. One small metadata request per 30 s is cheap.
METADATA_MAX_AGE_SECONDS = 30.0

# A source topic more than this far (event time, seconds) ahead of the
# slowest busy topic of its partition is not fetched from until the others
# catch up (see `Processor.align`). Draining the benchmark's backlog
# (200,000 events, one worker, docs/decisions.md): 1 h paused and resumed
# so often that batches shrank to a few events (1,060 events/s); 6 h to 3
# days drained at 1,460-1,630 events/s, a day fastest.
ALIGN_SECONDS = 86400.0

# What the consumer fetches per partition and request (about 1,000 simulated
# events). A paused partition drops what it had fetched and fetches it again
# on resume; faust's 1 MiB made that costly (1,460 events/s against 1,630),
# 64 KiB made the batches small (1,380). Kafka still returns a larger record, alone.
FETCH_BYTES_PER_PARTITION = 256 * 1024

# A partition whose fetch position is past its last record (a transaction
# marker, aborted or compacted records at the end) counts as caught up once
# faust has handed on no new record of it for this long.
SETTLE_SECONDS = 1.0


# Records faust handed on that no batch evaluated, with no batch under way,
# for this long: faust's stream skipped them (dequeued while its flow control
# was stopped or from an earlier generation) and they are fetched again
# (`Processor._fetch_skipped`).
SKIPPED_AFTER_SECONDS = 10.0

# A batch whose output the broker refused for a passing reason (a broker
# restart, a timeout) is tried again after a back-off that doubles up to
# this many seconds (with jitter).
RETRY_MAX_SECONDS = 30.0


class _Output:
    """What one batch (or one clock advance) handed to the producer: the
    delivery futures, and the partition states to commit once they are
    acknowledged."""

    __slots__ = ("futures", "states")

    def __init__(self) -> None:
        self.futures: list = []
        self.states: list[PartitionState] = []


# Per asyncio task: the evaluate agent, the aggregate agent and the timer
# each collect their own output.
_output: contextvars.ContextVar[_Output | None] = contextvars.ContextVar("riskwatch_output", default=None)


def retriable(error: BaseException) -> bool:
    """True when `error` (or what it wraps) is one a later attempt can get past.

    Kafka errors say so themselves (`retriable`, e.g. a leader moving, a
    request timing out, a lost connection); MessageSizeTooLargeError and
    an exception from the engine are not retriable: the same input fails
    the same way.
    """
    seen: BaseException | None = error
    while seen is not None:
        if getattr(seen, "retriable", False) or isinstance(seen, (ConnectionError, asyncio.TimeoutError)):
            return True
        seen = seen.__cause__
    return False


# Attempts of a lone record after a non-retriable error, before the dead-letter topic.
ALONE_RETRIES = 2


def retry_delay(failures: int) -> float:
    """Seconds before attempt `failures` + 1: 0.5 s doubling to RETRY_MAX_SECONDS, less up to half as jitter."""
    return min(RETRY_MAX_SECONDS, 0.5 * 2 ** max(0, failures - 1)) * random.uniform(0.5, 1.0)


class NotCoPartitioned(RiskwatchError, RuntimeError):
    """The source, segment-facts and changelog topics differ in partition count.

    Retriable: the batch waits (uncommitted) until an operator repartitions
    and the worker is restarted; processing it meanwhile would fail records
    of partitions the changelog does not have.
    """

    retriable = True


@dataclass(frozen=True)
class WorkerOptions:
    settings: Settings
    partitions: int = 4
    tick_seconds: float = 0.25
    name: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    # The database tables followed by change data capture (riskwatch.ingest.cdc); None: none.
    cdc: CdcPlan | None = None


def app_id(topic_prefix: str) -> str:
    """Consumer group and table-topic prefix: `riskwatch.` -> `riskwatch-worker`."""
    return (topic_prefix.rstrip(".-_") or "riskwatch") + "-worker"


class _Unit:
    """One partition's engine and the state it writes through; for a
    segment-facts partition, `inputs`: the progress of every source topic
    partition its facts come from (the watermarks they sent along)."""

    __slots__ = ("engine", "state", "facts", "advanced_to", "inputs")

    def __init__(self, engine: Any, state: PartitionState, facts: list, inputs: InputWatermark | None = None):
        self.engine = engine
        self.state = state
        self.facts = facts
        self.advanced_to: float | None = None
        self.inputs = inputs


# Segment state key of the watermark a source partition last sent:
# "wm:<partition>" -> ((topic, progress, idle), ...), idle-advanced time).
WATERMARK_PREFIX = "wm:"


class Processor:
    """What the agents and the timer call; holds no faust decorators."""

    def __init__(self, app: faust.App, options: WorkerOptions, metrics: RiskwatchMetrics):
        s = options.settings
        self.app = app
        self.options = options
        self.metrics = metrics
        self.rules = load_rules(s.rules_dir)
        self.lateness = s.lateness_seconds
        self.source_names = {topic_name(s.topic_prefix, stream) for stream in SOURCE_STREAMS}
        self.source_topics = sorted(self.source_names)
        self.clock = SharedClock(s.lateness_seconds, s.idle_advance_seconds, options.name)
        # Every source topic partition of the deployment (from the consumer's
        # metadata at each assignment): the shared clock and the segment
        # engines wait until each has been read or found idle.
        self.partition_count = options.partitions
        self.source_inputs = [(topic, p) for topic in self.source_topics for p in range(options.partitions)]
        # (topic, partition) -> latest event time applied there whose output the
        # broker holds; and the owned ones found at their end by the last tick.
        self.progress: dict[tuple[str, int], float] = {}
        self.idle_inputs: set[tuple[str, int]] = set()
        self._watermarks_sent: dict[int, tuple] = {}   # source partition -> the watermark it last sent on
        self._held: set = set()                         # source TPs `align` paused
        # The stages after the engines (riskwatch.pipeline): here only the count
        # stage; what it passes on is sent to the alerts topic, once per batch.
        self.pipeline = build_pipeline(future_tolerance_seconds=s.future_tolerance_seconds, metrics=metrics)
        self.tally = self.pipeline.tally           # open alerts of owned partitions, for the gauges
        self.events = EventCounts(metrics)          # a batch's events, counted once its output is acknowledged
        self.units: dict[int, _Unit] = {}
        self.segment_units: dict[int, _Unit] = {}
        self.positions: dict[Any, int] = {}         # source TP -> last offset evaluated
        self._handed: dict[Any, tuple[int, float]] = {}  # source TP -> (faust's read offset, since when)
        self._refetched: dict[Any, tuple[int, int]] = {}  # source TP -> (start, position) fetched again (`_fetch_again`)
        self._unevaluated: dict[Any, tuple[tuple[int, int], float]] = {}  # source TP -> ((done, handed), since)
        self._skipped_fetched: dict[Any, tuple[int, int]] = {}  # source TP -> (start, handed) (`_fetch_skipped`)
        self._in_flight = 0                         # batches being processed (`guarded`)
        self.assigned_once = False
        self.copartition_problem: str | None = None
        self.table: Any = None
        self.alerts_topic: Any = None
        self.dead_letter_topic: Any = None
        self.segment_topic: Any = None
        self.clock_topic: Any = None
        self.alerts_name = topic_name(s.topic_prefix, ALERTS)
        self.dead_letter_name = topic_name(s.topic_prefix, DEAD_LETTER)
        self.changelog_name = ""
        self.segment_name = topic_name(s.topic_prefix, SEGMENT_FACTS)
        # Acknowledgements, escalation and Alertmanager (streams/workflow.py).
        self.desk = WorkerDesk(s, metrics=metrics, name=options.name)
        self._desk_ticked = 0.0
        # Change data capture: the change topics and each table's mapping
        # (empty without change mappings: nothing below then runs).
        self.cdc_names: frozenset[str] = frozenset(options.cdc.topics) if options.cdc is not None else frozenset()
        self.cdc_mappings = options.cdc.mappings if options.cdc is not None else {}

    # -- readiness -----------------------------------------------------
    @property
    def ready(self) -> bool:
        app = self.app
        return (
            self.assigned_once
            and self.copartition_problem is None
            and app.tables.recovery.completed.is_set()
            and not app.rebalancing
            and not getattr(app, "in_recovery", False)
        )

    def on_assigned(self) -> None:
        if not self.assigned_once:
            # What start-up built (faust, aiokafka, pydantic, the rules) lives as
            # long as the process: set it aside once, so the collector's full
            # passes, which stall the event loop, walk only what came later.
            gc.collect()
            gc.freeze()
        self.assigned_once = True
        self.check_copartitioning()

    def check_copartitioning(self) -> None:
        """Compare the partition counts the consumer's metadata shows (on every assignment).

        Partitions added to a source topic are assigned once the consumer's
        metadata refresh sees them; from then on this worker refuses to
        process (batches wait uncommitted, `/readyz` answers 503 with the
        message) instead of failing their records.
        """
        from riskwatch.topics import copartition_problem

        try:
            driver = self.app.consumer._thread._consumer
            names = [*sorted(self.source_names), self.segment_name, self.changelog_name]
            counts = {name: len(driver.partitions_for_topic(name) or ()) or None for name in names}
        except Exception as error:  # metadata not there yet: the next assignment checks again
            log.debug("co-partitioning not checked: %s", error)
            return
        problem = copartition_problem(counts)
        if problem is None and counts.get(self.segment_name):
            self._expect_partitions(counts[self.segment_name])
        if problem != self.copartition_problem:
            if problem:
                log.error("%s", problem)
            else:
                log.info("topics are co-partitioned again")
        self.copartition_problem = problem

    def _expect_partitions(self, count: int) -> None:
        self.partition_count = count
        self.source_inputs = [(topic, p) for topic in self.source_topics for p in range(count)]
        for tp in self.source_inputs:
            self.clock.watermark.expect(tp)
            for unit in self.segment_units.values():
                unit.inputs.expect(tp)

    def on_revoked(self) -> None:
        # Eager rebalancing revokes everything; engines are rebuilt from the
        # (recovered) table for whatever comes back.
        self.units.clear()
        self.segment_units.clear()
        self.tally.clear()
        self.positions.clear()
        self._handed.clear()
        self._refetched.clear()
        self._unevaluated.clear()
        self._skipped_fetched.clear()
        self.idle_inputs.clear()
        self._watermarks_sent.clear()
        self._held.clear()

    # -- units ---------------------------------------------------------
    def _unit(self, partition: int) -> _Unit:
        unit = self.units.get(partition)
        if unit is None:
            facts: list = []
            state = PartitionState(self.table, f"e{partition}", partition)
            # The constructor rebuilds deadlines and indexes from recovered state.
            engine = Engine(self.rules, state=state, lateness_seconds=self.lateness, segment_sink=facts.append)
            # The partition's clock is the slowest of its source topics (each
            # set as `reading` before its events are applied), not the latest
            # event of any: faust hands a backlog over in fetch order, and a
            # topic read ahead must not make another topic's events late.
            clock = InputWatermark(self.lateness, self.source_topics)
            for topic in self.source_topics:
                progress = self._progress((topic, partition))
                if progress is not None:
                    clock.observe(progress, topic)
                clock.set_idle(topic, (topic, partition) in self.idle_inputs)
            engine.clock = clock
            unit = self.units[partition] = _Unit(engine, state, facts)
            self._resend_held_alerts(unit)
        return unit

    def _progress(self, tp: tuple[str, int]) -> float | None:
        """The latest event time applied on `tp` with its output on the broker,
        by this worker or (as the shared clock heard) the one before it: the
        partition's state, recovered from the changelog, holds those events."""
        own, shared = self.progress.get(tp), self.clock.progress(tp)
        if own is None or (shared is not None and shared > own):
            return shared
        return own

    def _segment_unit(self, partition: int) -> _Unit:
        unit = self.segment_units.get(partition)
        if unit is None:
            state = PartitionState(self.table, f"s{partition}", partition)
            engine = SegmentEngine(self.rules, state=state, lateness_seconds=self.lateness)
            # Its clock: the slowest source topic partition whose facts it waits
            # for, as the watermarks sent along with the facts say (kept in its state).
            inputs = InputWatermark(self.lateness, self.source_inputs)
            for key, value in list(state.items()):
                if key.startswith(WATERMARK_PREFIX):
                    self._take_watermark(inputs, int(key[len(WATERMARK_PREFIX):]), *value)
            unit = self.segment_units[partition] = _Unit(engine, state, [], inputs)
            self._resend_held_alerts(unit)
        return unit

    def _take_watermark(self, inputs: InputWatermark, partition: int, progress: tuple, idle_ts: float | None) -> None:
        for topic, ts, idle in progress:
            inputs.report((topic, partition), ts, idle)
        if idle_ts is not None:
            inputs.advance_to(idle_ts - self.lateness)

    def _resend_held_alerts(self, unit: _Unit) -> None:
        records = unit.state.alert_records()
        for record in records:
            key, value = alert_record(record)
            # Synchronous context (a unit is built on first use): faust's buffer.
            self.alerts_topic.send_soon(key=key, value=value)
            self.tally.track(record)
        if records:
            log.info("re-sent %d alert records held in a recovered partition", len(records))

    # -- batches -------------------------------------------------------
    async def guarded(self, handler: Any, messages: list, units: dict) -> None:
        """Run `handler` over one batch until its output is acknowledged; never raises but on cancellation.

        faust's batch helper (`take_events`) acknowledges a batch's records
        in a `finally`, so a batch whose processing or output raised would
        be committed and its events lost. Here a failed batch is rolled
        back (the engines of `units` are dropped and rebuilt from the
        table, which holds only acknowledged state, `PartitionState.commit`)
        and tried again: after a back-off while the error is retriable;
        otherwise one record at a time, and a record that fails on its own
        goes to the dead-letter topic with kind `processing_failed` and the
        error as its reason (DOMAIN §7). If the batch is cancelled (shut
        down, rebalanced) before it is done its records are left
        unacknowledged, so the partition's next reader applies them.
        """
        done = False
        self._in_flight += 1
        try:
            failures = 0
            while True:
                error = await self._attempt(handler, messages, units)
                if error is None:
                    done = True
                    return
                if not retriable(error):
                    break
                failures += 1
                log.warning("batch of %d records not done (%s: %s); attempt %d in a moment",
                            len(messages), type(error).__name__, error, failures + 1)
                await asyncio.sleep(retry_delay(failures))
            log.warning("batch of %d records failed (%s: %s); applying its records one at a time",
                        len(messages), type(error).__name__, error)
            for message in messages:
                await self._one_at_a_time(handler, message, units)
            done = True
        finally:
            self._in_flight -= 1
            if not done:
                for message in messages:
                    message.acked = True  # the batch's acknowledgement then skips them

    async def _one_at_a_time(self, handler: Any, message: Any, units: dict) -> None:
        failures = 0
        refused = 0
        while True:
            error = await self._attempt(handler, [message], units)
            if error is None:
                return
            if not retriable(error):
                # The producer batches every task's records for one partition
                # together (a source partition's state and its segment engine's
                # share a changelog partition), and the broker refuses a whole
                # batch over the topic's max.message.bytes: a small record can
                # fail beside another task's big one. Tried again before it is
                # dead-lettered; a record that fails on its own fails each time.
                refused += 1
                if refused > ALONE_RETRIES:
                    break
                await asyncio.sleep(retry_delay(refused))
                continue
            failures += 1
            await asyncio.sleep(retry_delay(failures))
        log.error("record %s[%s]@%s cannot be processed (%s: %s); sent to the dead-letter topic",
                  message.topic, message.partition, message.offset, type(error).__name__, error)
        rejection = Rejection("processing_failed", f"{type(error).__name__}: {error}"[:1000])

        async def dead_letter(_: list) -> None:
            await self._dead_letter(message, rejection)
            await self._delivered()
            if self.positions.get(message.tp, -1) < message.offset:
                self.positions[message.tp] = message.offset

        while await self._attempt(dead_letter, [message], units) is not None:
            failures += 1
            await asyncio.sleep(retry_delay(failures))

    async def _attempt(self, handler: Any, messages: list, units: dict) -> BaseException | None:
        token = _output.set(_Output())
        try:
            await handler(messages)
            await self._delivered()
            return None
        except asyncio.CancelledError:
            raise
        except Exception as error:
            # Back to the last acknowledged state: the table never took the
            # failed output, and an engine rebuilt from it has not seen the batch.
            units.clear()
            return error
        finally:
            _output.reset(token)

    async def _delivered(self) -> None:
        """Wait until the broker acknowledged this task's sends; then commit the written states.

        Raises the first send's error (the caller rolls back).
        """
        output = _output.get()
        if output is None:
            return
        futures, output.futures = output.futures, []
        if futures:
            await asyncio.gather(*futures)
        states, output.states = output.states, []
        for state in states:
            state.commit()

    # -- input ---------------------------------------------------------
    async def on_source_records(self, messages: list) -> None:
        """One batch of source records: every event through its partition's
        engine, then the batch's segment facts, each touched partition's state
        (once) and the alert changes.

        Output order is what recovery relies on: segment facts, then the
        state that records the events as applied (within it the alert records
        first, `PartitionState.flush`), then the alert changes. A crash before
        the state is written leaves the events to be evaluated again, and
        facts already sent are folded once by the segment engine; a crash
        after it leaves alert records in the state that the next owner of
        the partition re-sends as they were (`_resend_held_alerts`). Sending
        alert changes before the state let a crash between the two publish
        a change that the re-evaluation, under a later clock, published again
        with the same sequence number and other content. A key written by
        several events of the batch is pickled and sent once, with its last
        value.
        """
        if self.copartition_problem:
            raise NotCoPartitioned(self.copartition_problem)
        touched: dict[int, _Unit] = {}
        changes: list[AlertChange] = []
        facts: list[dict] = []
        progress: dict[tuple[str, int], float] = {}   # the batch's latest event time per topic partition
        events = self.events
        events.discard()  # what an earlier attempt of this batch counted
        observe = self.metrics.evaluation_seconds.observe
        admit, apply = self.pipeline.admit, self.pipeline.apply
        # The wall clock, read once per batch, for the future check (DOMAIN §3).
        wall_clock = time.time()
        for message in self._current(messages):
            started = time.perf_counter()
            event = admit(message.value if message.value is not None else b"", wall_clock)
            if isinstance(event, Rejection):
                await self._dead_letter(message, event)
                continue
            partition = message.partition
            unit = touched.get(partition)
            if unit is None:
                unit = touched[partition] = self._unit(partition)
            engine = unit.engine
            engine.clock.reading = message.topic
            verdict = apply(engine, event)
            if verdict.rejection is not None:
                # Refused before it changed anything, the shared clock included.
                await self._dead_letter(message, verdict.rejection)
                continue
            changes.extend(verdict.changes)
            ts = event.occurred_at.timestamp()
            tp = (message.topic, partition)
            if progress.get(tp, ts) <= ts:
                progress[tp] = ts
            events.count(event.type, verdict.outcome)
            if unit.facts:
                # Dated, so a segment engine that first moves weeks into a
                # backlog still evaluates from these events on (SegmentEngine.apply).
                for fact in unit.facts:
                    fact["at"] = ts
                facts.extend(unit.facts)
                unit.facts.clear()
            observe(time.perf_counter() - started)
        await self._send_facts(facts)
        for partition, unit in touched.items():
            await self._write_state(unit, partition)
        await self._emit(changes)
        await self._delivered()
        # The clock moves on what the broker holds: the progress reported to the
        # other workers and sent along to the segment engines is of events
        # whose facts, state and alerts are out.
        delivered = self.progress
        for tp, ts in progress.items():
            if delivered.get(tp, ts) <= ts:
                delivered[tp] = ts
        for partition, unit in touched.items():
            await self.align(partition, unit)
        # Every record handed to this batch is done, dead letters included:
        # the clock's "caught up" and the skipped-offset bookkeeping read this.
        positions = self.positions
        for message in messages:
            if not message.acked and positions.get(message.tp, -1) < message.offset:
                positions[message.tp] = message.offset
        # Counted once the broker has acknowledged the batch's output.
        events.flush()

    async def on_change_records(self, messages: list) -> None:
        """One batch of change records (Debezium, from the change topics) to events.

        Each record is decoded and mapped through its table's mapping
        (`riskwatch.ingest.debezium.map_changes`): its events go to their
        source topics, keyed as `riskwatch produce` keys them (customer_id),
        where the evaluate agent reads them like any other event; a record
        that cannot be decoded, whose table has no mapping, or whose row
        the mapping refuses goes to the dead-letter topic, value unchanged,
        with the DOMAIN §7 headers and `riskwatch.reason.kind`
        (cdc_not_a_change, cdc_no_mapping, cdc_unmappable); a tombstone is
        skipped. A record gives all of its events or none. The batch counts
        as done, so committable, only once the broker has acknowledged
        every send (`guarded`); a crash before that sends its events again,
        with the same ids (derived from the row, or named by the mapping),
        which the engine counts as duplicates.
        """
        current = self._current(messages)
        records = [CdcRecord(m.topic, m.partition, m.offset, m.key, m.value) for m in current]
        prefix = self.options.settings.topic_prefix
        outcomes = dict.fromkeys(CDC_OUTCOMES, 0)
        rejected: dict[str, int] = {}
        for result in map_changes(records, self.cdc_mappings, map_row):
            record = result.record
            letter = result.dead_letter
            if letter is None:
                routed = [(route_event(event), event) for event in result.events]
                unrouted = next((event for route, event in routed if route is None), None)
                if unrouted is not None:  # a mapping's event type has no source topic: nowhere to send it
                    letter = dead_letter(record.value, reason=f"no source topic for event type {unrouted.get('type')!r}",
                                         kind="cdc_unmappable", topic=record.topic, partition=record.partition,
                                         offset=record.offset)
            if letter is not None:
                kind = next((value.decode() for name, value in letter.headers if name == HEADER_KIND), "cdc_unmappable")
                rejected[kind] = rejected.get(kind, 0) + 1
                outcomes["dead_letter"] += 1
                await self._send(self.dead_letter_name, record.key, letter.value, headers=letter.headers)
                continue
            if result.tombstone:
                outcomes["tombstone"] += 1
                continue
            if not routed:
                outcomes["no_event"] += 1
                continue
            for (stream, key), event in routed:
                await self._send(topic_name(prefix, stream), key, orjson.dumps(event))
            outcomes["mapped"] += 1
        await self._delivered()
        positions = self.positions
        for message in messages:
            if not message.acked and positions.get(message.tp, -1) < message.offset:
                positions[message.tp] = message.offset
        # Counted once the broker has acknowledged the batch's output.
        metrics = self.metrics
        for kind, count in rejected.items():
            metrics.events_rejected.labels(reason=kind).inc(count)
            metrics.dead_letters.labels(reason=kind).inc(count)
        for outcome, count in outcomes.items():
            if count:
                metrics.cdc_changes.labels(outcome=outcome).inc(count)

    def _current(self, messages: list) -> list:
        """The messages of a batch this worker may still apply.

        A batch is taken before it is processed; a rebalance in between can
        hand its partitions to another worker, which recovers their state
        from the changelog and reads the same records again from the last
        commit. Applying them here as well would write this worker's stale
        state into a changelog partition it no longer owns (and could
        publish an alert sequence number twice with different content).
        faust's own stream skips such records the same way (a message from
        an earlier consumer generation, or flow stopped for a rebalance).
        They are marked acknowledged on the message only, so that the batch's
        acknowledgement does not count them as done: whichever worker owns
        the partition next reads them again from the committed offset.
        """
        app = self.app
        generation = app.consumer_generation_id
        if app.flow_control.is_active():
            current = [message for message in messages if message.generation_id == generation]
        else:
            current = []
        if len(current) < len(messages):
            for message in messages:
                if not current or message.generation_id != generation:
                    message.acked = True
            log.info("left %d records taken before a rebalance to the partitions' next owner",
                     len(messages) - len(current))
        return current

    async def _send(self, topic: str, key: bytes | None, value: bytes | None, partition: int | None = None,
                    headers: list | None = None) -> None:
        # Straight to the driver's producer (aiokafka's accumulator batches
        # per partition and keeps per-key order). faust's send_soon buffer
        # hands messages over one event-loop round trip at a time, which
        # capped the worker near 1,500 events/s. faust flushes this producer
        # before it commits offsets, so at-least-once holds.
        delivery = await self.app.producer.send(topic, key, value, partition, None, headers)
        output = _output.get()
        if output is not None:
            output.futures.append(delivery)

    async def _send_facts(self, facts: list[dict]) -> None:
        """A batch's facts, one record per segment holding that segment's facts in order.

        One record per fact made the aggregate agent pay faust's per-record
        delivery for every fact (about one per two events); a batch of 500
        events touches a few dozen segments at most.
        """
        by_segment: dict[str, list[dict]] = {}
        for fact in facts:
            segment = str(fact["segment"])
            listed = by_segment.get(segment)
            if listed is None:
                by_segment[segment] = [fact]
            else:
                listed.append(fact)
        segment_name = self.segment_name
        for segment, listed in by_segment.items():
            await self._send(segment_name, segment.encode(), orjson.dumps(listed))

    async def _write_state(self, unit: _Unit, partition: int) -> None:
        changelog = self.changelog_name
        for key, value in unit.state.flush():
            await self._send(changelog, key, value, partition)
        output = _output.get()
        if output is None:
            unit.state.commit()
        else:
            output.states.append(unit.state)

    async def on_segment_facts(self, messages: list) -> None:
        """One batch of segment facts, applied like `on_source_records`."""
        if self.copartition_problem:
            raise NotCoPartitioned(self.copartition_problem)
        touched: dict[int, _Unit] = {}
        changes: list[AlertChange] = []
        for message in self._current(messages):
            try:
                facts = orjson.loads(message.value)
            except (orjson.JSONDecodeError, TypeError):
                # Only the worker writes this topic; an unreadable fact is a bug, kept for inspection.
                await self._dead_letter(message, Rejection("not_json", "unreadable segment fact"))
                continue
            partition = message.partition
            unit = touched.get(partition)
            if unit is None:
                unit = touched[partition] = self._segment_unit(partition)
            if isinstance(facts, dict) and "watermark" in facts:
                self._apply_watermark(unit, facts["watermark"])
                continue
            # A list per segment and batch; a single fact is what workers before that wrote.
            for fact in facts if isinstance(facts, list) else (facts,):
                changes.extend(unit.engine.apply(fact))
        for partition, unit in touched.items():
            await self._write_state(unit, partition)
        await self._emit(changes)
        await self._delivered()

    async def _dead_letter(self, message: Any, rejection: Rejection) -> None:
        self.metrics.events_rejected.labels(reason=rejection.kind).inc()
        self.metrics.dead_letters.labels(reason=rejection.kind).inc()
        record = dead_letter(
            message.value,
            reason=rejection.reason,
            kind=rejection.kind,
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
        )
        await self._send(self.dead_letter_name, message.key, record.value, headers=record.headers)

    # -- output --------------------------------------------------------
    async def _emit(self, changes: list[AlertChange]) -> None:
        """Alert changes through the pipeline (counted as the embedded service
        counts them), then to the alerts topic keyed by alert_id."""
        alerts_name = self.alerts_name
        for change in self.pipeline.publish(changes):
            key, value = alert_record(change)
            await self._send(alerts_name, key, value)

    # -- clock ---------------------------------------------------------
    async def on_tick(self) -> None:
        """The clock's timer: find which owned source topic partitions are at
        their end, report them on the clock topic, move every owned engine to
        its clock and send each owned source partition's watermark to the
        segment engines; tick the alert desk."""
        actives = self.app.assignor.assigned_actives()
        sources = [tp for tp in actives if tp.topic in self.source_names]
        source_partitions = sorted({tp.partition for tp in sources})
        self.metrics.worker_partitions_assigned.set(len(source_partitions))
        ready = self.ready
        caught_up: set[int] = set()
        if ready:
            idle: set[tuple[str, int]] = set()
            for partition in source_partitions:
                tps = [tp for tp in sources if tp.partition == partition]
                done = await self._caught_up(tps)
                idle.update((tp.topic, tp.partition) for tp in done)
                if len(done) == len(tps):
                    caught_up.add(partition)
            if not await self._changes_caught_up(actives):
                # Change records not yet mapped are events the source topics do
                # not hold yet: no source input counts as idle until they are.
                idle.clear()
                caught_up.clear()
            self.idle_inputs = idle
            self.clock.report({(tp.topic, tp.partition): (self._progress((tp.topic, tp.partition)),
                                                          (tp.topic, tp.partition) in idle) for tp in sources})
        if self.clock.idle_tick():
            self.metrics.idle_clock_advances.inc()
        published = self.clock.record_to_publish()
        if published is not None:
            await self.clock_topic.send(key=self.options.name.encode(), value=published)
        watermark = self.clock.watermark_ts
        if ready:
            for partition in source_partitions:
                unit = self.units.get(partition)
                if unit is not None:  # one built later takes the flags from idle_inputs
                    clock = unit.engine.clock
                    for topic in self.source_topics:
                        clock.set_idle(topic, (topic, partition) in self.idle_inputs)
                await self.align(partition, unit)
                # A partition with nothing left to read takes the shared clock
                # (its deadlines cannot be cleared by anything still unread there).
                # One with a backlog moves on its own topics' progress alone, as
                # its events are applied: advancing it here would write out the
                # state of a batch still on its way, ahead of that batch's facts.
                if partition in caught_up and watermark is not None:
                    await self._advance(self.units, partition, watermark, send_facts=True)
            await self._send_watermarks(source_partitions)
            for partition in sorted({tp.partition for tp in actives if tp.topic == self.segment_name}):
                target = self._segment_unit(partition).inputs.now
                if target is not None:
                    await self._advance(self.segment_units, partition, target, send_facts=False)
        if time.monotonic() - self._desk_ticked >= DESK_TICK_SECONDS:
            # Deadlines are counted in hours: once a second is timely.
            self._desk_ticked = time.monotonic()
            # One worker keeps the desk: the one that owns source partition 0; its
            # clock moves once that worker has caught up (as the engines' deadlines
            # wait for a backlog; the chain of escalations is walked in one tick afterwards).
            behind = not ready or len(caught_up) < len(source_partitions)
            self.desk.tick(watermark, owns_partition_zero=0 in source_partitions, caught_up=not behind)

    async def _changes_caught_up(self, actives: list) -> bool:
        """True when no change record of this worker's change partitions waits to become events.

        A change still in a change topic is an event the source topics do
        not hold yet: a payment behind in the payments table's topic while
        the invoices' topic is read would let the clock fire the invoice's
        overdue deadline, which the payment, dated before it, would then
        resolve (an alert a replay never raises). So deadlines wait for the
        change partitions as they wait for the source partitions
        (`_caught_up`). Only the partitions this worker owns are known here;
        with several workers another's change backlog is not waited for.
        Always True without change mappings.
        """
        if not self.cdc_names:
            return True
        tps = [tp for tp in actives if tp.topic in self.cdc_names]
        return not tps or len(await self._caught_up(tps)) == len(tps)

    async def align(self, partition: int, unit: _Unit | None) -> None:
        """Hold back the source topics of `partition` read too far ahead of its slowest busy one.

        A partition's clock is its slowest topic; what the others read
        beyond it waits in the engine (an invoice with a payment ahead of
        the clock stays to be checked again at every hourly credit check
        until the clock passes it: the drain of a backlog read in fetch
        order, with weeks between topics, ran at half its speed). So
        a topic more than ALIGN_SECONDS ahead is not fetched from until the
        slowest catches up, and the topics are read side by side in event
        time, as Flink's watermark alignment does.

        The pause is aiokafka's (`AIOKafkaConsumer.pause`, in the consumer's
        thread): it stops fetching and drops what was fetched but not yet
        handed on, which is fetched again from the same position on resume.
        faust's own `pause_partitions` only leaves a partition out of its
        active set, and faust then discards records of it already fetched
        (`Consumer.getmany`): records lost, a partition never caught up.
        Only while the worker is ready; a rebalance gives fresh, unpaused
        partition states.
        """
        if not self.ready:
            return
        ahead: set = set()
        # Without an engine (dropped after a failed batch, rebuilt by the next
        # one) nothing is held: the next batch must be able to come.
        clock = unit.engine.clock if unit is not None else None
        busy = [] if clock is None else [(topic, ts) for topic, ts in clock.progress.items()
                                         if ts is not None and topic not in clock.idle]
        if busy:
            limit = min(ts for _, ts in busy) + ALIGN_SECONDS
            ahead = {TopicPartition(topic, partition) for topic, ts in busy if ts > limit}
        held = {tp for tp in self._held if tp.partition == partition}
        if ahead == held:
            return
        thread = self.app.consumer._thread
        driver = thread._consumer
        try:
            if ahead - held:
                await thread.call_thread(driver.pause, *(ahead - held))
            if held - ahead:
                await thread.call_thread(driver.resume, *(held - ahead))
        except Exception as error:  # taken away by a rebalance meanwhile: nothing is held then
            log.debug("alignment of partition %d not changed: %s", partition, error)
            return
        if ahead - held:
            log.info("source partition %d: paused %s, more than %.0f h ahead of its slowest busy topic (%s)",
                     partition, ", ".join(sorted(tp.topic for tp in ahead - held)), ALIGN_SECONDS / 3600,
                     min(busy, key=lambda item: item[1])[0])
        if held - ahead:
            log.info("source partition %d: resumed %s", partition, ", ".join(sorted(tp.topic for tp in held - ahead)))
        self._held.difference_update(held - ahead)
        self._held.update(ahead)

    async def _send_watermarks(self, partitions: list[int]) -> None:
        """Send each owned source partition's watermark to every segment-facts partition, when it changed.

        A segment engine counts facts from every source partition; it may
        evaluate an instant only once every source partition has delivered
        the facts of its events up to then. The shared clock cannot say so:
        it travels on another topic, and a segment engine could hear of it
        before reading the facts. The watermark travels behind the facts, on
        the same partition: what it reports (`progress`, whose facts the
        broker already holds; `idle_inputs`) is sent after them, so a segment
        engine that has read it has read those facts too (the repartition
        watermarks of Flink and Kafka Streams).
        """
        idle_ts = self.clock.idle_ts
        changed: dict[int, tuple] = {}
        for partition in partitions:
            progress = tuple((topic, self._progress((topic, partition)), (topic, partition) in self.idle_inputs)
                             for topic in self.source_topics)
            if self._watermarks_sent.get(partition) != (progress, idle_ts):
                changed[partition] = (progress, idle_ts)
        if not changed:
            return
        token = _output.set(_Output())
        try:
            for partition, (progress, _) in changed.items():
                value = orjson.dumps({"watermark": {"partition": partition, "progress": progress, "idle_ts": idle_ts}})
                for segment_partition in range(self.partition_count):
                    await self._send(self.segment_name, b"~watermark", value, segment_partition)
            await self._delivered()
            self._watermarks_sent.update(changed)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # the next tick sends them again
            log.warning("watermarks not sent (%s: %s)", type(error).__name__, error)
        finally:
            _output.reset(token)

    def _apply_watermark(self, unit: _Unit, watermark: dict) -> None:
        """A source partition's watermark read on a segment-facts partition: taken
        into the segment engine's clock and kept in its state (a rebuilt engine
        knows what it had heard)."""
        try:
            partition = int(watermark["partition"])
            progress = tuple((str(topic), None if ts is None else float(ts), bool(idle))
                             for topic, ts, idle in watermark["progress"])
            idle_ts = watermark.get("idle_ts")
            idle_ts = None if idle_ts is None else float(idle_ts)
        except (KeyError, TypeError, ValueError):
            log.warning("unreadable watermark on %s: %r", self.segment_name, watermark)
            return
        self._take_watermark(unit.inputs, partition, progress, idle_ts)
        unit.state[WATERMARK_PREFIX + str(partition)] = (progress, idle_ts)

    async def _caught_up(self, tps: list) -> list:
        """The topic partitions of `tps` for which this worker has evaluated everything the broker holds.

        A topic partition caught up is idle for the clocks: it does not hold
        them back (it has nothing to deliver that a replay would have applied
        before them). One that is not caught up holds its partition's clock at
        its progress; a partition all of whose topics are caught up takes the
        shared clock.

        Progress is counted by position, not by "last offset + 1 = end":
        transaction markers, records of aborted transactions and compacted
        records take offsets no record is delivered for. Caught up means
        the consumer's fetch position has reached the end the consumer may
        read to (the last stable offset, read_committed) and every record
        faust handed to the agent has been processed.
        """
        consumer = self.app.consumer
        # Every topic of the partition is looked at, even after one that is
        # behind: each caught-up one gets its trailing markers acknowledged.
        # Stopping at the first one behind (in an order the assignment does
        # not fix) left another topic's last commit marker uncommitted.
        caught_up = []
        for tp in tps:
            try:
                end = consumer.highwater(tp)
            except AssertionError:
                continue  # taken away by a rebalance under way: not caught up here
            if end is None:
                continue
            stable = self._last_stable_offset(tp)
            if stable is not None and 0 <= stable < end:
                end = stable
            done = self.positions.get(tp)
            if done is not None and done + 1 >= end:
                caught_up.append(tp)
                continue
            handed = consumer._read_offset.get(tp)
            if done is not None and handed is not None and done < handed:
                # Records handed on and not processed yet: behind, whatever the fetch position.
                if self._skipped(tp, done, handed):
                    await self._fetch_skipped(tp, done + 1, handed)
                continue
            try:
                position = await consumer.position(tp)
            except Exception:  # taken away by a rebalance while this tick ran (IllegalStateError)
                continue
            if position is not None and position < end:
                position = await self._after_fetching_again(tp, position)
            if position is None or position < end:
                continue
            handed = consumer._read_offset.get(tp)
            if handed is None or done is None:
                # Nothing processed since the assignment and the fetch position
                # at the end: caught up if that is where the group's commit
                # left it. Past the commit, records were fetched and never
                # handed on (`_fetch_again`).
                if done is None and handed is None and position > 0:
                    if not self._settled(tp, -1):
                        continue
                    if await self._fetch_again(tp, None, position):
                        continue
                caught_up.append(tp)
                continue
            # The fetch position runs ahead of the records faust has handed
            # on while it still holds some it fetched; only once nothing new
            # was handed on for a while is the rest of the gap offsets
            # without records (markers, aborted or compacted records), once
            # fetching them again has shown it.
            if done < handed or not self._settled(tp, handed):
                continue
            if position > handed + 1 and await self._fetch_again(tp, handed + 1, position):
                continue
            self._skip_unread_offsets(tp, handed, done, position)
            caught_up.append(tp)
        return caught_up

    def _skipped(self, tp: Any, done: int, handed: int) -> bool:
        """True once records up to `handed` were handed on, only up to `done`
        evaluated, and nothing changed for SKIPPED_AFTER_SECONDS with no batch
        under way: faust's stream iterator skips, without acknowledging, a
        record it dequeues while its flow control is stopped or from an
        earlier generation, after `getmany` handed it on (docs/decisions.md,
        the recreated-topic test)."""
        now = time.monotonic()
        seen = self._unevaluated.get(tp)
        if seen is None or seen[0] != (done, handed) or self._in_flight:
            self._unevaluated[tp] = ((done, handed), now)
            return False
        return now - seen[1] >= SKIPPED_AFTER_SECONDS

    async def _fetch_skipped(self, tp: Any, start: int, handed: int) -> None:
        """Fetch `tp` again from `start`, once per (start, handed). faust's
        read offset goes back with it: its drain loop drops a record below
        that offset. A record that was in fact evaluated comes back as a
        duplicate event id, which the engine counts and ignores."""
        if self._skipped_fetched.get(tp) == (start, handed):
            return
        self._skipped_fetched[tp] = (start, handed)
        if not await self._seek(tp, start):
            return
        self.app.consumer._read_offset[tp] = start - 1
        self._unevaluated.pop(tp, None)
        log.warning("%s[%d]: records %d to %d handed on and never evaluated (skipped by faust's stream); "
                    "fetching them again", tp.topic, tp.partition, start, handed)

    async def _after_fetching_again(self, tp: Any, position: int) -> int:
        """The fetch position to judge `tp` by, after `_fetch_again`.

        A range holding only transaction markers (or aborted records) does
        not move the consumer on when fetched from its start again: it stays
        at the range's start. Once nothing was handed on from there for a
        settle period, the range is what it seemed, and the consumer is put
        back where it was before (returned); otherwise `position` as it is.
        """
        refetched = self._refetched.get(tp)
        if refetched is None or position != refetched[0]:
            return position
        handed = self.app.consumer._read_offset.get(tp)
        if handed is not None and handed + 1 != refetched[0]:
            return position
        if not self._settled(tp, -1 if handed is None else handed):
            return position
        return refetched[1] if await self._seek(tp, refetched[1]) else position

    async def _seek(self, tp: Any, offset: int) -> bool:
        """Move the consumer's fetch position of `tp` to `offset` (in the consumer's thread); False if it was taken away by a rebalance meanwhile."""
        thread = self.app.consumer._thread
        try:
            await thread.call_thread(thread._consumer.seek, tp, offset)
        except Exception as error:
            log.debug("%s not moved to %d: %s", tp, offset, error)
            return False
        return True

    async def _fetch_again(self, tp: Any, start: int | None, position: int) -> bool:
        """Fetch a source topic partition again from `start` (None: the group's
        committed offset, or the log's start) if records between it and the
        fetch position `position` were never handed on; True if it did.

        After a rebalance faust's fetch loop can take records from the
        consumer and drop them (a generation or flow change while it walks a
        fetched batch): the consumer's position is past them, nothing is
        handed on, and nothing fetches them again. A two-worker test stalled
        with every record of two partitions fetched and none evaluated; with
        transaction markers assumed, such records would even be committed
        unread. So an offset range with nothing handed on is fetched once
        more; only what is still missing after that is taken for offsets
        without records (markers, aborted or compacted records). Once per
        (start, position), so a partition ending in markers costs one more
        fetch and settle, not a loop.
        """
        thread = self.app.consumer._thread
        driver = thread._consumer
        if start is None:
            # One look at the broker per fetch position: an idle partition
            # right after an assignment is the common case, not a loss.
            seen = self._refetched.get(tp)
            if seen is not None and seen[1] == position:
                return False
            try:
                committed = await thread.call_thread(driver.committed, tp)
                start = committed if committed is not None else (
                    await thread.call_thread(driver.beginning_offsets, [tp]))[tp]
            except Exception as error:  # taken away by a rebalance meanwhile
                log.debug("committed offset of %s not known: %s", tp, error)
                return False
        if self._refetched.get(tp) == (start, position):
            return False
        self._refetched[tp] = (start, position)
        if start >= position:
            return False
        if not await self._seek(tp, start):
            return False
        self._handed.pop(tp, None)
        log.warning("%s[%d]: fetch position %d with nothing handed on from offset %d; fetching again from %d",
                    tp.topic, tp.partition, position, start, start)
        return True

    def _settled(self, tp: Any, handed: int) -> bool:
        seen = self._handed.get(tp)
        now = time.monotonic()
        if seen is None or seen[0] != handed:
            self._handed[tp] = (handed, now)
            return False
        return now - seen[1] >= SETTLE_SECONDS

    def _last_stable_offset(self, tp: Any) -> int | None:
        thread = getattr(self.app.consumer, "_thread", None)
        driver = getattr(thread, "_consumer", None)
        if driver is None:
            return None
        try:
            return driver.last_stable_offset(tp)
        except Exception:  # not assigned any more, or unknown yet
            return None

    def _skip_unread_offsets(self, tp: Any, handed: int | None, done: int | None, position: int) -> None:
        """Mark offsets after the last record processed and before the fetch position as done.

        Those are transaction markers or records of aborted transactions:
        no record is ever delivered for them, and faust only fills such a
        gap when a later record arrives, so a partition whose last record
        is a commit marker was never committed up to its end (its lag never
        reached 0, and a restart read the partition's last transaction again).
        This adds them to faust's acknowledged offsets, as `Consumer.ack`
        does for a record, and moves faust's read offset past them.
        """
        if handed is None or done is None or done < handed or position <= handed + 1:
            return
        consumer = self.app.consumer
        committed = consumer._committed_offset.get(tp)
        acked, index = consumer._acked[tp], consumer._acked_index[tp]
        for offset in range(handed + 1, position):
            if (committed is None or offset >= committed) and offset not in index:
                index.add(offset)
                acked.append(offset)
        consumer._read_offset[tp] = position - 1
        # Done as a record evaluated is: the next look finds the partition
        # caught up again instead of behind its own read offset.
        self.positions[tp] = position - 1

    async def _advance(self, units: dict, partition: int, watermark: float, send_facts: bool) -> None:
        """Fire the deadlines of one partition up to `watermark`; its output acknowledged before the table takes it.

        A failure drops the partition's engine (rebuilt from the table by the
        next tick, which advances it again) instead of stopping the timer.
        """
        unit = self._unit(partition) if units is self.units else self._segment_unit(partition)
        if unit.advanced_to is not None and watermark <= unit.advanced_to:
            return
        token = _output.set(_Output())
        try:
            unit.advanced_to = watermark
            changes = unit.engine.advance_to(watermark)
            facts = unit.facts[:]
            unit.facts.clear()
            if send_facts:
                await self._send_facts(facts)
            await self._write_state(unit, partition)
            await self._emit(changes)
            await self._delivered()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            units.pop(partition, None)
            log.warning("advancing partition %d to the watermark failed (%s: %s); retried on the next tick",
                        partition, type(error).__name__, error)
        finally:
            _output.reset(token)

    def refresh_gauges(self) -> None:
        m = self.metrics
        self.tally.refresh()
        watermark = self.clock.watermark_ts
        if watermark is not None:
            m.watermark_seconds.set(watermark)
            m.watermark_lag_seconds.set(time.time() - watermark)
        m.tracked_entities.set(sum(len(u.state) for u in self.units.values()))
        m.deadlines_pending.set(sum(len(u.engine.deadlines) for u in self.units.values()))
        m.segment_watermark_seconds.set(self.segment_watermark())
        self.refresh_source_topics()

    def segment_watermark(self) -> float:
        """The clock of the slowest segment engine this worker owns (Unix
        seconds; 0 for one not advanced yet, NaN when it owns none).

        Segment engines read their facts from another topic and can lag the
        source partitions by minutes after a rebalance or in a backlog: group
        alerts (collection rate, churn) come that much later, and an alert
        count taken when `riskwatch_watermark_seconds` reached the end can
        still be missing some."""
        try:
            actives = self.app.assignor.assigned_actives() if self.ready else ()
        except Exception:  # no assignment yet
            actives = ()
        owned = {tp.partition for tp in actives if tp.topic == self.segment_name}
        if not owned:
            return float("nan")
        clocks = []
        for partition in owned:
            unit = self.segment_units.get(partition)
            clocks.append(0.0 if unit is None or unit.advanced_to is None else unit.advanced_to)
        return min(clocks)

    def refresh_source_topics(self) -> None:
        """Set riskwatch_source_topic_partitions from the consumer's metadata:
        a recreated or deleted source topic shows as 0 until the consumer sees
        it again (at most METADATA_MAX_AGE_SECONDS later), so an operator can
        alert on it instead of reading "Ignoring missing topic" in the log."""
        try:
            driver = self.app.consumer._thread._consumer
        except Exception:  # not started yet: nothing known to show
            return
        for name in sorted(self.source_names):
            self.metrics.source_topic_partitions.labels(topic=name).set(len(driver.partitions_for_topic(name) or ()))


def read_committed_only() -> None:
    """Make faust's worker consumer read committed records only (isolation_level="read_committed").

    ERPs and Kafka Connect often write with transactions; a record of an
    aborted transaction must never reach the engine (a replay of the
    committed records would not raise its alerts). faust chooses the
    isolation level itself (read_committed only under its exactly-once
    processing guarantee, which also makes its producer transactional) and
    takes no setting for it, so the consumer it creates is given the level
    before it starts (aiokafka hands it to its fetcher in `start`).
    """
    from faust.transport.drivers import aiokafka as driver

    original = driver.AIOKafkaConsumerThread._create_worker_consumer
    if getattr(original, "reads_committed_only", False):
        return

    def create_worker_consumer(self: Any, transport: Any) -> Any:
        consumer = original(self, transport)
        consumer._isolation_level = "read_committed"
        return consumer

    create_worker_consumer.reads_committed_only = True  # type: ignore[attr-defined]
    driver.AIOKafkaConsumerThread._create_worker_consumer = create_worker_consumer


def create_app(options: WorkerOptions) -> tuple[faust.App, Processor]:
    read_committed_only()
    refetch_dropped_records()
    forget_commits_of_deleted_topics()
    s = options.settings
    prefix = s.topic_prefix
    registry = CollectorRegistry()
    metrics = RiskwatchMetrics.create(registry)
    app = faust.App(
        app_id(prefix),
        broker=[f"kafka://{host}" for host in s.broker.split(",")],
        store="memory://",
        datadir=str(s.state_dir),
        topic_partitions=options.partitions,
        topic_replication_factor=1,
        web_port=s.web_port,
        web_enabled=True,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=1.0,
        # Batch produce requests a little: one request per record costs more
        # than the engine's work on it. A batch's records are queued together
        # before it waits for them, so they share requests anyway.
        producer_linger=0.002,
        producer_max_batch_size=256 * 1024,
        consumer_max_fetch_size=FETCH_BYTES_PER_PARTITION,
        broker_commit_every=1000,
        stream_wait_empty=False,
        table_standby_replicas=1,
        # A worker killed with -9 holds its partitions until the session times
        # out (faust's default is 60 s); a survivor should take over sooner.
        broker_session_timeout=10.0,
        broker_heartbeat_interval=1.0,
        consumer_metadata_max_age_ms=int(METADATA_MAX_AGE_SECONDS * 1000),
        autodiscover=False,
    )
    # faust's own sensor on the same registry, so /metrics serves both.
    app.monitor = WorkerMonitor(metrics=FaustMetrics.create(registry, "faust"))
    processor = Processor(app, options, metrics)

    raw = {"key_serializer": "raw", "value_serializer": "raw"}
    sources = app.topic(*[topic_name(prefix, stream) for stream in SOURCE_STREAMS], **raw)
    segment_facts = app.topic(processor.segment_name, partitions=options.partitions, internal=True, **raw)
    processor.alerts_topic = app.topic(topic_name(prefix, ALERTS), partitions=options.partitions, **raw)
    processor.dead_letter_topic = app.topic(topic_name(prefix, DEAD_LETTER), partitions=options.partitions, **raw)
    processor.segment_topic = segment_facts
    processor.clock_topic = app.topic(topic_name(prefix, CLOCK), partitions=1, **raw)
    # Engine state: values pickled by PartitionState (the changelog is
    # written and read only by riskwatch workers), keys as JSON strings.
    processor.table = app.Table("state", key_type=str, value_type=bytes, partitions=options.partitions)
    processor.changelog_name = processor.table.changelog_topic.get_topic_name()

    # Batches: each partition's state is written once per batch, and a
    # batch's events are acknowledged (so committable) once the broker has
    # acknowledged its output (`Processor.guarded`). `within` bounds what a
    # trickle of events waits.
    @app.agent(sources, name="evaluate")
    async def evaluate(stream: Any) -> None:
        async for events in stream.take_events(BATCH_EVENTS, within=BATCH_WITHIN_SECONDS):
            await processor.guarded(processor.on_source_records, [event.message for event in events], processor.units)

    if options.cdc is not None:
        # Change topics belong to the connector: their partition count is its
        # own, and faust assigns them apart from the co-partitioned topics.
        changes = app.topic(*options.cdc.topics, **raw)

        @app.agent(changes, name="capture")
        async def capture(stream: Any) -> None:
            async for events in stream.take_events(BATCH_EVENTS, within=BATCH_WITHIN_SECONDS):
                # No engine state is written here: nothing to roll back on a failed batch.
                await processor.guarded(processor.on_change_records, [event.message for event in events], {})

    @app.agent(segment_facts, name="aggregate")
    async def aggregate(stream: Any) -> None:
        async for events in stream.take_events(BATCH_EVENTS, within=BATCH_WITHIN_SECONDS):
            await processor.guarded(processor.on_segment_facts, [event.message for event in events],
                                    processor.segment_units)

    @app.timer(interval=options.tick_seconds, name="clock")
    async def tick() -> None:
        # An exception escaping a faust timer stops the whole worker; the
        # clock's next tick does all of this again.
        try:
            await processor.on_tick()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("clock tick failed; the next tick tries again")

    stopped = asyncio.Event()

    @app.task
    async def follow_clock() -> None:
        await follow_clock_topic(processor.clock, s.broker, topic_name(prefix, CLOCK), stopped)

    @app.on_partitions_revoked.connect
    async def on_revoked(app: faust.App, revoked: Any, **kwargs: Any) -> None:
        processor.on_revoked()

    @app.on_partitions_assigned.connect
    async def on_assigned(app: faust.App, assigned: Any, **kwargs: Any) -> None:
        processor.on_assigned()

    @app.on_before_shutdown.connect
    def on_shutdown(app: faust.App, **kwargs: Any) -> None:
        stopped.set()
        processor.desk.close()

    @app.page("/metrics")
    async def metrics_page(self: Any, request: Any) -> Response:
        processor.refresh_gauges()
        return Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    @app.page("/livez")
    async def livez(self: Any, request: Any) -> Response:
        return Response(text="ok\n")

    @app.page("/readyz")
    async def readyz(self: Any, request: Any) -> Response:
        if processor.ready:
            return Response(text="ready\n")
        if processor.copartition_problem:
            return Response(text=f"not ready: {processor.copartition_problem}\n", status=503)
        return Response(text="not ready: waiting for partition assignment or table recovery\n", status=503)

    metrics.up.labels(component="worker").set(1)
    metrics.rules_loaded_timestamp_seconds.set(time.time())
    return app, processor


def run_worker(app, log_level: str) -> None:
    """Run the faust worker until it is stopped (SIGINT/SIGTERM)."""
    faust.Worker(app, loglevel=log_level.lower(), quiet=True).execute_from_commandline()
