"""Push open alerts to Prometheus Alertmanager (v2 API, `POST /api/v2/alerts`).

Alertmanager does routing, grouping, inhibition, silences and delivery;
riskwatch tells it which alerts are firing. Like Prometheus, the sink posts
every open alert with an `endsAt` a few re-send intervals ahead and re-posts
it (`tick`) before that passes, so an alert riskwatch stops talking about
expires by itself; a resolved or snoozed alert is posted once more with
`endsAt` = now, which resolves it at once.

Labels are the alert's identity in Alertmanager: `alert_id` (so alerts about
different subjects are never merged), `tier`, `indicator`, `owner`,
`region`, `customer_class`, and `customer`, a pseudonymous key of the
customer (or, for alerts not about one customer, of the subject) used for
grouping and inhibition — never an amount or a raw business id. When a
label changes (a tier rise, an escalation to a new owner) the alert under
the old labels is ended and the new one fires, which is what makes
Alertmanager notify the new route.

Posting is off the caller's path: the sink only queues, and a delivery
thread posts in batches with back-off and a circuit breaker
(`riskwatch.sinks.delivery`), so an Alertmanager that is slow or away never
slows evaluation; when it answers again every open alert is re-sent.

Times are wall-clock (Alertmanager's clock), not event time: pass `clock`
in tests.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from datetime import datetime, timedelta, timezone
from typing import Callable

import httpx

from riskwatch.sinks.delivery import DeliveryPolicy, DeliveryQueue

log = logging.getLogger(__name__)

ALERTNAME = "RiskwatchRisk"
NOT_SET = "none"


def _wall_clock() -> datetime:
    return datetime.now(timezone.utc)


def _rfc3339(instant: datetime) -> str:
    return instant.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def pseudonym(prefix: str, value: str) -> str:
    return prefix + hashlib.sha256(value.encode()).hexdigest()[:12]


def alert_labels(record: dict) -> dict[str, str]:
    """The label set of an alert change record (or a desk notification view)."""
    subject = record.get("subject") or {}
    customer_id = subject.get("customer_id") or record.get("customer_id")
    if customer_id:
        customer = pseudonym("c-", str(customer_id))
    else:
        customer = pseudonym("s-", f"{subject.get('kind')}:{subject.get('id')}")
    return {
        "alertname": ALERTNAME,
        "alert_id": str(record["alert_id"]),
        "tier": str(record.get("tier") or NOT_SET),
        "indicator": str(record.get("indicator") or NOT_SET),
        "owner": str(record.get("owner") or NOT_SET),
        "region": str(record.get("region") or NOT_SET),
        "customer_class": str(record.get("customer_class") or NOT_SET),
        "customer": customer,
    }


def first_step(record: dict) -> str:
    steps = (record.get("playbook") or {}).get("steps") or []
    if not steps:
        return ""
    step = steps[0]
    due = f", due {step['due_at']}" if step.get("due_at") else ""
    return f"{step.get('action', '')} ({step.get('owner', '')}{due})"


def alert_annotations(record: dict) -> dict[str, str]:
    annotations = {
        "summary": str(record.get("summary") or f"{record.get('indicator')} {record.get('tier')}"),
        "playbook": str((record.get("playbook") or {}).get("title") or (record.get("playbook") or {}).get("id") or ""),
        "first_step": first_step(record),
        "respond_by": str(record.get("respond_by") or ""),
        "status": str(record.get("status") or ""),
    }
    workflow = record.get("workflow") or {}
    if workflow.get("escalations"):
        annotations["escalations"] = str(workflow["escalations"])
    return {k: v for k, v in annotations.items() if v}


class AlertmanagerSink:
    """Feed it alert change records (`send`, or call it); call `tick()`
    regularly (every `resend_every`) so open alerts are re-sent before their
    endsAt.

    `send` and `tick` only queue: a `DeliveryQueue` thread posts to
    Alertmanager in batches, with back-off, a circuit breaker and bounds set
    by `policy` (riskwatch.sinks.delivery), so a slow or absent Alertmanager
    never slows the caller. After an outage the firing set (and the alerts
    ended within the last endsAt horizon) is re-sent. `flush(timeout)` waits
    for delivery; `close()` stops the sender after a bounded drain.
    """

    def __init__(
        self,
        url: str,
        *,
        resend_every: timedelta = timedelta(minutes=1),
        clock: Callable[[], datetime] = _wall_clock,
        metrics=None,
        generator_url: str | None = None,
        client: httpx.Client | None = None,
        policy: DeliveryPolicy | None = None,
    ):
        self.url = url.rstrip("/") + "/api/v2/alerts"
        self.resend_every = resend_every
        self.clock = clock
        self.metrics = metrics
        self.generator_url = generator_url.rstrip("/") if generator_url else None
        self.policy = policy or DeliveryPolicy()
        self._client = client or httpx.Client(timeout=self.policy.timeout_seconds)
        # Guards _firing and _ended: send/tick run on the caller's thread, the
        # re-send after an outage on the delivery thread.
        self._lock = threading.Lock()
        self._firing: dict[str, dict] = {}   # alert_id -> last queued alert (labels, annotations, startsAt)
        self._ended: dict[tuple, dict] = {}  # label set -> ended alert, while Alertmanager may still show it
        self.queue = DeliveryQueue(self._post, self.policy, resend=self._resend, metrics=metrics)

    # Alertmanager expires an alert at endsAt: four re-send intervals of slack,
    # as Prometheus does, so one missed re-send does not resolve it.
    def _ends_at(self, now: datetime) -> str:
        return _rfc3339(now + 4 * self.resend_every)

    def _post(self, batch: list[dict]) -> None:
        response = self._client.post(self.url, json=batch)
        response.raise_for_status()

    def send(self, record: dict | list[dict]) -> None:
        """Queue one alert change record (or a list of them, as the worker hands them over)."""
        if isinstance(record, list):
            for one in record:
                self.send(one)
            return
        now = self.clock()
        alert_id = record["alert_id"]
        labels = alert_labels(record)
        firing = record.get("status") not in ("resolved", "snoozed")
        with self._lock:
            previous = self._firing.get(alert_id)
            if previous is not None and (previous["labels"] != labels or not firing):
                ended = {**_public(previous), "endsAt": _rfc3339(now)}
                self._ended[_key(ended)] = {**ended, "_ended_at": now}
                self.queue.put(ended)
                del self._firing[alert_id]
                previous = None
            if firing:
                raised = _parse(record.get("raised_at"))
                starts = previous["startsAt"] if previous else _rfc3339(min(raised, now) if raised else now)
                alert = {"labels": labels, "annotations": alert_annotations(record), "startsAt": starts}
                if self.generator_url:
                    alert["generatorURL"] = f"{self.generator_url}/v1/alerts/{alert_id}"
                self._ended.pop(_key(alert), None)
                self._firing[alert_id] = alert
                self.queue.put({**alert, "endsAt": self._ends_at(now)})
                alert["_sent_at"] = now
        # Re-sends ride along with new changes, so a busy caller that never
        # calls tick() still keeps its open alerts alive.
        self.tick(now)

    __call__ = send

    def tick(self, now: datetime | None = None) -> int:
        """Queue a re-send of the open alerts last sent `resend_every` ago or
        more; returns how many were queued."""
        now = now or self.clock()
        queued = 0
        with self._lock:
            for alert in self._firing.values():
                if now - alert["_sent_at"] >= self.resend_every:
                    self.queue.put({**_public(alert), "endsAt": self._ends_at(now)})
                    alert["_sent_at"] = now
                    queued += 1
            horizon = now - 4 * self.resend_every
            for key in [k for k, ended in self._ended.items() if ended["_ended_at"] < horizon]:
                del self._ended[key]  # expired in Alertmanager by now in any case
        return queued

    def _resend(self) -> list[dict]:
        """Everything Alertmanager should show (or have ended), after an outage."""
        now = self.clock()
        with self._lock:
            alerts = [{**_public(ended)} for ended in self._ended.values()]
            for alert in self._firing.values():
                alerts.append({**_public(alert), "endsAt": self._ends_at(now)})
                alert["_sent_at"] = now
            return alerts

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait up to `timeout` s until everything queued was posted; True if it was."""
        return self.queue.wait_empty(timeout)

    @property
    def firing(self) -> dict[str, dict[str, str]]:
        """alert_id -> labels of what riskwatch currently shows as firing."""
        with self._lock:
            return {alert_id: dict(alert["labels"]) for alert_id, alert in self._firing.items()}

    def close(self, timeout: float | None = None) -> int:
        """Post what is queued (up to `timeout` s, default the policy's
        drain_seconds, none during an outage), then stop; returns the number
        of alerts not delivered."""
        left = self.queue.close(timeout)
        self._client.close()
        return left


def _public(alert: dict) -> dict:
    return {k: v for k, v in alert.items() if not k.startswith("_")}


def _key(alert: dict) -> tuple:
    return tuple(sorted(alert["labels"].items()))


def _parse(value) -> datetime | None:
    if not value:
        return None
    try:
        instant = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return instant if instant.tzinfo else instant.replace(tzinfo=timezone.utc)


def make_sink(url: str, *, metrics=None, settings=None, **options) -> AlertmanagerSink:
    """The sink `riskwatch run`/`replay`/`worker` build from `--alertmanager URL`,
    with the delivery limits of `settings` (riskwatch.settings.Settings).
    Raises ValueError naming the RISKWATCH_ variable of a limit out of range."""
    if settings is not None and "policy" not in options:
        options["policy"] = DeliveryPolicy.from_settings(settings)
    return AlertmanagerSink(url, metrics=metrics, **options)
