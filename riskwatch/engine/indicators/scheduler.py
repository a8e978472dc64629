"""The one "evaluate every" loop: scheduled indicators are evaluated as of
each scheduled instant the clock has strictly passed, in order, so a
backlog read in one go evaluates every instant a live service would have.

The last evaluated instant of each indicator is kept in the state mapping
(`gt:<indicator id>`, Unix seconds), so a restarted worker resumes where
the changelog says it stood, neither skipping nor repeating an instant.

Where the schedule starts: at the clock's first value (the first event less
the allowed lateness, in one process), or earlier when the engine was told
of facts dated before it (`note_start`). A segment engine in the Kafka
worker first moves when every source partition has reported, which on a
backlog can be weeks into it: starting there skipped every evaluation
before, and a collection-rate alert of those weeks that `replay` raised was
never raised at all.
"""

from __future__ import annotations

from typing import Callable, Iterable, MutableMapping

from riskwatch.engine.indicators.base import Indicator

TICK = "gt:"
# The earliest instant facts were dated at (less the lateness), kept until the first run.
START = "gt:^start"


class Scheduler:
    """Evaluates `indicators` (those with a schedule; others are ignored) on
    their `every`; `record(findings, as_of)` turns each evaluation's findings
    into alert change records.

    Schedules are aligned on multiples of `every` since the Unix epoch; the
    first evaluation after a start is the last aligned instant before the
    clock or before the instant `note_start` was given, whichever is earlier."""

    __slots__ = ("state", "record", "_scheduled", "_next_due", "_started")

    def __init__(self, state: MutableMapping[str, object], indicators: Iterable[Indicator],
                 record: Callable[[Iterable, float], list]):
        self.state = state
        self.record = record
        self._scheduled = [indicator for indicator in indicators if indicator.every]
        self._next_due = float("-inf")
        self._started: bool | None = None   # every scheduled indicator has run (None: not looked yet)

    def run(self, now: float) -> list:
        """Alert changes of every scheduled evaluation before `now` not yet done."""
        if not now > self._next_due:
            return []
        changes: list = []
        state = self.state
        next_due = float("inf")
        for indicator in self._scheduled:
            every = indicator.every
            key = TICK + indicator.id
            last = state.get(key)
            if last is None:
                start = state.get(START)
                first = now if start is None or start > now else start
                last = (first // every) * every - every
                state[key] = last
            tick = last + every
            evaluated = last
            while tick < now:
                changes.extend(self.record(indicator.evaluate(tick), tick))
                evaluated = tick
                tick += every
            if evaluated != last:
                state[key] = evaluated
            next_due = min(next_due, evaluated + every)
        self._next_due = next_due
        if not self._started:
            self._started = True
            if START in state:
                del state[START]
        return changes

    def note_start(self, instant: float) -> None:
        """Facts dated from `instant` (Unix seconds, the event time less the
        allowed lateness) on are held: the first run evaluates from there, as
        an engine that had moved with those events would have. Ignored once
        every scheduled indicator has run."""
        state = self.state
        if self._started is None:
            self._started = all(TICK + indicator.id in state for indicator in self._scheduled)
        if self._started:
            return
        held = state.get(START)
        if held is None or instant < held:
            state[START] = instant

    def reset(self) -> None:
        """Forget the cached next instant (after state was recovered or replaced)."""
        self._next_due = float("-inf")
        self._started = None
