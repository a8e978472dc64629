"""`map_row`: one row (a dict, as a database change event's `after` gives it)
to its events or its problems, independent of files."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from riskwatch.errors import MappingError
from riskwatch.ingest import load_mapping, map_row
from riskwatch.models import Rejection, parse_event

ORDERS_TABLE = """
name: erp-orders
source: {format: jsonl}
timezone: Asia/Shanghai
key: [id]
columns:
  created_ms: {format: epoch_millis}
  promised_day: {format: epoch_days, time: "23:59:59"}
  delivered_at: {format: iso}
  ts_ms: {format: epoch_millis}
events:
  - type: order.placed
    fields:
      order_id: {template: "SO-{id}"}
      customer_id: {column: customer, transform: [trim, upper]}
      amount: total
      currency: {column: currency, default: CNY}
      customer_tier: {column: grade, transform: [{map: {vip: A, big: B, normal: C, small: D}}]}
      promised_delivery_at: promised_day
      occurred_at: created_ms
  - type: order.cancelled
    ops: [update, read, row]
    when: {column: status, equals: CANCELLED}
    fields:
      order_id: {template: "SO-{id}"}
      customer_id: {column: customer, transform: [trim, upper]}
      occurred_at: ts_ms
  - type: order.cancelled
    ops: delete
    fields:
      order_id: {template: "SO-{id}"}
      customer_id: {column: customer, transform: [trim, upper]}
      reason: {value: deleted in the ERP}
      occurred_at: ts_ms
  - type: delivery.delivered
    when: [{column: delivered_at, not_empty: true}, {column: status, not_one_of: [CANCELLED, VOID]}]
    fields:
      shipment_id: {template: "shp-{id}"}
      customer_id: {column: customer, transform: [trim, upper]}
      delivered_at: delivered_at
      occurred_at: delivered_at
