"""The in-process service: raw records in, alert changes out to sinks.

Shared by `riskwatch replay` and `riskwatch run` (and its metrics update by
the Kafka worker): parse, evaluate, count, hand every alert change to the
sinks. A bad record is counted and reported, never fatal.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Iterable

from riskwatch.contracts import AlertChange
from riskwatch.engine import Engine
from riskwatch.gcpolicy import FreezeLongLived
from riskwatch.metrics import AlertTally, RiskwatchMetrics
from riskwatch.models import Rejection, future_rejection, parse_event
from riskwatch.rules.loader import RuleSet

# A sink takes the published record (`AlertChange.to_json()`).
AlertSink = Callable[[dict], None]


@dataclass
class RejectedRecord:
    source: str
    line: int
    kind: str
    reason: str
    unit: str = "line"   # what `line` counts: a file's lines, or an export's rows (riskwatch.ingest)


@dataclass
class Summary:
    records: int = 0
    accepted: int = 0
    rejected: list[RejectedRecord] = field(default_factory=list)
    rejected_by_kind: Counter = field(default_factory=Counter)
    changes: int = 0
    raised: Counter = field(default_factory=Counter)
    resolved: Counter = field(default_factory=Counter)
    open_by_tier: Counter = field(default_factory=Counter)
    keep_rejected: int = 10_000


class EmbeddedService:
    """Raw records in, alert changes out to `sinks` (callables taking one published alert record).

    `future_tolerance_seconds`: an event whose `occurred_at` lies further
    than this beyond `wall_clock()` (Unix seconds; `time.time` unless a test
    gives its own) is rejected as in the future, DOMAIN §3; negative turns
    the check off.
    """

    def __init__(self, rules: RuleSet, lateness_seconds: float = 600.0,
                 metrics: RiskwatchMetrics | None = None, sinks: Iterable[AlertSink] = (),
                 manage_gc: bool = False, future_tolerance_seconds: float = 3600.0,
                 wall_clock: Callable[[], float] = time.time):
        self.engine = Engine(rules, lateness_seconds=lateness_seconds)
        self.future_tolerance_seconds = future_tolerance_seconds
        self._wall_clock = wall_clock
        self.metrics = metrics
        self.sinks = list(sinks)
        self.summary = Summary()
        self.tally = AlertTally(metrics)
        # Long-running commands (run, replay) set aside long-lived state from the
        # cyclic collector; a library user keeps the interpreter's defaults.
        self._collector = FreezeLongLived() if manage_gc else None
        # Held while the engine changes, so another thread (the console beside
        # `run`) reads its state between two events, never in the middle of one.
        self._engine_lock = threading.Lock()

    def feed(self, raw: bytes | str, source: str = "-", line: int = 0, unit: str = "line") -> list[AlertChange]:
        """One raw record: parsed, checked against the wall clock, evaluated; its alert changes.

        A rejected record (`parse_event`, or `future_rejection` for an event
        from the future) is counted and kept for the report under `source`
        and `line` (the file's own line number, or the export's row number
        with `unit` "row"), and gives no changes.
        """
        self.summary.records += 1
        if self._collector is not None:
            self._collector.tick()
        started = time.perf_counter()
        event = parse_event(raw)
        if isinstance(event, Rejection):
            self._reject(source, line, event, unit)
            return []
        future = future_rejection(event, self._wall_clock(), self.future_tolerance_seconds)
        if future is not None:
            self._reject(source, line, future, unit)
            return []
        with self._engine_lock:
            outcome = self.engine.process(event)
        if outcome.rejection is not None:
            self._reject(source, line, outcome.rejection, unit)
            return []
        changes = outcome.changes
        self.summary.accepted += 1
        if self.metrics is not None:
            self.metrics.events_processed.labels(type=event.type).inc()
            self.metrics.evaluation_seconds.observe(time.perf_counter() - started)
            if outcome.duplicate:
                self.metrics.events_duplicate.inc()
            if outcome.late:
                self.metrics.events_late.inc()
            self._update_clock_gauges()
        self._publish(changes)
        return changes

    def advance_to(self, instant) -> list[AlertChange]:
        with self._engine_lock:
            changes = self.engine.advance_to(instant)
        if self.metrics is not None:
            self._update_clock_gauges()
        self._publish(changes)
        return changes

    def customer_view(self, customer_id: str) -> dict | None:
        """`Engine.customer_view` between two events (safe from another thread)."""
        with self._engine_lock:
            return self.engine.customer_view(customer_id)

    def refuse(self, source: str, line: int, rejection: Rejection, unit: str = "line") -> None:
        """Count a record refused before it could be fed (a line over the
        size limit, never read whole; an export's row that cannot be mapped)
        as a rejected record of `source`."""
        self.summary.records += 1
        self._reject(source, line, rejection, unit)

    def _reject(self, source: str, line: int, rejection: Rejection, unit: str = "line") -> None:
        summary = self.summary
        summary.rejected_by_kind[rejection.kind] += 1
        if len(summary.rejected) < summary.keep_rejected:
            summary.rejected.append(RejectedRecord(source, line, rejection.kind, rejection.reason, unit))
        if self.metrics is not None:
            self.metrics.events_rejected.labels(reason=rejection.kind).inc()

    def _publish(self, changes: list[AlertChange]) -> None:
        for record in changes:
            self._count(record)
            published = record.to_json()
            for sink in self.sinks:
                sink(published)

    def _count(self, record: AlertChange) -> None:
        summary = self.summary
        summary.changes += 1
        outcome = self.tally.count(record)
        tier = record.tier.value
        if outcome in ("raised", "raised_resolved"):
            summary.raised[tier] += 1
        if outcome in ("resolved", "raised_resolved"):
            summary.resolved[tier] += 1
        self.tally.refresh()
        summary.open_by_tier = Counter({t: n for t, n in self.tally.open_by_tier().items() if n})

    def _update_clock_gauges(self) -> None:
        now = self.engine.clock.now
        if now is None:
            return
        self.metrics.watermark_seconds.set(now)
        self.metrics.watermark_lag_seconds.set(time.time() - now)
        self.metrics.deadlines_pending.set(len(self.engine.deadlines))
        self.metrics.tracked_entities.set(len(self.engine.state))
