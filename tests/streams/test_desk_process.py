"""The worker's alert desk process: started on the worker that owns partition 0,
started again (after a pause) when it dies, and its metric updates land on the
worker's own /metrics page."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time

from prometheus_client import CollectorRegistry, generate_latest

from riskwatch.metrics import RiskwatchMetrics
from riskwatch.settings import Settings
from streams.workflow import RecordedMetrics, WorkerDesk, apply_metric_updates


def desk_processes() -> list[multiprocessing.Process]:
    return [p for p in multiprocessing.active_children() if p.name == "riskwatch-desk"]


def wait_for(condition, seconds: float):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_a_killed_desk_is_started_again_after_a_pause_and_only_on_the_keeper():
    registry = CollectorRegistry()
    metrics = RiskwatchMetrics.create(registry)
    # Nothing listens on port 1: the desk waits for its broker, which is all this test needs.
    desk = WorkerDesk(Settings(broker="127.0.0.1:1"), metrics=metrics, name="test")
    try:
        desk.tick(None, owns_partition_zero=False, caught_up=True)
        assert desk_processes() == []
        assert "riskwatch_worker_keeps_alert_desk 0.0" in generate_latest(registry).decode()

        desk.tick(None, owns_partition_zero=True, caught_up=True)
        [first] = wait_for(desk_processes, 10)
        assert "riskwatch_worker_keeps_alert_desk 1.0" in generate_latest(registry).decode()

        os.kill(first.pid, signal.SIGKILL)
        wait_for(lambda: not first.is_alive(), 10)
        desk.tick(None, owns_partition_zero=True, caught_up=True)
        assert desk_processes() == []          # not at once: a desk that keeps dying must not spin
        time.sleep(2.2)
        desk.tick(None, owns_partition_zero=True, caught_up=True)
        [second] = wait_for(desk_processes, 10)
        assert second.pid != first.pid
    finally:
        desk.close()
    assert desk_processes() == []


def test_what_the_desk_counted_is_applied_to_the_workers_metrics():
    recorded = RecordedMetrics()
    recorded.alerts_escalated.labels(indicator="delivery_delay", tier="red").inc()
    recorded.alerts_escalated.labels(indicator="delivery_delay", tier="red").inc()
    recorded.playbook_steps_overdue.set(3)
    registry = CollectorRegistry()
    apply_metric_updates(RiskwatchMetrics.create(registry), recorded.take())
    page = generate_latest(registry).decode()
    assert 'riskwatch_alerts_escalated_total{indicator="delivery_delay",tier="red"} 2.0' in page
    assert "riskwatch_playbook_steps_overdue 3.0" in page
    assert recorded.take() == []
