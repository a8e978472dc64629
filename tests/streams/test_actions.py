"""Acknowledgements through Kafka: the API records a person's action on the
actions topic, the worker's desk reads it, and its escalation timer (the
shared event-time clock) leaves acknowledged alerts alone while it escalates
the others. Both processes are restarted (the worker with kill -9) and
nothing is lost: the topics are the only durable copy."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.support.api import running_api
from tests.support.kafka import RISKWATCH, Broker, Worker, free_port, produce_lines, read_topic, wait_until

pytestmark = [pytest.mark.kafka]

TOKENS = "tok-officer-0123456789:officer,tok-readonly-0123456789:readonly,tok-operator-0123456789:operator"
OFFICER = {"Authorization": "Bearer tok-officer-0123456789", "X-Riskwatch-Actor": "Ann Li"}
READER = {"Authorization": "Bearer tok-readonly-0123456789"}
OPERATOR = {"Authorization": "Bearer tok-operator-0123456789"}
WORKER_LATENESS = Worker.lateness


def _price(event_id: str, sku: str, price: int, when: str) -> bytes:
    return json.dumps({"event_id": event_id, "type": "competitor.price_observed", "competitor": "Rival",
                       "sku": sku, "price": price, "occurred_at": when}).encode()


@contextmanager
def api_on_kafka(broker: str, prefix: str):
    with running_api(free_port(), timeout=90, RISKWATCH_API_TOKENS=TOKENS, RISKWATCH_WORKFLOW_LOG="kafka",
                     RISKWATCH_BROKER=broker, RISKWATCH_TOPIC_PREFIX=prefix, RISKWATCH_LOG_LEVEL="WARNING") as url:
        yield url


def price_war(first_id: str, cut_id: str, sku: str, day: str) -> list[bytes]:
    """A 22% cut of `sku` at 10:01 on `day` (orange in the shipped rules: the
    sales leadership group, 4 h to respond, escalated to the top in one step),
    and an unrelated observation that carries the watermark past it: a cut is
    decided once the clock passes it."""
    return [_price(first_id, sku, 100, f"{day}T10:00:00Z"), _price(cut_id, sku, 78, f"{day}T10:01:00Z"),
            _price(f"{cut_id}-tick", f"{sku}-TICK", 100, just_past(f"{day}T10:01:00Z"))]


def just_past(deadline: str) -> str:
    """An event time that moves the worker's watermark a minute past `deadline`."""
    instant = datetime.fromisoformat(deadline.replace("Z", "+00:00")) + timedelta(seconds=WORKER_LATENESS + 60)
    return instant.isoformat().replace("+00:00", "Z")


def alerts_by_sku(url: str) -> dict[str, dict]:
    found = httpx.get(url + "/v1/alerts", headers=READER, params={"indicator": "competitor_price_cut"}, timeout=10).json()
    return {item["alert"]["subject"]["sku"]: item for item in found}


def actions_on_topic(broker: str, prefix: str) -> list[dict]:
    return [json.loads(record.value) for record in read_topic(broker, prefix + "actions", idle_seconds=1.5)]


