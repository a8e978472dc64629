"""The in-process service: raw records in, alert changes out through the pipeline.

`riskwatch replay` and `riskwatch run` each hold one: one engine (state in a
dict) and the pipeline `riskwatch.pipeline.build_pipeline` assembles around
it (count, desk, Alertmanager, sinks). A bad record is counted and reported,
never fatal.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime
from typing import TYPE_CHECKING, Callable, Iterable

from riskwatch.contracts import AlertChange
from riskwatch.engine import Engine
from riskwatch.gcpolicy import FreezeLongLived
from riskwatch.metrics import RiskwatchMetrics
from riskwatch.models import Rejection
from riskwatch.pipeline import (
    AlertSink,
    EventCounts,
    Pipeline,
    RejectedRecord,
    Summary,
    build_pipeline,
)
from riskwatch.rules.loader import RuleSet

if TYPE_CHECKING:
    from riskwatch.alerts.desk import AlertDesk
    from riskwatch.sinks.alertmanager import AlertmanagerSink


class EmbeddedService:
    """Raw records in, alert changes out through a pipeline (riskwatch.pipeline).

    `lateness_seconds`: the allowed lateness of the engine's clock.
    `sinks`: callables taking one published alert change record, called
    last; `desk` (an `AlertDesk`, which then notifies `alertmanager`) and
    `alertmanager` (an `AlertmanagerSink`): the stages `build_pipeline`
    puts before them. `metrics`: a `RiskwatchMetrics` the service fills (the
    event and alert families, the clock gauges). `future_tolerance_seconds`:
    an event whose `occurred_at` lies further than this beyond `wall_clock()`
    (Unix seconds; `time.time` unless a test gives its own) is rejected as
    in the future, DOMAIN §3; negative turns the check off. `manage_gc`:
    long-running commands set long-lived state aside from the cyclic
    collector (riskwatch.gcpolicy).

    Public: `feed`, `refuse`, `advance_to`, `tick`, `close`, `customer_view`,
    `engine`, `summary`, `pipeline`.
    """

    def __init__(self, rules: RuleSet, lateness_seconds: float = 600.0,
                 metrics: RiskwatchMetrics | None = None, sinks: Iterable[AlertSink] = (),
                 manage_gc: bool = False, future_tolerance_seconds: float = 3600.0,
                 wall_clock: Callable[[], float] = time.time, *, desk: "AlertDesk | None" = None,
                 alertmanager: "AlertmanagerSink | None" = None):
        self.engine = Engine(rules, lateness_seconds=lateness_seconds)
        self.metrics = metrics
        self.summary = Summary()
        self.pipeline: Pipeline = build_pipeline(
            future_tolerance_seconds=future_tolerance_seconds, metrics=metrics, summary=self.summary,
            desk=desk, alertmanager=alertmanager, sinks=sinks, wall_clock=wall_clock)
        self._events = EventCounts(metrics)
        # Long-running commands (run, replay) set aside long-lived state from the
        # cyclic collector; a library user keeps the interpreter's defaults.
        self._collector = FreezeLongLived() if manage_gc else None
        # Held while the engine changes, so another thread (the console beside
        # `run`) reads its state between two events, never in the middle of one.
        self._engine_lock = threading.Lock()

    def feed(self, raw: bytes | str, source: str = "-", line: int = 0, unit: str = "line") -> list[AlertChange]:
        """One raw record through the pipeline; the engine's alert changes it caused.

        A rejected record (parser, future check or engine) is counted and kept
        for the report under `source` and `line` (the file's own line number,
        or the export's row number with `unit` "row"), and gives no changes.
        Raises what a stage raises (`StoreError` when the desk's store refuses
        a record).
        """
        self.summary.records += 1
        if self._collector is not None:
            self._collector.tick()
        started = time.perf_counter()
        pipeline = self.pipeline
        event = pipeline.admit(raw)
        if isinstance(event, Rejection):
            self._reject(source, line, event, unit)
            return []
        with self._engine_lock:
            verdict = pipeline.apply(self.engine, event)
        if verdict.rejection is not None:
            self._reject(source, line, verdict.rejection, unit)
            return []
        changes = verdict.changes
        self.summary.accepted += 1
        if self.metrics is not None:
            self._events.count(event.type, verdict.outcome)
            self._events.flush()
            self.metrics.evaluation_seconds.observe(time.perf_counter() - started)
            self._update_clock_gauges()
        pipeline.publish(changes)
        return changes

    def advance_to(self, instant: datetime | float) -> list[AlertChange]:
        """Move the clock to `instant` (aware datetime or Unix seconds; `--until`);
        the alert changes the deadlines it passed caused, through the pipeline."""
        with self._engine_lock:
            changes = self.engine.advance_to(instant)
        if self.metrics is not None:
            self._update_clock_gauges()
        self.pipeline.publish(changes)
        return changes

    def tick(self) -> None:
        """The stages' timers on the service clock (the engine's watermark): the
        desk records what fell due and keeps the clock in its store, open
        alerts are re-sent to Alertmanager. `run` calls it every few seconds."""
        self.pipeline.tick(self.engine.watermark)

    def close(self) -> None:
        """Close the stages (a bounded drain of the Alertmanager queue)."""
        self.pipeline.close()

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
        self.summary.reject(source, line, rejection, unit)
        if self.metrics is not None:
            self.metrics.events_rejected.labels(reason=rejection.kind).inc()

    def _update_clock_gauges(self) -> None:
        now = self.engine.clock.now
        if now is None:
            return
        self.metrics.watermark_seconds.set(now)
        self.metrics.watermark_lag_seconds.set(time.time() - now)
        self.metrics.segment_watermark_seconds.set(now)   # in one process the segment engine shares the clock
        self.metrics.deadlines_pending.set(len(self.engine.deadlines))
        self.metrics.tracked_entities.set(len(self.engine.state))


__all__ = ["AlertSink", "EmbeddedService", "RejectedRecord", "Summary"]