"""

ROW = {"id": 4711, "customer": " c-17 ", "total": 1250.5, "currency": None, "grade": "vip",
       "created_ms": 1706671800000, "promised_day": 19760, "delivered_at": None, "status": "OPEN",
       "ts_ms": 1706675400000}


@pytest.fixture(scope="module")
def mapping(tmp_path_factory):
    path = tmp_path_factory.mktemp("m") / "orders.yaml"
    path.write_text(ORDERS_TABLE, encoding="utf-8")
    return load_mapping(path)


def test_a_database_row_with_typed_values_gives_its_events(mapping):
    events, problems = map_row(mapping, ROW, "insert")
    assert problems == []
    [placed] = events
    assert {k: v for k, v in placed.items() if k != "event_id"} == {
        "type": "order.placed", "order_id": "SO-4711", "customer_id": "C-17", "amount": "1250.5", "currency": "CNY",
        "customer_tier": "A",
        # 19760 days after 1970-01-01 is 2024-02-07; the end of that day in Shanghai.
        "promised_delivery_at": "2024-02-07T23:59:59+08:00",
        # 1706671800000 ms is 2024-01-31T03:30:00Z.
        "occurred_at": "2024-01-31T03:30:00+00:00",
    }
    assert placed["event_id"].startswith("erp-orders-") and len(placed["event_id"]) == len("erp-orders-") + 24
    assert not isinstance(parse_event(_json(placed)), Rejection)


def test_conditions_and_ops_choose_the_events(mapping):
    cancelled = {**ROW, "status": "CANCELLED", "delivered_at": "2024-02-05T10:00:00"}
    events, _ = map_row(mapping, cancelled, "update")
    assert [e["type"] for e in events] == ["order.placed", "order.cancelled"]   # not delivered: it was cancelled
    events, _ = map_row(mapping, cancelled, "insert")
    assert [e["type"] for e in events] == ["order.placed"]                     # the cancellation applies to updates
    events, _ = map_row(mapping, ROW, "delete")
    assert [(e["type"], e.get("reason")) for e in events] == [("order.cancelled", "deleted in the ERP")]
    delivered = {**ROW, "delivered_at": "2024-02-05T10:00:00"}
    events, _ = map_row(mapping, delivered, "read")
    assert events[-1]["delivered_at"] == "2024-02-05T10:00:00+08:00"            # no offset: the mapping's zone


def test_the_same_row_gives_the_same_ids_and_a_revised_row_new_ones(mapping):
    first, _ = map_row(mapping, ROW, "insert")
    again, _ = map_row(mapping, dict(ROW), "insert")
    revised, _ = map_row(mapping, {**ROW, "promised_day": 19765}, "update")
    assert first == again
    assert revised[0]["event_id"] != first[0]["event_id"]


def test_a_row_with_problems_gives_no_event_and_names_each_column(mapping):
    events, problems = map_row(mapping, {**ROW, "grade": "gold", "total": -3, "created_ms": "yesterday"}, "insert")
    assert events == []
    assert problems == [
        ("total", "-3 is negative; amounts must be >= 0 (amount of order.placed)"),
        ("grade", "'gold' is not one of the mapped words ('vip', 'big', 'normal', 'small') (customer_tier of order.placed)"),
        ("created_ms", "'yesterday' is not a date in format epoch_millis (occurred_at of order.placed)"),
    ]


def test_a_column_missing_from_the_row_and_an_empty_key_are_problems(mapping):
    row = dict(ROW)
    del row["customer"]
    assert map_row(mapping, row, "insert") == ([], [("customer", "not in the row")])
    events, problems = map_row(mapping, {**ROW, "id": None}, "insert")
    assert events == [] and problems == [("id", "empty, but the template of order_id of order.placed needs it")]


@pytest.mark.parametrize("column, value, problem", [
    # Read as a field: its text "[...]" would pass for an id.
    ("customer", ["C-17", "C-18"], "a JSON array, not a single value (customer_id of order.placed)"),
    ("total", {"amount": 1250.5}, "a JSON object, not a single value (amount of order.placed)"),
    # In a template, and in a condition.
    ("id", [4711], "a JSON array, not a single value (order_id of order.placed)"),
    ("status", ["OPEN"], "a JSON array, not a single value"),
])
def test_an_array_or_object_where_one_value_belongs_is_a_problem_of_the_row(mapping, column, value, problem):
    row = {**ROW, column: value, "delivered_at": "2024-02-05T10:00:00"}    # delivered: its conditions are read
    events, problems = map_row(mapping, row, "update")
    assert events == [] and problems[0] == (column, problem)      # then the same for each later event reading it


def test_a_required_field_that_is_empty_falls_back_to_its_default_or_is_a_problem(tmp_path):
    mapping = _mapping(tmp_path, [{"type": "invoice.issued", "fields": {
        "invoice_id": "no", "customer_id": "cust", "amount": "amount", "due_at": "due",
        "occurred_at": {"column": "modified", "default": {"column": "issued"}}}}])
    row = {"no": "INV-1", "cust": "C1", "amount": "10", "due": "2024-03-01", "modified": "", "issued": "2024-02-01"}
    [event], _ = map_row(mapping, row)
    assert event["occurred_at"] == "2024-02-01T00:00:00+08:00"
    [event], _ = map_row(mapping, {**row, "modified": "2024-02-20 17:45"})
    assert event["occurred_at"] == "2024-02-20T17:45:00+08:00"
    assert map_row(mapping, {**row, "due": "  "}) == ([], [("due", "empty, but due_at of invoice.issued is required")])


@pytest.mark.parametrize("cell, expected", [
    ("1.234,56", "1234.56"), ("1234,5", "1234.5"), ("0,00", "0.00"), (" 12 ", "12"), (7, "7"), (2.5, "2.5"),
])
def test_amounts_with_a_decimal_comma(tmp_path, cell, expected):
    mapping = _mapping(tmp_path, [{"type": "payment.received", "fields": {
        "invoice_id": "no", "customer_id": "cust", "amount": "paid", "occurred_at": "day"}}],
        source={"format": "csv", "decimal": ",", "thousands": "."})
    [event], problems = map_row(mapping, {"no": "I", "cust": "C", "paid": cell, "day": "2024-01-01"})
    assert event["amount"] == expected


@pytest.mark.parametrize("cell", ["1,234.56", "12a", "1.2.3,4", "1,1234567"])
def test_amounts_the_mapping_does_not_describe_are_refused(tmp_path, cell):
    mapping = _mapping(tmp_path, [{"type": "payment.received", "fields": {
        "invoice_id": "no", "customer_id": "cust", "amount": "paid", "occurred_at": "day"}}],
        source={"format": "csv", "decimal": ",", "thousands": "."})
    events, [(column, reason)] = map_row(mapping, {"no": "I", "cust": "C", "paid": cell, "day": "2024-01-01"})
    assert events == [] and column == "paid"
    assert ("has more digits than an amount may" if cell == "1,1234567" else "is not an amount") in reason


@pytest.mark.parametrize("formats, cell, expected", [
    (["%d/%m/%Y"], "31/01/2024", "2024-01-31T00:00:00+08:00"),
    (["%Y%m%d"], "20240131", "2024-01-31T00:00:00+08:00"),
    (["iso"], "2024-01-31T09:30:00Z", "2024-01-31T09:30:00+00:00"),
    (["iso"], "2024-01-31 09:30", "2024-01-31T09:30:00+08:00"),
    (["excel"], 45322, "2024-01-31T00:00:00+08:00"),
    (["excel"], "45322.75", "2024-01-31T18:00:00+08:00"),
    (["%d/%m/%Y", "excel"], "45322", "2024-01-31T00:00:00+08:00"),
    (["epoch_seconds"], 1706664600, "2024-01-31T01:30:00+00:00"),
])
def test_timestamp_formats(tmp_path, formats, cell, expected):
    mapping = _mapping(tmp_path, [{"type": "payment.received", "fields": {
        "invoice_id": "no", "customer_id": "cust", "amount": "paid", "occurred_at": "day"}}],
        columns={"day": {"format": formats}})
    [event], problems = map_row(mapping, {"no": "I", "cust": "C", "paid": "1", "day": cell})
    assert event["occurred_at"] == expected


def test_a_number_is_never_taken_for_a_date_unless_the_format_says_so(tmp_path):
    mapping = _mapping(tmp_path, [{"type": "payment.received", "fields": {
        "invoice_id": "no", "customer_id": "cust", "amount": "paid", "occurred_at": "day"}}],
        columns={"day": {"format": "%d/%m/%Y"}})
    assert map_row(mapping, {"no": "I", "cust": "C", "paid": "1", "day": 45322}) == ([], [(
        "day", "45322 is a number, not a date in format %d/%m/%Y (name excel or an epoch_* format to read numbers) "
               "(occurred_at of payment.received)")])


def test_a_mapping_is_refused_with_every_problem(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump({"name": "m", "source": {"format": "jsonl"}, "timezone": "UTC", "key": ["k"],
                                    "events": [{"type": "order.placed", "fields": {"order_id": "k"}}]}))
    with pytest.raises(MappingError) as refused:
        load_mapping(path)
    assert refused.value.problems == [   # in the contract's order of fields
        f"{path}: events[0].fields.occurred_at: required for order.placed",
        f"{path}: events[0].fields.customer_id: required for order.placed",
        f"{path}: events[0].fields.amount: required for order.placed",
    ]


def _mapping(tmp_path: Path, events: list, source: dict | None = None, columns: dict | None = None):
    path = tmp_path / "mapping.yaml"
    spec = {"name": "test", "source": source or {"format": "csv"}, "timezone": "Asia/Shanghai",
            "key": [next(iter(events[0]["fields"].values()))], "events": events}
    if columns:
        spec["columns"] = columns
    path.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    return load_mapping(path)


def _json(event: dict) -> bytes:
    import orjson

    return orjson.dumps(event)
