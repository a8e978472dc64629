"""`riskwatch import --to-kafka`: an export's events go to their source topics,
keyed by customer, as `riskwatch produce` sends them (real broker)."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.support.kafka import RISKWATCH, read_topic

pytestmark = [pytest.mark.kafka]


def test_import_sends_an_exports_events_to_their_topics(kafka_broker, topic_prefix):
    done = subprocess.run(
        [str(RISKWATCH), "import", "--to-kafka", "--broker", kafka_broker.bootstrap, "--topic-prefix", topic_prefix,
         "--export", "mappings/receivables.yaml", "tests/data/exports/receivables.csv",
         "--export", "mappings/orders.yaml", "tests/data/exports/orders.csv"],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert "sent 19 events" in done.stderr and "0 not sent" in done.stderr
    payments = read_topic(kafka_broker.bootstrap, f"{topic_prefix}payments")
    events = [json.loads(record.value) for record in payments]
    assert sorted(e["type"] for e in events) == ["invoice.issued"] * 5 + ["payment.received"] * 3
    assert all(record.key.decode() == json.loads(record.value)["customer_id"] for record in payments)
    orders = read_topic(kafka_broker.bootstrap, f"{topic_prefix}orders")
    deliveries = read_topic(kafka_broker.bootstrap, f"{topic_prefix}deliveries")
    assert (len(orders), len(deliveries)) == (5, 6)
