"""`riskwatch worker --alertmanager URL` pushes its alerts to the real Alertmanager."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.support.alertmanager import ALERTMANAGER, config_for_test, running_alertmanager, webhook_receiver
from tests.support.kafka import produce_lines

pytestmark = [pytest.mark.kafka, pytest.mark.alertmanager]


def _price(event_id: str, price: int, minute: int) -> bytes:
    return json.dumps({"event_id": event_id, "type": "competitor.price_observed", "competitor": "Rival",
                       "sku": "SKU-AM", "price": price, "occurred_at": f"2026-03-01T10:{minute:02d}:00Z"}).encode()


@pytest.mark.skipif(shutil.which(ALERTMANAGER) is None, reason="prometheus-alertmanager is not installed (scripts/install-services.sh installs it)")
def test_worker_alerts_reach_alertmanager_with_their_alert_id(kafka_broker, start_worker, topic_prefix, tmp_path):
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
