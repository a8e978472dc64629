"""The worker's change-data-capture path on the real broker, with change
records written as Debezium's JSON converter writes them (without schema):
a change topic that appears after the worker started is read, its changes
become events the worker evaluates, and what is not a change, or is a
change of a table no mapping covers, goes to the dead-letter topic with its
origin. (PostgreSQL and Kafka Connect themselves: tests/cdc.)"""

from __future__ import annotations

import json

import pytest

from tests.support.kafka import read_topic, wait_until

pytestmark = pytest.mark.kafka

COMMIT_MS = 1_711_935_000_000  # 2024-04-01T01:30:00Z


def _change(table: str, op: str, row: dict) -> bytes:
    return json.dumps({
        "before": row if op == "d" else None, "after": None if op == "d" else row,
        "source": {"connector": "postgresql", "db": "erp", "schema": "public", "table": table, "ts_ms": COMMIT_MS},
        "op": op, "ts_ms": COMMIT_MS + 5}, ensure_ascii=False).encode()


def test_a_change_topic_created_after_the_worker_started_is_mapped_and_its_poison_dead_lettered(
        kafka_broker, start_worker, topic_prefix):
    from kafka import KafkaProducer

    cdc_prefix = topic_prefix.rstrip(".") + "-erp"
    topic = f"{cdc_prefix}.public.customers"
    worker = start_worker(extra_args=("--cdc-mapping", "mappings/erp-postgres/customers.yaml",
                                      "--cdc-topic-prefix", cdc_prefix))
    assert f"following changes of public.customers ({topic})" in worker.log_path.read_text(errors="replace")

    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap)
    profile = {"customer_id": "C-1", "name": "华东机电", "tier": "A", "region": "east", "sales_rep": None,
               "credit_limit": "100000.00", "updated_at": "2024-03-30T08:00:00.000000"}
    sent = {}
    for name, value in (("profile", _change("customers", "c", profile)),
                        ("not_a_change", b'{"customer_id": "C-1", "tier": "A"}'),
                        ("other_table", _change("quotes", "c", {"quote_id": "Q-1"})),
                        ("tombstone", None)):
        sent[name] = producer.send(topic, key=b'{"customer_id":"C-1"}', value=value).get(timeout=30)
    producer.close()

    def counted() -> bool:
        metrics = worker.metrics()
        return (metrics.get('riskwatch_events_processed_total{type="customer.profile"}', 0) >= 1
                and metrics.get('riskwatch_cdc_changes_total{outcome="dead_letter"}', 0) >= 2
                and metrics.get('riskwatch_cdc_changes_total{outcome="tombstone"}', 0) >= 1)

    try:
        wait_until(counted, 90, 0.5, "the change records to be mapped and evaluated")
    except AssertionError as stuck:
        raise AssertionError(f"{stuck}\n{worker.tail_log(60)}") from None

    # The profile went to the customers topic, keyed by customer_id, as `riskwatch produce` sends it.
    [event] = [r for r in read_topic(kafka_broker.bootstrap, f"{topic_prefix}customers", idle_seconds=1.0)]
    assert event.key == b"C-1"
    assert {k: v for k, v in json.loads(event.value).items() if k != "event_id"} == {
        "type": "customer.profile", "customer_id": "C-1", "tier": "A", "region": "east",
        "credit_limit": "100000.00", "occurred_at": "2024-03-30T08:00:00+00:00"}

    letters = {}
    for record in read_topic(kafka_broker.bootstrap, f"{topic_prefix}dead-letter", idle_seconds=1.0):
        headers = {name: value.decode() for name, value in record.headers}
        letters[headers["riskwatch.reason.kind"]] = (record, headers)
    assert sorted(letters) == ["cdc_no_mapping", "cdc_not_a_change"]
    for kind, name in (("cdc_not_a_change", "not_a_change"), ("cdc_no_mapping", "other_table")):
        record, headers = letters[kind]
        origin = sent[name]
        assert (headers["riskwatch.source.topic"], headers["riskwatch.source.partition"],
                headers["riskwatch.source.offset"]) == (topic, str(origin.partition), str(origin.offset))
        assert record.key == b'{"customer_id":"C-1"}'
    assert letters["cdc_no_mapping"][1]["riskwatch.reason"] == "no mapping for table public.quotes"
    assert letters["cdc_not_a_change"][1]["riskwatch.reason"] == (
        'value: no "op" field: not a Debezium change envelope (was the record flattened, e.g. by the '
        'ExtractNewRecordState transform?)')
