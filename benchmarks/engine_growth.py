"""Whether the engine slows as the business grows (issue 15, "Speed falls as
state grows").

1. **Flat replay**: a simulated business of N events (100,000, 1,000,000,
   5,000,000) replayed once through parse + engine; events/s over the first
   and the last fifth, and their ratio (target: last / first >= 0.8). The
   replay runs under the garbage-collector policy `riskwatch replay` and
   `riskwatch run` use (riskwatch.gcpolicy.FreezeLongLived, ticked once a
   record), so it measures what the commands do: under the interpreter's
   default policy full collections walk the whole state and their cost
   alone grows with it.
2. **A key account ordering every few minutes**: 20,000 orders of one
   A-class customer, one every 5 minutes (70 days, all inside the 2 x 90-day
   window the key-account check keeps), against the first 20,000 events of
   the mixed business in the same run (target: the same events/s, ratio
   about 1), and the size of that customer's stored record (bytes of its
   pickled tuple: what goes to the changelog).

    python benchmarks/engine_growth.py [--events 100000 1000000] [--orders 20000]
"""

from __future__ import annotations

import argparse
import gc
import json
import pickle
import time
from datetime import datetime, timedelta, timezone

from riskwatch.engine import Engine
from riskwatch.gcpolicy import FreezeLongLived
from riskwatch.models import Rejection, parse_event
from riskwatch.rules import load_rules
from riskwatch.settings import default_rules_dir

from common import write_result
from engine_throughput import events_file


def replay(lines: list[bytes], rules, marks: int = 5) -> tuple[list[float], Engine]:
    """Events/s over each of `marks` equal parts of `lines`, and the engine.

    Under the commands' collector policy (FreezeLongLived); what an earlier
    replay in this process froze is released first, so each replay starts alike."""
    gc.unfreeze()
    gc.collect()
    collector = FreezeLongLived()
    tick = collector.tick
    engine = Engine(rules)
    process = engine.process
    part = max(1, len(lines) // marks)
    rates = []
    for start in range(0, part * marks, part):
        began = time.perf_counter()
        for line in lines[start:start + part]:
            tick()
            event = parse_event(line)
            if not isinstance(event, Rejection):
                process(event)
        rates.append(part / (time.perf_counter() - began))
    return rates, engine


def key_account_orders(count: int) -> list[bytes]:
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    lines = [(f'{{"event_id":"p-1","type":"customer.profile","occurred_at":"{start:%Y-%m-%dT%H:%M:%SZ}",'
              '"customer_id":"KA-1","tier":"A","region":"east","credit_limit":"90000000"}').encode()]
    for number in range(count - 1):
        at = start + timedelta(minutes=5 * (number + 1))
        lines.append((f'{{"event_id":"o-{number}","type":"order.placed","occurred_at":"{at:%Y-%m-%dT%H:%M:%SZ}",'
                      f'"order_id":"SO-{number}","customer_id":"KA-1","amount":"1250.00","currency":"CNY",'
                      '"region":"east"}').encode())
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--orders", type=int, default=20_000)
    args = parser.parse_args()
    rules = load_rules(default_rules_dir())
    result: dict = {"flat_replay": {}}
    for count in args.events:
        lines = events_file(count).read_bytes().splitlines()
        rates, _ = replay(lines, rules)
        result["flat_replay"][str(count)] = {
            "events_per_second_by_fifth": [round(rate) for rate in rates],
            "last_fifth_over_first": round(rates[-1] / rates[0], 3),
            "target": 0.8,
        }
        print(f"{count:,} events: by fifth {[round(r) for r in rates]}, last/first {rates[-1] / rates[0]:.3f}", flush=True)
        del lines
    mixed = events_file(max(args.events[0], args.orders)).read_bytes().splitlines()[:args.orders]
    key_account = key_account_orders(args.orders)
    pairs = []
    for _ in range(3):
        mixed_rates, _ = replay(mixed, rules, marks=1)
        key_rates, engine = replay(key_account, rules, marks=1)
        pairs.append((mixed_rates[0], key_rates[0]))
    ratios = sorted(key / mixed_rate for mixed_rate, key in pairs)
    record = engine.state.get("c:KA-1")
    result["key_account"] = {
        "orders": args.orders,
        "mixed_events_per_second": round(sorted(p[0] for p in pairs)[1]),
        "key_account_events_per_second": round(sorted(p[1] for p in pairs)[1]),
        "ratio_key_account_to_mixed": round(ratios[1], 3),
        "customer_record_bytes": len(pickle.dumps(record)),
    }
    print(json.dumps(result, indent=2))
    write_result("engine_growth", result)


if __name__ == "__main__":
    main()
