"""`riskwatch worker --alertmanager URL` pushes its alerts to the real
Alertmanager, and a silent one does not hold the worker up."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.support.alertmanager import ALERTMANAGER, config_for_test, running_alertmanager, webhook_receiver
from tests.support.kafka import alert_changes, produce_lines, wait_processed, wait_until
from tests.support.neighbours import silent_server

pytestmark = [pytest.mark.kafka, pytest.mark.alertmanager]


def _price(event_id: str, price: int, minute: int) -> bytes:
    return json.dumps({"event_id": event_id, "type": "competitor.price_observed", "competitor": "Rival",
                       "sku": "SKU-AM", "price": price, "occurred_at": f"2026-03-01T10:{minute:02d}:00Z"}).encode()


def test_worker_alerts_reach_alertmanager_with_their_alert_id(kafka_broker, start_worker, topic_prefix, tmp_path):
    assert shutil.which(ALERTMANAGER), "prometheus-alertmanager is missing: scripts/install-services.sh installs it"
    with webhook_receiver() as webhook, running_alertmanager(config_for_test(webhook.url), tmp_path / "am") as am:
        start_worker(extra_args=("--alertmanager", am.url))
        produce_lines(kafka_broker.bootstrap, topic_prefix, [_price("am-1", 100, 0), _price("am-2", 80, 1),
                                                             # carries the watermark (10 min lateness) past the cut
                                                             _price("am-3", 80, 13)])
        alerts = am.wait_for_alerts(lambda found: any(a["labels"].get("indicator") == "competitor_price_cut" for a in found),
                                    timeout=30)
    cut = next(a for a in alerts if a["labels"].get("indicator") == "competitor_price_cut")
    assert cut["labels"]["alert_id"].startswith("al-")
    assert cut["labels"]["tier"] in ("red", "orange", "yellow", "blue")
    assert cut["labels"]["owner"]


def test_worker_behind_a_silent_alertmanager_still_processes_events_and_publishes_alerts(
        kafka_broker, start_worker, topic_prefix):
    """Issue 13: an Alertmanager that accepts connections and never answers.
    The desk's posts wait on their own thread; the worker goes on evaluating
    and publishing, and its /metrics shows the queue and the failures."""
    with silent_server() as silent:
        worker = start_worker(extra_args=("--alertmanager", silent.url))
        produce_lines(kafka_broker.bootstrap, topic_prefix, [_price("s-1", 100, 0), _price("s-2", 80, 1),
                                                             _price("s-3", 80, 13)])
        wait_until(lambda: silent.accepted and worker.metric_sum("riskwatch_alertmanager_push_failures_total") >= 1,
                   60, 0.5, "the desk to find Alertmanager silent")
        assert worker.metric_sum("riskwatch_alertmanager_notifications_queued") >= 1
        # Evaluation goes on while Alertmanager stays silent.
        produce_lines(kafka_broker.bootstrap, topic_prefix, [_price(f"s-more-{n}", 80 - n, 14 + n) for n in range(20)])
        wait_processed([worker], 23, timeout=60)
        changes = alert_changes(kafka_broker.bootstrap, topic_prefix)
        assert any(c["indicator"] == "competitor_price_cut" for c in changes)
        assert worker.metric_sum("riskwatch_worker_keeps_alert_desk") == 1
        worker.stop(timeout=30)
    assert worker.process.returncode is not None
    assert worker.tail_log(400).count("does not accept alerts") <= 1
