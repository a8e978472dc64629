"""The event contract (DOMAIN §3): every type accepted, every bad record a
rejection that names the field — never an exception, never silence."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from riskwatch import testing as t
from riskwatch.models import EVENT_MODELS, TIMESTAMP_FIELDS, Rejection, future_rejection, parse_event

DUE = "2026-03-01T00:00:00Z"


def every_event_type() -> list[dict]:
    return [
        t.order_placed("ORD-1", "C1", 120_000, customer_tier="A", region="east", promised_delivery_at=DUE),
        t.order_cancelled("ORD-1", "C1", reason="budget cut"),
        t.delivery_scheduled("SHP-1", "C1", promised_at=DUE, order_id="ORD-1"),
        t.eta_updated("SHP-1", "C1", eta="2026-03-04T00:00:00Z"),
        t.delivered("SHP-1", "C1", delivered_at="2026-03-02T00:00:00Z"),
        t.invoice_issued("INV-1", "C1", "250000.00", due_at=DUE),
        t.payment_received("INV-1", "C1", "250000.00"),
        t.invoice_written_off("INV-1", "C1"),
        t.price_observed("Apex", "SKU-1", "899.00", our_price="999.00"),
        t.customer_profile("C1", "A", region="east", credit_limit=20_000_000, segment="retail", sales_rep="rep-01"),
    ]


def test_the_builders_cover_every_event_type_of_the_contract():
    assert {event["type"] for event in every_event_type()} == set(EVENT_MODELS)


@pytest.mark.parametrize("event", every_event_type(), ids=lambda e: e["type"])
def test_every_event_type_is_accepted(event):
    parsed = parse_event(json.dumps(event).encode())
    assert not isinstance(parsed, Rejection), parsed
    assert parsed.type == event["type"]
    assert parsed.event_id == event["event_id"]
    assert parsed.occurred_at.tzinfo is not None


def test_bytes_str_bytearray_and_memoryview_are_the_same_record():
    raw = json.dumps(t.payment_received("INV-1", "C1", 10, event_id="e-1"))
    results = [parse_event(x) for x in (raw, raw.encode(), bytearray(raw.encode()), memoryview(raw.encode()))]
    assert all(r == results[0] for r in results)
    assert not isinstance(results[0], Rejection)


def _invoice(**changes) -> bytes:
    event = t.invoice_issued("INV-1", "C1", "100.00", due_at=DUE, event_id="e-1")
    for key, value in changes.items():
        if value is ...:
            del event[key]
        else:
            event[key] = value
    return json.dumps(event).encode()


@pytest.mark.parametrize(
    "raw, kind, reason",
    [
        pytest.param(b"not json", "not_json", "not valid JSON", id="non-JSON"),
        pytest.param(b"", "not_json", "not valid JSON", id="empty line"),
        pytest.param(b'{"event_id": "e-1", "type": "invoice.iss', "not_json", "not valid JSON", id="truncated"),
        pytest.param(b"[1, 2]", "not_object", "record must be a JSON object", id="array"),
        pytest.param(b'"invoice.issued"', "not_object", "record must be a JSON object", id="string"),
        pytest.param(b"42", "not_object", "record must be a JSON object", id="number"),
        pytest.param(_invoice(type="order.updated"), "unknown_type", "type: unknown event type 'order.updated'",
                     id="unknown type"),
        pytest.param(_invoice(type=...), "missing_field", "type: required", id="missing type"),
        pytest.param(_invoice(invoice_id=...), "missing_field", "invoice_id: required", id="missing invoice_id"),
        pytest.param(_invoice(due_at=...), "missing_field", "due_at: required", id="missing due_at"),
        pytest.param(_invoice(event_id=...), "missing_field", "event_id: required", id="missing event_id"),
        pytest.param(_invoice(occurred_at=...), "missing_field", "occurred_at: required", id="missing occurred_at"),
        pytest.param(_invoice(amount="-1"), "invalid_field", "amount: must be >= 0", id="negative amount string"),
        pytest.param(_invoice(amount=-0.01), "invalid_field", "amount: must be >= 0", id="negative amount number"),
        pytest.param(_invoice(occurred_at="2026-02-01T09:00:00"), "invalid_field",
                     'occurred_at: must be an RFC 3339 timestamp with a date, a time and an offset '
                     '(got "2026-02-01T09:00:00")', id="naive occurred_at"),
        pytest.param(_invoice(due_at="2026-03-01T00:00:00"), "invalid_field",
                     'due_at: must be an RFC 3339 timestamp with a date, a time and an offset '
                     '(got "2026-03-01T00:00:00")', id="naive due_at"),
        pytest.param(_invoice(due_at="2026-02-30T00:00:00Z"), "invalid_field",
                     "due_at: must be a valid RFC 3339 timestamp: day value is outside expected range",
                     id="February 30"),
        pytest.param(_invoice(due_at="0001-01-01T00:00:00Z"), "invalid_field",
                     'due_at: must be a year from 1900 to 9998 (got "0001-01-01T00:00:00Z")', id="year 1"),
        pytest.param(_invoice(occurred_at="9999-12-31T23:59:59-23:59"), "invalid_field",
                     "occurred_at: must be a year from 1900 to 9998", id="year 9999"),
        pytest.param(_invoice(invoice_id="I" * 129), "invalid_field",
                     "invoice_id: must be at most 128 characters (got 129)", id="id of 129 characters"),
        pytest.param(_invoice(amount="NaN"), "invalid_field", "amount: must be a finite number or decimal string",
                     id="NaN string"),
        pytest.param(_invoice(amount="Infinity"), "invalid_field", "amount: must be a finite number or decimal string",
                     id="inf string"),
        pytest.param(_invoice(amount="lots"), "invalid_field", "amount: must be a finite number or decimal string",
                     id="amount not a number"),
    ],
)
def test_a_bad_record_is_a_rejection_naming_the_field(raw, kind, reason):
    rejection = parse_event(raw)
    assert isinstance(rejection, Rejection)
    assert rejection.kind == kind
    assert rejection.reason.startswith(reason), rejection.reason


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_json_numbers_are_rejected_naming_amount(literal):
    raw = _invoice().replace(b'"amount": "100.00"', b'"amount": ' + literal.encode())
    assert literal.encode() in raw
    rejection = parse_event(raw)
    assert isinstance(rejection, Rejection)
    assert rejection.reason.startswith("amount: ")


@pytest.mark.parametrize("field", ["price", "our_price"])
def test_a_negative_competitor_price_is_rejected(field):
    event = t.price_observed("Apex", "SKU-1", "10.00", our_price="12.00")
    event[field] = "-5"
    rejection = parse_event(json.dumps(event))
    assert isinstance(rejection, Rejection)
    assert rejection.reason == f"{field}: must be >= 0"


@pytest.mark.parametrize("amount, expected", [
    ("250000.00", Decimal("250000.00")),
    ("0.10", Decimal("0.10")),
    (0.1, Decimal("0.1")),
    (250000, Decimal("250000")),
    ("0", Decimal("0")),
])
def test_money_is_a_decimal_from_a_number_or_a_decimal_string(amount, expected):
    parsed = parse_event(_invoice(amount=amount))
    assert not isinstance(parsed, Rejection), parsed
    assert parsed.amount == expected
    assert isinstance(parsed.amount, Decimal)


def test_currency_defaults_to_cny_and_must_be_iso_4217():
    event = json.loads(_invoice())
    del event["currency"]
    assert parse_event(json.dumps(event)).currency == "CNY"
    event["currency"] = "yuan"
    rejection = parse_event(json.dumps(event))
    assert isinstance(rejection, Rejection) and rejection.reason.startswith("currency: ")


def test_unknown_extra_fields_are_ignored():
    event = json.loads(_invoice())
    event.update({"source_system": "SAP", "nested": {"a": [1, 2, {"b": None}]}, "amount_cents": -5})
    parsed = parse_event(json.dumps(event))
    assert not isinstance(parsed, Rejection), parsed
    assert parsed.amount == Decimal("100.00")
    assert not hasattr(parsed, "source_system")


@pytest.mark.parametrize("text", [
    "2026-02-01T09:00:00Z", "2026-02-01t09:00:00z", "2026-02-01 09:00:00Z", "2026-02-01T17:00:00+08:00",
    "2026-02-01T04:00:00.000-05:00", "2026-02-01T09:00:00.000000001Z", "2026-02-01T09:00:00-00:00",
])
def test_rfc_3339_spellings_of_one_instant_are_accepted(text):
    """RFC 3339 §5.6 with its note: lower-case t and z and a space separator are allowed."""
    parsed = parse_event(_invoice(occurred_at=text))
    assert not isinstance(parsed, Rejection), parsed
    assert parsed.occurred_at.astimezone(timezone.utc).replace(microsecond=0).isoformat() == "2026-02-01T09:00:00+00:00"


def test_the_timestamp_field_list_names_every_field_that_holds_an_instant():
    holding_instants = {
        name for event in every_event_type() for name, value in parse_event(json.dumps(event))
        if isinstance(value, datetime)
    }
    assert holding_instants == TIMESTAMP_FIELDS


@pytest.mark.parametrize("field, limit", [
    ("event_id", 128), ("order_id", 128), ("shipment_id", 128), ("invoice_id", 128), ("customer_id", 128),
    ("sku", 128), ("competitor", 128), ("region", 1000), ("sales_rep", 1000), ("reason", 1000), ("segment", 1000),
])
def test_text_fields_are_bounded_and_a_longer_value_is_rejected_naming_the_field(field, limit):
    """DOMAIN §3 "Sizes": ids at most 128 characters, other text at most 1,000."""
    event = next(e for e in every_event_type() if field in e)
    assert not isinstance(parse_event(json.dumps({**event, field: "x" * limit})), Rejection)
    rejection = parse_event(json.dumps({**event, field: "x" * (limit + 1)}))
    assert isinstance(rejection, Rejection)
    assert rejection.reason == f"{field}: must be at most {limit} characters (got {limit + 1})"


def test_timestamps_keep_their_offset_as_the_same_instant():
    parsed = parse_event(_invoice(occurred_at="2026-02-01T17:00:00+08:00"))
    assert parsed.occurred_at.astimezone(timezone.utc).isoformat() == "2026-02-01T09:00:00+00:00"


def test_an_unknown_customer_class_is_rejected_naming_the_field():
    event = t.customer_profile("C1", "A")
    event["tier"] = "E"
    rejection = parse_event(json.dumps(event))
    assert isinstance(rejection, Rejection)
    assert rejection.reason.startswith("tier: must be one of")


def test_an_empty_identifier_is_rejected():
    rejection = parse_event(_invoice(invoice_id=""))
    assert isinstance(rejection, Rejection)
    assert rejection.reason == "invoice_id: must not be empty"


def test_an_oversized_record_is_rejected_not_parsed():
    event = json.loads(_invoice())
    event["padding"] = "x" * 1_100_000
    rejection = parse_event(json.dumps(event))
    assert isinstance(rejection, Rejection)
    assert rejection.kind == "too_large"


# --- events from the future (DOMAIN §3 "Timestamps") -----------------------------------

WALL_CLOCK = datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc).timestamp()


def _occurring(at: str):
    return parse_event(json.dumps(t.payment_received("INV-1", "C1", 10, at=at)))


def test_an_event_up_to_the_tolerance_ahead_of_the_wall_clock_is_accepted():
    assert future_rejection(_occurring("2026-11-30T10:00:00Z"), WALL_CLOCK, 3600) is None
    assert future_rejection(_occurring("2026-11-30T09:00:00Z"), WALL_CLOCK, 0) is None


def test_an_event_beyond_the_tolerance_is_rejected_as_in_the_future_saying_by_how_much():
    rejection = future_rejection(_occurring("2026-11-30T12:30:00Z"), WALL_CLOCK, 3600)
    assert rejection == Rejection(
        "future", "occurred_at: 2026-11-30T12:30:00Z is 3.5 h in the future "
                  "(wall clock 2026-11-30T09:00:00Z, tolerance 1.0 h)")
    assert future_rejection(_occurring("2026-11-30T10:00:01Z"), WALL_CLOCK, 3600).kind == "future"


def test_a_mistyped_year_is_reported_in_years():
    rejection = future_rejection(_occurring("2042-11-30T09:00:00+08:00"), WALL_CLOCK, 3600)
    assert rejection.reason.startswith("occurred_at: 2042-11-30T01:00:00Z is 16.0 years in the future")


def test_a_negative_tolerance_turns_the_check_off_for_a_forecast_replayed_on_purpose():
    assert future_rejection(_occurring("2042-11-30T09:00:00Z"), WALL_CLOCK, -1) is None
