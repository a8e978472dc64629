"""A day in the ERP, as riskwatch reads it from the change stream: a customer,
an order, its shipment and invoice are entered; the shipment's promise moves,
the invoice is paid, the order is cancelled. Each change reaches riskwatch as
the row its table's mapping reads, dated by the row's own updated_at."""

from __future__ import annotations

from collections import defaultdict

import pytest

from riskwatch.ingest.debezium import CdcRecord, changes_to_rows
from tests.support.cdc import ERP_TABLES, read_changes

pytestmark = [pytest.mark.kafka, pytest.mark.cdc, pytest.mark.slow]

MAPPED = {f"public.{table}" for table in ERP_TABLES}


def test_an_erp_day_reaches_riskwatch_as_rows_in_order_with_their_revisions(erp_database, kafka_broker, capture):
    cdc = capture(schemas=True)
    erp_database.sql("""
        INSERT INTO customers (customer_id, name, tier, region, credit_limit)
             VALUES ('C-DAY', '华南电子', 'A', 'south', 100000.00);
        INSERT INTO orders (order_id, customer_id, amount, ordered_at)
             VALUES ('O-DAY', 'C-DAY', 250000.00, '2024-02-20 09:00:00+08');
        INSERT INTO shipments (shipment_id, order_id, customer_id, promised_at)
             VALUES ('S-DAY', 'O-DAY', 'C-DAY', '2024-03-01 10:00:00+08');
        INSERT INTO invoices (invoice_id, customer_id, amount, issued_on, due_date)
             VALUES ('I-DAY', 'C-DAY', 250000.00, '2024-02-20', '2024-03-31');
    """)
    erp_database.sql("""
        UPDATE shipments SET promised_at = '2024-03-05 10:00:00+08' WHERE shipment_id = 'S-DAY';
        INSERT INTO payments (payment_id, invoice_id, customer_id, amount, received_at)
             VALUES ('P-DAY', 'I-DAY', 'C-DAY', 250000.00, '2024-03-20 15:00:00+08');
        UPDATE invoices SET status = 'paid' WHERE invoice_id = 'I-DAY';
        UPDATE orders SET status = 'cancelled', cancel_reason = '客户取消' WHERE order_id = 'O-DAY';
    """)
    expected = {"customers": 1, "orders": 2, "shipments": 2, "invoices": 2, "payments": 1}
    rows = defaultdict(list)
    for table, count in expected.items():
        def ours(records, table=table):
            return [r for r in records if r.value is not None and b"DAY" in (r.key or b"")]

        records = ours(read_changes(kafka_broker.bootstrap, cdc.topic(table), lambda got: len(ours(got)) >= count))
        cdc_records = [CdcRecord(r.topic, r.partition, r.offset, r.key, r.value) for r in records]
        for item in changes_to_rows(cdc_records, MAPPED):
            assert item.dead_letter is None, dict(item.dead_letter.headers)
            rows[table].append(item)

    assert {table: [item.op for item in items] for table, items in rows.items()} == {
        "customers": ["insert"], "orders": ["insert", "update"], "shipments": ["insert", "update"],
        "invoices": ["insert", "update"], "payments": ["insert"],
    }
    customer = rows["customers"][0].row
    assert (customer["tier"], customer["credit_limit"], customer["name"]) == ("A", "100000.00", "华南电子")

    scheduled, rescheduled = rows["shipments"]
    assert scheduled.row["promised_at"] == "2024-03-01T02:00:00.000000Z"
    assert rescheduled.row["promised_at"] == "2024-03-05T02:00:00.000000Z"
    # A revision is later by the row's own clock and by the commit: the newer promise holds.
    assert rescheduled.row["updated_at"] > scheduled.row["updated_at"]
    assert rescheduled.row["__source_ts_ms"] >= scheduled.row["__source_ts_ms"]

    placed, cancelled = rows["orders"]
    assert (placed.row["status"], cancelled.row["status"]) == ("open", "cancelled")
    assert cancelled.row["cancel_reason"] == "客户取消" and cancelled.change.previous["status"] == "open"
    assert rows["invoices"][0].row["due_date"] == "2024-03-31"
    assert rows["invoices"][1].row["status"] == "paid"
    payment = rows["payments"][0].row
    assert (payment["amount"], payment["received_at"]) == ("250000.00", "2024-03-20T07:00:00.000000Z")
