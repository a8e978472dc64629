"""Idempotency keys: a person's request retried after a timeout is recorded once.

A client sends `Idempotency-Key: <key>` with a state-changing request; the
first answer to that key is kept (in the workflow store's SQLite file, table
`idempotency_keys`, beside the log) and given again, without recording
anything, to a retry with the same key and the same request. Keys belong to
the token that used them and are forgotten after a lifetime (24 h by
default). The key is claimed before the request runs, so two copies of one
request in flight at once run once: the second is told the first is still
being processed.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

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
    with `path=None` (the Kafka deployment: per API process, lost at restart).
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
