"""From the ERP's tables to alerts, on real components only: PostgreSQL
(logical decoding), Kafka Connect with the Debezium connector, the project's
broker and a `riskwatch worker` following the tables through
mappings/erp-postgres/ (`--cdc-mapping`, `--cdc-topic-prefix`).

What the ERP holds when the connector starts (its snapshot), dated relative
to now, since the tables' updated_at is the wall clock:

- customer C-CW, class B, credit limit 0 (a credit hold);
- order O-CW1 with shipment S-CW1, promised in two days;
- order O-CW2 with shipment S-CW2, promised 5 days ago, undelivered;
- order O-CW3, cancelled 2 hours ago, with shipment S-CW3 whose 72 h ran
  out an hour ago: after the cancellation, so no delay;
- invoice I-CW1 (50,000, due 40 days ago, 5,000 paid 20 days ago) and
  I-CW2 (10,000, due 35 days ago), both last changed 2 hours ago.

The worker's clock is the latest event time less 10 minutes: from the
snapshot alone about 2 h 10 min ago, which S-CW2's and I-CW2's deadlines
have passed. Then, live: S-CW1's promise is corrected to 5 days ago (a
revision), I-CW1 gets a part payment and I-CW2 is paid in full, O-CW2 is
deleted with its shipment (a deleted order is cancelled), and an invoice
with a negative amount is entered. The live changes move the clock to about
10 minutes ago, past an hourly credit check after the invoices.
"""

from __future__ import annotations

import json
import time

import pytest

from riskwatch.timeutil import parse_instant
from tests.support.cdc import ERP_TABLES
from tests.support.kafka import Worker, alert_changes, read_topic, wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.cdc, pytest.mark.slow]

PREFIX = "cdcw."
UTC_NOW = "(now() AT TIME ZONE 'UTC')"
TODAY = "(now() AT TIME ZONE 'Asia/Shanghai')::date"

SNAPSHOT = f"""
INSERT INTO customers (customer_id, name, tier, region, credit_limit, updated_at)
     VALUES ('C-CW', '华北精密', 'B', 'north', 0, {UTC_NOW} - interval '3 hours');
INSERT INTO orders (order_id, customer_id, amount, ordered_at, updated_at) VALUES
  ('O-CW1', 'C-CW', 80000.00, now() - interval '10 days', {UTC_NOW} - interval '3 hours'),
  ('O-CW2', 'C-CW', 30000.00, now() - interval '12 days', {UTC_NOW} - interval '3 hours');
INSERT INTO orders (order_id, customer_id, amount, status, cancel_reason, ordered_at, updated_at)
     VALUES ('O-CW3', 'C-CW', 20000.00, 'cancelled', '客户取消', now() - interval '9 days',
             {UTC_NOW} - interval '2 hours');
INSERT INTO shipments (shipment_id, order_id, customer_id, promised_at, updated_at) VALUES
  ('S-CW1', 'O-CW1', 'C-CW', now() + interval '2 days', {UTC_NOW} - interval '3 hours'),
  ('S-CW2', 'O-CW2', 'C-CW', now() - interval '5 days', {UTC_NOW} - interval '3 hours'),
  ('S-CW3', 'O-CW3', 'C-CW', now() - interval '73 hours', {UTC_NOW} - interval '3 hours');
INSERT INTO invoices (invoice_id, customer_id, amount, issued_on, due_date, updated_at) VALUES
  ('I-CW1', 'C-CW', 50000.00, {TODAY} - 70, {TODAY} - 40, {UTC_NOW} - interval '2 hours'),
  ('I-CW2', 'C-CW', 10000.00, {TODAY} - 65, {TODAY} - 35, {UTC_NOW} - interval '2 hours');
INSERT INTO payments (payment_id, invoice_id, customer_id, amount, received_at, updated_at)
     VALUES ('P-CW0', 'I-CW1', 'C-CW', 5000.00, now() - interval '20 days', {UTC_NOW} - interval '20 days');
"""

