"""The path of a record through riskwatch, written once for every shell.

    raw bytes ── admit ──> parse (models.parse_event), future check (models.future_rejection)
              ── apply ──> the engine (Engine.process: alert changes, duplicate, late, rejection)
              ── publish ─> the alert changes (`contracts.AlertChange`) through the
                            stages in the order `build_pipeline` puts them:
                              count  (replay summary, riskwatch_alert* families)
                              desk   (acknowledgement, escalation, hysteresis; it notifies
                                      Alertmanager with its own view of each alert)
                              Alertmanager (without a desk: the record as published)
                              sinks  (stdout JSON lines, the live view, ...: each gets
                                      the published form, `AlertChange.to_json()`)
                            and what the last stage passes on is the shell's to send
                            (the Kafka worker: to the alerts topic).

Used by `riskwatch replay` and `riskwatch run` (through
`riskwatch.service.EmbeddedService`), the Kafka worker (`streams/app.py`,
one pipeline over the engines of all its partitions) and the HTTP API (alert
change records fed to its desk).

Every stage is synchronous and waits on no network: the Alertmanager sink
queues for its own thread, the desk writes a local SQLite log. The worker,
whose output goes to Kafka, keeps its batch structure: it admits and applies
a batch record by record, then sends the batch's output and waits for the
broker once (`publish` hands it the records to send; nothing in a stage is
awaited per record).

Stages follow Alertmanager's notification pipeline (`notify.MultiStage`):
each takes the records the previous one passed on and returns what the next
one gets; an empty list ends the line for that call.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

from riskwatch.contracts import AlertChange
from riskwatch.metrics import AlertTally, RiskwatchMetrics
from riskwatch.models import Event, Rejection, future_rejection, parse_event

if TYPE_CHECKING:  # annotations only: the pipeline never builds these
    from riskwatch.alerts.desk import AlertDesk
    from riskwatch.engine import Engine, Outcome
    from riskwatch.sinks.alertmanager import AlertmanagerSink

# A sink takes the published record (`AlertChange.to_json()`: what `replay`
# prints and the worker puts on the alerts topic, DOMAIN §5).
AlertSink = Callable[[dict], None]


class Verdict:
    """What one raw record came to.

    `event`: the parsed `models.Event`, None when the record did not parse.
    `outcome`: the engine's `Outcome` (changes, duplicate, late), None when
    the record was refused before the engine. `rejection`: the
    `models.Rejection` that refused it (parser, future check or engine:
    unknown currency, an event id reused with other content), None when it
    was applied."""

    __slots__ = ("event", "outcome", "rejection")

    def __init__(self, event: Event | None, outcome: "Outcome | None", rejection: Rejection | None):
        self.event = event
        self.outcome = outcome
        self.rejection = rejection

    @property
    def changes(self) -> list[AlertChange]:
        """The engine's alert changes, [] for a refused record."""
        return self.outcome.changes if self.outcome is not None and self.rejection is None else []

    def __repr__(self) -> str:
        kind = self.event.type if self.event is not None else None
        return f"Verdict(type={kind!r}, outcome={self.outcome!r}, rejection={self.rejection!r})"


@dataclass
class RejectedRecord:
    """A refused record as the replay report lists it: `source` (file name,
    "simulation", "-"), `line` (the file's own line number, or an export's
    row number with `unit` "row", riskwatch.ingest), the reason's bounded
    `kind` and its sentence."""

    source: str
    line: int
    kind: str
    reason: str
    unit: str = "line"


@dataclass
class Summary:
    """What `replay` and `run` report at the end: records read and accepted,
    rejected ones (the first `keep_rejected` listed in full, all counted by
    kind), alert changes, alerts raised and resolved by tier, open alerts by
    tier."""

    records: int = 0
    accepted: int = 0
    rejected: list[RejectedRecord] = field(default_factory=list)
    rejected_by_kind: Counter = field(default_factory=Counter)
    changes: int = 0
    raised: Counter = field(default_factory=Counter)
    resolved: Counter = field(default_factory=Counter)
    open_by_tier: Counter = field(default_factory=Counter)
    keep_rejected: int = 10_000

    def reject(self, source: str, line: int, rejection: Rejection, unit: str = "line") -> None:
        """Count a refused record and keep it for the report (up to `keep_rejected`)."""
        self.rejected_by_kind[rejection.kind] += 1
        if len(self.rejected) < self.keep_rejected:
            self.rejected.append(RejectedRecord(source, line, rejection.kind, rejection.reason, unit))


