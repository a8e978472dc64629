"""Delivery of alerts to Alertmanager off the evaluation path.

Evaluation must never wait for a neighbour: the desk's notify path (and
`replay`'s sink) only puts alerts into a `DeliveryQueue`; one daemon thread
drains it in batches. What the queue does when Alertmanager is slow or away:

- **bounded, coalescing.** Entries are keyed by the alert's label set, which
  is its identity in Alertmanager: a newer state of the same alert replaces
  the queued one (only the latest state matters to Alertmanager). At most
  `queue_size` label sets wait (besides the one batch being posted); a new
  one beyond that pushes out the oldest (counted as dropped, reason
  "overflow"). A failed batch goes back to the front, within the same bound.
- **bounded in age.** An entry that waited `max_age_seconds` is dropped
  (reason "age"): by then the firing set is re-sent anyway (below), and an
  alert whose end was dropped expires in Alertmanager at its endsAt.
- **back-off with jitter.** After the n-th failed post in a row the next try
  waits `min(backoff_max, backoff_initial * 2**(n-1))`, scaled by a random
  factor in [0.5, 1] so that many senders do not retry in step.
- **circuit breaker.** After `breaker_failures` failures in a row the
  breaker opens: the queue keeps accepting, and only one probe batch per
  back-off interval is posted until one succeeds, which closes it.
- **one warning per outage.** The first failure of an outage logs one
  warning; further failures only count (`alertmanager_push_failures`); the
  first success after it logs one line with what the outage cost.
- **re-send on recovery.** When Alertmanager answers again after the breaker
  was open or anything was dropped, `resend()` (the sink's firing set, plus
  alerts it ended recently) is queued again, so every open alert is there.

Metrics (`riskwatch.metrics`, the same families in run and worker):
`alertmanager_notifications_queued`, `alertmanager_notifications_dropped`
(reason age|overflow), `alertmanager_circuit_open`, `alertmanager_pushes`,
`alertmanager_push_failures`.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

from riskwatch.settings import Settings

log = logging.getLogger("riskwatch.sinks.alertmanager")

DROP_REASONS = ("age", "overflow")


@dataclass(frozen=True)
class DeliveryPolicy:
    """Limits of the Alertmanager delivery queue; seconds throughout.

    Built from `Settings` (`from_settings`), i.e. the RISKWATCH_ALERTMANAGER_*
    variables documented in docs/operations.md. Raises ValueError naming
    the variable for a value that is not positive.
    """

    # The defaults are the settings' own, written once (riskwatch/settings.py).
    queue_size: int = Settings.alertmanager_queue_size
    batch_size: int = Settings.alertmanager_batch_size
    timeout_seconds: float = Settings.alertmanager_timeout_seconds
    max_age_seconds: float = Settings.alertmanager_max_age_seconds
    backoff_initial_seconds: float = Settings.alertmanager_backoff_initial_seconds
    backoff_max_seconds: float = Settings.alertmanager_backoff_max_seconds
    breaker_failures: int = Settings.alertmanager_breaker_failures
    drain_seconds: float = Settings.alertmanager_drain_seconds

    def __post_init__(self) -> None:
        for name, env in _ENVIRONMENT.items():
            value = getattr(self, name)
            if not value > 0:
                raise ValueError(f"{env}: {value!r} must be greater than 0")
        if self.backoff_max_seconds < self.backoff_initial_seconds:
            raise ValueError("RISKWATCH_ALERTMANAGER_BACKOFF_MAX_SECONDS: must not be less than "
                             "RISKWATCH_ALERTMANAGER_BACKOFF_INITIAL_SECONDS")

    @classmethod
    def from_settings(cls, settings) -> "DeliveryPolicy":
        return cls(**{name: getattr(settings, "alertmanager_" + name) for name in _ENVIRONMENT})

    def backoff(self, failures: int, jitter: float) -> float:
        """Seconds to wait after `failures` (>= 1) failed posts in a row; `jitter` in [0, 1]."""
        delay = min(self.backoff_max_seconds, self.backoff_initial_seconds * 2.0 ** min(failures - 1, 62))
        return delay * (0.5 + 0.5 * jitter)


_ENVIRONMENT = {
    "queue_size": "RISKWATCH_ALERTMANAGER_QUEUE_SIZE",
    "batch_size": "RISKWATCH_ALERTMANAGER_BATCH_SIZE",
    "timeout_seconds": "RISKWATCH_ALERTMANAGER_TIMEOUT_SECONDS",
    "max_age_seconds": "RISKWATCH_ALERTMANAGER_MAX_AGE_SECONDS",
    "backoff_initial_seconds": "RISKWATCH_ALERTMANAGER_BACKOFF_INITIAL_SECONDS",
    "backoff_max_seconds": "RISKWATCH_ALERTMANAGER_BACKOFF_MAX_SECONDS",
    "breaker_failures": "RISKWATCH_ALERTMANAGER_BREAKER_FAILURES",
    "drain_seconds": "RISKWATCH_ALERTMANAGER_DRAIN_SECONDS",
}


class DeliveryQueue:
    """A bounded queue of Alertmanager alerts (dicts with "labels") drained by
    its own daemon thread through `post(batch)`, which raises on failure.

    `put` never blocks on the network. `resend()` returns the alerts to queue
    again after an outage (called on the sender thread, outside the queue's
    lock). `clock` is monotonic seconds; `jitter` returns floats in [0, 1].
    """

    def __init__(self, post: Callable[[list[dict]], None], policy: DeliveryPolicy = DeliveryPolicy(), *,
                 resend: Callable[[], list[dict]] | None = None, metrics=None,
                 clock: Callable[[], float] = time.monotonic, jitter: Callable[[], float] = random.random,
                 target: str = "alertmanager"):
        self._post = post
        self.policy = policy
        self._resend = resend
        self.metrics = metrics
        self._clock = clock
        self._jitter = jitter
        self.target = target
        self._items: OrderedDict[tuple, tuple[float, dict]] = OrderedDict()
        self._cond = threading.Condition()
        self._in_flight = 0
        self._failures = 0            # failed posts in a row
        self._outage_started: float | None = None
        self._outage_failures = 0
        self._outage_dropped = 0
        self._warned = False
        self._breaker_open = False
        self._next_attempt = 0.0
        self._stopped = False
        self.dropped = {reason: 0 for reason in DROP_REASONS}
        self.delivered = 0
        self._thread = threading.Thread(target=self._run, name=f"riskwatch-{target}-delivery", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------ producer side

    def put(self, alert: dict) -> None:
        """Queue one alert (the latest state of its label set); never waits for the network."""
        key = tuple(sorted(alert["labels"].items()))
        with self._cond:
            if self._stopped:
                return
            self._items.pop(key, None)
            self._items[key] = (self._clock(), alert)
            while len(self._items) > self.policy.queue_size:
                self._items.popitem(last=False)
                self._drop("overflow", 1)
            self._set_queued()
            self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return len(self._items) + self._in_flight

    @property
    def breaker_open(self) -> bool:
        return self._breaker_open

    def wait_empty(self, timeout: float) -> bool:
        """Wait until every queued alert was posted (or dropped); True if so within `timeout` s."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._items or self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def close(self, timeout: float | None = None) -> int:
        """Stop the sender; before that, give it up to `timeout` s (default the
        policy's drain_seconds; none while the breaker is open) to post what
        is queued. Returns the number of alerts left undelivered."""
        timeout = self.policy.drain_seconds if timeout is None else timeout
        if self._breaker_open:
            timeout = 0.0
        self.wait_empty(timeout)
        with self._cond:
            self._stopped = True
            left = len(self._items) + self._in_flight
            self._items.clear()
            self._set_queued()
            self._cond.notify_all()
        self._thread.join(timeout=max(0.0, min(timeout, 1.0)))
        if left:
            message = "%d alert notifications not delivered to %s at shutdown"
            with self._cond:
                warned, self._warned = self._warned, True  # a post failing after this adds no warning
            if warned:
                log.info(message, left, self.target)
            else:
                log.warning(message + " (it did not answer in time)", left, self.target)
        return left

    # ------------------------------------------------------------ sender side

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and (not self._items or self._clock() < self._next_attempt):
                    wait = None if not self._items else max(0.01, self._next_attempt - self._clock())
                    self._cond.wait(wait)
                if self._stopped:
                    return
                self._drop_aged()
                batch = self._take()
                if not batch:
                    continue
            try:
                self._post([alert for _key, (_at, alert) in batch])
            except Exception as error:  # noqa: BLE001 - any failure of the post is an outage; the thread must live
                self._failed(batch, error)
            else:
                self._succeeded(len(batch))

    def _take(self) -> list[tuple[tuple, tuple[float, dict]]]:
        batch = []
        while self._items and len(batch) < self.policy.batch_size:
            batch.append(self._items.popitem(last=False))
        self._in_flight = len(batch)
        self._set_queued()
        return batch

    def _drop_aged(self) -> None:
        limit = self._clock() - self.policy.max_age_seconds
        aged = 0
        while self._items:
            key, (queued_at, _alert) = next(iter(self._items.items()))
            if queued_at > limit:
                break
            del self._items[key]
            aged += 1
        if aged:
            self._drop("age", aged)
            self._set_queued()

    def _failed(self, batch, error: Exception) -> None:
        with self._cond:
            # Back to the front in their order, unless a newer state of the
            # same alert was queued meanwhile.
            for key, entry in reversed(batch):
                if key not in self._items:
                    self._items[key] = entry
                    self._items.move_to_end(key, last=False)
            while len(self._items) > self.policy.queue_size:
                self._items.popitem(last=False)
                self._drop("overflow", 1)
            self._in_flight = 0
            self._failures += 1
            self._outage_failures += 1
            if self._outage_started is None:
                self._outage_started = self._clock()
            if self.metrics is not None:
                self.metrics.alertmanager_push_failures.inc()
            if not self._warned:
                self._warned = True
                log.warning("%s does not accept alerts (%s: %s); notifications are queued (at most %d, for at most %.0f s) "
                            "and retried with back-off; no further warning until it answers again",
                            self.target, type(error).__name__, error or "no detail",
                            self.policy.queue_size, self.policy.max_age_seconds)
            if self._failures >= self.policy.breaker_failures and not self._breaker_open:
                self._breaker_open = True
                if self.metrics is not None:
                    self.metrics.alertmanager_circuit_open.set(1)
                log.info("%s: circuit open after %d failed posts in a row; probing with back-off up to %g s",
                         self.target, self._failures, self.policy.backoff_max_seconds)
            self._next_attempt = self._clock() + self.policy.backoff(self._failures, self._jitter())
            self._set_queued()
            self._cond.notify_all()

    def _succeeded(self, count: int) -> None:
        with self._cond:
            self._in_flight = 0
            self.delivered += count
            if self.metrics is not None:
                self.metrics.alertmanager_pushes.inc()
            resend = self._breaker_open or self._outage_dropped > 0
            if self._outage_started is not None:
                log.info("%s answers again after %.1f s: %d failed posts, %d notifications dropped; %s",
                         self.target, self._clock() - self._outage_started, self._outage_failures,
                         self._outage_dropped, "re-sending the open alerts" if resend and self._resend else "nothing lost")
            self._failures = self._outage_failures = self._outage_dropped = 0
            self._outage_started = None
            self._warned = False
            self._next_attempt = 0.0
            if self._breaker_open:
                self._breaker_open = False
                if self.metrics is not None:
                    self.metrics.alertmanager_circuit_open.set(0)
            self._set_queued()
            self._cond.notify_all()
        if resend and self._resend is not None:
            try:
                for alert in self._resend():
                    self.put(alert)
            except Exception:  # noqa: BLE001 - the next tick's re-sends still come
                log.exception("re-sending the open alerts to %s failed", self.target)

    # ------------------------------------------------------------ bookkeeping

    def _drop(self, reason: str, count: int) -> None:
        self.dropped[reason] += count
        if self._failures:
            # Lost while Alertmanager was away: the recovery re-sends the firing
            # set. A drop while it answers is covered by the periodic re-sends.
            self._outage_dropped += count
        if self.metrics is not None:
            self.metrics.alertmanager_notifications_dropped.labels(reason=reason).inc(count)

    def _set_queued(self) -> None:
        if self.metrics is not None:
            self.metrics.alertmanager_notifications_queued.set(len(self._items) + self._in_flight)
