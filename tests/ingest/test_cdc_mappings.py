"""Change mappings: mapping files whose source is a database table followed
by Debezium (`source: {format: debezium, table: ...}`), the shipped ones for
the ERP tables of tests/cdc/erp_schema.sql (mappings/erp-postgres/), and the
worker's set of them (riskwatch.ingest.cdc.load_cdc), every refusal word for
word. Broken single files are cases of tests/data/mappings/bad/ (debezium_*)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from riskwatch.errors import MappingError
from riskwatch.ingest import map_row
from riskwatch.ingest.cdc import load_cdc
from riskwatch.ingest.debezium import CdcRecord, map_changes
from riskwatch.metrics import CDC_REJECTION_REASONS
from riskwatch.models import Rejection, parse_event
from riskwatch.settings import load_settings
from riskwatch.sinks.kafka import describe_headers

REPO = Path(__file__).resolve().parents[2]
ERP = REPO / "mappings" / "erp-postgres"
DEBEZIUM = REPO / "tests" / "data" / "debezium"
ERP_TABLES = ("customers", "invoices", "orders", "payments", "shipments")
COMMIT_MS = 1_711_935_000_000  # 2024-04-01T01:30:00Z, the changes' commit time


@pytest.mark.parametrize("table, types", [
    ("customers", "customer.profile"),
    ("invoices", "invoice.issued, invoice.written_off"),
    ("orders", "order.placed, order.cancelled"),
    ("payments", "payment.received"),
    ("shipments", "delivery.scheduled, delivery.eta_updated, delivery.delivered"),
])
def test_each_shipped_erp_mapping_passes_the_check(riskwatch, table, types):
    done = riskwatch("mapping", "check", f"mappings/erp-postgres/{table}.yaml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout == (f"mappings/erp-postgres/{table}.yaml: ok (erp-{table}: debezium changes of "
                           f"public.{table} give {types})\n")


def test_a_change_mapping_is_checked_against_change_events_captured_from_the_real_connector(riskwatch, tmp_path):
    # The invoices records of the captured stream, one value per line as a console consumer prints them.
    sample = tmp_path / "invoices.jsonl"
    records = [json.loads(line) for line in
               (DEBEZIUM / "schema-string-adaptive_time_microseconds.jsonl").read_text(encoding="utf-8").splitlines()]
    sample.write_text("".join(f"{r['value'] or 'null'}\n" for r in records), encoding="utf-8")
    done = riskwatch("mapping", "check", "mappings/erp-postgres/invoices.yaml", "--sample", sample)
    assert done.returncode == 0, done.stderr
    shipments = [number for number, r in enumerate(records, start=1) if r["topic"].endswith(".shipments") and r["value"]]
    assert done.stdout.splitlines()[1:] == [
        *(f"{sample}: row {n}: a change of public.shipments, not of public.invoices" for n in shipments),
        f"{sample}: rows: 11 read, 7 mapped, 0 gave no event, 4 not mapped; 7 events",
    ]
    # import reads the same lines: the created, moved, paid and deleted INV-1 among them.
    imported = riskwatch("import", "--mapping", "mappings/erp-postgres/invoices.yaml", sample)
    events = [json.loads(line) for line in imported.stdout.splitlines()]
    assert [(e["type"], e.get("due_at")) for e in events if e["invoice_id"] == "INV-1"] == [
        ("invoice.issued", "2024-03-02T23:59:59+08:00"), ("invoice.issued", "2024-03-15T23:59:59+08:00"),
        ("invoice.issued", "2024-03-15T23:59:59+08:00"), ("invoice.written_off", None)]


# --- the ERP's changes through the shipped mappings -------------------------------------------

def _record(table: str, op: str, row: dict, *, offset: int = 7, key: dict | None = None) -> CdcRecord:
    """A change record as the JSON converter writes it without schema; the row's values as the
    schema-decoded form gives them (dates and timestamps as text, numerics as decimal text)."""
    envelope = {"before": row if op == "d" else None, "after": None if op == "d" else row,
                "source": {"connector": "postgresql", "db": "erp", "schema": "public", "table": table,
                           "ts_ms": COMMIT_MS, "lsn": 26721232},
                "op": op, "ts_ms": COMMIT_MS + 20}
    key = key if key is not None else {next(iter(row)): next(iter(row.values()))}
    return CdcRecord(f"erp.public.{table}", 0, offset, json.dumps(key).encode(),
                     json.dumps(envelope, ensure_ascii=False).encode())


@pytest.fixture(scope="module")
def erp_mappings():
    return load_cdc([ERP], "erp").mappings


def _mapped(erp_mappings, *records: CdcRecord) -> list:
    results = list(map_changes(records, erp_mappings, map_row))
    for result in results:
        for event in result.events:
            assert not isinstance(parse_event(json.dumps(event).encode()), Rejection), event
    return results


def test_a_customer_row_is_its_profile_dated_by_its_updated_at(erp_mappings):
    [result] = _mapped(erp_mappings, _record("customers", "r", {
        "customer_id": "C-1", "name": "华南电子", "tier": "B", "region": None, "sales_rep": "Li Na",
        "credit_limit": "0.00", "updated_at": "2024-03-30T08:00:00.123456"}))
    [event] = result.events
    assert {k: v for k, v in event.items() if k != "event_id"} == {
        "type": "customer.profile", "customer_id": "C-1", "tier": "B", "region": "unassigned", "sales_rep": "Li Na",
        "credit_limit": "0.00", "occurred_at": "2024-03-30T08:00:00.123456+00:00"}


def test_a_cancelled_order_is_placed_then_cancelled_and_a_deleted_one_cancelled_at_the_delete(erp_mappings):
    row = {"order_id": "O-1", "customer_id": "C-1", "amount": "80000.00", "currency": "CNY", "status": "cancelled",
           "cancel_reason": "客户取消", "ordered_at": "2024-03-01T01:00:00.000000Z",
           "updated_at": "2024-03-30T08:00:00"}
    updated, deleted = _mapped(erp_mappings, _record("orders", "u", row), _record("orders", "d", row, offset=8))
    placed, cancelled = updated.events
    assert (placed["type"], placed["amount"], placed["occurred_at"]) == \
        ("order.placed", "80000.00", "2024-03-01T01:00:00+00:00")
    assert (cancelled["type"], cancelled["reason"], cancelled["occurred_at"]) == \
        ("order.cancelled", "客户取消", "2024-03-30T08:00:00+00:00")
    [gone] = deleted.events
    # A delete is dated by its commit, not by the old row's last change.
    assert (gone["type"], gone["reason"], gone["occurred_at"]) == \
        ("order.cancelled", "deleted in the ERP", "2024-04-01T01:30:00+00:00")


def test_an_invoice_revision_a_write_off_and_a_delete(erp_mappings):
    row = {"invoice_id": "I-1", "customer_id": "C-1", "amount": "50000.00", "currency": "CNY",
           "issued_on": "2024-02-01", "due_date": "2024-03-02", "status": "open", "updated_at": "2024-03-30T08:00:00"}
    issued, written_off, deleted = _mapped(erp_mappings, _record("invoices", "c", row),
                                           _record("invoices", "u", {**row, "status": "written_off"}, offset=8),
                                           _record("invoices", "d", row, offset=9))
    [event] = issued.events
    assert (event["type"], event["due_at"], event["occurred_at"]) == \
        ("invoice.issued", "2024-03-02T23:59:59+08:00", "2024-03-30T08:00:00+00:00")
    assert [e["type"] for e in written_off.events] == ["invoice.written_off"]  # not issued again
    assert [(e["type"], e["occurred_at"]) for e in deleted.events] == \
        [("invoice.written_off", "2024-04-01T01:30:00+00:00")]


def test_a_payment_keeps_its_id_and_a_deleted_shipment_means_nothing(erp_mappings):
    payment, shipment_gone, tombstone = _mapped(
        erp_mappings,
        _record("payments", "c", {"payment_id": "P-1", "invoice_id": "I-1", "customer_id": "C-1", "amount": "20000.00",
                                  "received_at": "2024-03-31T07:00:00.000000Z", "updated_at": "2024-03-31T07:01:00"}),
        # The shipments table keeps the default replica identity: the delete carries the key alone.
        _record("shipments", "d", {"shipment_id": "S-1", "order_id": "", "customer_id": "",
                                   "promised_at": "1970-01-01T00:00:00Z", "eta": None, "delivered_at": None,
                                   "updated_at": "1970-01-01T00:00:00Z"}, key={"shipment_id": "S-1"}),
        CdcRecord("erp.public.shipments", 0, 9, b'{"shipment_id":"S-1"}', None))
    [received] = payment.events
    assert (received["event_id"], received["amount"], received["occurred_at"]) == \
        ("erp-payment-P-1", "20000.00", "2024-03-31T07:00:00+00:00")
    assert (shipment_gone.events, shipment_gone.dead_letter, shipment_gone.tombstone) == ((), None, False)
    assert (tombstone.events, tombstone.dead_letter, tombstone.tombstone) == ((), None, True)


def test_a_row_the_mapping_refuses_is_a_dead_letter_naming_the_table_the_operation_and_the_reason(erp_mappings):
    poison = _record("invoices", "c", {
        "invoice_id": "I-9", "customer_id": "C-1", "amount": "-5.00", "currency": "CNY", "issued_on": "2024-03-01",
        "due_date": "2024-03-31", "status": "open", "updated_at": "2024-03-30T08:00:00"}, offset=41)
    quote = _record("quotes", "c", {"quote_id": "Q-1"}, offset=42)
    refused, unmapped = _mapped(erp_mappings, poison, quote)
    assert refused.events == () and refused.dead_letter.value == poison.value  # the original bytes, unchanged
    assert describe_headers(refused.dead_letter.headers) == {
        "riskwatch.reason": "public.invoices insert: amount: '-5.00' is negative; amounts must be >= 0 "
                            "(amount of invoice.issued)",
        "riskwatch.reason.kind": "cdc_unmappable",
        "riskwatch.source.topic": "erp.public.invoices",
        "riskwatch.source.partition": "0",
        "riskwatch.source.offset": "41",
    }
    assert describe_headers(unmapped.dead_letter.headers)["riskwatch.reason"] == "no mapping for table public.quotes"
    assert {describe_headers(r.dead_letter.headers)["riskwatch.reason.kind"] for r in (refused, unmapped)} \
        <= set(CDC_REJECTION_REASONS)


# --- the worker's set of change mappings -----------------------------------------------------

def _write(directory: Path, name: str, table: str, topic: str | None = None, fmt: str = "debezium") -> Path:
    source = {"format": fmt, "table": table} if fmt == "debezium" else {"format": fmt}
    if topic:
        source["topic"] = topic
    path = directory / f"{name}.yaml"
    path.write_text(json.dumps({
        "name": name, "source": source, "timezone": "UTC", "key": ["invoice_id"],
        "events": [{"type": "invoice.written_off", "ops": ["delete"] if fmt == "debezium" else ["row"],
                    "fields": {"invoice_id": "invoice_id", "customer_id": "customer_id",
                               "occurred_at": "__source_ts_ms"}}]}), encoding="utf-8")
    return path


def test_topics_come_from_the_connectors_prefix_or_the_mapping(tmp_path):
    _write(tmp_path, "a", "public.invoices")
    _write(tmp_path, "b", "sales.invoices", topic="erp-routed.invoices")
    plan = load_cdc([tmp_path], "erp")
    assert plan.topics == ["erp-routed.invoices", "erp.public.invoices"]
    assert sorted(plan.mappings) == ["public.invoices", "sales.invoices"]
    assert plan.describe() == "public.invoices (erp.public.invoices), sales.invoices (erp-routed.invoices)"
    assert load_cdc([ERP], "erp").topics == [f"erp.public.{table}" for table in ERP_TABLES]


def test_a_set_of_change_mappings_is_refused_with_every_problem_word_for_word(tmp_path):
    first = _write(tmp_path, "a", "public.invoices")
    again = _write(tmp_path, "b", "public.invoices")
    unprefixed = _write(tmp_path, "c", "public.orders")
    own = _write(tmp_path, "d", "public.payments", topic="riskwatch.payments")
    export = _write(tmp_path, "e", "public.x", fmt="csv")
    empty = tmp_path / "nothing-here"
    empty.mkdir()
    with pytest.raises(MappingError) as refused:
        load_cdc([first, again, unprefixed, own, export, empty, tmp_path / "missing.yaml"], None,
                 reserved=["riskwatch.payments"])
    assert refused.value.problems == [
        f"{empty}: no mapping files (*.yaml, *.yml) in the directory",
        f"{tmp_path / 'missing.yaml'}: cannot read: No such file or directory",
        f"{first}: source.topic: not given, and no CDC topic prefix (the connector's topic.prefix: "
        f"--cdc-topic-prefix, RISKWATCH_CDC_TOPIC_PREFIX) to derive it from",
        f"{again}: source.topic: not given, and no CDC topic prefix (the connector's topic.prefix: "
        f"--cdc-topic-prefix, RISKWATCH_CDC_TOPIC_PREFIX) to derive it from",
        f"{unprefixed}: source.topic: not given, and no CDC topic prefix (the connector's topic.prefix: "
        f"--cdc-topic-prefix, RISKWATCH_CDC_TOPIC_PREFIX) to derive it from",
        f"{own}: source.topic: riskwatch.payments is one of riskwatch's own topics, not a change topic",
        f"{export}: source.format: csv is a file; a change mapping reads a table's changes "
        f"(format: debezium, table: schema.table)",
    ]
    with pytest.raises(MappingError) as twice:
        load_cdc([first, again], "erp")
    assert twice.value.problems == [
        f"{again}: source.table: public.invoices is mapped by {first} already (one mapping per table: put all "
        f"of the table's events in one file)"]


def test_the_worker_refuses_bad_change_mappings_before_it_contacts_a_broker(riskwatch):
    done = riskwatch("worker", "--broker", "127.0.0.1:1", "--cdc-mapping", "mappings/receivables.yaml",
                     "--cdc-mapping", "mappings/erp-postgres/orders.yaml", timeout=30)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "mappings/receivables.yaml: source.format: csv is a file; a change mapping reads a table's changes "
        "(format: debezium, table: schema.table)",
        "mappings/erp-postgres/orders.yaml: source.topic: not given, and no CDC topic prefix (the connector's "
        "topic.prefix: --cdc-topic-prefix, RISKWATCH_CDC_TOPIC_PREFIX) to derive it from",
        "riskwatch worker: 2 problem(s) in the change mappings; not started",
    ]


def test_change_mappings_from_the_environment():
    settings = load_settings({"RISKWATCH_CDC_MAPPINGS": "mappings/erp-postgres/orders.yaml, mappings/erp-postgres ,",
                              "RISKWATCH_CDC_TOPIC_PREFIX": "erp"})
    assert settings.cdc_mappings == (Path("mappings/erp-postgres/orders.yaml"), Path("mappings/erp-postgres"))
    assert settings.cdc_topic_prefix == "erp"
    assert load_settings({}).cdc_mappings == ()