class EventCounts:
    """The event families of `metrics` (processed by type, duplicates, late),
    counted as records are applied and added to the metrics by `flush`: once
    per record embedded, once per batch in the worker (when the broker holds
    the batch's output, so a batch rolled back is not counted twice)."""

    __slots__ = ("metrics", "by_type", "duplicate", "late", "_counters")

    def __init__(self, metrics: RiskwatchMetrics | None):
        self.metrics = metrics
        self.by_type: dict[str, int] = {}
        self.duplicate = 0
        self.late = 0
        self._counters: dict[str, object] = {}   # event type -> its labelled counter

    def count(self, event_type: str, outcome: "Outcome") -> None:
        self.by_type[event_type] = self.by_type.get(event_type, 0) + 1
        self.duplicate += outcome.duplicate
        self.late += outcome.late

    def discard(self) -> None:
        """Forget what was counted since the last flush (a batch rolled back)."""
        self.by_type.clear()
        self.duplicate = self.late = 0

    def flush(self) -> None:
        metrics = self.metrics
        if metrics is not None:
            if self.duplicate:
                metrics.events_duplicate.inc(self.duplicate)
            if self.late:
                metrics.events_late.inc(self.late)
            counters = self._counters
            for event_type, count in self.by_type.items():
                counter = counters.get(event_type)
                if counter is None:
                    counter = counters[event_type] = metrics.events_processed.labels(type=event_type)
                counter.inc(count)
        self.discard()


# -- stages -----------------------------------------------------------------

class Stage:
    """One step after the engine.

    `stage(changes)` takes alert changes (`contracts.AlertChange`, a list,
    in order) and returns what the next stage gets; `tick(clock)` runs its
    timers (`clock`: the service clock, an aware datetime, or None before
    the first event); `close()` ends it (bounded: an absent Alertmanager
    does not hold up the exit). The defaults pass everything on and have no
    timers."""

    name = "stage"

    def __call__(self, records: list[AlertChange]) -> list[AlertChange]:
        return records

    def tick(self, clock: datetime | None) -> None:
        return None

    def close(self) -> None:
        return None

    def __repr__(self) -> str:
        return f"<{self.name} stage>"


class Count(Stage):
    """Counts each change into the alert families (`riskwatch.metrics.AlertTally`:
    raised, resolved, escalated, open by tier, the heat map) and, embedded,
    into the replay `Summary`. The same counting rules for every shell."""

    name = "count"

    def __init__(self, tally: AlertTally, summary: Summary | None = None):
        self.tally = tally
        self.summary = summary

    def __call__(self, records: list[AlertChange]) -> list[AlertChange]:
        tally, summary = self.tally, self.summary
        for record in records:
            outcome = tally.count(record)
            if summary is None:
                continue
            summary.changes += 1
            tier = record.tier.value
            if outcome in ("raised", "raised_resolved"):
                summary.raised[tier] += 1
            if outcome in ("resolved", "raised_resolved"):
                summary.resolved[tier] += 1
        if summary is not None and records:
            tally.refresh()
            summary.open_by_tier = Counter({t: n for t, n in tally.open_by_tier().items() if n})
        return records


class Desk(Stage):
    """The alert desk (`riskwatch.alerts.AlertDesk`): acknowledgement,
    escalation against respond_by, hysteresis of lowered tiers, plans and
    reviews. Each change is recorded in its log (`ingest`; raises
    `StoreError` when the store refuses it). Its timer records what the
    service clock made due and keeps that clock in the store for the API
    beside (`AlertDesk.keep_clock`). With `keeps_clock` False (the API, which
    does not make the service clock) it only ingests."""

    name = "desk"

    def __init__(self, desk: "AlertDesk", keeps_clock: bool = True):
        self.desk = desk
        self.keeps_clock = keeps_clock

    def __call__(self, records: list[AlertChange]) -> list[AlertChange]:
        ingest = self.desk.ingest
        for record in records:
            ingest(record)
        return records

    def tick(self, clock: datetime | None) -> None:
        if self.keeps_clock and clock is not None:
            self.desk.keep_clock(clock)


class Alertmanager(Stage):
    """Pushes to Alertmanager (`riskwatch.sinks.alertmanager.AlertmanagerSink`,
    which queues for its own thread). `feeds` False: the sink is the desk's
    notifier (it gets the desk's view of each alert, escalated owner and
    snoozes included), so this stage only runs its re-send timer and closes it."""

    name = "alertmanager"

    def __init__(self, sink: "AlertmanagerSink", feeds: bool = True):
        self.sink = sink
        self.feeds = feeds

    def __call__(self, records: list[AlertChange]) -> list[AlertChange]:
        if self.feeds:
            send = self.sink.send
            for record in records:
                send(record.to_json())
        return records

    def tick(self, clock: datetime | None) -> None:
        # Alertmanager expires an alert at its endsAt: open ones are re-sent
        # on the wall clock, whatever the service clock does.
        self.sink.tick()

    def close(self) -> None:
        self.sink.close()


