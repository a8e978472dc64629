"""Engine replay throughput against a json.loads-only loop over the same file.

Both loops read the same pre-generated JSON-lines file (simulated business);
pairs are interleaved so machine noise hits both alike; the median of the
pairs is reported with the ratio engine / json.loads.

Each pair also times the two stages apart, as shares of the whole-engine
budget the target sets: `parse_event` alone (read + validate into the
contract's models) and `Engine.process` alone over events parsed before
the clock starts. Each stage's ratio is json.loads time / stage time: a
stage under the target by itself bounds what the whole can reach.

    python benchmarks/engine_throughput.py [--events 1000000] [--pairs 5]
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import time
from pathlib import Path

from riskwatch.engine import Engine
from riskwatch.models import Rejection, parse_event
from riskwatch.rules import load_rules
from riskwatch.settings import default_rules_dir
from riskwatch.simulate import SimulationSettings, simulate

from common import OUT, write_result


def events_file(count: int, seed: int = 11) -> Path:
    path = OUT / f"events-{count}-{seed}.jsonl"
    if not path.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with tmp.open("wb") as handle:
            for line in simulate(SimulationSettings(seed=seed, customers=6000, days=None, events=count)):
                handle.write(line + b"\n")
        tmp.rename(path)
    return path


def json_loads_loop(lines: list[bytes]) -> float:
    started = time.perf_counter()
    loads = json.loads
    for line in lines:
        loads(line)
    return time.perf_counter() - started


def parse_loop(lines: list[bytes]) -> float:
    started = time.perf_counter()
    for line in lines:
        parse_event(line)
    return time.perf_counter() - started


def process_loop(lines: list[bytes], rules) -> float:
    events = [event for event in map(parse_event, lines) if not isinstance(event, Rejection)]
    # The parsed models are long-lived here and not in the whole loop: kept
    # out of the collector's scans so they do not slow the stage they feed.
    gc.freeze()
    try:
        engine = Engine(rules)
        process = engine.process
        started = time.perf_counter()
        for event in events:
            process(event)
        return time.perf_counter() - started
    finally:
        del events
        gc.unfreeze()


def engine_loop(lines: list[bytes], rules) -> tuple[float, int]:
    engine = Engine(rules)
    process = engine.process
    changes = 0
    started = time.perf_counter()
    for line in lines:
        event = parse_event(line)
        if isinstance(event, Rejection):
            continue
        changes += len(process(event).changes)
    return time.perf_counter() - started, changes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--pairs", type=int, default=5)
    args = parser.parse_args()
    path = events_file(args.events)
    lines = path.read_bytes().splitlines()
    rules = load_rules(default_rules_dir())
    baseline_rates, engine_rates, ratios, parse_ratios, process_ratios = [], [], [], [], []
    for pair in range(args.pairs):
        gc.collect()
        base = json_loads_loop(lines)
        gc.collect()
        elapsed, changes = engine_loop(lines, rules)
        gc.collect()
        parsing = parse_loop(lines)
        gc.collect()
        processing = process_loop(lines, rules)
        baseline_rates.append(len(lines) / base)
        engine_rates.append(len(lines) / elapsed)
        ratios.append(base / elapsed)
        parse_ratios.append(base / parsing)
        process_ratios.append(base / processing)
        print(f"pair {pair + 1}: json.loads {len(lines) / base:,.0f} ev/s, engine {len(lines) / elapsed:,.0f} ev/s, "
              f"ratio {base / elapsed:.3f} ({changes} alert changes); stages alone: parse_event "
              f"{base / parsing:.3f}, Engine.process {base / processing:.3f}", flush=True)
    result = {
        "events": len(lines),
        "pairs": args.pairs,
        "json_loads_events_per_second": round(statistics.median(baseline_rates)),
        "engine_events_per_second": round(statistics.median(engine_rates)),
        "ratio_engine_to_json_loads": round(statistics.median(ratios), 3),
        "ratio_parse_event_alone_to_json_loads": round(statistics.median(parse_ratios), 3),
        "ratio_engine_process_alone_to_json_loads": round(statistics.median(process_ratios), 3),
        "target_ratio": 0.5,
    }
    print(json.dumps(result, indent=2))
    write_result("engine_throughput", result)


if __name__ == "__main__":
    main()