LIVE = f"""
UPDATE shipments SET promised_at = now() - interval '5 days' WHERE shipment_id = 'S-CW1';
INSERT INTO payments (payment_id, invoice_id, customer_id, amount, received_at) VALUES
  ('P-CW1', 'I-CW1', 'C-CW', 20000.00, now()),
  ('P-CW2', 'I-CW2', 'C-CW', 10000.00, now());
UPDATE invoices SET status = 'paid' WHERE invoice_id = 'I-CW2';
BEGIN;
DELETE FROM shipments WHERE shipment_id = 'S-CW2';
DELETE FROM orders WHERE order_id = 'O-CW2';
COMMIT;
INSERT INTO invoices (invoice_id, customer_id, amount, issued_on, due_date)
     VALUES ('I-CW9', 'C-CW', -5.00, {TODAY}, {TODAY} + 30);
"""

OURS = {"C-CW", "S-CW1", "S-CW2", "S-CW3", "I-CW1", "I-CW2", "I-CW9"}


def _latest(broker: str) -> dict[tuple[str, str], dict]:
    """(indicator, subject id) -> the alert's latest change, for this test's subjects only."""
    latest: dict[tuple[str, str], dict] = {}
    for change in alert_changes(broker, PREFIX, idle_seconds=1.0):
        key = (change["indicator"], change["subject"]["id"])
        if key[1] in OURS and (key not in latest or change["sequence"] >= latest[key]["sequence"]):
            latest[key] = change
    return latest


def _statuses(latest: dict) -> dict[tuple[str, str], str]:
    return {key: change["status"] for key, change in latest.items()}


def _wait_for_topics(broker: str, topics: list[str], timeout: float = 90) -> None:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(bootstrap_servers=broker, group_id=None)
    try:
        wait_until(lambda: set(topics) <= consumer.topics(), timeout, 0.5, f"Debezium to create {topics}")
    finally:
        consumer.close()


def test_erp_changes_raise_and_resolve_the_alerts_the_rules_give(erp_database, kafka_broker, capture, tmp_path):
    began = time.monotonic()
    erp_database.sql(SNAPSHOT)
    cdc = capture(schemas=True)
    # Every table has rows, so the snapshot creates every topic before the worker subscribes.
    _wait_for_topics(kafka_broker.bootstrap, [cdc.topic(table) for table in ERP_TABLES])
    worker = Worker(broker=kafka_broker.bootstrap, prefix=PREFIX, directory=tmp_path,
                    extra_args=("--cdc-mapping", "mappings/erp-postgres", "--cdc-topic-prefix", cdc.prefix)).start()
    try:
        worker.wait_ready(timeout=90)
        try:
            _run(erp_database, kafka_broker, worker, cdc)
        except AssertionError as failed:
            raise AssertionError(f"{failed}\n--- worker log ---\n{worker.tail_log(80)}") from None
    finally:
        worker.stop(timeout=15)
    print(f"CDC to alerts in {time.monotonic() - began:.0f} s (PostgreSQL, Connect and the broker already up)")