def test_an_acknowledgement_through_kafka_stops_the_workers_escalation_and_survives_restarts(
        kafka_broker, start_worker, topic_prefix):
    broker = kafka_broker.bootstrap
    worker = start_worker()
    produce_lines(broker, topic_prefix, [
        *price_war("p-a1", "p-a2", "SKU-ACK", "2026-03-01"), *price_war("p-b1", "p-b2", "SKU-OPEN", "2026-03-01"),
    ])
    with api_on_kafka(broker, topic_prefix) as url:
        alerts = wait_until(lambda: (lambda a: a if {"SKU-ACK", "SKU-OPEN"} <= set(a) else None)(alerts_by_sku(url)),
                            60, 0.5, "both price alerts in the API")
        acked, left_open = alerts["SKU-ACK"], alerts["SKU-OPEN"]
        base_owner = left_open["owner"]
        response = httpx.post(f"{url}/v1/alerts/{acked['alert_id']}/ack", headers=OFFICER, json={"reason": "on it"}, timeout=10)
        assert response.status_code == 200, response.text

        # The event clock (less the worker's lateness) passes respond_by by a minute.
        produce_lines(broker, topic_prefix, [_price("p-c1", "SKU-CLOCK", 100, just_past(left_open["ack_due"]))])
        escalated = wait_until(lambda: (lambda a: a if a["SKU-OPEN"]["owner"] != base_owner else None)(alerts_by_sku(url)),
                               60, 0.5, "the unacknowledged alert escalated by the worker")
        assert escalated["SKU-ACK"]["status"] == "acknowledged"
        assert escalated["SKU-ACK"]["owner"] == acked["owner"]

    actions = actions_on_topic(broker, topic_prefix)
    ack = [a for a in actions if a["kind"] == "acknowledge"]
    assert [(a["alert_id"], a["role"]) for a in ack] == [(acked["alert_id"], "officer")]
    assert "Ann Li" in ack[0]["actor"]
    escalations = [a for a in actions if a["kind"] == "escalate"]
    assert escalations and {a["alert_id"] for a in escalations} == {left_open["alert_id"]}
    assert {a["role"] for a in escalations} == {"system"}

    # kill -9 the worker, restart it and a fresh API: both rebuild from the topics.
    worker.kill()
    start_worker()
    with api_on_kafka(broker, topic_prefix) as url:
        after = alerts_by_sku(url)
        assert after["SKU-ACK"]["status"] == "acknowledged"
        assert after["SKU-ACK"]["acknowledged_by"] == ack[0]["actor"]
        assert after["SKU-OPEN"]["owner"] == escalated["SKU-OPEN"]["owner"]
        # Ten more hours of event time: the restarted worker re-notifies the open alert (escalated to
        # the top of the chain) and leaves the acknowledged one alone (its first step is due at 24 h).
        later = (datetime.fromisoformat(left_open["ack_due"].replace("Z", "+00:00")) + timedelta(hours=10))
        produce_lines(broker, topic_prefix, [_price("p-c2", "SKU-CLOCK", 100, just_past(later.isoformat()))])
        wait_until(lambda: any(a["kind"] == "renotify" for a in actions_on_topic(broker, topic_prefix)),
                   60, 0.5, "the restarted worker's re-notification")
        assert alerts_by_sku(url)["SKU-ACK"]["status"] == "acknowledged"

    actions = actions_on_topic(broker, topic_prefix)
    by_system = [a for a in actions if a["role"] == "system"]
    assert {a["alert_id"] for a in by_system} == {left_open["alert_id"]}
    # Two workers (the killed one and its successor) and a restart: one missed deadline, one action id.
    escalation_ids = {a["action_id"] for a in by_system if a["kind"] == "escalate"}
    assert len(escalation_ids) == 1


def test_an_action_the_broker_cannot_take_is_refused_with_503_and_recorded_once_it_is_back(tmp_path):
    broker = Broker(tmp_path / "kafka")
    broker.start()
    try:
        change = replayed_price_cut_from_events(price_war("d-1", "d-2", "SKU-DOWN", "2026-03-01"))
        with api_on_kafka(broker.bootstrap, "down.") as url:
            fed = httpx.post(url + "/v1/alert-changes", headers=OPERATOR, json=change, timeout=10)
            assert fed.status_code == 202, fed.text
            health = httpx.get(url + "/v1/health", headers=OPERATOR, timeout=10).json()
            assert health["store"] == "kafka topics down.alerts, down.actions"
            alert_url = f"{url}/v1/alerts/{change['alert_id']}"
            assert httpx.get(alert_url, headers=READER, timeout=10).json()["status"] == "open"

            broker.stop()
            refused = httpx.post(alert_url + "/ack", headers=OFFICER, json={"reason": "on it"}, timeout=60)
            assert refused.status_code == 503
            assert "not recorded" in refused.json()["detail"] and "down.actions" in refused.json()["detail"]
            assert refused.headers["retry-after"]
            shown = httpx.get(alert_url, headers=READER, timeout=10).json()
            assert shown["status"] == "open" and not [a for a in shown["audit"] if a["kind"] == "acknowledge"]

            broker.start()
            accepted = wait_until(lambda: (lambda r: r if r.status_code == 200 else None)(
                httpx.post(alert_url + "/ack", headers=OFFICER, json={"reason": "on it"}, timeout=60)), 90, 1.0,
                "the acknowledgement accepted once the broker is back")
            assert accepted.status_code == 200
            assert httpx.get(alert_url, headers=READER, timeout=10).json()["status"] == "acknowledged"
        recorded = [json.loads(r.value) for r in read_topic(broker.bootstrap, "down.actions", idle_seconds=1.5)]
        assert [a["kind"] for a in recorded] == ["acknowledge"]
    finally:
        broker.stop()


