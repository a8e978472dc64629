"""A segment engine in the Kafka worker first moves once every source
partition has reported; on a backlog produced all at once that can be
weeks into it. It must still evaluate every day from the first event on,
as `replay` does: starting at its first clock value skipped the weeks
before, and a collection-rate alert of those weeks was never raised
(tests/streams/test_parity.py, the backlog produced all at once)."""

from __future__ import annotations

import json

import orjson

from riskwatch.engine import Engine
from riskwatch.engine.aggregates import SegmentEngine
from riskwatch.models import parse_event
from riskwatch.simulate import SimulationSettings, simulate
from riskwatch.testing import default_rules

LATENESS = 86400.0
SEGMENT_INDICATORS = {"collection_rate", "customer_churn_rate", "sales_target_lag"}


def _segment_changes(changes) -> dict:
    return {(c.alert_id, c.sequence): (c.status, c.tier, c.observed, c.raised_at, c.resolved_at, c.evidence)
            for c in changes if c.indicator in SEGMENT_INDICATORS}


def test_a_segment_engine_that_first_moves_at_the_end_of_a_backlog_raises_what_replay_raised():
    # The backlog of the parity test: five months of 60 customers.
    events = [parse_event(orjson.dumps(orjson.loads(line)))
              for line in simulate(SimulationSettings(seed=3, customers=60, days=150))]
    rules = default_rules()

    replay = Engine(rules, lateness_seconds=LATENESS)
    replayed = []
    for event in events:
        replayed.extend(replay.process(event).changes)

    facts: list[dict] = []
    partition = Engine(rules, lateness_seconds=LATENESS, segment_sink=facts.append)
    segments = SegmentEngine(rules, lateness_seconds=LATENESS)
    for event in events:
        partition.process(event)
        for fact in facts:
            fact["at"] = event.occurred_at.timestamp()   # as the worker dates them
            segments.apply(json.loads(json.dumps(fact)))
        facts.clear()
    # Its first watermark only now: the whole backlog's facts are in.
    worker = segments.advance_to(partition.clock.now)

    assert len(_segment_changes(replayed)) > 50, "the backlog raises segment alerts to compare"
    assert _segment_changes(worker) == _segment_changes(replayed)
