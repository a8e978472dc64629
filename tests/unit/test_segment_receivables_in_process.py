"""In one process the collection rate reads each invoice from the entity
engine's own record (a `ReceivablePlace` per invoice); the worker's segment
engine, on another partition, keeps a copy (`Receivable`) from the facts it
is sent. The two must count the same money, or `replay` and the worker
would disagree on a segment's collection rate."""

from __future__ import annotations

import json
from itertools import islice

import orjson

from riskwatch.engine import Engine
from riskwatch.engine.aggregates import SegmentEngine
from riskwatch.engine.records import ReceivablePlace
from riskwatch.models import parse_event
from riskwatch.simulate import SimulationSettings, simulate
from riskwatch.testing import default_rules


def _events():
    # A simulated year of a small business with slow payers: collection-rate alerts to compare.
    lines = simulate(SimulationSettings(seed=5, customers=80, days=365))
    return [parse_event(orjson.dumps(orjson.loads(line))) for line in islice(lines, 40_000)]


def _collection_rates(changes) -> dict:
    return {(c.alert_id, c.sequence): (c.status, c.tier, c.observed, c.evidence, c.amount_at_stake_cny)
            for c in changes if c.indicator == "collection_rate"}


def test_the_collection_rate_is_the_same_from_the_invoice_records_as_from_the_facts_sent():
    events = _events()
    rules = default_rules()

    together = Engine(rules)
    in_process = []
    for event in events:
        in_process.extend(together.process(event).changes)

    facts: list[dict] = []
    apart = Engine(rules, segment_sink=facts.append)
    segments = SegmentEngine(rules)
    sent = []
    for event in events:
        apart.process(event)
        for fact in facts:
            segments.apply(json.loads(json.dumps(fact)))   # as the segment-facts topic carries it
        facts.clear()
        sent.extend(segments.advance_to(apart.clock.now))

    assert _collection_rates(in_process), "the year raises collection-rate alerts to compare"
    assert _collection_rates(in_process) == _collection_rates(sent)
    kinds = {type(value) for key, value in together.state.items() if key.startswith("gi:")}
    assert kinds == {ReceivablePlace}
    assert {type(value) for key, value in segments.state.items() if key.startswith("gi:")} == {bytes}
