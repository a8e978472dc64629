"""Idempotency keys: a person's request retried after a timeout is recorded once.

A client sends `Idempotency-Key: <key>` with a state-changing request; the
first answer to that key is kept (in the workflow store's SQLite file, table
`idempotency_keys`, beside the log) and given again, without recording
anything, to a retry with the same key and the same request. Keys belong to
the token that used them and are forgotten after a lifetime (24 h by
default). The key is claimed before the request runs, so two copies of one
request in flight at once run once: the second is told the first is still
being processed.

In the Kafka deployment the API runs as several replicas with no shared
file: `LoggedIdempotencyKeys` keeps the keys as records on the actions
topic (`KEY_RECORD`: claimed, answered, released), all records of one key
under one Kafka key, so one partition orders them. Every replica folds them
into a `KeyIndex`; the first claim of a key in its partition owns it. A
replica that claims a key waits until it has read its claim back, so it
has also read every earlier claim and answer of that key: a retry on the
other replica gets the first answer, or 409 while the first is running.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import sqlite3
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

# The `record` field of an idempotency key record on the actions topic.
KEY_RECORD = "idempotency_key"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS idempotency_keys (
    scope        TEXT NOT NULL,
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    created_ts   REAL NOT NULL,
    status       INTEGER,
    media_type   TEXT,
    body         BLOB,
    PRIMARY KEY (scope, key)
);
CREATE INDEX IF NOT EXISTS idempotency_keys_created ON idempotency_keys (created_ts);
"""


@dataclass(frozen=True)
class Claim:
    """What a key says about a request: `outcome` is "new" (run it, then
    `complete` or `release`), "replay" (give `status`/`media_type`/`body`
    again), "mismatch" (the key was used for another request) or "pending"
    (the first request with the key has not finished, or was interrupted)."""
    outcome: str
    status: int | None = None
    media_type: str | None = None
    body: bytes | None = None


class IdempotencyKeys:
    """Keys kept in SQLite at `path` (the workflow store's file), or in memory
    with `path=None` (an API over a desk without a store: per process, lost at
    restart; the Kafka deployment uses `LoggedIdempotencyKeys`).
    `lifetime_seconds` > 0: how long a key is remembered."""

    def __init__(self, path: Path | None, lifetime_seconds: float = 24 * 3600.0):
        if lifetime_seconds <= 0:
            raise ValueError("idempotency key lifetime must be positive")
        self.lifetime_seconds = lifetime_seconds
        self._lock = threading.Lock()
        self._db = sqlite3.connect(":memory:" if path is None else str(path), isolation_level=None,
                                   check_same_thread=False, timeout=30)
        if path is not None:
            self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    def claim(self, scope: str, key: str, request_hash: str, now: float | None = None) -> Claim:
        now = time.time() if now is None else now
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("DELETE FROM idempotency_keys WHERE created_ts < ?", (now - self.lifetime_seconds,))
                row = self._db.execute(
                    "SELECT request_hash, status, media_type, body FROM idempotency_keys WHERE scope = ? AND key = ?",
                    (scope, key)).fetchone()
                if row is None:
                    self._db.execute("INSERT INTO idempotency_keys (scope, key, request_hash, created_ts) "
                                     "VALUES (?, ?, ?, ?)", (scope, key, request_hash, now))
                    claim = Claim("new")
                elif row[0] != request_hash:
                    claim = Claim("mismatch")
                elif row[1] is None:
                    claim = Claim("pending")
                else:
                    claim = Claim("replay", row[1], row[2], row[3])
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            return claim

    def complete(self, scope: str, key: str, status: int, media_type: str | None, body: bytes) -> None:
        """Keep the answer given to the claimed request."""
        with self._lock:
            self._db.execute("UPDATE idempotency_keys SET status = ?, media_type = ?, body = ? "
                             "WHERE scope = ? AND key = ?", (status, media_type, body, scope, key))

    def release(self, scope: str, key: str) -> None:
        """Forget a claim whose request recorded nothing (a server error, the
        broker unavailable), so a retry with the same key runs."""
        with self._lock:
            self._db.execute("DELETE FROM idempotency_keys WHERE scope = ? AND key = ?", (scope, key))

    def close(self) -> None:
        with self._lock:
            self._db.close()


@dataclass
class _KeyEntry:
    request_hash: str
    claim_id: str
    created_ts: float
    status: int | None = None
    media_type: str | None = None
    body: bytes | None = None

    def claim_for(self, request_hash: str) -> Claim:
        if request_hash != self.request_hash:
            return Claim("mismatch")
        if self.status is None:
            return Claim("pending")
        return Claim("replay", self.status, self.media_type, self.body)


