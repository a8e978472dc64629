"""The alert desk of a worker deployment: acknowledgements meet escalation timers.

One desk per deployment, kept by the worker that owns source partition 0
(the keeper). It runs an `AlertDesk` over the Kafka workflow log (the alerts
topic every worker writes, the actions topic the API writes), so it sees
every alert and every person's action. Once a second, when its worker has no
backlog, it records what the shared event-time clock made due (an escalation
past `respond_by`, a step past its due time, the end of a snooze, an overdue
review) on the actions topic, where the API reads it, and counts it; with an
Alertmanager configured it pushes the desk's view of each alert (escalated
owner, acknowledged or snoozed status). When the keeper dies, the next owner
of partition 0 starts its own desk after the rebalance, reads the log from
the start and takes over; deadlines are hours apart, the pause is seconds.

The desk runs in a child process. It folds every alert change of the whole
deployment, which on a thread of the worker competed with the stream for the
interpreter's lock (a third of a draining worker's rate, and most of its
latency tail). The child reports back the metric updates the desk made, and
the worker applies them to its own registry, so `/metrics` stays one page.
The child exits when the worker goes away, even after `kill -9`: its end of
the pipe reads end-of-file.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import threading
import time
from datetime import datetime, timezone
from typing import Any

from riskwatch.settings import Settings

log = logging.getLogger("riskwatch.worker.desk")

# A rebalance revokes partition 0 for a few seconds (2.4 s measured); the desk
# outlives that rather than read the whole log again.
RELEASE_AFTER_SECONDS = 10.0


class WorkerDesk:
    """The worker's side: starts, ticks and stops the desk process."""

    def __init__(self, settings: Settings, *, metrics: Any, name: str = "worker"):
        from riskwatch.rules.response import load_response_rules

        # Refused here, at start-up, rather than in a child that nobody watches.
        rules, problems = load_response_rules(settings.rules_dir)
        if rules is None:
            raise ValueError("response rules invalid: " + "; ".join(problems))
        if settings.alertmanager_url:
            from riskwatch.sinks.delivery import DeliveryPolicy

            DeliveryPolicy.from_settings(settings)  # a limit out of range is refused here too
        self.settings = settings
        self.metrics = metrics
        self.name = name
        self._process: Any = None
        self._conn: Any = None
        self._waiting = False          # a tick was sent and not answered yet
        self._last_owned = 0.0
        self._failures = 0             # desk processes that ended on their own in a row
        self._start_after = 0.0

    def tick(self, watermark_ts: float | None, *, owns_partition_zero: bool, caught_up: bool) -> None:
        """Called once a second on the event loop; never waits for the desk."""
        now = time.monotonic()
        multiprocessing.active_children()  # reaps a released desk once it has ended
        if owns_partition_zero:
            self._last_owned = now
        if self._process is not None and not self._process.is_alive():
            # Started again after 2, 4, ... 64 s: a desk that cannot start must not
            # cost a core in start-ups (one is a second of CPU).
            self._failures += 1
            delay = min(2.0 ** self._failures, 64.0)
            log.error("alert desk process ended (exit code %s); starting another in %.0f s",
                      self._process.exitcode, delay)
            self._forget()
            self._start_after = now + delay
        if self._process is None and owns_partition_zero and now >= self._start_after:
            self._start()
        elif self._process is not None and now - self._last_owned > RELEASE_AFTER_SECONDS:
            log.info("partition 0 went to another worker: its alert desk takes over")
            self._release()
        if self._process is not None:
            self._collect()
        self.metrics.worker_keeps_alert_desk.set(1 if owns_partition_zero else 0)
        if not owns_partition_zero:
            # Another worker keeps the desk and reports these; a sum over workers counts them once.
            self.metrics.playbook_steps_overdue.set(0)
            self.metrics.reviews_overdue.set(0)
        if self._process is not None and not self._waiting:
            keeps_clock = owns_partition_zero and caught_up and watermark_ts is not None
            try:
                self._conn.send(("tick", watermark_ts, keeps_clock))
                self._waiting = True
            except (OSError, EOFError):
                pass  # found ended on the next tick

    def _start(self) -> None:
        context = multiprocessing.get_context("spawn")  # forking faust's threads and loop is unsafe
        parent_end, child_end = context.Pipe()
        level = logging.getLogger("riskwatch").getEffectiveLevel()
        self._process = context.Process(
            target=run_desk, args=(child_end, self.settings, self.name, level, os.getpid()),
            name="riskwatch-desk", daemon=True,
        )
        self._process.start()
        child_end.close()
        self._conn = parent_end
        self._waiting = False
        log.info("alert desk started in process %d", self._process.pid)

    def _collect(self) -> None:
        """Applies what the desk reported since the last tick."""
        try:
            while self._conn.poll(0):
                reply = self._conn.recv()
                self._waiting = False
                self._failures = 0
                apply_metric_updates(self.metrics, reply)
        except (OSError, EOFError):
            pass

    def _release(self) -> None:
        """Asks the desk to stop without waiting for it (this runs on the event loop)."""
        try:
            self._conn.send(("stop", None, False))
        except (OSError, EOFError):
            pass
        self._forget()

    def _forget(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._process = self._conn = None
        self._waiting = False

    def close(self) -> None:
        """Stops the desk and waits for it (at shutdown, where waiting is allowed)."""
        process = self._process
        if process is None:
            return
        self._release()
        process.join(timeout=5)
        if process.is_alive():
            process.terminate()
            process.join(timeout=5)


# -- the desk process ---------------------------------------------------------

class RecordedMetrics:
    """Stands in for `RiskwatchMetrics` in the desk process: every update is
    kept as (metric, labels, method, value) for the worker to apply. The
    Alertmanager delivery thread records too, hence the lock."""

    def __init__(self) -> None:
        self.updates: list[tuple[str, tuple, str, float]] = []
        self.lock = threading.Lock()

    def __getattr__(self, name: str) -> "_RecordedMetric":
        return _RecordedMetric(self, name, ())

    def record(self, update: tuple[str, tuple, str, float]) -> None:
        with self.lock:
            self.updates.append(update)

    def take(self) -> list[tuple[str, tuple, str, float]]:
        with self.lock:
            updates, self.updates = self.updates, []
        return updates


class _RecordedMetric:
    __slots__ = ("_recorder", "_name", "_labels")

    def __init__(self, recorder: RecordedMetrics, name: str, labels: tuple):
        self._recorder, self._name, self._labels = recorder, name, labels

    def labels(self, **labels: str) -> "_RecordedMetric":
        return _RecordedMetric(self._recorder, self._name, tuple(sorted(labels.items())))

    def inc(self, amount: float = 1) -> None:
        self._recorder.record((self._name, self._labels, "inc", amount))

    def set(self, value: float) -> None:
        self._recorder.record((self._name, self._labels, "set", value))


def apply_metric_updates(metrics: Any, updates: list[tuple[str, tuple, str, float]]) -> None:
    for name, labels, method, value in updates:
        metric = getattr(metrics, name, None)
        if metric is None:
            log.warning("alert desk reported an unknown metric %s", name)
            continue
        if labels:
            metric = metric.labels(**dict(labels))
        getattr(metric, method)(value)


def run_desk(conn: Any, settings: Settings, name: str, log_level: int, parent_pid: int) -> None:
    """The desk process: folds the log, and on the keeper's tick records what is due."""
    logging.basicConfig(level=log_level, format=f"[%(asctime)s] [desk {os.getpid()}] %(levelname)s %(name)s: %(message)s")
    from riskwatch.alerts import AlertDesk
    from riskwatch.alerts.kafkalog import KafkaWorkflowLog
    from riskwatch.rules.response import load_response_rules

    metrics = RecordedMetrics()
    rules, _ = load_response_rules(settings.rules_dir)
    alertmanager = None
    if settings.alertmanager_url:
        from riskwatch.sinks.alertmanager import make_sink

        # Posts on its own thread: a slow Alertmanager never holds up a tick.
        alertmanager = make_sink(settings.alertmanager_url, metrics=metrics, settings=settings)
    desk = None
    try:
        while True:
            if not conn.poll(1.0):
                if os.getppid() != parent_pid:
                    return  # the worker is gone
                continue
            command, watermark_ts, keeps_clock = conn.recv()
            if command == "stop":
                return
            try:
                if desk is None:
                    workflow_log = KafkaWorkflowLog(settings.broker, settings.topic_prefix, client_id=f"riskwatch-desk-{name}")
                    desk = AlertDesk(rules, workflow_log, metrics=metrics,
                                     notify=alertmanager.send if alertmanager is not None else None)
                    log.info("alert desk caught up: %d alerts, %d plans, %d reviews",
                             len(desk.ledger.alerts), len(desk.ledger.plans), len(desk.ledger.reviews))
                if keeps_clock:
                    recorded = desk.tick(datetime.fromtimestamp(watermark_ts, timezone.utc))
                    if recorded:
                        log.info("recorded %d workflow actions the clock made due", len(recorded))
                else:
                    desk.sync()
                if alertmanager is not None:
                    alertmanager.tick()  # re-sends open alerts before their endsAt
            except Exception as error:
                # The next tick tries again (a broker away, Alertmanager down).
                log.error("alert desk tick failed: %s", error)
            conn.send(metrics.take())
    except (EOFError, OSError, KeyboardInterrupt):
        return  # the worker is gone
    finally:
        if alertmanager is not None:
            alertmanager.close()
            with contextlib.suppress(OSError, ValueError):
                conn.send(metrics.take())  # what the drain counted, if the worker still listens
        if desk is not None and desk.store is not None:
            desk.store.close()
