"""The Alertmanager delivery queue (riskwatch.sinks.delivery) against a fake
Alertmanager: what an operator sees in the metrics and the log when it is
slow, away, or back."""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import datetime, timezone

import httpx
import pytest

from riskwatch.metrics import RiskwatchMetrics
from riskwatch.settings import load_settings
from riskwatch.sinks.alertmanager import AlertmanagerSink
from riskwatch.sinks.delivery import DeliveryPolicy, DeliveryQueue

FAST = dict(backoff_initial_seconds=0.01, backoff_max_seconds=0.05, breaker_failures=3, drain_seconds=2.0)


def alert(name: str, version: int = 0) -> dict:
    return {"labels": {"alertname": "RiskwatchRisk", "alert_id": name}, "annotations": {"v": str(version)}}


class FakeAlertmanager:
    """Refuses the first `down_for` posts, then accepts; can hold a post until released."""

    def __init__(self, down_for: int = 0, hold: bool = False):
        self.down_for = down_for
        self.posts: list[list[dict]] = []
        self.calls = 0
        self.release = threading.Event()
        if not hold:
            self.release.set()
        self.holding = threading.Event()

    def post(self, batch: list[dict]) -> None:
        self.calls += 1
        self.holding.set()
        self.release.wait(10)
        if self.calls <= self.down_for:
            raise ConnectionRefusedError("connection refused")
        self.posts.append(batch)

    def latest(self) -> dict[str, str]:
        return {a["labels"]["alert_id"]: a["annotations"]["v"] for batch in self.posts for a in batch}


def wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def counter(metrics: RiskwatchMetrics, name: str, **labels) -> float:
    metric = getattr(metrics, name)
    return (metric.labels(**labels) if labels else metric)._value.get()


def test_a_full_queue_drops_the_oldest_and_keeps_the_latest_state_of_each_alert():
    am = FakeAlertmanager(hold=True)
    metrics = RiskwatchMetrics.create()
    queue = DeliveryQueue(am.post, DeliveryPolicy(queue_size=3, **FAST), metrics=metrics)
    queue.put(alert("a"))
    am.holding.wait(5)  # "a" is being posted; the rest waits
    for name in "bcde":
        queue.put(alert(name, 1))
    queue.put(alert("e", 2))          # a newer state replaces the queued one, not a new entry
    assert counter(metrics, "alertmanager_notifications_dropped", reason="overflow") == 1  # "b", the oldest
    assert counter(metrics, "alertmanager_notifications_queued") == 4  # 3 waiting + 1 being posted
    am.release.set()
    assert queue.wait_empty(5)
    assert am.latest() == {"a": "0", "c": "1", "d": "1", "e": "2"}
    assert counter(metrics, "alertmanager_notifications_queued") == 0
    queue.close()


def test_an_outage_is_one_warning_opens_the_breaker_and_recovery_resends_the_firing_set(caplog):
    am = FakeAlertmanager(down_for=5)
    metrics = RiskwatchMetrics.create()
    firing = [alert("open-1", 7), alert("open-2", 7)]
    queue = DeliveryQueue(am.post, DeliveryPolicy(**FAST), metrics=metrics, resend=lambda: list(firing))
    with caplog.at_level(logging.INFO, logger="riskwatch.sinks.alertmanager"):
        queue.put(alert("open-1", 1))
        wait_for(lambda: counter(metrics, "alertmanager_circuit_open") == 1)
        for version in range(2, 6):        # changes keep coming during the outage
            queue.put(alert("open-1", version))
        assert queue.wait_empty(10)
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "does not accept alerts" in warnings[0].getMessage()
    assert counter(metrics, "alertmanager_push_failures") == 5
    assert counter(metrics, "alertmanager_circuit_open") == 0
    (recovered,) = [r for r in caplog.records if "answers again after" in r.getMessage()]
    assert "5 failed posts" in recovered.getMessage() and "re-sending the open alerts" in recovered.getMessage()
    # Every open alert is there, in its latest state.
    assert am.latest() == {"open-1": "7", "open-2": "7"}
    queue.close()


