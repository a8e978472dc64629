"""Debezium change events read as rows: real records captured from the CDC stack
(tests/data/debezium/README.md says how), decoded with and without embedded schema."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from riskwatch.ingest.debezium import CdcRecord, Change, ChangeError, changes_to_rows, decode_change, map_changes

DATA = Path(__file__).resolve().parents[1] / "data" / "debezium"
RECOMMENDED = "schema-string-adaptive_time_microseconds"
PRECISE = "schema-precise-connect"
SCHEMALESS = "noschema-string-adaptive_time_microseconds"


def _records(capture: str) -> list[dict]:
    return [json.loads(line) for line in (DATA / f"{capture}.jsonl").read_text(encoding="utf-8").splitlines()]


def _bytes(text: str | None) -> bytes | None:
    return None if text is None else text.encode("utf-8")


def _changes(capture: str, key: str) -> list[Change | None]:
    """The decoded records of one primary key, in topic order (None: a tombstone)."""
    found = []
    for record in _records(capture):
        if record["key"] is not None and key in json.loads(record["key"]).get("payload", json.loads(record["key"])).values():
            found.append(decode_change(_bytes(record["value"]), _bytes(record["key"])))
    assert found, f"no records of {key} in {capture}"
    return found


def _envelope(capture: str, key: str, op: str) -> dict:
    for record in _records(capture):
        if record["value"] and key in record["key"] and f'"op":"{op}"' in record["value"]:
            return json.loads(record["value"])
    raise AssertionError(f"no {op} of {key} in {capture}")


def test_an_invoices_life_reads_as_create_update_update_delete_then_a_tombstone():
    changes = _changes(RECOMMENDED, "INV-1")
    assert [change.op if change else None for change in changes] == ["create", "update", "update", "delete", None]
    assert {change.table for change in changes if change} == {"public.invoices"}
    assert all(change.key == {"invoice_id": "INV-1"} for change in changes if change)
    created, moved, paid, deleted, _ = changes
    assert created.row["due_date"] == "2024-03-02"
    assert moved.previous["due_date"] == "2024-03-02" and moved.row["due_date"] == "2024-03-15"
    assert paid.row["status"] == "paid" and paid.row["paid_at"] == "2024-03-10T01:30:00.000000Z"
    # A delete's row is the old row (REPLICA IDENTITY FULL: all of it).
    assert deleted.complete and deleted.row["customer_id"] == "C-1" and deleted.row["status"] == "paid"
    # Each change is dated by the database's commit: ts_ms as seconds.
    assert created.source_time == 1796051565.711
    assert created.source_time <= moved.source_time <= paid.source_time <= deleted.source_time
    assert len({change.position for change in changes if change}) == 4


def test_a_row_the_snapshot_read_is_a_read_of_the_row_as_it_stood():
    (change,) = _changes(RECOMMENDED, "INV-SNAP")
    assert change.op == "read" and change.snapshot
    assert change.row == {
        "invoice_id": "INV-SNAP", "customer_id": "C-1", "amount": "1234.50", "currency": "CNY",
        "issued_on": "2024-01-31", "due_date": "2024-03-01", "paid_at": None, "status": "open",
        "updated_at": "2026-11-30T15:12:34.025138",
    }
    assert change.has_schema


def test_with_the_recommended_settings_every_column_reads_as_in_an_export_file():
    (created, _, _) = _changes(RECOMMENDED, "INV-2")
    # numeric(14,2) as its exact text; date as ISO date; timestamp without time
    # zone as ISO local time to the microsecond; timestamptz as Debezium's UTC text.
    assert created.row["amount"] == "1000000.05"
    assert created.row["issued_on"] == "2024-02-01"
    assert created.row["updated_at"] == "2026-11-30T15:13:13.299271"
    shipment = _changes(RECOMMENDED, "S-1")[0]
    assert shipment.row["promised_at"] == "2024-02-01T02:00:00.000000Z"
    assert shipment.row["weight_kg"] == "12.345"
    assert shipment.row["updated_at"] == "2026-11-30T15:12:34.026000"  # timestamp(3): milliseconds


def test_precise_decimals_and_millisecond_timestamps_decode_to_the_same_text():
    """decimal.handling.mode=precise sends base64 bytes with the scale in the schema (and a
    {scale, value} struct for numeric without scale); time.precision.mode=connect sends milliseconds."""
    assert _envelope(PRECISE, "INV-2", "c")["payload"]["after"]["amount"] == "BfXhBQ=="
    created = _changes(PRECISE, "INV-2")[0]
    assert created.row["amount"] == "1000000.05"
    assert created.row["due_date"] == "2024-03-02"
    assert created.row["updated_at"] == "2026-11-30T15:13:13.299000"
    weights = [change.row["weight_kg"] for change in _changes(PRECISE, "S-1")[:2]]
    assert weights == ["12.345", "-0.5"]


def test_without_an_embedded_schema_text_columns_match_and_dates_stay_day_counts():
    with_schema = _changes(RECOMMENDED, "INV-2")[0]
    without = _changes(SCHEMALESS, "INV-2")[0]
    assert not without.has_schema
    assert (without.op, without.table, without.key, without.source_time) == \
        (with_schema.op, with_schema.table, with_schema.key, with_schema.source_time)
    for column in ("invoice_id", "customer_id", "amount", "currency", "status"):
        assert without.row[column] == with_schema.row[column]
    # Nothing in the record says these are dates and microseconds: they come through as sent.
    assert without.row["due_date"] == 19784
    assert without.row["updated_at"] == 1796051593299271


def test_a_delete_that_carried_only_the_key_gives_the_key_alone_never_a_1970_placeholder():
    """shipments has the default replica identity: Debezium fills its NOT NULL columns with ""
    and 1970-01-01, which must not reach a mapping as data."""
    assert _envelope(RECOMMENDED, "S-1", "d")["payload"]["before"]["promised_at"] == "1970-01-01T00:00:00Z"
    for capture in (RECOMMENDED, PRECISE, SCHEMALESS):
        deleted, tombstone = _changes(capture, "S-1")[-2:]
        assert deleted.op == "delete" and tombstone is None
        assert deleted.row == {"shipment_id": "S-1"}
        assert not deleted.complete


def test_a_tombstone_is_not_a_change():
    assert decode_change(None, b'{"invoice_id":"INV-1"}') is None
    assert decode_change(b"", b'{"invoice_id":"INV-1"}') is None
    assert decode_change(b'{"schema":null,"payload":null}', None) is None


def _created(**changes) -> bytes:
    envelope = _envelope(SCHEMALESS, "INV-2", "c")
    envelope.update(changes)
    return json.dumps(envelope).encode()


@pytest.mark.parametrize(("value", "reason"), [
    (b"{not json", "value: not JSON (at line 1, column 2)"),
    (b"[1, 2]", "value: a change event is a JSON object, not an array"),
    (b'{"invoice_id": "INV-2", "amount": "5.00"}',
     'value: no "op" field: not a Debezium change envelope (was the record flattened, '
     "e.g. by the ExtractNewRecordState transform?)"),
    (_created(op="t"), "value: op 't' is a truncate, which carries no row to map"),
    (_created(op="x"), "value: unknown op 'x' (expected one of c, u, d, r)"),
    (_created(source=None), 'value: no "source" block'),
    (_created(source={"schema": "public", "table": "invoices", "ts_ms": "yesterday"}),
     "value: source.ts_ms is a string, not milliseconds since 1970"),
    (_created(source={"ts_ms": 1}), "value: source.table and source.schema (or source.db) are needed to know the table"),
    (_created(after=None), "value: after is null: a create needs the new row (public.invoices)"),
    (_created(op="d", before=None), "value: before is null: a delete needs the old row (public.invoices)"),
])
def test_a_record_that_is_not_a_change_event_is_refused_with_its_reason(value, reason):
    with pytest.raises(ChangeError) as raised:
        decode_change(value, None)
    assert raised.value.reason == reason


def test_a_value_that_does_not_fit_its_declared_type_names_the_column():
    envelope = _envelope(PRECISE, "INV-2", "c")
    envelope["payload"]["after"]["amount"] = "not base64!"
    with pytest.raises(ChangeError, match=r"^after\.amount: 'not base64!' is not a valid "
                                          r"org\.apache\.kafka\.connect\.data\.Decimal"):
        decode_change(json.dumps(envelope).encode(), None)
    envelope = _envelope(RECOMMENDED, "INV-2", "c")
    envelope["payload"]["after"]["due_date"] = "2024-03-02"
    with pytest.raises(ChangeError, match=r"^after\.due_date: '2024-03-02' is not a valid io\.debezium\.time\.Date"):
        decode_change(json.dumps(envelope).encode(), None)


def test_a_negative_precise_decimal_keeps_its_sign_and_scale():
    envelope = _envelope(PRECISE, "INV-2", "c")
    envelope["payload"]["after"]["amount"] = base64.b64encode((-12345).to_bytes(2, "big", signed=True)).decode()
    assert decode_change(json.dumps(envelope).encode(), None).row["amount"] == "-123.45"


# --- The worker's side: records of the CDC topics to rows, events and dead letters ---

def _cdc_records(capture: str) -> list[CdcRecord]:
    return [CdcRecord(topic=record["topic"], partition=0, offset=offset, key=_bytes(record["key"]),
                      value=_bytes(record["value"]))
            for offset, record in enumerate(_records(capture))]


def test_each_record_becomes_the_row_its_tables_mapping_reads_with_the_changes_own_values():
    rows = list(changes_to_rows(_cdc_records(RECOMMENDED), {"public.invoices", "public.shipments"}))
    assert len(rows) == 14 and not any(item.dead_letter for item in rows)
    tombstones = [item for item in rows if item.row is None]
    assert len(tombstones) == 3
    created = next(item for item in rows if item.row and item.row["invoice_id"] == "INV-1")
    assert (created.table, created.op) == ("public.invoices", "insert")
    assert created.row["__op"] == "c" and created.row["__table"] == "public.invoices"
    assert created.row["__source_ts_ms"] == 1796051565711 and created.row["__lsn"] == "26719864"
    assert created.row["due_date"] == "2024-03-02"
    assert [item.op for item in rows if item.row and item.row.get("invoice_id") == "INV-SNAP"] == ["read"]


def test_poison_and_changes_of_unmapped_tables_become_dead_letters_with_their_origin():
    good = _cdc_records(RECOMMENDED)[0]
    poison = CdcRecord(topic="erp.public.invoices", partition=2, offset=41, key=b'{"invoice_id":"X"}',
                       value=b'{"invoice_id": "X", "amount": "5"}')
    rows = list(changes_to_rows([poison, good], {"public.shipments"}))
    assert [item.row for item in rows] == [None, None]
    headers = [dict(item.dead_letter.headers) for item in rows]
    assert headers[0]["riskwatch.reason.kind"] == b"cdc_not_a_change"
    assert headers[0]["riskwatch.reason"].startswith(b'value: no "op" field')
    assert (headers[0]["riskwatch.source.topic"], headers[0]["riskwatch.source.partition"],
            headers[0]["riskwatch.source.offset"]) == (b"erp.public.invoices", b"2", b"41")
    assert rows[0].dead_letter.value == poison.value  # the original bytes, unchanged
    assert headers[1]["riskwatch.reason"] == b"no mapping for table public.invoices"
    assert headers[1]["riskwatch.reason.kind"] == b"cdc_no_mapping"


def _map_row(mapping, row, op):
    """Mappings as the mapping files would state them: an invoice is issued by a create, update or
    snapshot read and written off by a delete; a shipment is scheduled, and deleting one means its
    order was cancelled; customer_id is required."""
    if not row.get("customer_id"):
        return [], [("customer_id", "empty")]
    if mapping == "invoices":
        kind = "invoice.written_off" if op == "delete" else "invoice.issued"
        return [{"type": kind, "invoice_id": row["invoice_id"], "customer_id": row["customer_id"]}], []
    if op == "delete":
        return [{"type": "order.cancelled", "order_id": row["order_id"], "customer_id": row["customer_id"]}], []
    return [{"type": "delivery.scheduled", "shipment_id": row["shipment_id"], "customer_id": row["customer_id"]}], []


def test_mapped_changes_give_events_and_a_key_only_delete_says_why_it_cannot_be_mapped():
    mappings = {"public.invoices": "invoices", "public.shipments": "shipments"}
    results = list(map_changes(_cdc_records(RECOMMENDED), mappings, _map_row))
    events = [event for result in results for event in result.events]
    assert [event["type"] for event in events if event.get("invoice_id") == "INV-1"] == \
        ["invoice.issued", "invoice.issued", "invoice.issued", "invoice.written_off"]
    (refused,) = [result for result in results if result.dead_letter is not None]
    assert dict(refused.dead_letter.headers)["riskwatch.reason"] == (
        b"public.shipments delete carried only the primary key (the table's replica identity is not FULL): "
        b"customer_id: empty")
    assert dict(refused.dead_letter.headers)["riskwatch.reason.kind"] == b"cdc_unmappable"
