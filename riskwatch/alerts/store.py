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

Every SQLite error is raised as a StoreError naming the file and what the
operator should do (StoreUnusable: damaged, read-only, cannot be opened;
StoreFull: no space; StoreBusy: another process held the write lock too
long). A write that fails leaves nothing: its transaction is rolled back.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import orjson

from riskwatch.errors import RiskwatchError

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
CREATE TABLE IF NOT EXISTS write_probe (
    id    INTEGER PRIMARY KEY,
    body  BLOB NOT NULL
);
"""

# Primary SQLite result codes (https://sqlite.org/rescode.html); extended
# codes carry the primary one in their low byte.
_SQLITE_PERM, _SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_READONLY = 3, 5, 6, 8
_SQLITE_IOERR, _SQLITE_CORRUPT, _SQLITE_FULL, _SQLITE_CANTOPEN = 10, 11, 13, 14
_SQLITE_AUTH, _SQLITE_NOTADB = 23, 26


class StoreError(RiskwatchError):
    """The workflow store cannot be used as asked. `path` is the file,
    `reason` what is wrong, `remedy` what the operator should do; str() is
    one line with all three. Nothing of the failed operation was written."""

    retry_after: int | None = None  # seconds a client may wait before trying again, if it may

    def __init__(self, path: Path, reason: str, remedy: str):
        self.path, self.reason, self.remedy = Path(path), reason, remedy
        super().__init__(f"workflow store {path}: {reason}; {remedy}")


class StoreUnusable(StoreError):
    """Damaged, not a database, read-only, or cannot be opened: an operator must act."""

    retry_after = 30


class StoreFull(StoreError):
    """No space left (disk full or a size limit): the write was rolled back."""

    retry_after = 30


class StoreBusy(StoreError):
    """Another process held the write lock longer than the busy timeout."""

    retry_after = 5


def store_error(path: Path, error: sqlite3.Error | OSError) -> StoreError:
    """The StoreError for an sqlite3 or OS error met on the store at `path`."""
    if isinstance(error, OSError):
        return StoreUnusable(path, f"cannot create its directory ({error.strerror or error})",
                             "check that the store directory's volume is mounted and writable by riskwatch "
                             "(--store-dir / RISKWATCH_STORE_DIR)")
    code = (getattr(error, "sqlite_errorcode", None) or 0) & 0xFF
    detail = str(error)
    if code == _SQLITE_FULL:
        return StoreFull(path, f"no space left ({detail}); nothing was written",
                         "free space on its volume; riskwatch takes writes again as soon as there is room")
    if code in (_SQLITE_BUSY, _SQLITE_LOCKED):
        return StoreBusy(path, f"busy ({detail}): another process held the write lock too long",
                         "try again; if it persists, look for a stuck process on the same store")
    if code in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
        return StoreUnusable(path, f"damaged or not a riskwatch store ({detail})",
                             "stop riskwatch, move the file aside and restore the last backup "
                             "(docs/operations.md, \"Workflow store\"); riskwatch never repairs it itself")
    if code in (_SQLITE_READONLY, _SQLITE_PERM, _SQLITE_AUTH):
        return StoreUnusable(path, f"read-only ({detail})",
                             "make the file, its -wal and -shm files and its directory writable by the user "
                             "riskwatch runs as")
    if code == _SQLITE_CANTOPEN:
        return StoreUnusable(path, f"cannot be opened or created ({detail})",
                             "check that the path is a file in a writable directory on a mounted volume "
                             "(--store-dir / RISKWATCH_STORE_DIR)")
    if code == _SQLITE_IOERR:
        return StoreUnusable(path, f"input/output error ({detail})",
                             "check the volume (kernel log, free space, mount state)")
    return StoreUnusable(path, detail, "see the SQLite message; the store was not changed")


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
    """The append-only workflow log in `store_dir`/workflow.sqlite3.

    Opening creates the directory and file if needed, folds nothing (the
    desk does), and checks the store can be written (`check_writable`), so
    a damaged, read-only or full store is refused at start-up. Every method
    raises StoreError (never a raw sqlite3 error) naming the file."""

    # Writers in every process on the file take its write lock in turn, so a
    # desk's check and its append are one step (the Kafka log's are not).
    serialises_writers = True

    # How long the readiness probe waits for the write lock: a probe must
    # answer within a kubelet's timeout (1 s by default).
    PROBE_BUSY_MS = 500
    # A probe page can fit where a record does not (SQLite reuses free pages
    # and WAL frames): after a write failed for want of space the store
    # counts as not writable this long, unless a later write succeeds.
    FULL_REMEMBERED_SECONDS = 30.0

    def __init__(self, store_dir: Path):
        self.path = Path(store_dir) / STORE_FILE
        self._lock = threading.RLock()
        self._depth = 0
        self._probing = False
        self._full_since: tuple[float, StoreFull] | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise store_error(self.path, error) from None
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        except sqlite3.Error as error:
            raise store_error(self.path, error) from None
        try:
            with self._errors():
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.executescript(_SCHEMA)
            self.check_writable()
        except StoreError:
            self._db.close()
            raise

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as error:
            raise store_error(self.path, error) from None

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def describe(self) -> str:
        return str(self.path)

    def check_writable(self) -> None:
        """Write a page to the store and remove it, committed, so a full disk,
        a read-only file or a damaged one shows now rather than on a person's
        next action. Raises StoreError; a store busy with another writer
        counts as writable (someone is writing to it)."""
        with self._lock:
            if self._depth:
                return  # inside our own transaction: the caller is writing already
            with self._errors():
                previous = self._db.execute("PRAGMA busy_timeout").fetchone()[0]
                self._db.execute(f"PRAGMA busy_timeout = {self.PROBE_BUSY_MS}")
            self._probing = True
            try:
                with self.transaction(), self._errors():
                    page = self._db.execute("PRAGMA page_size").fetchone()[0]
                    self._db.execute("INSERT INTO write_probe (body) VALUES (zeroblob(?))", (page,))
                    self._db.execute("DELETE FROM write_probe")
            except StoreBusy:
                pass
            finally:
                self._probing = False
                with self._errors():
                    self._db.execute(f"PRAGMA busy_timeout = {int(previous)}")
            if self._full_since is not None:
                at, error = self._full_since
                if time.monotonic() - at < self.FULL_REMEMBERED_SECONDS:
                    raise error
                self._full_since = None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Exclusive for writers across processes; re-entrant within one.
        Raises StoreError when the store cannot take the transaction; then
        nothing of it was written (rolled back)."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            with self._errors():
                self._db.execute("BEGIN IMMEDIATE")
            self._depth = 1
            changes = self._db.total_changes
            try:
                yield
                with self._errors():
                    self._db.execute("COMMIT")
                if not self._probing and self._db.total_changes > changes:
                    self._full_since = None  # a record went in: there is room again
            except BaseException as error:
                if isinstance(error, StoreFull) and not self._probing:
                    self._full_since = (time.monotonic(), error)
                # SQLite may already have rolled back (SQLITE_FULL at commit does).
                if self._db.in_transaction:
                    try:
                        self._db.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass  # the original error says more
                raise
            finally:
                self._depth = 0

    def append(self, kind: str, record: dict) -> int | None:
        """Append one record; None when a record with the same id is already stored."""
        subject = record.get("subject_key") if kind == "action" else record.get("alert_id")
        with self._lock, self._errors():
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO log (kind, record_id, subject, body) VALUES (?, ?, ?, ?)",
                (kind, record_id(kind, record), subject, orjson.dumps(record)),
            )
            return cursor.lastrowid if cursor.rowcount else None

    def read_after(self, seq: int) -> list[tuple[int, str, dict]]:
        with self._lock, self._errors():
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
        with self._lock, self._errors():
            rows = self._db.execute(query, params).fetchall()
        return [(s, orjson.loads(b)) for s, b in rows]

    def last_seq(self) -> int:
        with self._lock, self._errors():
            return self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM log").fetchone()[0]

    def advance_clock(self, instant: datetime) -> datetime:
        """Record `instant` (aware) as the service clock unless the clock is
        already later; returns the clock as stored. Raises ValueError for a
        naive datetime."""
        if instant.tzinfo is None:
            raise ValueError("service clock: naive datetime, give a timezone")
        with self._lock, self._errors():
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
        with self._lock, self._errors():
            row = self._db.execute("SELECT at_ts FROM service_clock WHERE id = 1").fetchone()
        return None if row is None else datetime.fromtimestamp(row[0], tz=timezone.utc)