def _run(erp_database, kafka_broker, worker: Worker, cdc) -> None:
    broker = kafka_broker.bootstrap
    # The snapshot alone: S-CW2 and I-CW2 are past their deadlines; nothing is due for S-CW1 yet.
    snapshot = {("delivery_delay", "S-CW2"): "open", ("payment_overdue", "I-CW2"): "open",
                ("payment_overdue", "I-CW1"): "open"}
    seen: dict = {}

    def snapshot_alerts() -> bool:
        nonlocal seen
        seen = _statuses(_latest(broker))
        return all(seen.get(key) == status for key, status in snapshot.items())

    try:
        wait_until(snapshot_alerts, 90, 1.0, "the snapshot's alerts")
    except AssertionError:
        raise AssertionError(f"after the snapshot: {seen}") from None
    assert ("delivery_delay", "S-CW1") not in seen and ("delivery_delay", "S-CW3") not in seen

    erp_database.sql(LIVE)
    expected = {
        ("credit_limit_breach", "C-CW"): "open",      # credit hold: any open receivable breaches it
        ("delivery_delay", "S-CW1"): "open",          # its promise corrected to 5 days ago
        ("delivery_delay", "S-CW2"): "resolved",      # its order deleted in the ERP: cancelled
        ("payment_overdue", "I-CW1"): "open",         # 25,000 still open after the part payment
        ("payment_overdue", "I-CW2"): "resolved",     # paid in full
    }
    latest: dict = {}

    def settled() -> bool:
        nonlocal latest
        latest = _latest(broker)
        return _statuses(latest) == expected

    try:
        wait_until(settled, 90, 1.0, "the alerts after the live changes")
    except AssertionError:
        raise AssertionError(f"alerts: {_statuses(latest)}\nexpected: {expected}") from None

    # S-CW3's order was cancelled before its 72 h ran out: no alert, ever.
    assert ("delivery_delay", "S-CW3") not in latest
    assert latest[("delivery_delay", "S-CW2")]["resolution"] == "order cancelled"
    assert latest[("payment_overdue", "I-CW2")]["status"] == "resolved"
    # Measured from the corrected promise (5 days ago; the first one was 2 days ahead), at the clock of
    # the change. The update leaves the row's updated_at (3 hours ago) as its event time, so that clock
    # is between 3 hours and 10 minutes ago, as the worker reads the shipments topic before or after
    # the payments (dated now).
    moved = latest[("delivery_delay", "S-CW1")]
    promised = float(erp_database.sql("SELECT extract(epoch FROM promised_at) FROM shipments "
                                      "WHERE shipment_id = 'S-CW1';").strip())
    as_of = parse_instant(moved["updated_at"]).timestamp()
    assert moved["observed"] == pytest.approx((as_of - promised) / 3600, abs=0.01), (moved, promised)
    assert 116.8 < moved["observed"] < 120, moved["observed"]
    assert latest[("payment_overdue", "I-CW1")]["amount_at_stake_cny"] == pytest.approx(25000.0)
    assert latest[("credit_limit_breach", "C-CW")]["subject"]["customer_id"] == "C-CW"

    # The poison row: on the dead-letter topic as Debezium wrote it, with where it came from.
    letters: list = []

    def poison_dead_lettered() -> bool:
        letters[:] = [r for r in read_topic(broker, f"{PREFIX}dead-letter", idle_seconds=1.0)
                      if b'"I-CW9"' in (r.value or b"")]
        return bool(letters)

    wait_until(poison_dead_lettered, 30, 1.0, "the poison row on the dead-letter topic")
    [letter] = letters
    headers = {name: value.decode() for name, value in letter.headers}
    assert headers["riskwatch.reason"] == ("public.invoices insert: amount: '-5.00' is negative; amounts must be "
                                           ">= 0 (amount of invoice.issued)")
    assert headers["riskwatch.reason.kind"] == "cdc_unmappable"
    assert headers["riskwatch.source.topic"] == cdc.topic("invoices")
    original = [r for r in read_topic(broker, cdc.topic("invoices"), idle_seconds=1.0)
                if r.partition == int(headers["riskwatch.source.partition"])
                and r.offset == int(headers["riskwatch.source.offset"])]
    assert [r.value for r in original] == [letter.value]
    assert json.loads(letter.value)["payload"]["after"]["amount"] == "-5.00"

    # The worker kept going and says what it read.
    metrics = worker.metrics()
    assert metrics['riskwatch_dead_letters_total{reason="cdc_unmappable"}'] >= 1
    assert metrics['riskwatch_cdc_changes_total{outcome="mapped"}'] >= 15
    assert metrics['riskwatch_cdc_changes_total{outcome="tombstone"}'] >= 2
