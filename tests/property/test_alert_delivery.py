"""Properties of Alertmanager delivery (riskwatch.sinks.delivery): whatever
the order of changes and failures, Alertmanager ends with the latest state
of every alert that was not dropped, and waits between tries stay within
the configured back-off."""

from __future__ import annotations

import threading

from hypothesis import given, settings
from hypothesis import strategies as st

from riskwatch.sinks.delivery import DeliveryPolicy, DeliveryQueue

PROPERTY = settings(max_examples=30, deadline=None)

changes = st.lists(st.tuples(st.sampled_from("abcdef"), st.integers(0, 9)), min_size=1, max_size=40)


@PROPERTY
@given(changes=changes, failures=st.lists(st.booleans(), max_size=6))
def test_alertmanager_ends_with_the_latest_state_of_every_alert(changes, failures):
    state: dict[str, int] = {}
    lock = threading.Lock()
    outcomes = list(failures)

    def post(batch: list[dict]) -> None:
        with lock:
            if outcomes and outcomes.pop(0):
                raise ConnectionResetError("reset")
            for alert in batch:
                state[alert["labels"]["alert_id"]] = alert["version"]

    policy = DeliveryPolicy(queue_size=6, batch_size=2, backoff_initial_seconds=0.001, backoff_max_seconds=0.002,
                            breaker_failures=2)
    queue = DeliveryQueue(post, policy)
    latest: dict[str, int] = {}
    for alert_id, version in changes:
        queue.put({"labels": {"alert_id": alert_id}, "version": version})
        latest[alert_id] = version
    assert queue.wait_empty(10)
    queue.close()
    assert queue.dropped == {"age": 0, "overflow": 0}  # six label sets fit a queue of six
    assert state == latest


@PROPERTY
@given(failures=st.integers(1, 200), jitter=st.floats(0, 1),
       initial=st.floats(0.01, 10), spread=st.floats(1, 100))
def test_the_back_off_grows_from_half_the_initial_wait_and_never_passes_the_maximum(failures, jitter, initial, spread):
    policy = DeliveryPolicy(backoff_initial_seconds=initial, backoff_max_seconds=initial * spread)
    wait = policy.backoff(failures, jitter)
    assert initial / 2 <= wait <= initial * spread
    assert wait <= policy.backoff(failures + 1, 1.0)  # never shorter than the next one can be