class KeyIndex:
    """The idempotency keys folded from the key records of the actions topic.

    `take(record)` folds one record (a dict with `record` == KEY_RECORD,
    `event` claimed | answered | released, `scope`, `key`, `claim_id`, `at`
    in Unix seconds; a claim adds `request_hash`, an answer `status`,
    `media_type` and `body` in base64). Records must come in their
    partition's order: the first unexpired claim of a key owns it; an answer
    or release counts only for the claim that owns the key. A key is
    forgotten `lifetime_seconds` after its claim. Thread-safe.
    """

    def __init__(self, lifetime_seconds: float = 24 * 3600.0):
        if lifetime_seconds <= 0:
            raise ValueError("idempotency key lifetime must be positive")
        self.lifetime_seconds = lifetime_seconds
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[str, str], _KeyEntry] = OrderedDict()

    def take(self, record: dict) -> None:
        try:
            event, where, claim_id = record["event"], (str(record["scope"]), str(record["key"])), str(record["claim_id"])
            at = float(record["at"])
            with self._lock:
                self._expire(time.time())
                entry = self._entries.get(where)
                if entry is not None and entry.created_ts < at - self.lifetime_seconds:
                    del self._entries[where]
                    entry = None
                if event == "claimed":
                    if entry is None:
                        self._entries[where] = _KeyEntry(str(record["request_hash"]), claim_id, at)
                elif entry is not None and entry.claim_id == claim_id:
                    if event == "answered" and entry.status is None:
                        entry.status = int(record["status"])
                        entry.media_type = record.get("media_type")
                        entry.body = base64.b64decode(record.get("body") or "")
                    elif event == "released":
                        del self._entries[where]
        except (KeyError, TypeError, ValueError) as error:
            # Anyone can write to the topic; a damaged key record must not stop the reader.
            log.warning("idempotency key record skipped: %s", error)

    def lookup(self, scope: str, key: str, now: float | None = None) -> _KeyEntry | None:
        """The entry that owns (scope, key), or None."""
        with self._lock:
            self._expire(time.time() if now is None else now)
            return self._entries.get((scope, key))

    def _expire(self, now: float) -> None:
        # Claims arrive roughly in time order: the oldest are at the front.
        while self._entries:
            where, entry = next(iter(self._entries.items()))
            if entry.created_ts >= now - self.lifetime_seconds:
                break
            del self._entries[where]


class LoggedIdempotencyKeys:
    """`IdempotencyKeys` for the Kafka deployment: the keys are records on the
    actions topic of `workflow_log` (a `KafkaWorkflowLog` built with a
    `KeyIndex`), shared by every API replica and kept across restarts.

    Same methods and outcomes as `IdempotencyKeys`. `claim` raises
    WorkflowLogUnavailable (riskwatch.alerts.kafkalog) when the broker does
    not take the claim: nothing was recorded, the request is not run.
    `complete` and `release` never raise: their record is folded here at
    once, and one the broker did not take leaves the key pending on the other
    replicas until it expires (at most once, the safe side)."""

    def __init__(self, workflow_log, read_back_seconds: float = 15.0):
        if workflow_log.key_index is None:
            raise ValueError("the workflow log reads no idempotency key records (no key_index)")
        self.log = workflow_log
        self.index: KeyIndex = workflow_log.key_index
        self.lifetime_seconds = self.index.lifetime_seconds
        self.read_back_seconds = read_back_seconds
        self._lock = threading.Lock()
        self._mine: dict[tuple[str, str], str] = {}   # keys this process claimed and has not answered

    @staticmethod
    def kafka_key(scope: str, key: str) -> bytes:
        """The Kafka key of every record of (scope, key): one partition orders them."""
        return ("idempotency-" + hashlib.sha256(f"{scope}\0{key}".encode()).hexdigest()[:32]).encode()

    def claim(self, scope: str, key: str, request_hash: str, now: float | None = None) -> Claim:
        from riskwatch.alerts.kafkalog import WorkflowLogBehind

        now = time.time() if now is None else now
        known = self.index.lookup(scope, key, now)
        if known is not None and known.status is not None:
            return known.claim_for(request_hash)   # answered: final until the key expires
        # Otherwise this replica's view may be behind (the answer, a release):
        # the claim is also a read barrier on the key's partition.
        claim_id = "key-" + uuid.uuid4().hex
        partition, offset = self.log.produce_key_record(self.kafka_key(scope, key), {
            "record": KEY_RECORD, "event": "claimed", "scope": scope, "key": key, "claim_id": claim_id,
            "request_hash": request_hash, "at": now})
        if not self.log.wait_read(self.log.actions_topic, partition, offset, self.read_back_seconds):
            raise WorkflowLogBehind(f"{self.log.actions_topic}: the Idempotency-Key was written but not read back "
                                    f"within {self.read_back_seconds:.0f} s")
        owner = self.index.lookup(scope, key, now)
        if owner is None or owner.claim_id == claim_id:
            with self._lock:
                self._mine[(scope, key)] = claim_id
            return Claim("new")
        return owner.claim_for(request_hash)

    def complete(self, scope: str, key: str, status: int, media_type: str | None, body: bytes) -> None:
        """Keep the answer given to the claimed request, on every replica."""
        self._settle(scope, key, {"event": "answered", "status": status, "media_type": media_type,
                                  "body": base64.b64encode(body).decode("ascii")})

    def release(self, scope: str, key: str) -> None:
        """Forget a claim whose request recorded nothing, so a retry runs."""
        self._settle(scope, key, {"event": "released"})

    def _settle(self, scope: str, key: str, fields: dict) -> None:
        with self._lock:
            claim_id = self._mine.pop((scope, key), None)
        if claim_id is None:
            return
        record = {"record": KEY_RECORD, "scope": scope, "key": key, "claim_id": claim_id, "at": time.time(), **fields}
        self.index.take(record)   # this replica answers a retry at once
        try:
            self.log.produce_key_record(self.kafka_key(scope, key), record)
        except Exception as error:  # noqa: BLE001 - the answer was given; the key stays pending elsewhere
            log.warning("Idempotency-Key %s not settled on the log (%s): other replicas answer 409 "
                        "for it until it expires", fields["event"], error)

    def close(self) -> None:
        """The workflow log is closed by its owner."""
