"""The workflow log: an append-only SQLite file under --store-dir.

Every alert change record the desk sees and every action record is one row;
the lifecycle state is the fold of the rows in order, so nothing is lost
across a restart and the audit trail is the log itself. SQLite triggers
refuse UPDATE and DELETE: even a bug in riskwatch cannot rewrite history.
Several processes (riskwatch run, riskwatch api) may share one file: each
appends inside an IMMEDIATE transaction and catches up on the others' rows.

Beside the log the file keeps the service clock (DOMAIN §4: the event-time
watermark) of the process that feeds it: `riskwatch run` advances it, the
API reads it, so both measure deadlines on the same clock. It only moves
forward. It is not history (the actions the clock made due carry their
time), so it is one row, not a log.
"""

from __future__ import annotations

import sqlite3
import threading
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import orjson

STORE_FILE = "workflow.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS log (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    kind      TEXT NOT NULL CHECK (kind IN ('alert_change', 'action')),
    record_id TEXT NOT NULL UNIQUE,
    subject   TEXT,
    body      BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS log_subject ON log (subject);
CREATE TRIGGER IF NOT EXISTS log_no_update BEFORE UPDATE ON log
BEGIN SELECT RAISE(ABORT, 'the workflow log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS log_no_delete BEFORE DELETE ON log
BEGIN SELECT RAISE(ABORT, 'the workflow log is append-only'); END;
CREATE TABLE IF NOT EXISTS service_clock (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    at_ts REAL NOT NULL
);
"""


def change_record_id(record: dict) -> str:
    """A redelivered alert change (same alert, same sequence) is stored once."""
    sequence = record.get("sequence")
    if sequence is None:
        return "chg-" + orjson.dumps(record, option=orjson.OPT_SORT_KEYS).hex()[:64]
    return f"chg-{record['alert_id']}#{sequence}"


def record_id(kind: str, record: dict) -> str:
    """The id a log stores a record under once: the action id, or the alert change's id."""
    return record["action_id"] if kind == "action" else change_record_id(record)


class WorkflowStore:
    def __init__(self, store_dir: Path):
        self.path = Path(store_dir) / STORE_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._depth = 0

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def describe(self) -> str:
        return str(self.path)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Exclusive for writers across processes; re-entrant within one."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            self._db.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield
            except BaseException:
                self._depth = 0
                self._db.execute("ROLLBACK")
                raise
            self._depth = 0
            self._db.execute("COMMIT")

    def append(self, kind: str, record: dict) -> int | None:
        """Append one record; None when a record with the same id is already stored."""
        subject = record.get("subject_key") if kind == "action" else record.get("alert_id")
        with self._lock:
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO log (kind, record_id, subject, body) VALUES (?, ?, ?, ?)",
                (kind, record_id(kind, record), subject, orjson.dumps(record)),
            )
            return cursor.lastrowid if cursor.rowcount else None

    def read_after(self, seq: int) -> list[tuple[int, str, dict]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, kind, body FROM log WHERE seq > ? ORDER BY seq", (seq,)
            ).fetchall()
        return [(s, k, orjson.loads(b)) for s, k, b in rows]

    def actions(self, *, subject: str | None = None, after: int = 0, limit: int = 1000) -> list[tuple[int, dict]]:
        query = "SELECT seq, body FROM log WHERE kind = 'action' AND seq > ?"
        params: list = [after]
        if subject is not None:
            query += " AND subject = ?"
            params.append(subject)
        query += " ORDER BY seq LIMIT ?"
        params.append(limit)
        with self._lock:
            rows = self._db.execute(query, params).fetchall()
        return [(s, orjson.loads(b)) for s, b in rows]

    def last_seq(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM log").fetchone()[0]

    def advance_clock(self, instant: datetime) -> datetime:
        """Record `instant` (aware) as the service clock unless the clock is
        already later; returns the clock as stored. Raises ValueError for a
        naive datetime."""
        if instant.tzinfo is None:
            raise ValueError("service clock: naive datetime, give a timezone")
        with self._lock:
            self._db.execute(
                "INSERT INTO service_clock (id, at_ts) VALUES (1, ?) "
                "ON CONFLICT (id) DO UPDATE SET at_ts = max(at_ts, excluded.at_ts)",
                (instant.timestamp(),),
            )
        clock = self.service_clock()
        assert clock is not None
        return clock

    def service_clock(self) -> datetime | None:
        """The service clock the feeding process recorded (UTC); None before it recorded any."""
        with self._lock:
            row = self._db.execute("SELECT at_ts FROM service_clock WHERE id = 1").fetchone()
        return None if row is None else datetime.fromtimestamp(row[0], tz=timezone.utc)