def replayed_price_cut_from_events(lines: list[bytes]) -> dict:
    """The last alert change `riskwatch replay` makes of these events."""
    done = subprocess.run([str(RISKWATCH), "replay", "-"], input=b"\n".join(lines) + b"\n", capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_records_other_clients_wrote_to_the_workflow_topics_are_skipped_not_fatal(kafka_broker, start_worker, topic_prefix):
    """Anyone with access can write to a topic: garbage and half-formed records
    are skipped by the desks, and the records around them still count."""
    from kafka import KafkaProducer

    start_worker()   # creates the topics
    change = replayed_price_cut_from_events(price_war("g-1", "g-2", "SKU-G", "2026-03-01"))
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap)
    for topic, value in [
        ("actions", b"not json"),
        ("actions", b'{"kind": "acknowledge"}'),
        ("actions", json.dumps({"action_id": "act-x", "kind": "launch_rockets", "subject_key": "al-1", "at": "2026-03-01T10:00:00Z"}).encode()),
        ("actions", json.dumps({"action_id": "act-y", "kind": "plan_triggered", "subject_key": "pl-1", "at": "2026-03-01T10:00:00Z",
                                "data": {"no": "plan"}}).encode()),
        ("alerts", b"[1, 2, 3]"),
        ("alerts", json.dumps({"alert_id": "al-bad", "status": "maybe", "tier": "red"}).encode()),
        ("alerts", json.dumps(change).encode()),
    ]:
        # The alerts topic is compacted: the broker takes keyed records only.
        producer.send(topic_prefix + topic, key=b"k", value=value).get(timeout=30)
    producer.close()
    with api_on_kafka(kafka_broker.bootstrap, topic_prefix) as url:
        alerts = httpx.get(url + "/v1/alerts", headers=READER, timeout=10).json()
        assert [a["alert_id"] for a in alerts] == [change["alert_id"]]
        acked = httpx.post(f"{url}/v1/alerts/{change['alert_id']}/ack", headers=OFFICER, json={}, timeout=10)
        assert acked.status_code == 200, acked.text
        assert httpx.get(url + "/v1/plans", headers=READER, timeout=10).json() == []


def desk_processes(worker: Worker) -> list[int]:
    """The worker's alert desk process (on the worker that keeps it), as a list."""
    pid = worker.process.pid
    try:
        children = [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []
    desks = []
    for child in children:
        try:
            # multiprocessing also starts its resource tracker; the desk is the spawned one.
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                desks.append(child)
        except FileNotFoundError:
            continue
    return desks


def gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def test_with_two_workers_a_missed_deadline_is_recorded_and_counted_once(kafka_broker, start_worker, topic_prefix):
    workers = [start_worker(), start_worker()]
    broker = kafka_broker.bootstrap
    change = replayed_price_cut_from_events(price_war("t-1", "t-2", "SKU-TWO", "2026-03-01"))
    produce_lines(broker, topic_prefix, price_war("t-1", "t-2", "SKU-TWO", "2026-03-01"))
    produce_lines(broker, topic_prefix, [_price("t-3", "SKU-CLOCK", 100, just_past(change["respond_by"]))])
    wait_until(lambda: any(a["kind"] == "escalate" for a in actions_on_topic(broker, topic_prefix)), 60, 0.5,
               "the escalation")
    time.sleep(3)  # three more desk ticks on both workers: a second recording would show now
    escalations = [a for a in actions_on_topic(broker, topic_prefix) if a["kind"] == "escalate"]
    assert [a["alert_id"] for a in escalations] == [change["alert_id"]]
    assert sum(w.metric_sum("riskwatch_alerts_escalated_total") for w in workers) == 1

    # One desk for the deployment: on the worker that owns partition 0, in a process of its own.
    keepers = [w for w in workers if w.metric_sum("riskwatch_worker_keeps_alert_desk") == 1]
    assert len(keepers) == 1
    keeper = keepers[0]
    survivor = next(w for w in workers if w is not keeper)
    [desk] = desk_processes(keeper)
    wait_until(lambda: desk_processes(survivor) == [], 30, 0.5, "no desk on the worker without partition 0")

    # kill -9 the keeper alone (not its process group): its desk notices and ends,
    # and the survivor's desk takes over the next missed deadline.
    os.kill(keeper.process.pid, signal.SIGKILL)
    keeper.process.wait(timeout=30)
    wait_until(lambda: gone(desk), 15, 0.3, "the killed worker's desk process to end")
    second = replayed_price_cut_from_events(price_war("t-4", "t-5", "SKU-TWO-B", "2026-03-02"))
    produce_lines(broker, topic_prefix, price_war("t-4", "t-5", "SKU-TWO-B", "2026-03-02"))
    produce_lines(broker, topic_prefix, [_price("t-6", "SKU-CLOCK", 100, just_past(second["respond_by"]))])
    wait_until(lambda: second["alert_id"] in {a["alert_id"] for a in actions_on_topic(broker, topic_prefix)
                                               if a["kind"] == "escalate"}, 90, 0.5, "the survivor's escalation")
    assert survivor.metric_sum("riskwatch_worker_keeps_alert_desk") == 1
    assert len(desk_processes(survivor)) == 1
    escalated = [a["alert_id"] for a in actions_on_topic(broker, topic_prefix) if a["kind"] == "escalate"]
    assert sorted(escalated) == sorted([change["alert_id"], second["alert_id"]])
