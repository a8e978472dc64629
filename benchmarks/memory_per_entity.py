"""Memory per open tracked entity (shipments and invoices) and the longest
full GC pause with that many open.

The baseline is the process before the entities exist, measured in the same
run; the figure is (resident memory after − before) / entities.

    python benchmarks/memory_per_entity.py [--entities 1000000]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import time
from datetime import datetime, timedelta, timezone

from riskwatch.engine import Engine
from riskwatch.gcpolicy import FreezeLongLived
from riskwatch.models import parse_event
from riskwatch.rules import load_rules
from riskwatch.settings import default_rules_dir

from common import write_result

PAGE = os.sysconf("SC_PAGE_SIZE")


def resident_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * PAGE


def opening_events(count: int):
    """Half shipments scheduled, half invoices issued; deadlines far ahead so all stay open."""
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    promised = (start + timedelta(days=400)).strftime("%Y-%m-%dT%H:%M:%SZ")
    for number in range(count):
        at = (start + timedelta(seconds=number * 5)).strftime("%Y-%m-%dT%H:%M:%SZ")
        customer = f"CUST-{number % 5000:05d}"
        if number % 2:
            yield (f'{{"event_id":"e{number:08d}","type":"delivery.scheduled","occurred_at":"{at}",'
                   f'"shipment_id":"SHP-{number:08d}","order_id":"ORD-{number:08d}","customer_id":"{customer}",'
                   f'"promised_at":"{promised}"}}').encode()
        else:
            yield (f'{{"event_id":"e{number:08d}","type":"invoice.issued","occurred_at":"{at}",'
                   f'"invoice_id":"INV-{number:08d}","customer_id":"{customer}","amount":"12500.00",'
                   f'"due_at":"{promised}"}}').encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entities", type=int, default=1_000_000)
    args = parser.parse_args()
    rules = load_rules(default_rules_dir())
    engine = Engine(rules)
    gc.collect()
    before = resident_bytes()
    collector = FreezeLongLived()  # what `riskwatch run` and `replay` do
    for raw in opening_events(args.entities):
        engine.process(parse_event(raw))
        collector.tick()
    gc.collect()
    after = resident_bytes()
    pauses = []
    for _ in range(5):
        started = time.perf_counter()
        gc.collect()
        pauses.append(time.perf_counter() - started)
    # The same state without the policy: every long-lived object walked again.
    gc.unfreeze()
    gc.collect()
    unfrozen = []
    for _ in range(3):
        started = time.perf_counter()
        gc.collect()
        unfrozen.append(time.perf_counter() - started)
    per_entity = (after - before) / args.entities
    result = {
        "open_entities": args.entities,
        "state_keys": len(engine.state),
        "bytes_per_open_entity": round(per_entity),
        "target_bytes_per_open_entity": 400,
        "full_gc_pause_ms_max": round(max(max(pauses), collector.longest_pause) * 1000, 2),
        "full_gc_pause_ms_max_without_freeze": round(max(unfrozen) * 1000, 1),
        "target_gc_pause_ms": 20,
    }
    print(json.dumps(result, indent=2))
    write_result("memory_per_entity", result)


if __name__ == "__main__":
    main()