class Deliver(Stage):
    """Hands each change's published form (`AlertChange.to_json()`, made once
    per change) to plain callables (stdout lines, the live view, a list in a
    test), in order."""

    name = "deliver"

    def __init__(self, sinks: Iterable[AlertSink]):
        self.sinks = list(sinks)

    def __call__(self, records: list[AlertChange]) -> list[AlertChange]:
        sinks = self.sinks
        for record in records:
            published = record.to_json()
            for sink in sinks:
                sink(published)
        return records


# -- the pipeline -------------------------------------------------------------

class Pipeline:
    """The stages of `build_pipeline`, and the steps before them.

    Holds no engine: the embedded service has one, the worker one per
    partition; each call names the engine it goes through."""

    def __init__(self, stages: Sequence[Stage], *, future_tolerance_seconds: float = 3600.0,
                 wall_clock: Callable[[], float] = time.time, tally: AlertTally | None = None,
                 summary: Summary | None = None):
        self.stages = list(stages)
        self.future_tolerance_seconds = future_tolerance_seconds
        self.wall_clock = wall_clock
        self.tally = tally
        self.summary = summary

    def admit(self, raw: bytes | str, wall: float | None = None) -> Event | Rejection:
        """Parse one raw record and check its event time against the wall
        clock (`wall`, Unix seconds; read from `wall_clock` when None; the
        worker reads it once per batch). Never raises: a bad record is a
        `Rejection` naming the field (DOMAIN §3)."""
        event = parse_event(raw)
        if isinstance(event, Rejection):
            return event
        future = future_rejection(event, self.wall_clock() if wall is None else wall, self.future_tolerance_seconds)
        return event if future is None else future

    @staticmethod
    def apply(engine: "Engine", event: Event) -> Verdict:
        """One admitted event through `engine` (`Engine.process`)."""
        outcome = engine.process(event)
        return Verdict(event, outcome, outcome.rejection)

    def evaluate(self, engine: "Engine", raw: bytes | str, wall: float | None = None) -> Verdict:
        """`admit`, then `apply` through `engine`."""
        event = self.admit(raw, wall)
        if isinstance(event, Rejection):
            return Verdict(None, None, event)
        outcome = engine.process(event)
        return Verdict(event, outcome, outcome.rejection)

    def publish(self, changes: list[AlertChange]) -> list[AlertChange]:
        """The engine's alert changes through the stages; returns what the
        last stage passed on (the changes the shell sends on). Raises what a
        stage raises (`StoreError` from the desk)."""
        if not changes:
            return []
        records = changes
        for stage in self.stages:
            records = stage(records)
            if not records:
                break
        return records

    def tick(self, clock: datetime | None) -> None:
        """Every stage's timers, in order, on the service clock `clock`."""
        for stage in self.stages:
            stage.tick(clock)

    def close(self) -> None:
        for stage in self.stages:
            stage.close()


def build_pipeline(*, future_tolerance_seconds: float = 3600.0, metrics: RiskwatchMetrics | None = None,
                   summary: Summary | None = None, desk: "AlertDesk | None" = None,
                   alertmanager: "AlertmanagerSink | None" = None, sinks: Iterable[AlertSink] = (),
                   desk_keeps_clock: bool = True, wall_clock: Callable[[], float] = time.time) -> Pipeline:
    """The stages, in their one order: count → desk → Alertmanager → sinks.

    `future_tolerance_seconds`: how far beyond the wall clock an event may
    be dated (settings.future_tolerance_seconds; negative turns the check
    off). `metrics` and `summary`: what the count stage
    fills (no count stage when both are None: the API, whose desk counts
    escalations itself). `desk`: an `AlertDesk` that records every change
    (`desk_keeps_clock` False for one that does not own the service clock).
    `alertmanager`: an `AlertmanagerSink`; with a desk it is taken to be the
    desk's notifier (`open_desk(..., notify=sink.send)`) and is only ticked
    and closed here, so Alertmanager shows the desk's view; without one it
    is fed every record. `sinks`: callables taking one published record,
    called last, in order. `wall_clock`: Unix seconds, for the future check.
    """
    stages: list[Stage] = []
    tally = None
    if metrics is not None or summary is not None:
        tally = AlertTally(metrics)
        stages.append(Count(tally, summary))
    if desk is not None:
        stages.append(Desk(desk, keeps_clock=desk_keeps_clock))
    if alertmanager is not None:
        stages.append(Alertmanager(alertmanager, feeds=desk is None))
    sinks = list(sinks)
    if sinks:
        stages.append(Deliver(sinks))
    return Pipeline(stages, future_tolerance_seconds=future_tolerance_seconds, wall_clock=wall_clock, tally=tally, summary=summary)


__all__ = [
    "AlertSink", "Alertmanager", "Count", "Deliver", "Desk", "EventCounts", "Pipeline", "RejectedRecord",
    "Stage", "Summary", "Verdict", "build_pipeline",
]
