"""The engine of the indicators about a group: churn and collection rate per
customer segment, sales-target lag per region (riskwatch/engine/indicators/).

They are fed segment facts (JSON-able dicts keyed by `segment`) by the
entity engine: in-process directly, in the Kafka worker through a
repartition topic. They are evaluated on a schedule (`evaluate_every`), as of
each scheduled instant, counting only facts up to that instant: when the
clock passes the instant every event up to it has arrived (that is what the
allowed lateness promises), so the result does not depend on arrival order.
"""

from __future__ import annotations

from typing import Callable, Iterable, MutableMapping

from riskwatch.contracts import AlertChange
from riskwatch.engine.alertbook import AlertBook, Finding
from riskwatch.engine.clock import Watermark
from riskwatch.engine.indicators.base import Context, create, takes_segment_facts
from riskwatch.engine.indicators.scheduler import TICK, Scheduler
from riskwatch.engine.records import check_schema
from riskwatch.rules.loader import RuleSet

__all__ = ["SegmentEngine", "SegmentSink", "TICK"]


class SegmentEngine:
    """Segment facts in (`apply`), alert change records out (`apply`,
    `advance_to`). `state` is this engine's state mapping (shared with the
    entity engine in-process); `clock` the watermark it evaluates by;
    `facts` the entity engine in-process (None in the worker, where the
    facts come from other partitions)."""

    def __init__(self, rules: RuleSet, state: MutableMapping[str, object] | None = None,
                 lateness_seconds: float = 600.0, clock: Watermark | None = None, facts=None):
        self.rules = rules
        self.state: MutableMapping[str, object] = {} if state is None else state
        self.clock = clock if clock is not None else Watermark(lateness_seconds)
        check_schema(self.state)
        self.book = AlertBook(rules, self.state)
        # `facts`: the entity engine, when both share one process and state;
        # the indicators then read its records instead of keeping copies.
        context = Context(rules, self.state, self.book, schedule=lambda ts, key: None, lateness=self.clock.lateness,
                          facts=facts)
        self.indicators = create(rules, context, only=takes_segment_facts)
        self._by_fact: dict[str, list] = {}
        for indicator in self.indicators.values():
            for kind in indicator.spec.consumes:
                self._by_fact.setdefault(kind, []).append(indicator)
        self.scheduler = Scheduler(self.state, self.indicators.values(), self._record)
        self.rebuild()

    def rebuild(self) -> None:
        """Re-derive the in-memory indexes from state (after recovery)."""
        for indicator in self.indicators.values():
            indicator.rebuild()
        self.scheduler.reset()

    def apply(self, fact: dict) -> list[AlertChange]:
        """One segment fact (docs/contracts-internal.md); facts change no alert
        by themselves (alerts come from the scheduled evaluations).

        A fact's `at` (Unix seconds, the event time of the event that made
        it; the Kafka worker sets it) moves the start of the schedule back to
        that instant less the allowed lateness, should this engine first
        move later: each instant from the first event on is evaluated, as
        `replay` does, however far into a backlog the first watermark came."""
        at = fact.get("at")
        if at is not None:
            self.scheduler.note_start(at - self.clock.lateness)
        for indicator in self._by_fact.get(fact["kind"], ()):
            indicator.apply(fact)
        return []

    def advance_to(self, instant: float | None = None) -> list[AlertChange]:
        """Move the clock to `instant` (Unix seconds; None: as it stands) and
        run every scheduled evaluation it passed."""
        if instant is not None:
            self.clock.advance_to(instant)
        now = self.clock.now
        if now is None:
            return []
        return self.scheduler.run(now)

    def _record(self, findings: Iterable[Finding], as_of: float) -> list[AlertChange]:
        changes = []
        for finding in findings:
            record = self.book.record(finding, as_of)
            if record is not None:
                changes.append(record)
        return changes


SegmentSink = Callable[[dict], None]
