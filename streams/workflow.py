"""The alert desk inside the worker: acknowledgements meet escalation timers.

Every worker keeps one `AlertDesk` over the Kafka workflow log (the alerts
topic every worker writes, the actions topic the API writes), so it sees
every alert and every person's action. The worker that owns source
partition 0 keeps the desk's clock: once a second it records what the shared
event-time clock made due (an escalation past `respond_by`, a step past its
due time, the end of a snooze, an overdue review) on the actions topic,
where the API and the other workers read it, and it alone counts them and
reports the overdue gauges, so a sum over workers counts each once. One
keeper, not all: every worker would record each missed deadline (the same
action id, folded once, but a topic record and a count per worker). When
the keeper dies, the next owner of partition 0 takes over after the
rebalance; deadlines are hours apart, the pause is seconds.

With an Alertmanager configured, the desk's view of each alert (escalated
owner, acknowledged or snoozed status) is what gets pushed, from every
worker: Alertmanager merges identical alerts, the way it merges the alerts
of a Prometheus HA pair, so no alert depends on which worker owns it.

The desk's Kafka client and the Alertmanager HTTP calls block, so all of it
runs on one thread of its own, never on faust's event loop.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any

from riskwatch.alerts import AlertDesk
from riskwatch.rules.response import load_response_rules
from riskwatch.settings import Settings

log = logging.getLogger("riskwatch.worker.desk")


class WorkerDesk:
    def __init__(self, settings: Settings, *, metrics: Any, alertmanager: Any = None, name: str = "worker"):
        rules, problems = load_response_rules(settings.rules_dir)
        if rules is None:
            raise ValueError("response rules invalid: " + "; ".join(problems))
        self.settings = settings
        self.rules = rules
        self.metrics = metrics
        self.alertmanager = alertmanager
        self.name = name
        self.desk: AlertDesk | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="desk")
        self._running: Future | None = None

    def _open(self) -> None:
        from riskwatch.alerts.kafkalog import KafkaWorkflowLog

        log_ = KafkaWorkflowLog(self.settings.broker, self.settings.topic_prefix, client_id=f"riskwatch-desk-{self.name}")
        notify = self.alertmanager.send if self.alertmanager is not None else None
        self.desk = AlertDesk(self.rules, log_, metrics=self.metrics, notify=notify)
        log.info("alert desk caught up: %d alerts, %d plans, %d reviews",
                 len(self.desk.ledger.alerts), len(self.desk.ledger.plans), len(self.desk.ledger.reviews))

    def _tick(self, watermark_ts: float | None, keeps_clock: bool) -> None:
        if self.desk is None:
            self._open()
        if not keeps_clock or watermark_ts is None:
            self.desk.sync()
            if not keeps_clock:
                self.metrics.playbook_steps_overdue.set(0)
                self.metrics.reviews_overdue.set(0)
        else:
            recorded = self.desk.tick(datetime.fromtimestamp(watermark_ts, timezone.utc))
            if recorded:
                log.info("recorded %d workflow actions the clock made due", len(recorded))
        if self.alertmanager is not None:
            self.alertmanager.tick()  # re-sends open alerts before their endsAt

    def tick(self, watermark_ts: float | None, *, keeps_clock: bool) -> None:
        """Fold new records and, on the keeper, record what is due; skipped while the previous tick still runs."""
        if self._running is not None and not self._running.done():
            return
        self._running = asyncio.get_running_loop().run_in_executor(self._thread, self._tick, watermark_ts, keeps_clock)
        self._running.add_done_callback(_log_failure)

    def close(self) -> None:
        self._thread.shutdown(wait=False, cancel_futures=True)
        if self.desk is not None and self.desk.store is not None:
            self.desk.store.close()


def _log_failure(future: Future) -> None:
    if not future.cancelled() and future.exception() is not None:
        # The next tick tries again (a broker away, Alertmanager down).
        log.error("alert desk tick failed: %s", future.exception())
