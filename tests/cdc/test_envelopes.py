"""What the ERP's database changes look like on Kafka: Debezium change events
from the real PostgreSQL through the real Connect, as an operator's
connector configuration (docs/ingest.md) produces them."""

from __future__ import annotations

import json

import pytest

from riskwatch.ingest.debezium import decode_change
from tests.support.cdc import read_changes

pytestmark = [pytest.mark.kafka, pytest.mark.cdc, pytest.mark.slow]


def _unwrapped(raw: bytes, schemas: bool) -> dict:
    """The JSON converter's record: {"schema", "payload"} with schemas, the bare payload without."""
    document = json.loads(raw)
    if schemas:
        assert set(document) == {"schema", "payload"}, sorted(document)
        return document["payload"]
    assert "schema" not in document and "payload" not in document, sorted(document)
    return document


@pytest.mark.parametrize("schemas", [True, False], ids=["with-schema", "without-schema"])
def test_inserts_updates_and_deletes_of_an_invoice_reach_its_topic_as_change_events(
        erp_database, kafka_broker, capture, schemas):
    tag = "s" if schemas else "n"
    customer, existing, invoice = f"C-ENV-{tag}", f"INV-OLD-{tag}", f"INV-NEW-{tag}"
    # A row that is there before the connector starts: the snapshot reads it.
    erp_database.sql(f"""
        INSERT INTO customers (customer_id, name, tier) VALUES ('{customer}', '华东贸易', 'A');
        INSERT INTO invoices (invoice_id, customer_id, amount, issued_on, due_date)
             VALUES ('{existing}', '{customer}', 5000.00, '2024-01-31', '2024-03-01');
    """)
    cdc = capture(schemas=schemas, tables=("invoices",))
    erp_database.sql(f"""
        INSERT INTO invoices (invoice_id, customer_id, amount, issued_on, due_date)
             VALUES ('{invoice}', '{customer}', 1234.56, '2024-02-01', '2024-03-02');
        UPDATE invoices SET due_date = '2024-03-16' WHERE invoice_id = '{invoice}';
        DELETE FROM invoices WHERE invoice_id = '{invoice}';
    """)

    def key_of(record) -> str:
        return _unwrapped(record.key, schemas)["invoice_id"]

    def done(records) -> bool:
        return any(r.value is None and key_of(r) == invoice for r in records) and \
            any(key_of(r) == existing for r in records)

    records = read_changes(kafka_broker.bootstrap, cdc.topic("invoices"), done)
    ours = [r for r in records if key_of(r) == invoice]
    assert [_unwrapped(r.value, schemas)["op"] if r.value is not None else None for r in ours] == \
        ["c", "u", "d", None]  # None: the tombstone after the delete, for log compaction
    assert len({r.partition for r in ours}) == 1  # keyed by the primary key: one partition, in order
    created, updated, deleted, _ = (_unwrapped(r.value, schemas) if r.value is not None else None for r in ours)

    assert created["before"] is None
    assert created["after"]["invoice_id"] == invoice and created["after"]["amount"] == "1234.56"
    assert created["source"]["table"] == "invoices" and created["source"]["schema"] == "public"
    assert isinstance(created["source"]["ts_ms"], int)
    # With the recommended time.precision.mode a date is a day count since 1970-01-01.
    assert created["after"]["due_date"] == 19784  # 2024-03-02
    assert updated["before"]["due_date"] == 19784 and updated["after"]["due_date"] == 19798  # 2024-03-16
    assert updated["after"]["updated_at"] > updated["before"]["updated_at"]  # the ERP's trigger
    # REPLICA IDENTITY FULL: the delete carries the whole old row.
    assert deleted["after"] is None
    assert deleted["before"]["customer_id"] == customer and deleted["before"]["due_date"] == 19798

    snapshot = [_unwrapped(r.value, schemas) for r in records if key_of(r) == existing]
    assert [change["op"] for change in snapshot] == ["r"]
    assert snapshot[0]["source"]["snapshot"] in {"true", "first", "last", "first_in_data_collection",
                                                  "last_in_data_collection"}
    assert snapshot[0]["after"]["amount"] == "5000.00"

    # riskwatch reads the same records as rows: with the schema, dates as dates.
    decoded = [decode_change(r.value, r.key) for r in ours]
    assert [change.op if change else None for change in decoded] == ["create", "update", "delete", None]
    moved = decoded[1]
    assert moved.table == "public.invoices" and moved.key == {"invoice_id": invoice}
    if schemas:
        assert (moved.previous["due_date"], moved.row["due_date"]) == ("2024-03-02", "2024-03-16")
        assert moved.row["amount"] == "1234.56"
    else:
        assert (moved.previous["due_date"], moved.row["due_date"]) == (19784, 19798)
