"""A receivable follows its customer into another segment even when the two
segments' engines are apart (the Kafka worker partitions segment facts by
segment): the old segment stops counting it (issue 15, a backlog read with
invoices ahead of the customers' profiles)."""

from __future__ import annotations

import json

from riskwatch import testing as t
from riskwatch.engine import Engine
from riskwatch.engine.aggregates import SegmentEngine
from riskwatch.engine.indicators.collection_rate import RECEIVABLE as RECEIVABLE_PREFIX
from riskwatch.models import parse_event

MARCH = 1_709_251_200.0   # 2024-03-01T00:00:00Z


def test_invoices_read_before_their_customers_profile_leave_the_unclassified_segment_on_another_engine():
    rules = t.default_rules()
    engines = {"unclassified": SegmentEngine(rules), "C": SegmentEngine(rules)}
    engine = Engine(rules, segment_sink=lambda fact: engines[fact["segment"]].apply(fact))
    # Six customers' invoices arrive before their profiles (another topic, read later).
    for n in range(6):
        engine.process(parse_event(json.dumps(t.invoice_issued(f"INV-{n}", f"C-{n}", 1000, "2024-02-01T00:00:00Z",
                                                    at="2024-01-05T00:00:00Z"))))
    assert sum(key.startswith(RECEIVABLE_PREFIX) for key in engines["unclassified"].state) == 6
    for n in range(6):
        engine.process(parse_event(json.dumps(t.customer_profile(f"C-{n}", "C", at="2024-01-01T00:00:00Z"))))
    assert not any(key.startswith(RECEIVABLE_PREFIX) for key in engines["unclassified"].state)
    assert sum(key.startswith(RECEIVABLE_PREFIX) for key in engines["C"].state) == 6
    # Unpaid a month after they fell due: segment C's collection rate falls, never "unclassified"'s.
    raised = {(c.indicator, c.subject["id"]) for segment in engines.values()
              for instant in (MARCH - 86400 * 20, MARCH) for c in segment.advance_to(instant) if c.change == "raised"}
    assert raised == {("collection_rate", "C")}
