"""Console sign-in sessions: an API token exchanged for an HttpOnly cookie.

A person signs in with the API token they already have (DOMAIN §10); the
server keeps the session (random id → role, actor name, CSRF token) and the
browser holds only the id, in an HttpOnly, SameSite=Strict cookie, so a
script on the page cannot read it and another site cannot send it. The
token itself is kept only as its fingerprint, so the audit trail names the
same actor as the API would for that token. Logout removes the session;
an idle one expires after `idle_seconds`.

Sessions live in the serving process: a restart signs everyone out (they
sign in again with their token), which is the safe failure.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field

SESSION_COOKIE = "rw_session"


@dataclass
class Session:
    """One signed-in browser. `role` is an API role (officer, director,
    operator, readonly); `actor` the name the audit trail records;
    `regions` the regions the token is limited to (None: all); `person`
    and `team` who signed in, when the token names them; `csrf` the token
    every state-changing form must carry."""

    session_id: str
    role: str
    actor: str
    regions: frozenset[str] | None = None
    person: str | None = None
    team: str | None = None
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    last_seen: float = field(default_factory=time.monotonic)

    def csrf_matches(self, presented: str | None) -> bool:
        return bool(presented) and hmac.compare_digest(self.csrf.encode(), str(presented).encode())


class Sessions:
    """In-memory sessions, safe across threads. `idle_seconds`: a session
    unused this long is gone (default 12 h, a working day)."""

    def __init__(self, idle_seconds: float = 12 * 3600, limit: int = 10_000):
        self.idle_seconds = idle_seconds
        self.limit = limit
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def open(self, role: str, actor: str, regions: frozenset[str] | None = None, person: str | None = None,
             team: str | None = None) -> Session:
        """A new session; the oldest ones go when more than `limit` are open,
        so repeated sign-ins cannot grow memory without bound."""
        session = Session(secrets.token_urlsafe(32), role, actor, regions, person, team)
        with self._lock:
            self._expire()
            while len(self._sessions) >= self.limit:
                oldest = min(self._sessions.values(), key=lambda s: s.last_seen)
                del self._sessions[oldest.session_id]
            self._sessions[session.session_id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                return None
            now = time.monotonic()
            if now - session.last_seen > self.idle_seconds:
                del self._sessions[session_id]
                return None
            session.last_seen = now
            return session

    def close(self, session_id: str | None) -> None:
        with self._lock:
            self._sessions.pop(session_id or "", None)

    def _expire(self) -> None:
        now = time.monotonic()
        for key in [k for k, s in self._sessions.items() if now - s.last_seen > self.idle_seconds]:
            del self._sessions[key]
