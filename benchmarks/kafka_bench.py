"""End-to-end benchmarks of the faust worker on a real Kafka broker.

Measured in one run, on one broker this script starts (deploy/kafka/kafka.sh),
against a plain loop (aiokafka consume -> the same core engine -> produce,
one event at a time, in its own process) on the same data:

1. backlog drain: N simulated events preloaded, events/s of one faust worker
   and of one plain loop;
2. latency from produce to alert record at 50% of the worker's drain rate
   (p50, p99), for the worker and for the plain loop;
3. absence alert lateness: how long after the shared clock passes a deadline
   (the event that moves it is produced) the overdue alert arrives;
4. 1 -> 2 workers on 4 partitions: drain speed-up (and the plain loop's with
   two processes), the longest pause in progress while the second worker
   joins, and alert ids whose final state differs from the one-worker run;
   the same comparison between two one-worker drains shows how much of that
   a backlog's arrival order explains without any rebalance.

    python benchmarks/kafka_bench.py [--events 200000] [--only drains|latency] [--results FILE]

Results go to benchmarks/results/kafka.json (or FILE). `--only drains` runs
parts 1 and 4 (the drain rates and the comparisons of final alert states)
and leaves out the latency runs; `--only latency --latency-rate R` runs
parts 2 and 3 at half and a quarter of R, a drain rate measured before.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent
REPO = ROOT.parent
sys.path[:0] = [str(REPO), str(ROOT)]

from engine_throughput import events_file  # noqa: E402  (the core benchmark's cached simulation)
from riskwatch.sinks.kafka import route_line, source_topics  # noqa: E402
from tests.support.kafka import (  # noqa: E402
    Broker,
    Worker,
    processed,
    read_topic,
    wait_until,
)

RESULTS = ROOT / "results" / "kafka.json"
STARTED: list = []   # every worker process this run started, stopped at the end whatever happens


def start_worker(**options) -> Worker:
    worker = Worker(**options).start()
    STARTED.append(worker)
    return worker


def preload(broker: str, prefix: str, lines: list[bytes]) -> float:
    from kafka import KafkaProducer

    from riskwatch.topics import ensure_topics

    ensure_topics(broker, prefix, 4)
    producer = KafkaProducer(bootstrap_servers=broker, linger_ms=20, batch_size=512 * 1024, acks=1)
    started = time.perf_counter()
    for line in lines:
        stream, key = route_line(line)
        producer.send(prefix + stream, key=key, value=line)
    producer.flush()
    producer.close()
    return len(lines) / (time.perf_counter() - started)


# -- the plain loop (runs in its own process: `kafka_bench.py plain ...`) ------

async def plain_loop(broker: str, prefix: str, group: str, idle_stop: float, alerts: str) -> dict:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    from riskwatch.engine import Engine
    from riskwatch.models import Rejection, parse_event
    from riskwatch.rules import load_rules
    from riskwatch.settings import default_rules_dir
    from riskwatch.sinks.kafka import alert_record

    engine = Engine(load_rules(default_rules_dir()))
    consumer = AIOKafkaConsumer(*source_topics(prefix), bootstrap_servers=broker, group_id=group,
                                auto_offset_reset="earliest", enable_auto_commit=True)
    producer = AIOKafkaProducer(bootstrap_servers=broker, linger_ms=5)
    await consumer.start()
    await producer.start()
    count, first, last = 0, None, time.time()
    started = time.time()
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=200, max_records=2000)
            now = time.time()
            if not batches:
                if count and now - last > idle_stop:
                    break
                if not count and now - started > 30:  # another process got every partition
                    break
                continue
            if first is None:
                first = now
            for records in batches.values():
                for record in records:
                    event = parse_event(record.value)
                    if isinstance(event, Rejection):
                        continue
                    for change in engine.process(event).changes:
                        key, value = alert_record(change)
                        await producer.send(alerts, key=key, value=value)
                    count += 1
            last = time.time()
    finally:
        await producer.stop()
        await consumer.stop()
    return {"events": count, "first": first or last, "last": last}


def start_plain(broker: str, prefix: str, group: str, idle_stop: float = 4.0, alerts: str | None = None) -> subprocess.Popen:
    """The plain loop in its own process; its alert records go to `alerts` (default the prefix's alerts topic)."""
    return subprocess.Popen([sys.executable, __file__, "plain", broker, prefix, group, str(idle_stop),
                             alerts or prefix + "alerts"], stdout=subprocess.PIPE, text=True, cwd=str(REPO))


def plain_result(process: subprocess.Popen) -> dict:
    out, _ = process.communicate(timeout=1800)
    return json.loads(out.strip().splitlines()[-1])


def drain_plain(broker: str, prefix: str, processes: int) -> float:
    group = f"{prefix}plain{processes}"
    # Its alerts go to a topic of their own: on the workers' alerts topic they
    # were compared as the worker's (the record with the highest sequence of
    # an alert id is its final state, and the plain loop's one engine numbers
    # its records further than a worker's).
    started = [start_plain(broker, prefix, group, alerts=prefix + "plain-alerts") for _ in range(processes)]
    results = [plain_result(p) for p in started]
    results = [r for r in results if r["events"]]
    events = sum(r["events"] for r in results)
    span = max(r["last"] for r in results) - min(r["first"] for r in results)
    return events / span


# -- the faust worker -------------------------------------------------------

def alerts_written(broker: str, prefix: str) -> int:
    """Records on the alerts topic so far (the sum of its partitions' end offsets)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=broker)
    try:
        partitions = consumer.partitions_for_topic(prefix + "alerts") or set()
        ends = consumer.end_offsets([TopicPartition(prefix + "alerts", p) for p in partitions])
        return sum(ends.values())
    finally:
        consumer.close()


def wait_settled(broker: str, prefix: str, workers: list, end_watermark: float, quiet: float = 5.0,
                 timeout: float = 300.0) -> None:
    """After the last event is processed: until every worker's clock and every
    segment engine's clock has reached the end of the data and the alerts topic
    has been quiet for `quiet` s.

    The deadlines the end of the data passes fire on the workers' next clock
    ticks, after the events are counted; stopping the workers at once compared
    drains cut at different points. Segment engines read their facts from
    another topic and lag after a rebalance: waiting on the service clock
    alone stopped a two-worker drain with its collection rates days behind."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        clocks = [w.metric_sum("riskwatch_watermark_seconds") for w in workers]
        # NaN: a worker that owns no segment partition.
        segments = [w.metric_sum("riskwatch_segment_watermark_seconds") for w in workers]
        if all(clock >= end_watermark for clock in clocks) and \
                all(math.isnan(clock) or clock >= end_watermark for clock in segments):
            break
        time.sleep(0.5)
    written, since = alerts_written(broker, prefix), time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - since < quiet:
        time.sleep(1.0)
        now = alerts_written(broker, prefix)
        if now != written:
            written, since = now, time.monotonic()


def drain_workers(broker: str, prefix: str, workdir: Path, total: int, second_after: float | None = None,
                  end_watermark: float | None = None) -> dict:
    """Drain rate of one worker (or two, the second joining after `second_after` s of progress).

    With `end_watermark` (the last event time less the lateness, Unix s) the
    workers run on until their clocks reach it and their output settles
    (`wait_settled`), so that drains are compared complete."""
    a = start_worker(broker=broker, prefix=prefix, directory=workdir)
    workers = [a]
    samples: list[tuple[float, float]] = []
    b_started = None
    deadline = time.monotonic() + 1800
    first = None
    while time.monotonic() < deadline:
        done = processed(workers)
        now = time.monotonic()
        samples.append((now, done))
        if done > 0 and first is None:
            first = now
        if second_after is not None and b_started is None and first is not None and now - first >= second_after:
            workers.append(start_worker(broker=broker, prefix=prefix, directory=workdir))
            b_started = now
        if done >= total:
            break
        # Scraping /metrics costs the worker CPU: poll gently (the rate's
        # error is at most one interval over the whole drain).
        time.sleep(0.5)
    finished = time.monotonic()
    if end_watermark is not None:
        wait_settled(broker, prefix, workers, end_watermark)
    # The longest stretch without progress after the second worker was started.
    pause = 0.0
    if b_started is not None:
        last_t, last_v = b_started, None
        for t, v in samples:
            if t < b_started:
                last_v = v
                continue
            if v != last_v:
                pause = max(pause, t - last_t)
                last_t, last_v = t, v
    for worker in workers:
        worker.stop()
    rate = total / (finished - first) if first else 0.0
    return {"rate": rate, "pause": pause, "workers": len(workers)}


# -- latency ----------------------------------------------------------------

class AlertWatcher(threading.Thread):
    """Wall time at which each evidence event id first appears in an alert record."""

    def __init__(self, broker: str, topic: str, only: bytes | None = None):
        super().__init__(daemon=True)
        self.only = only
        from kafka import KafkaConsumer

        self.consumer = KafkaConsumer(topic, bootstrap_servers=broker, group_id=None, auto_offset_reset="latest",
                                      fetch_max_wait_ms=5, consumer_timeout_ms=200)
        self.seen: dict[str, float] = {}
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            for record in self.consumer:
                now = time.time()
                if self.only is not None and self.only not in record.value:
                    continue  # not a probe's alert: parsing it would only take CPU from what is measured
                for event_id in json.loads(record.value).get("evidence", ()):
                    self.seen.setdefault(event_id, now)

    def close(self) -> None:
        self.stopped.set()
        self.join(5)
        self.consumer.close()


def probe_pair(n: int, at: float) -> tuple[bytes, bytes, str]:
    """Two observations of a new (competitor, sku), a minute apart from `at`
    (Unix s), the second a 20 % cut.

    A cut is decided once the watermark passes its observation (docs/decisions.md),
    and the watermark is the slowest of a partition's inputs less the allowed
    lateness: a probe dated with the load would wait for the load's event time
    to move on, and one dated ahead (as this benchmark once did) waits forever.
    Probes dated behind every clock (an hour before the wall clock under a
    live-dated load, a day before the simulation's first event otherwise) are
    decided as they arrive: what is measured is the worker's path from the
    record to the alert, not the lateness."""
    sku = f"PROBE-{n}"
    base = {"type": "competitor.price_observed", "competitor": "Bench", "sku": sku, "occurred_at": iso_utc(at)}
    first = json.dumps({**base, "event_id": f"p-{n}-a", "price": 100}).encode()
    cut_id = f"p-{n}-b"
    second = json.dumps({**base, "event_id": cut_id, "price": 80, "occurred_at": iso_utc(at + 60)}).encode()
    return first, second, cut_id


def iso_utc(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def live_dated(lines: list[bytes]) -> list[tuple[dict, dict[str, float]]]:
    """Each line as (event, {timestamp field: seconds after its occurred_at}), to be dated when sent."""
    from riskwatch.models import TIMESTAMP_FIELDS
    from riskwatch.timeutil import parse_instant

    dated = []
    for line in lines:
        event = json.loads(line)
        occurred = parse_instant(event["occurred_at"]).timestamp()
        dated.append((event, {field: parse_instant(event[field]).timestamp() - occurred
                              for field in TIMESTAMP_FIELDS if isinstance(event.get(field), str)}))
    return dated


def latency_run(broker: str, prefix: str, lines: list[bytes], rate: float, seconds: float, warmup: float = 5.0,
                live: bool = True) -> dict:
    """Send load at `rate` events/s with a price-cut probe every 50 ms; latency of the probes' alerts.

    Probes start after `warmup` seconds of load: a process that has just
    started (the worker spawning its alert desk, either one's first fetches)
    is measured at its steady state, not while it catches up with its start.

    `live`: each event is dated when it is sent (occurred_at the wall clock,
    its other instants as far from it as in the simulation), as a service
    running on live data sees them: event time moves at wall-clock speed, and
    the scheduled checks (each partition's hourly credit check, the segments'
    daily rates) run as often as they would. Otherwise the simulation's own
    dates are sent, and event time runs about 1.3 days a second at 1,800
    events/s: every partition's hourly credit check runs some 30 times a
    second, a stress the live service never sees.
    """
    from kafka import KafkaProducer

    from riskwatch.timeutil import parse_instant

    needed = min(len(lines), int(rate * (warmup + seconds)) + 1000)
    dated = live_dated(lines[:needed]) if live else None

    watcher = AlertWatcher(broker, prefix + "alerts", only=b'"p-')
    watcher.start()
    time.sleep(2)  # the watcher's consumer joins at the end of the topic
    # The load lingers (a request per event would cost this process and the
    # broker more CPU than the process measured has on 2 cores); each probe
    # pair is flushed at once.
    producer = KafkaProducer(bootstrap_servers=broker, linger_ms=5, acks=1)
    sent: dict[str, float] = {}
    started = time.monotonic()
    index, probe = 0, 0
    next_probe = started + warmup
    while time.monotonic() - started < warmup + seconds:
        elapsed = time.monotonic() - started
        due = int(elapsed * rate)
        if dated is not None:
            now = time.time()
        while index < min(due, needed):
            line = lines[index]
            if dated is not None:
                event, offsets = dated[index]
                event["occurred_at"] = iso_utc(now)
                for field, offset in offsets.items():
                    event[field] = iso_utc(now + offset)
                line = json.dumps(event).encode()
            stream, key = route_line(line)
            producer.send(prefix + stream, key=key, value=line)
            index += 1
        if time.monotonic() >= next_probe:
            # An observation an hour old, or a day before the simulation's first event.
            probe_at = time.time() - 3600 if live else parse_instant(json.loads(lines[0])["occurred_at"]).timestamp() - 86400
            first, second, cut_id = probe_pair(probe, probe_at)
            producer.send(prefix + "competitor-prices", key=f"PROBE-{probe}".encode(), value=first)
            producer.send(prefix + "competitor-prices", key=f"PROBE-{probe}".encode(), value=second)
            producer.flush()
            sent[cut_id] = time.time()
            probe += 1
            next_probe += 0.05
        time.sleep(0.002)
    producer.flush()
    producer.close()
    time.sleep(3)
    watcher.close()
    latencies = sorted((watcher.seen[i] - t) * 1000 for i, t in sent.items() if i in watcher.seen)
    missing = sum(1 for i in sent if i not in watcher.seen)
    return {
        "event_time": "live (sent at the wall clock)" if live else "simulated (about 1.3 days a second at 1,800/s)",
        "load_events_per_s": round(index / (warmup + seconds)),
        "probes": len(sent),
        "probes_without_alert": missing,
        "p50_ms": round(statistics.median(latencies), 1) if latencies else None,
        "p99_ms": round(latencies[int(0.99 * (len(latencies) - 1))], 1) if latencies else None,
    }


def absence_lateness(broker: str, prefix: str, tick: float, probes: int = 20) -> dict:
    """Overdue alerts fired by the shared clock: arrival time after the clock passed the deadline."""
    from kafka import KafkaProducer

    watcher = AlertWatcher(broker, prefix + "alerts")
    watcher.start()
    time.sleep(2)
    producer = KafkaProducer(bootstrap_servers=broker, linger_ms=0, acks=1)
    # The worker reads topics of its own: only these events move its clock. In
    # the past (2017), as the worker refuses events beyond the wall clock plus
    # its tolerance (DOMAIN §3 "Timestamps").
    base = 1_500_000_000
    lateness = 600
    results = []
    at = iso_utc

    for n in range(probes):
        due = base + n * 10 * 86400
        invoice = {"event_id": f"abs-i-{n}", "type": "invoice.issued", "occurred_at": at(due - 86400),
                   "invoice_id": f"ABS-{n}", "customer_id": f"ABS-C-{n}", "amount": 1000, "due_at": at(due)}
        producer.send(prefix + "payments", key=invoice["customer_id"].encode(), value=json.dumps(invoice).encode())
        producer.flush()
        time.sleep(0.5)
        mover = {"event_id": f"abs-m-{n}", "type": "order.placed", "occurred_at": at(due + 30 * 86400 + lateness + 1),
                 "order_id": f"ABS-O-{n}", "customer_id": f"ABS-M-{n}", "amount": 1}
        producer.send(prefix + "orders", key=mover["customer_id"].encode(), value=json.dumps(mover).encode())
        producer.flush()
        moved = time.time()
        wait_until(lambda: f"abs-i-{n}" in watcher.seen, 30, 0.01, "the overdue alert")
        results.append(watcher.seen[f"abs-i-{n}"] - moved)
    producer.close()
    watcher.close()
    results.sort()
    return {"probes": probes, "tick_seconds": tick, "p50_s": round(statistics.median(results), 3),
            "max_s": round(results[-1], 3), "target_s": tick + 0.5}


def final_records(broker: str, prefix: str) -> dict[str, dict]:
    """alert_id -> the record with the highest sequence (what a compacted topic keeps)."""
    latest: dict[str, dict] = {}
    for record in read_topic(broker, prefix + "alerts", 3, 600):
        change = json.loads(record.value)
        held = latest.get(change["alert_id"])
        if held is None or change["sequence"] >= held["sequence"]:
            latest[change["alert_id"]] = change
    return latest


def compare_final(broker: str, one: str, two: str) -> dict:
    """Open alerts of drain `one` missing or different (tier, status) in drain `two`, by indicator."""
    first, second = final_records(broker, one), final_records(broker, two)

    def state(record: dict | None) -> tuple | None:
        return None if record is None else (record["tier"], record["status"])

    def describe(record: dict | None) -> str | None:
        if record is None:
            return None
        return f"{record['indicator']} {record['subject']['id']} {record['tier']} {record['status']} seq {record['sequence']}"

    lost = [k for k, v in first.items() if v["status"] == "open" and state(second.get(k)) != state(v)]
    different = [k for k in set(first) | set(second) if state(first.get(k)) != state(second.get(k))]
    return {
        "alert_ids": len(first),
        "open_alerts_lost_or_different": len(lost),
        "lost_or_different_by_indicator": dict(Counter(first[k]["indicator"] for k in lost)),
        "ids_with_different_final_state": len(different),
        # A few of them, to look up in the two drains' alert topics.
        "examples": {k: [describe(first.get(k)), describe(second.get(k))] for k in sorted(lost or different)[:5]},
    }


def main() -> None:
    # Stopped with SIGTERM (or SIGINT where a shell ignores it for background
    # jobs), the broker and the workers are still stopped by the `finally` below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--latency-seconds", type=float, default=20.0)
    parser.add_argument("--only", choices=("drains", "latency"), default=None,
                        help="drains: the drain rates and final-state comparisons only (no latency runs); "
                             "latency: the latency runs only, at half and a quarter of --latency-rate")
    parser.add_argument("--latency-rate", type=float, default=3600.0,
                        help="with --only latency: the worker's drain rate (events/s) the load rates derive from")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where to write the results (JSON)")
    args = parser.parse_args()
    lines = [line for line in events_file(args.events).read_bytes().splitlines() if line.strip()]
    # The simulation is in event-time order: its last line holds the latest event time.
    from riskwatch.timeutil import parse_instant

    end_watermark = parse_instant(json.loads(lines[-1])["occurred_at"]).timestamp() - 600.0
    work = Path(tempfile.mkdtemp(prefix="riskwatch-kafka-bench-"))
    broker = Broker(work / "kafka")
    broker.start()
    result: dict = {"events": len(lines)}
    try:
        b = broker.bootstrap
        if args.only != "latency":
            rate = preload(b, "drain1.", lines)
            result["preload_events_per_s"] = round(rate)
            print(f"preloaded {len(lines)} events at {rate:,.0f}/s", flush=True)

            plain1 = drain_plain(b, "drain1.", 1)
            print(f"plain loop, 1 process: {plain1:,.0f} events/s", flush=True)
            faust1 = drain_workers(b, "drain1.", work, len(lines), end_watermark=end_watermark)
            print(f"faust worker, 1 process: {faust1['rate']:,.0f} events/s", flush=True)
            result["backlog_drain"] = {
                "plain_events_per_s": round(plain1), "worker_events_per_s": round(faust1["rate"]),
                "ratio": round(faust1["rate"] / plain1, 3), "target_ratio_per_event": 0.35,
            }

            preload(b, "drain2.", lines)
            plain2 = drain_plain(b, "drain2.", 2)
            faust2 = drain_workers(b, "drain2.", work, len(lines), second_after=3.0, end_watermark=end_watermark)
            result["scaling_1_to_2_workers"] = {
                "plain_speedup": round(plain2 / plain1, 2), "worker_speedup": round(faust2["rate"] / faust1["rate"], 2),
                "worker_2_events_per_s": round(faust2["rate"]), "plain_2_events_per_s": round(plain2),
                "rebalance_pause_s": round(faust2["pause"], 2), "target_pause_s": 10,
                **compare_final(b, "drain1.", "drain2."),
            }
            print(f"two workers: {faust2['rate']:,.0f} events/s, pause {faust2['pause']:.1f} s; "
                  f"two plain loops: {plain2:,.0f} events/s", flush=True)
            # The same comparison between two one-worker drains of the same backlog:
            # what differs without any rebalance (docs/streams.md, "Parity").
            preload(b, "drain1b.", lines)
            drain_workers(b, "drain1b.", work, len(lines), end_watermark=end_watermark)
            result["one_worker_drained_twice"] = compare_final(b, "drain1.", "drain1b.")
            print(f"1 -> 2 workers vs one worker: {result['scaling_1_to_2_workers']['lost_or_different_by_indicator']}; "
                  f"one worker twice: {result['one_worker_drained_twice']['lost_or_different_by_indicator']}", flush=True)

        if args.only != "drains":
            half = args.latency_rate / 2 if args.only == "latency" else faust1["rate"] / 2
            worker = start_worker(broker=b, prefix="lat.", directory=work)
            worker.wait_ready(120)
            result["latency_worker"] = latency_run(b, "lat.", lines, half, args.latency_seconds)
            print(f"worker latency at {half:,.0f} events/s: {result['latency_worker']}", flush=True)
            worker.stop()
            # The same at a quarter of the drain rate: a trickle costs the worker
            # more per event than a backlog (one produce request per event).
            worker = start_worker(broker=b, prefix="latq.", directory=work)
            worker.wait_ready(120)
            result["latency_worker_quarter_rate"] = latency_run(b, "latq.", lines, half / 2, args.latency_seconds)
            print(f"worker latency at {half / 2:,.0f} events/s: {result['latency_worker_quarter_rate']}", flush=True)
            worker.stop()
            worker = start_worker(broker=b, prefix="abs.", directory=work)
            worker.wait_ready(120)
            result["absence_lateness"] = absence_lateness(b, "abs.", 0.25)
            print(f"absence alert lateness: {result['absence_lateness']}", flush=True)
            worker.stop()

            from riskwatch.topics import ensure_topics

            ensure_topics(b, "latp.", 4)
            plain = start_plain(b, "latp.", "latp.plain", idle_stop=600.0)
            time.sleep(3)
            result["latency_plain"] = latency_run(b, "latp.", lines, half, args.latency_seconds)
            plain.terminate()
            print(f"plain loop latency at {half:,.0f} events/s: {result['latency_plain']}", flush=True)
            ensure_topics(b, "latpq.", 4)
            plain = start_plain(b, "latpq.", "latpq.plain", idle_stop=600.0)
            time.sleep(3)
            result["latency_plain_quarter_rate"] = latency_run(b, "latpq.", lines, half / 2, args.latency_seconds)
            plain.terminate()
            print(f"plain loop latency at {half / 2:,.0f} events/s: {result['latency_plain_quarter_rate']}", flush=True)
            wp99, pp99 = result["latency_worker"]["p99_ms"], result["latency_plain"]["p99_ms"]
            if wp99 and pp99:
                result["latency_p99_ratio_worker_to_plain"] = round(wp99 / pp99, 2)
    finally:
        for worker in STARTED:
            worker.stop(timeout=10)
        broker.stop()
    result.update({
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": platform.python_version(), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        # The machine is shared: a rate measured under other work is lower.
        "load_average_1min_at_end": round(os.getloadavg()[0], 2),
    })
    args.results.parent.mkdir(exist_ok=True)
    args.results.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "plain":
        _, _, broker_, prefix_, group_, idle_, alerts_ = sys.argv
        print(json.dumps(asyncio.run(plain_loop(broker_, prefix_, group_, float(idle_), alerts_))))
    else:
        main()