def test_alerts_that_waited_longer_than_the_age_limit_are_dropped_and_counted():
    now = [1000.0]
    am = FakeAlertmanager(down_for=10**6)
    metrics = RiskwatchMetrics.create()
    queue = DeliveryQueue(am.post, DeliveryPolicy(max_age_seconds=60, **FAST), metrics=metrics, clock=lambda: now[0])
    queue.put(alert("old"))
    wait_for(lambda: am.calls >= 1)
    now[0] += 61          # "old" has waited past the limit
    queue.put(alert("new"))
    now[0] += 1           # past the back-off: the next try drops "old" first
    wait_for(lambda: counter(metrics, "alertmanager_notifications_dropped", reason="age") == 1)
    assert counter(metrics, "alertmanager_notifications_queued") == 1
    assert queue.close() == 1


def test_closing_during_an_outage_does_not_wait_for_the_drain(caplog):
    am = FakeAlertmanager(down_for=10**6)
    queue = DeliveryQueue(am.post, DeliveryPolicy(queue_size=100, backoff_initial_seconds=30, backoff_max_seconds=30,
                                                  breaker_failures=1, drain_seconds=30))
    queue.put(alert("a"))
    wait_for(lambda: queue.breaker_open)
    started = time.monotonic()
    assert queue.close() == 1
    assert time.monotonic() - started < 5


def test_the_sink_resends_open_alerts_and_recent_ends_after_an_outage():
    """The sink's re-send after an outage: the firing set with a fresh endsAt,
    and the alert it ended during the outage (so Alertmanager does not keep it)."""
    calls = []

    def alertmanager(request: httpx.Request) -> httpx.Response:
        calls.append(json.loads(request.content))
        if len(calls) <= 3:
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(200)

    now = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
    sink = AlertmanagerSink("http://alertmanager.test", clock=lambda: now, policy=DeliveryPolicy(**FAST),
                            client=httpx.Client(transport=httpx.MockTransport(alertmanager)))
    record = {"alert_id": "al-1", "tier": "red", "indicator": "payment_overdue", "status": "open",
              "subject": {"kind": "invoice", "id": "INV-1", "customer_id": "C1"}}
    sink.send(record)
    sink.send({**record, "alert_id": "al-2"})
    sink.send({**record, "alert_id": "al-2", "status": "resolved"})
    assert sink.flush(10)
    delivered = [alert for batch in calls[3:] for alert in batch]
    last = {alert["labels"]["alert_id"]: alert for alert in delivered}
    assert last["al-1"]["endsAt"] == "2026-03-01T12:04:00Z"   # firing, four re-send intervals ahead
    assert last["al-2"]["endsAt"] == "2026-03-01T12:00:00Z"   # ended at once
    assert sink.firing.keys() == {"al-1"}
    sink.close()


@pytest.mark.parametrize("variable, value, named", [
    ("RISKWATCH_ALERTMANAGER_QUEUE_SIZE", "0", "RISKWATCH_ALERTMANAGER_QUEUE_SIZE: 0 must be greater than 0"),
    ("RISKWATCH_ALERTMANAGER_TIMEOUT_SECONDS", "-1", "RISKWATCH_ALERTMANAGER_TIMEOUT_SECONDS: -1.0 must be greater than 0"),
    ("RISKWATCH_ALERTMANAGER_BACKOFF_MAX_SECONDS", "0.1", "BACKOFF_MAX_SECONDS: must not be less than"),
])
def test_a_delivery_limit_out_of_range_is_refused_naming_the_variable(variable, value, named):
    settings = load_settings({variable: value})
    with pytest.raises(ValueError, match=named):
        DeliveryPolicy.from_settings(settings)


def test_the_defaults_are_the_documented_ones():
    policy = DeliveryPolicy.from_settings(load_settings({}))
    assert policy == DeliveryPolicy()
    assert (policy.queue_size, policy.batch_size, policy.timeout_seconds, policy.max_age_seconds,
            policy.backoff_initial_seconds, policy.backoff_max_seconds, policy.breaker_failures,
            policy.drain_seconds) == (10_000, 500, 5.0, 900.0, 0.5, 60.0, 3, 5.0)
