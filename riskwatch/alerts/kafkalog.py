"""The workflow log on Kafka: the same interface as `WorkflowStore`, backed by
the `riskwatch.alerts` and `riskwatch.actions` topics.

In the Kafka deployment the worker that keeps the alert desk (the owner of
source partition 0, streams/workflow.py) and every API replica each keep an
`AlertDesk` over this log. Each reads both topics from the beginning (a plain
consumer outside any group: each desk needs every record), so a restarted
process rebuilds the same state, and the topics are the only durable copy.
A person's action (recorded by the API) is produced and acknowledged by the
broker before it is folded, so an action the API has confirmed cannot be
lost; what the clock made due (escalations recorded by a worker) is sent in one batch per desk tick and sent again
until the broker takes it (it could be derived again from the log anyway).

Records of the two topics are merged by their Kafka timestamp: an action is
produced after the alert change it refers to was read, so that order is the
order in which they happened. A record already folded (same action id, same
alert id and sequence) is folded once, which makes redelivery, two workers
recording the same missed deadline, and reading back one's own records all
harmless.

Within one partition the fold keeps the partition's order: records of a
partition are folded in offset order even when their timestamps (stamped by
each producer's own clock) say otherwise. That is what lets the log decide
between replicas (docs/decisions.md, "Contingency plans in the Kafka
deployment"): every action on a contingency plan is written under one
Kafka key (`PLANS_KEY`), so all plan records share one partition, and a
plan trigger is a *claim* that every desk decides at fold time against
the plan records before it in that partition (`AlertDesk`). A replica
that writes a plan record does not fold it at once: it waits until its own
reader has read it back in its place (`append`), so its answer is the
log's decision. Idempotency keys in the Kafka deployment are records on the
actions topic too (`riskwatch.alerts.idempotency.LoggedIdempotencyKeys`);
they are handed to `key_index` and never reach the desk or the audit trail.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from contextlib import contextmanager
from typing import Iterator

import orjson

from riskwatch.contracts import SYSTEM_ROLE, Action, AlertChange, RecordInvalid
from riskwatch.alerts.idempotency import KEY_RECORD, KeyIndex
from riskwatch.alerts.store import record_id
from riskwatch.sinks.kafka import ACTIONS, ALERTS, topic_name
from riskwatch.errors import RiskwatchError

log = logging.getLogger(__name__)


# The Kafka key of every action on a contingency plan (trigger, step done,
# close): one partition holds them all, in one order every desk agrees on.
PLANS_KEY = b"contingency-plans"
PLAN_KINDS = frozenset({"plan_triggered", "plan_step_done", "plan_closed"})


class WorkflowLogUnavailable(RiskwatchError, RuntimeError):
    """The broker did not take a record in time: nothing was recorded."""


class WorkflowLogBehind(WorkflowLogUnavailable):
    """A record was taken by the broker but this process did not read it back
    in time: it is in the log and every desk will fold it, but its outcome
    (a plan claim won or lost) is not known here yet."""


def shape_problem(kind: str, body: object) -> str | None:
    """Why a record read from a topic cannot be folded, or None.

    Any client can write to a topic; a record that does not fit its
    contract (`Action.from_json`, `AlertChange.from_json`) is skipped (and
    logged) rather than allowed to stop the desk.
    """
    try:
        (Action if kind == "action" else AlertChange).from_json(body)
    except RecordInvalid as problem:
        return str(problem)
    return None


class KafkaWorkflowLog:
    """Append-only log over two topics, read in full by every process.

    `key_index` (a `KeyIndex`, the API's) receives the idempotency key
    records of the actions topic in partition order; without one they are
    passed over. The log does not serialise writers in other processes
    (`serialises_writers` False): decisions two replicas could both take are
    left to the log's order (see the module doc).
    """

    serialises_writers = False

    def __init__(self, broker: str, topic_prefix: str = "riskwatch.", *, client_id: str = "riskwatch-desk",
                 catch_up_timeout: float = 120.0, send_timeout: float = 15.0, key_index: KeyIndex | None = None):
        from kafka import KafkaProducer

        self.alerts_topic = topic_name(topic_prefix, ALERTS)
        self.actions_topic = topic_name(topic_prefix, ACTIONS)
        self._kind_of = {self.alerts_topic: "alert_change", self.actions_topic: "action"}
        self._servers = broker.split(",")
        self._client_id = client_id
        self._send_timeout = send_timeout
        self._lock = threading.RLock()
        self._seq = 0
        self._unread: list[tuple[int, str, dict]] = []   # appended, not yet read by the desk
        self._actions: list[tuple[int, dict]] = []       # every action: the audit trail
        self._ids: set[str] = set()
        self.key_index = key_index
        self.skipped = 0                                 # records read that could not be folded
        # The reader hands records over through an inbox with a lock of its
        # own, so that a writer holding the log's lock can wait for its record
        # to be read back (`append`) without stopping the reader.
        self._inbox: list[tuple[str, dict]] = []
        self._inbox_cond = threading.Condition(threading.Lock())
        self._read_to: dict[tuple[str, int], int] = {}   # (topic, partition) -> next offset not yet taken
        self._partition_clock: dict[tuple[str, int], int] = {}  # latest timestamp folded per partition
        self._stopped = threading.Event()
        self._caught_up = threading.Event()
        self._failure: str | None = None
        self._producer = KafkaProducer(bootstrap_servers=self._servers, client_id=client_id, acks="all", linger_ms=5)
        self._depth = 0
        self._unconfirmed: list[tuple[str, bytes, bytes, object]] = []   # system records sent, not yet acknowledged
        self._reader = threading.Thread(target=self._read, name=f"{client_id}-reader", daemon=True)
        self._reader.start()
        if not self._caught_up.wait(catch_up_timeout) or self._failure is not None:
            self.close()
            raise WorkflowLogUnavailable(self._failure or f"could not read {self.alerts_topic} and {self.actions_topic} "
                                                           f"from {broker} within {catch_up_timeout:.0f} s")

    def _read(self) -> None:
        asyncio.run(self._read_topics())

    async def _read_topics(self) -> None:
        # aiokafka, on a loop of this thread's own: its record decoding is
        # compiled, and a worker draining a backlog reads every alert change it
        # writes back through here (kafka-python's pure-Python decoding took a
        # third of such a worker's CPU).
        from aiokafka import AIOKafkaConsumer

        wanted = {self.alerts_topic, self.actions_topic}
        # Without a group, aiokafka assigns every partition of the topics.
        # A fetch waits up to 200 ms for 64 KiB: an acknowledgement reaches the
        # workers well within a desk tick, and a busy alerts topic is read in
        # large fetches rather than a stream of small ones.
        consumer = AIOKafkaConsumer(*sorted(wanted), bootstrap_servers=self._servers, client_id=self._client_id,
                                    group_id=None, enable_auto_commit=False, auto_offset_reset="earliest",
                                    fetch_max_wait_ms=200, fetch_min_bytes=64 * 1024)
        deadline = time.monotonic() + 60
        started = False
        try:
            while True:
                try:
                    if not started:
                        await consumer.start()
                        started = True
                    assigned = consumer.assignment()
                    if {tp.topic for tp in assigned} == wanted:
                        break
                    problem = f"topics {self.alerts_topic} and {self.actions_topic} do not exist"
                except Exception as error:  # broker not reachable yet
                    problem = f"broker {','.join(self._servers)}: {error}"
                if time.monotonic() > deadline or self._stopped.is_set():
                    self._failure = problem
                    self._caught_up.set()
                    return
                await asyncio.sleep(0.5)
            await consumer.seek_to_beginning(*assigned)
            start_end = await consumer.end_offsets(list(assigned))
            pending_catch_up: list = []
            while not self._stopped.is_set():
                batches = await consumer.getmany(timeout_ms=500, max_records=5000)
                records = [r for rs in batches.values() for r in rs]
                if not self._caught_up.is_set():
                    # Until the whole history is read, merge it at once: the
                    # topics are fetched partition by partition, not in time order.
                    pending_catch_up.extend(records)
                    positions = [await consumer.position(tp) for tp in start_end]
                    if all(at >= start_end[tp] for at, tp in zip(positions, start_end)):
                        self._take(pending_catch_up)
                        pending_catch_up = []
                        self._caught_up.set()
                    continue
                if records:
                    self._take(records)
        finally:
            if started:
                await consumer.stop()

    def _take(self, records: list) -> None:
        """Hand a batch of read records to the inbox, merged by timestamp.

        A record's timestamp is its producer's clock; two replicas' clocks
        disagree, so a later offset may carry an earlier time. Each record
        is merged at the latest timestamp of its partition so far, which keeps
        every partition in offset order: the order the log decides by."""
        records.sort(key=lambda r: (r.topic, r.partition, r.offset))
        merged = []
        for record in records:
            where = (record.topic, record.partition)
            at = max(record.timestamp, self._partition_clock.get(where, record.timestamp))
            self._partition_clock[where] = at
            merged.append((at, record.topic != self.alerts_topic, record.partition, record.offset, record))
        merged.sort(key=lambda entry: entry[:4])
        taken: list[tuple[str, dict]] = []
        for *_order, record in merged:
            kind = self._kind_of.get(record.topic)
            try:
                body = orjson.loads(record.value)
            except (orjson.JSONDecodeError, TypeError):
                body = None
            if kind == "action" and isinstance(body, dict) and body.get("record") == KEY_RECORD:
                if self.key_index is not None:
                    self.key_index.take(body)
                continue
            problem = "not JSON" if body is None else shape_problem(kind, body)
            if problem is not None:
                self.skipped += 1
                log.warning("%s[%d]@%d: not a workflow record (%s); skipped",
                            record.topic, record.partition, record.offset, problem)
                continue
            taken.append((kind, body))
        with self._inbox_cond:
            self._inbox.extend(taken)
            for record in records:
                where = (record.topic, record.partition)
                self._read_to[where] = max(self._read_to.get(where, 0), record.offset + 1)
            self._inbox_cond.notify_all()

    def _drain(self) -> None:
        """Move what the reader took into the log (the caller holds the log's lock)."""
        with self._inbox_cond:
            taken, self._inbox = self._inbox, []
        for kind, body in taken:
            self._append_local(kind, body)

    def wait_read(self, topic: str, partition: int, offset: int, timeout: float) -> bool:
        """Wait until this process's reader has taken the record at `offset`
        of (`topic`, `partition`); True if it did within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._inbox_cond:
            while self._read_to.get((topic, partition), 0) <= offset:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stopped.is_set():
                    return False
                self._inbox_cond.wait(remaining)
            return True

    def produce_key_record(self, kafka_key: bytes, record: dict) -> tuple[int, int]:
        """Produce an idempotency key record on the actions topic and wait for
        the broker; returns its (partition, offset). Raises
        WorkflowLogUnavailable if the broker does not take it in time."""
        try:
            sent = self._producer.send(self.actions_topic, key=kafka_key, value=orjson.dumps(record))
            metadata = sent.get(timeout=self._send_timeout)
        except Exception as error:
            raise WorkflowLogUnavailable(f"{self.actions_topic}: the broker did not take the record: {error}") from error
        return metadata.partition, metadata.offset

    def _append_local(self, kind: str, body: dict) -> int | None:
        rid = record_id(kind, body)
        if rid in self._ids:
            return None
        self._ids.add(rid)
        self._seq += 1
        self._unread.append((self._seq, kind, body))
        if kind == "action":
            self._actions.append((self._seq, body))
        return self._seq

    # ---------------------------------------------------------------- the WorkflowStore interface

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Serialises appends and folds; system records sent inside are confirmed when it ends."""
        with self._lock:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self._confirm()

    def append(self, kind: str, record: dict) -> int | None:
        """Produce the record, then fold it here; None when already recorded.

        A person's action waits for the broker first (WorkflowLogUnavailable if
        it does not take it); a system action is confirmed when the transaction ends.
        """
        with self._lock:
            self._drain()
            if record_id(kind, record) in self._ids:
                return None
            if kind == "action" and record.get("kind") in PLAN_KINDS:
                return self._append_in_log_order(record)
            if kind == "action":
                topic, key = self.actions_topic, record["subject_key"].encode()
            else:
                topic, key = self.alerts_topic, record["alert_id"].encode()
            value = orjson.dumps(record)
            if kind == "action" and record.get("role") == SYSTEM_ROLE:
                # What the clock made due can be derived again from the log, so it
                # is folded at once and confirmed in one flush when the transaction
                # ends (a tick after a backlog records thousands of escalations).
                self._unconfirmed.append((topic, key, value, self._producer.send(topic, key=key, value=value)))
                if self._depth == 0:
                    self._confirm()
                return self._append_local(kind, record)
            try:
                self._producer.send(topic, key=key, value=value).get(timeout=self._send_timeout)
            except Exception as error:
                raise WorkflowLogUnavailable(f"{topic}: the broker did not take the record: {error}") from error
            return self._append_local(kind, record)

    def _append_in_log_order(self, record: dict) -> int | None:
        """A plan record: produced under PLANS_KEY, then folded only once this
        process has read it back, after every plan record before it in the
        partition, so this desk decides it as every other desk does."""
        value = orjson.dumps(record)
        try:
            metadata = self._producer.send(self.actions_topic, key=PLANS_KEY, value=value).get(timeout=self._send_timeout)
        except Exception as error:
            raise WorkflowLogUnavailable(f"{self.actions_topic}: the broker did not take the record: {error}") from error
        if not self.wait_read(self.actions_topic, metadata.partition, metadata.offset, self._send_timeout):
            raise WorkflowLogBehind(f"{self.actions_topic}: the record was written but not read back within "
                                    f"{self._send_timeout:.0f} s; it will be folded later")
        self._drain()
        rid = record_id("action", record)
        for seq, kind, body in reversed(self._unread):
            if kind == "action" and record_id(kind, body) == rid:
                return seq
        return None

    def _confirm(self) -> None:
        """Wait for the system records sent; send again what the broker did not take (ids fold repeats)."""
        if not self._unconfirmed:
            return
        try:
            self._producer.flush(timeout=self._send_timeout)
        except Exception as error:
            log.warning("flushing workflow records: %s", error)
        retry = [(topic, key, value) for topic, key, value, sent in self._unconfirmed if not sent.succeeded()]
        self._unconfirmed = [(topic, key, value, self._producer.send(topic, key=key, value=value))
                             for topic, key, value in retry]
        if retry:
            log.warning("%d workflow records not yet taken by the broker; sent again", len(retry))

    def read_after(self, seq: int) -> list[tuple[int, str, dict]]:
        with self._lock:
            self._drain()
            # One desk reads this log: what it has read is not needed again.
            self._unread = [entry for entry in self._unread if entry[0] > seq]
            return list(self._unread)

    def actions(self, *, subject: str | None = None, after: int = 0, limit: int = 1000) -> list[tuple[int, dict]]:
        with self._lock:
            self._drain()
            found = [(s, r) for s, r in self._actions if s > after and (subject is None or r.get("subject_key") == subject)]
        return found[:limit]

    def last_seq(self) -> int:
        with self._lock:
            self._drain()
            return self._seq

    def describe(self) -> str:
        return f"kafka topics {self.alerts_topic}, {self.actions_topic}"

    def close(self) -> None:
        self._stopped.set()
        if self._reader.is_alive() and self._reader is not threading.current_thread():
            self._reader.join(timeout=5)
        self._producer.close(timeout=5)
