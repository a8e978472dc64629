"""The service clock: an event-time watermark with allowed lateness.

`Watermark` is the clock of one ordered input (a replay, `run`): the
latest event time seen, less the allowed lateness, never moving back. Other
sources (a shared clock topic, idle advance, `--until`) may only push it
forward.

`InputWatermark` is the clock over several inputs read side by side (the
source topics of a Kafka partition, every topic partition of a deployment):
the slowest input's progress, less the lateness, so an input read ahead of
the others cannot make their events late (DOMAIN §4: each input is in event
time order up to the lateness, so every event an input will still deliver
lies at or after its progress less the lateness). An input with nothing left
to read (idle) does not hold the clock back; with every input idle the clock
is the latest event time seen anywhere, less the lateness, as in a replay.
Times are Unix seconds.
"""

from __future__ import annotations

from typing import Hashable, Iterable


class Watermark:
    """`observe(event_ts)` an event time; `advance_to(instant_ts)` push the
    clock itself forward; `now`: the clock (None before anything was seen)."""

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


class InputWatermark(Watermark):
    """The clock over named inputs: min over the inputs that are not idle of
    their progress (latest event time read), less the lateness; with every
    input idle, the latest event time of any input less the lateness. Never
    moves back (`floor_ts` keeps the highest value it reached), and
    `advance_to` pushes it forward as in `Watermark`.

    `inputs`: the inputs known from the start (any hashable names). Until
    every input that is not idle has delivered an event, the clock stays
    where it was (None at first): an input not yet read may hold anything.

    `observe(event_ts, source=None)`: an event time read from `source`; None
    means `reading`, the input the caller says it is reading now (the engine
    calls `observe(ts)` per event and knows no inputs; the shell sets
    `reading` before handing it each event). An input not known yet is
    added. `set_idle(source, idle)`: whether an input has nothing left to
    read (a Kafka partition at its end). `progress`: input -> latest event
    time read (None: nothing yet), `idle`: the idle inputs.
    """

    __slots__ = ("progress", "idle", "reading", "_now", "_stale")

    def __init__(self, lateness_seconds: float, inputs: Iterable[Hashable] = ()):
        super().__init__(lateness_seconds)
        self.progress: dict[Hashable, float | None] = {name: None for name in inputs}
        self.idle: set[Hashable] = set()
        self.reading: Hashable = None
        self._now: float | None = None
        self._stale = True

    def observe(self, event_ts: float, source: Hashable = None) -> None:
        if source is None:
            source = self.reading
        current = self.progress.get(source)
        if current is None or event_ts > current:
            self.progress[source] = event_ts
            if self.max_event_ts is None or event_ts > self.max_event_ts:
                self.max_event_ts = event_ts
            self._stale = True

    def expect(self, source: Hashable) -> None:
        """Count `source` as an input (it holds the clock until it delivers an event or is idle)."""
        if source not in self.progress:
            self.progress[source] = None
            self._stale = True

    def set_idle(self, source: Hashable, idle: bool = True) -> None:
        if idle:
            if source not in self.idle:
                self.expect(source)
                self.idle.add(source)
                self._stale = True
        elif source in self.idle:
            self.idle.discard(source)
            self._stale = True

    def report(self, source: Hashable, progress: float | None, idle: bool) -> bool:
        """What a reader of `source` says about it (a clock record, a marker
        between workers): its progress (None: nothing read yet) and whether
        it is idle. Progress is a fact about the input, whoever read it: a
        report below the progress known changes nothing (a stale record, a
        reader that has just taken the input over), the same progress
        reported again replaces the idle flag. True when the progress moved."""
        current = self.progress.get(source)
        if progress is None:
            if current is None:
                self.expect(source)
                self.set_idle(source, idle)
            return False
        if current is not None and progress < current:
            return False
        moved = current is None or progress > current
        if moved:
            self.observe(progress, source)
        self.set_idle(source, idle)
        return moved

    def advance_to(self, instant_ts: float) -> None:
        if self.floor_ts is None or instant_ts > self.floor_ts:
            self.floor_ts = instant_ts
            self._stale = True

    @property
    def now(self) -> float | None:
        if self._stale:
            self._now = self._compute()
            self._stale = False
        return self._now

    def _compute(self) -> float | None:
        idle = self.idle
        slowest = None
        active = False
        for source, ts in self.progress.items():
            if source in idle:
                continue
            active = True
            if ts is None:
                slowest = None
                break
            if slowest is None or ts < slowest:
                slowest = ts
        if active:
            from_events = None if slowest is None else slowest - self.lateness
        else:
            from_events = None if self.max_event_ts is None else self.max_event_ts - self.lateness
        if from_events is not None and (self.floor_ts is None or from_events > self.floor_ts):
            # The highest value reached is the floor from now on: an input
            # becoming busy again with older progress never moves the clock back.
            self.floor_ts = from_events
        return self.floor_ts
