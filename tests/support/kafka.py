"""A real Kafka broker and real `riskwatch worker` processes for tests.

`Broker` runs deploy/kafka/kafka.sh (fresh data dir, free ports); `Worker`
runs the console script as a subprocess so a test can kill -9 it; the
helpers produce JSON-lines events, read topics back and compare alert sets.
Nothing here is a mock: everything talks to the broker on loopback.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

ROOT = Path(__file__).resolve().parents[2]
KAFKA_SH = ROOT / "deploy" / "kafka" / "kafka.sh"
RISKWATCH = Path(sys.executable).with_name("riskwatch")

# A live business emits events roughly in event-time order; the worker's
# promise (DOMAIN §4) is parity with a replay for disorder within the allowed
# lateness. The simulated scenarios span months, so the streams tests allow a
# day and send half a day of events at a time (docs/streams.md, "Parity").
LATENESS = 86400.0
WINDOW = 43200.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate: Callable[[], object], timeout: float, interval: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


class Broker:
    def __init__(self, directory: Path):
        self.directory = directory
        self.port = free_port()
        self.controller_port = free_port()
        self.pid: int | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        done = subprocess.run(
            [str(KAFKA_SH), "start", str(self.directory), str(self.port), str(self.controller_port)],
            capture_output=True, text=True, timeout=180,
        )
        if done.returncode != 0:
            raise RuntimeError(f"kafka.sh start failed: {done.stderr}")
        self.pid = int(done.stdout.strip().splitlines()[-1])
        wait_until(self._metadata_ready, 60, 0.5, "broker metadata")

    def _metadata_ready(self) -> bool:
        from kafka import KafkaAdminClient
        from kafka.errors import KafkaError

        try:
            admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=5000)
        except KafkaError:
            return False
        try:
            admin.list_topics()
            return True
        except KafkaError:
            return False
        finally:
            admin.close()

    def stop(self) -> None:
        subprocess.run([str(KAFKA_SH), "stop", str(self.directory)], capture_output=True, timeout=60)
        self.pid = None


@dataclass
class Worker:
    """One `riskwatch worker` process."""

    broker: str
    prefix: str
    directory: Path
    idle_advance: float = 0.0
    lateness: float = 600.0
    partitions: int = 4
    extra_args: tuple[str, ...] = ()
    web_port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    log_path: Path | None = None

    def start(self) -> "Worker":
        self.directory.mkdir(parents=True, exist_ok=True)
        self.log_path = self.directory / f"worker-{self.web_port}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("RISKWATCH_")}
        env.update({
            "RISKWATCH_BROKER": self.broker,
            "RISKWATCH_TOPIC_PREFIX": self.prefix,
            "RISKWATCH_WEB_PORT": str(self.web_port),
            "RISKWATCH_STATE_DIR": str(self.directory / f"state-{self.web_port}"),
            "RISKWATCH_IDLE_ADVANCE_SECONDS": str(self.idle_advance),
            "RISKWATCH_LATENESS_SECONDS": str(self.lateness),
        })
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [str(RISKWATCH), "worker", "--partitions", str(self.partitions), *self.extra_args],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(ROOT), start_new_session=True,
        )
        return self

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.web_port}{path}"

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.url(path), timeout=5) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            return 0, ""

    def wait_ready(self, timeout: float = 60) -> None:
        def ready() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"worker exited with {self.process.returncode}: {self.tail_log()}")
            return self.get("/readyz")[0] == 200
        wait_until(ready, timeout, 0.3, f"worker on port {self.web_port} to be ready")

    def metrics(self) -> dict[str, float]:
        status, text = self.get("/metrics")
        if status != 200:
            return {}
        values: dict[str, float] = {}
        for line in text.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            name, _, value = line.rpartition(" ")
            try:
                values[name] = float(value)
            except ValueError:
                continue
        return values

    def worker_metrics(self) -> str:
        """The worker's own gauges and counters that are not zero (histograms left out), one per line."""
        return "\n".join(f"{name} {value:g}" for name, value in self.metrics().items()
                         if name.startswith("riskwatch_") and value and "_bucket" not in name and "_created" not in name
                         and not name.startswith(("riskwatch_evaluation_seconds", "riskwatch_build_info")))

    def metric_sum(self, family: str) -> float:
        return sum(v for k, v in self.metrics().items() if k == family or k.startswith(family + "{"))

    def kill(self) -> None:
        """kill -9: no shutdown, no final commit."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self, timeout: float = 30) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def dump_tasks(self) -> None:
        """Ask the worker to write every thread's stack and asyncio task to its log
        (mode's SIGUSR1 handler): where a stuck worker waits."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGUSR1)

    def tail_log(self, lines: int = 40) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def produce_lines(broker: str, prefix: str, lines: Iterable[bytes]) -> int:
    """Send event lines to their source topics exactly as `riskwatch produce` does."""
    from riskwatch.sinks.kafka import route_line, topic_name

    if _producer is None or _producer_broker != broker:
        _reset_producer(broker)
    producer = _producer
    sent = 0
    for line in lines:
        route = route_line(line)
        assert route is not None, line[:200]
        stream, key = route
        producer.send(topic_name(prefix, stream), key=key, value=line)
        sent += 1
    producer.flush()
    return sent


_producer = None
_producer_broker = ""


def _reset_producer(broker: str) -> None:
    """One producer per broker for the whole session (they are slow to connect)."""
    from kafka import KafkaProducer

    global _producer, _producer_broker
    if _producer is not None:
        _producer.close()
    _producer = KafkaProducer(bootstrap_servers=broker, acks="all", linger_ms=2, max_request_size=2 * 1024 * 1024)
    _producer_broker = broker


def event_time_chunks(lines: Iterable[bytes], window_seconds: float) -> list[list[bytes]]:
    """Consecutive lines grouped into windows of event time (input in event-time order)."""
    from riskwatch.timeutil import parse_instant

    chunks: list[list[bytes]] = []
    start: float | None = None
    for line in lines:
        ts = parse_instant(json.loads(line)["occurred_at"]).timestamp()
        if start is None or ts - start >= window_seconds:
            chunks.append([])
            start = ts
        chunks[-1].append(line)
    return chunks


def produce_as_live(broker: str, prefix: str, source: Path | list[bytes], workers: list["Worker"],
                    window_seconds: float, already: float = 0, timeout: float = 60) -> float:
    """Produce events the way a live business emits them: one event-time window
    at a time, each once the workers have evaluated the previous one. `already`
    is what the workers' counters show before; `timeout` (seconds) is how long
    one window may take. Returns their count at the end."""
    if isinstance(source, Path):
        lines = [line for line in source.read_bytes().splitlines() if line.strip()]
    else:
        lines = source
    done = already
    for chunk in event_time_chunks(lines, window_seconds):
        done += produce_lines(broker, prefix, chunk)
        wait_processed(workers, done, timeout=timeout, interval=0.05)
    return done


def read_topic(broker: str, topic: str, idle_seconds: float = 2.0, timeout: float = 60.0) -> list:
    """Every record of a topic from the beginning: at least up to its end
    offsets when called, then until nothing new arrives for `idle_seconds`
    (at most `timeout` seconds in all; [] for a topic that does not exist).

    Stopping on idleness alone once returned nothing at all on a loaded
    machine, whose first fetch took longer than the idle time."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=broker, group_id=None, enable_auto_commit=False, auto_offset_reset="earliest",
        fetch_max_bytes=8 * 1024 * 1024, max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    records = []
    deadline = time.monotonic() + timeout
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            return records
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        last_new = time.monotonic()
        while time.monotonic() < deadline:
            batch = consumer.poll(timeout_ms=200)
            for partition_records in batch.values():
                records.extend(partition_records)
            if batch:
                last_new = time.monotonic()
            elif time.monotonic() - last_new >= idle_seconds and all(consumer.position(tp) >= ends[tp] for tp in tps):
                break
    finally:
        consumer.close()
    return records


def alert_changes(broker: str, prefix: str, idle_seconds: float = 2.0) -> list[dict]:
    return [json.loads(r.value) for r in read_topic(broker, f"{prefix}alerts", idle_seconds)]


def final_states(changes: Iterable[dict]) -> dict[str, tuple[str, str]]:
    """alert_id -> (tier, status) of the highest sequence seen: what a compacted topic keeps."""
    latest: dict[str, dict] = {}
    for change in changes:
        held = latest.get(change["alert_id"])
        if held is None or change["sequence"] >= held["sequence"]:
            latest[change["alert_id"]] = change
    return {alert_id: (c["tier"], c["status"]) for alert_id, c in latest.items()}


def conflicting_versions(changes: Iterable[dict]) -> list[tuple[str, int]]:
    """(alert_id, sequence) pairs emitted twice with different content."""
    seen: dict[tuple[str, int], dict] = {}
    conflicts = []
    for change in changes:
        key = (change["alert_id"], change["sequence"])
        if key in seen and seen[key] != change:
            conflicts.append(key)
        seen.setdefault(key, change)
    return conflicts


def group_offsets(broker: str, group: str, topics: Iterable[str]) -> dict[tuple[str, int], tuple[int, int]]:
    """(topic, partition) -> (offset committed by consumer group `group`, end offset)."""
    from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

    topics = list(topics)
    admin = KafkaAdminClient(bootstrap_servers=broker)
    consumer = KafkaConsumer(bootstrap_servers=broker, group_id=None)
    try:
        committed = admin.list_group_offsets(group).get(group, {})
        partitions = [TopicPartition(t, p) for t in topics for p in (consumer.partitions_for_topic(t) or ())]
        ends = consumer.end_offsets(partitions)
        return {(tp.topic, tp.partition): (committed[tp].offset if tp in committed else 0, end)
                for tp, end in ends.items()}
    finally:
        consumer.close()
        admin.close()


def group_lag(broker: str, group: str, topics: Iterable[str]) -> int:
    """Records on `topics` not yet committed by consumer group `group`."""
    return sum(end - committed for committed, end in group_offsets(broker, group, topics).values())


def describe_lag(broker: str, prefix: str) -> str:
    """The worker group's source partitions with records not yet committed, one per line (for a stuck test)."""
    from riskwatch.sinks.kafka import source_topics
    from streams.app import app_id

    try:
        offsets = group_offsets(broker, app_id(prefix), source_topics(prefix))
    except Exception as error:  # the broker may be what is stuck
        return f"offsets not available: {error}"
    behind = [f"{topic}[{partition}]: committed {committed} of {end}"
              for (topic, partition), (committed, end) in sorted(offsets.items()) if committed < end]
    return "\n".join(behind) or "every source partition committed to its end"


def wait_caught_up(broker: str, prefix: str, timeout: float = 90) -> None:
    """Until the worker group has committed everything on the source topics."""
    from riskwatch.sinks.kafka import source_topics
    from streams.app import app_id

    wait_until(lambda: group_lag(broker, app_id(prefix), source_topics(prefix)) == 0, timeout, 0.5,
               "the worker group to commit all source records")


def split_lines(path: Path, *fractions: float) -> list[list[bytes]]:
    """The file's event lines cut at the given fractions (in order)."""
    lines = [line for line in path.read_bytes().splitlines() if line.strip()]
    cuts = [0, *(int(len(lines) * f) for f in fractions), len(lines)]
    return [lines[a:b] for a, b in zip(cuts, cuts[1:])]


def replay_states(path: Path, *extra: str) -> dict[str, tuple[str, str]]:
    done = subprocess.run([str(RISKWATCH), "replay", str(path), *extra], capture_output=True, timeout=300, check=True)
    return final_states(json.loads(line) for line in done.stdout.splitlines() if line.strip())


def processed(workers: Iterable[Worker]) -> float:
    return sum(w.metric_sum("riskwatch_events_processed_total") for w in workers)


def wait_processed(workers: Iterable[Worker], count: int, timeout: float = 120, interval: float = 0.3) -> None:
    """Until the workers together have evaluated `count` events (input accepted)."""
    workers = list(workers)
    try:
        wait_until(lambda: processed(workers) >= count, timeout, interval, f"{count} events processed")
    except AssertionError as stuck:
        # The worker's own log is the only account of why it stopped consuming.
        for w in workers:
            w.dump_tasks()
        time.sleep(2)
        logs = "\n".join(f"--- worker {w.web_port} ({w.log_path}: its tasks at the end) ---\n{w.worker_metrics()}\n"
                         f"{w.tail_log(80)}" for w in workers)
        lag = describe_lag(workers[0].broker, workers[0].prefix) if workers else ""
        raise AssertionError(f"{stuck} (at {processed(workers):.0f})\n--- lag ---\n{lag}\n{logs}") from None


def wait_alerts(broker: str, prefix: str, expected: dict, timeout: float = 60, extra_resolved: bool = False) -> dict:
    """Until the alerts topic's final states (tier and status, the tier a
    resolved alert closed at included) equal `expected`; returns the last
    states seen.

    `extra_resolved=True` also accepts alert ids the replay never raised if
    they are resolved: a partition handed over mid-stream can be advanced by
    the shared clock before its consumer has fetched its newest records, so
    a deadline fires and the clearing event resolves it moments later.
    """
    last: dict = {}
    records: list[dict] = []

    def matches() -> bool:
        nonlocal last, records
        records = alert_changes(broker, prefix, idle_seconds=1.0)
        last = final_states(records)
        if extra_resolved:
            last = {k: v for k, v in last.items() if k in expected or v[1] != "resolved"}
        return last == expected

    try:
        wait_until(matches, timeout, 1.0, "the expected alert set")
    except AssertionError:
        missing = {k: (v, last.get(k)) for k, v in expected.items() if last.get(k) != v}
        extra = {k: v for k, v in last.items() if k not in expected}
        # What an operator would look at first: the indicator, subject and life of each differing alert.
        shown = set(list(missing)[:5]) | set(list(extra)[:5])
        lives = [(r["alert_id"], r["indicator"], r["subject"], r["change"], r["tier"], r.get("raised_at"),
                  r.get("resolved_at"), r.get("observed")) for r in records if r["alert_id"] in shown]
        raise AssertionError(f"alert sets differ: {len(missing)} missing or different {list(missing.items())[:5]}, "
                             f"{len(extra)} extra {list(extra.items())[:5]}; their changes: {lives[:20]}") from None
    return last
