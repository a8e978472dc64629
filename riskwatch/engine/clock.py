"""The service clock: an event-time watermark with allowed lateness.

The clock is the latest event time seen, less the allowed lateness, and never
moves back. Other sources (a shared clock topic, idle advance, `--until`)
may only push it forward.
"""

from __future__ import annotations


class Watermark:
    __slots__ = ("lateness", "max_event_ts", "floor_ts")

    def __init__(self, lateness_seconds: float):
        self.lateness = float(lateness_seconds)
        self.max_event_ts: float | None = None
        self.floor_ts: float | None = None

    def observe(self, event_ts: float) -> None:
        if self.max_event_ts is None or event_ts > self.max_event_ts:
            self.max_event_ts = event_ts

    def advance_to(self, instant_ts: float) -> None:
        """Move the clock itself forward (never back)."""
        if self.floor_ts is None or instant_ts > self.floor_ts:
            self.floor_ts = instant_ts

    @property
    def now(self) -> float | None:
        from_events = None if self.max_event_ts is None else self.max_event_ts - self.lateness
        if from_events is None:
            return self.floor_ts
        if self.floor_ts is None:
            return from_events
        return max(from_events, self.floor_ts)
