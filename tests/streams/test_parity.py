"""The same events through Kafka and through `riskwatch replay` give the same alerts."""

from __future__ import annotations

import subprocess

import orjson
import pytest

from riskwatch.timeutil import parse_instant
from tests.support.kafka import (
    LATENESS,
    RISKWATCH,
    WINDOW,
    alert_changes,
    conflicting_versions,
    produce_as_live,
    produce_lines,
    wait_alerts,
    wait_processed,
    wait_until,
)

pytestmark = pytest.mark.kafka

def test_worker_gives_the_same_final_alerts_as_replay(kafka_broker, start_worker, topic_prefix, simulated_events, replayed):
    assert len(replayed) > 50, "the scenario should raise a fair number of alerts"
    worker = start_worker(lateness=LATENESS)

    produce_as_live(kafka_broker.bootstrap, topic_prefix, simulated_events, [worker], WINDOW)

    # Ids, statuses and tiers must agree exactly, the tier a resolved alert
    # closed at included (docs/streams.md, "Parity").
    wait_alerts(kafka_broker.bootstrap, topic_prefix, replayed)
    assert conflicting_versions(alert_changes(kafka_broker.bootstrap, topic_prefix)) == []


def test_a_backlog_produced_all_at_once_gives_the_same_final_alerts_as_replay(
    kafka_broker, start_worker, topic_prefix, simulated_events, replayed
):
    # Five months of all five topics on the broker before the worker reads a
    # record: it fetches them in fetch order, one topic's weeks ahead of
    # another's. Each partition's clock is its slowest topic, so an invoice's
    # deadline cannot pass before the payment of the same weeks is read, and
    # the open alerts at the end are replay's (docs/streams.md, "The clock").
    # Alerts raised and resolved again on the way are accepted here: on a
    # loaded machine some still are (docs/decisions.md, "Core v2").
    lines = [line for line in simulated_events.read_bytes().splitlines() if line.strip()]
    produce_lines(kafka_broker.bootstrap, topic_prefix, lines)
    worker = start_worker(lateness=LATENESS)
    wait_processed([worker], len(lines), timeout=300)
    # The segment engines catch up after the source partitions; the operator's
    # gauge says when the group indicators have been evaluated to the end.
    end = max(parse_instant(orjson.loads(line)["occurred_at"]).timestamp() for line in lines) - LATENESS
    wait_until(lambda: worker.metric_sum("riskwatch_segment_watermark_seconds") >= end, 120, 0.5,
               "the segment engines' clock to reach the end of the backlog")
    wait_alerts(kafka_broker.bootstrap, topic_prefix, replayed, timeout=120, extra_resolved=True)
    assert conflicting_versions(alert_changes(kafka_broker.bootstrap, topic_prefix)) == []


def test_produce_command_routes_events_and_tail_prints_them(kafka_broker, start_worker, topic_prefix, simulated_events):
    worker = start_worker()
    produced = subprocess.run(
        [str(RISKWATCH), "produce", str(simulated_events), "--broker", kafka_broker.bootstrap, "--topic-prefix", topic_prefix],
        capture_output=True, text=True, timeout=120,
    )
    assert produced.returncode == 0, produced.stderr
    events = sum(1 for line in simulated_events.read_text().splitlines() if line.strip())
    assert f"sent {events} events" in produced.stderr
    wait_processed([worker], events)

    shown = subprocess.run(
        [str(RISKWATCH), "tail", "--no-follow", "--no-colour", "--broker", kafka_broker.bootstrap, "--topic-prefix", topic_prefix],
        capture_output=True, text=True, timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines, "tail printed nothing"
    assert any("owner " in line and "respond by" in line for line in lines)
    assert all(not line.startswith("{") for line in lines), "tail prints for a person, not JSON"
