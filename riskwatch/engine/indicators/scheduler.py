"""The one "evaluate every" loop: scheduled indicators are evaluated as of
each scheduled instant the clock has strictly passed, in order, so a
backlog read in one go evaluates every instant a live service would have.

The last evaluated instant of each indicator is kept in the state mapping
(`gt:<indicator id>`, Unix seconds), so a restarted worker resumes where
the changelog says it stood, neither skipping nor repeating an instant.
"""

from __future__ import annotations

from typing import Callable, Iterable, MutableMapping

from riskwatch.engine.indicators.base import Indicator

TICK = "gt:"


class Scheduler:
    """Evaluates `indicators` (those with a schedule; others are ignored) on
    their `every`; `record(findings, as_of)` turns each evaluation's findings
    into alert change records.

    Schedules are aligned on multiples of `every` since the Unix epoch; the
    first evaluation after a start is the last aligned instant before the
    clock."""

    __slots__ = ("state", "record", "_scheduled", "_next_due")

    def __init__(self, state: MutableMapping[str, object], indicators: Iterable[Indicator],
                 record: Callable[[Iterable, float], list]):
        self.state = state
        self.record = record
        self._scheduled = [indicator for indicator in indicators if indicator.every]
        self._next_due = float("-inf")

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
                last = (now // every) * every - every
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
        return changes

    def reset(self) -> None:
        """Forget the cached next instant (after state was recovered or replaced)."""
        self._next_due = float("-inf")
