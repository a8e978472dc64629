"""The input event contract (DOMAIN.md §3) and its one parse entry point.

`parse_event(raw)` turns raw bytes into an `Event` or a `Rejection` naming the
field and the reason. It never raises: a bad record is data to report, not a
reason to stop. `future_rejection(event, now, tolerance)` is the contract's
one check that needs the wall clock; the caller reads the clock and passes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal, Union

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetPydanticSchema,
    TypeAdapter,
    ValidationError,
)
from pydantic_core import core_schema

from riskwatch.timeutil import FIRST_YEAR, LAST_YEAR, RFC3339, RFC3339_IN_RANGE, human_duration, iso

# DOMAIN §3 "Sizes": ids at most 128 characters, other text at most 1,000.
MAX_ID_CHARS = 128
MAX_TEXT_CHARS = 1000


def _timestamp_schema(_source: object, _handler: object) -> core_schema.CoreSchema:
    # In JSON the value must be text of the RFC 3339 shape before the datetime
    # parser sees it: that parser on its own reads a number, or a string of
    # digits such as "20240131" or "2024", as Unix time (an alert dated 1970).
    # Both steps run inside pydantic-core: parse_event takes about 1.15x its
    # time with AwareDatetime alone, a Python validator about 1.35x.
    rfc3339_text = core_schema.chain_schema([
        core_schema.str_schema(pattern=RFC3339_IN_RANGE.pattern, strict=True),
        core_schema.datetime_schema(tz_constraint="aware"),
    ])
    return core_schema.json_or_python_schema(
        json_schema=rfc3339_text,
        # A model built in Python may be given an aware datetime directly.
        python_schema=core_schema.union_schema([
            core_schema.datetime_schema(tz_constraint="aware", strict=True), rfc3339_text,
        ]),
    )


Identifier = Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS)]
Text = Annotated[str, Field(max_length=MAX_TEXT_CHARS)]
Timestamp = Annotated[datetime, GetPydanticSchema(_timestamp_schema)]
Money = Annotated[Decimal, Field(ge=0, allow_inf_nan=False, max_digits=24, decimal_places=6)]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]

# The yuan's everyday name in Chinese exports: ISO's shape, not ISO's code
# (CNY). Named in the refusals of an event or a sample row that carries it;
# never taken as CNY silently, and no other code is ever suggested as yuan
# (it may be a real currency the rules lack).
YUAN_CODES = frozenset({"RMB"})

CustomerClass = Literal["A", "B", "C", "D"]


class _Event(BaseModel):
    # Unknown extra fields are allowed by the contract and ignored.
    model_config = ConfigDict(extra="ignore", frozen=True)

    event_id: Identifier
    occurred_at: Timestamp


class OrderPlaced(_Event):
    type: Literal["order.placed"]
    order_id: Identifier
    customer_id: Identifier
    amount: Money
    currency: Currency = "CNY"
    customer_tier: CustomerClass | None = None
    region: Text | None = None
    sales_rep: Text | None = None
    promised_delivery_at: Timestamp | None = None


class OrderCancelled(_Event):
    type: Literal["order.cancelled"]
    order_id: Identifier
    customer_id: Identifier
    reason: Text | None = None


class DeliveryScheduled(_Event):
    type: Literal["delivery.scheduled"]
    shipment_id: Identifier
    order_id: Identifier
    customer_id: Identifier
    promised_at: Timestamp


class DeliveryEtaUpdated(_Event):
    type: Literal["delivery.eta_updated"]
    shipment_id: Identifier
    customer_id: Identifier
    eta: Timestamp


class DeliveryDelivered(_Event):
    type: Literal["delivery.delivered"]
    shipment_id: Identifier
    customer_id: Identifier
    delivered_at: Timestamp


class InvoiceIssued(_Event):
    type: Literal["invoice.issued"]
    invoice_id: Identifier
    customer_id: Identifier
    amount: Money
    currency: Currency = "CNY"
    due_at: Timestamp


class PaymentReceived(_Event):
    type: Literal["payment.received"]
    invoice_id: Identifier
    customer_id: Identifier
    amount: Money
    # Without a currency a payment is in its invoice's currency (DOMAIN §3).
    currency: Currency | None = None


class InvoiceWrittenOff(_Event):
    type: Literal["invoice.written_off"]
    invoice_id: Identifier
    customer_id: Identifier


class CompetitorPriceObserved(_Event):
    type: Literal["competitor.price_observed"]
    competitor: Identifier
    sku: Identifier
    price: Money
    currency: Currency = "CNY"
    our_price: Money | None = None


class CustomerProfile(_Event):
    type: Literal["customer.profile"]
    customer_id: Identifier
    tier: CustomerClass
    region: Text
    segment: Text | None = None
    sales_rep: Text | None = None
    credit_limit: Money | None = None


Event = Union[
    OrderPlaced,
    OrderCancelled,
    DeliveryScheduled,
    DeliveryEtaUpdated,
    DeliveryDelivered,
    InvoiceIssued,
    PaymentReceived,
    InvoiceWrittenOff,
    CompetitorPriceObserved,
    CustomerProfile,
]

EVENT_MODELS: dict[str, type[_Event]] = {
    model.model_fields["type"].annotation.__args__[0]: model  # type: ignore[union-attr]
    for model in Event.__args__  # type: ignore[attr-defined]
}

# Which source topic (DOMAIN.md §3) an event type belongs to.
STREAM_OF_TYPE: dict[str, str] = {
    "order.placed": "orders",
    "order.cancelled": "orders",
    "delivery.scheduled": "deliveries",
    "delivery.eta_updated": "deliveries",
    "delivery.delivered": "deliveries",
    "invoice.issued": "payments",
    "payment.received": "payments",
    "invoice.written_off": "payments",
    "competitor.price_observed": "competitor-prices",
    "customer.profile": "customers",
}

# Every field of the contract that holds an instant (DOMAIN §3 "Timestamps");
# tests/unit/test_parser.py checks the list against the models.
TIMESTAMP_FIELDS = frozenset({"occurred_at", "promised_delivery_at", "promised_at", "eta", "delivered_at", "due_at"})

_EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(
    Annotated[Event, Field(discriminator="type")]
)


@dataclass(frozen=True, slots=True)
class Rejection:
    """A record that is not a valid event: `kind` is a bounded reason code for
    metrics and dead-letter headers, `reason` the human sentence naming the field."""

    kind: str
    reason: str


MAX_EVENT_BYTES = 1_000_000


def parse_event(raw: bytes | bytearray | memoryview | str) -> Event | Rejection:
    """One raw JSON record (bytes or text, UTF-8) to an event, or a rejection that says why.

    Never raises. A rejection's `kind` is one of not_json, not_object,
    missing_field, unknown_type, invalid_field, too_large; its reason starts
    with the field's name. Timestamp fields take RFC 3339 text with a date,
    a time and an offset only (DOMAIN §3 "Timestamps"); ids are at most 128
    characters and other text at most 1,000 (DOMAIN §3 "Sizes"). Whether an
    event lies in the future is not decided here: see `future_rejection`.
    """
    try:
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogatepass")
        elif not isinstance(raw, bytes):
            raw = bytes(raw)
        if len(raw) > MAX_EVENT_BYTES:
            return Rejection("too_large", f"record is {len(raw)} bytes; the limit is {MAX_EVENT_BYTES}")
        return _EVENT_ADAPTER.validate_json(raw)
    except ValidationError as error:
        return _rejection_from(error)
    except Exception as error:  # the parser's promise: never raise on input
        return Rejection("not_json", f"unreadable record: {type(error).__name__}: {error}")


def _rejection_from(error: ValidationError) -> Rejection:
    first = error.errors(include_url=False)[0]
    kind = first["type"]
    location = [str(part) for part in first.get("loc", ())]
    # The discriminated union puts the type tag first in the location; the
    # field path a person wants is what follows it.
    if location and location[0] in EVENT_MODELS:
        location = location[1:]
    field = ".".join(location) or "record"
    if field in TIMESTAMP_FIELDS and kind in ("string_type", "string_pattern_mismatch"):
        return Rejection("invalid_field", f"{field}: {_timestamp_reason(first.get('input'))}")
    if kind == "json_invalid":
        return Rejection("not_json", f"not valid JSON: {first.get('ctx', {}).get('error', first['msg'])}")
    if kind in ("model_attributes_type", "model_type", "dict_type"):
        return Rejection("not_object", "record must be a JSON object")
    if kind == "union_tag_not_found":
        return Rejection("missing_field", "type: required")
    if kind == "union_tag_invalid":
        tag = first.get("ctx", {}).get("tag", "?")
        return Rejection("unknown_type", f"type: unknown event type {tag!r}")
    if kind == "missing":
        return Rejection("missing_field", f"{field}: required")
    return Rejection("invalid_field", f"{field}: {_reason(first)}")


_ECHO_CHARS = 40


def _echo(value: object) -> str:
    """The offending input as JSON, cut short: enough to find it in the file."""
    if isinstance(value, str):
        cut = value[:_ECHO_CHARS]
        return orjson.dumps(cut).decode() + ("..." if len(value) > _ECHO_CHARS else "")
    try:
        text = orjson.dumps(value).decode()
    except TypeError:
        text = type(value).__name__
    return text if len(text) <= _ECHO_CHARS else text[:_ECHO_CHARS] + "..."


def _timestamp_reason(value: object) -> str:
    if isinstance(value, str) and RFC3339.fullmatch(value):
        return f"must be a year from {FIRST_YEAR} to {LAST_YEAR} (got {_echo(value)})"
    return f"must be an RFC 3339 timestamp with a date, a time and an offset (got {_echo(value)})"


def _reason(detail: dict) -> str:
    kind = detail["type"]
    ctx = detail.get("ctx", {})
    if kind == "greater_than_equal":
        return f"must be >= {ctx.get('ge')}"
    if kind.startswith("datetime") or kind.startswith("timezone"):
        # The text had the RFC 3339 shape but names no instant (Feb 30, year 0).
        problem = ctx.get("error") or detail["msg"]
        return f"must be a valid RFC 3339 timestamp: {problem} (got {_echo(detail.get('input'))})"
    if kind == "string_too_long":
        value = detail.get("input")
        length = f" (got {len(value)})" if isinstance(value, str) else ""
        return f"must be at most {ctx.get('max_length')} characters{length}"
    if kind in ("decimal_parsing", "decimal_type", "finite_number"):
        return "must be a finite number or decimal string"
    if kind == "string_pattern_mismatch":
        return f"must match {ctx.get('pattern')}"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected')}"
    if kind == "string_type":
        return "must be a string"
    return detail["msg"][:200]


FUTURE = "future"


def future_rejection(event: Event, now: float, tolerance_seconds: float) -> Rejection | None:
    """A rejection if the event's `occurred_at` lies beyond the wall clock plus the tolerance.

    `now` is the wall clock in Unix seconds, read by the caller (the service
    or the worker, once per batch); `tolerance_seconds` a duration in seconds,
    negative to turn the check off (for replaying a forecast on purpose).
    An event exactly at the limit is accepted. DOMAIN §3 "Timestamps": one
    mistyped year must not move the service clock years ahead and fire every
    deadline. Returns None when the event may be applied.
    """
    if tolerance_seconds < 0:
        return None
    ahead = event.occurred_at.timestamp() - now
    if ahead <= tolerance_seconds:
        return None
    return Rejection(
        FUTURE,
        f"occurred_at: {iso(event.occurred_at.timestamp())} is {_span(ahead)} in the future "
        f"(wall clock {iso(float(int(now)))}, tolerance {_span(tolerance_seconds)})",
    )


def _span(seconds: float) -> str:
    # A mistyped year is the usual cause; "15.9 years" says so better than "5807.4 days".
    if seconds >= 2 * 365.25 * 86400:
        return f"{seconds / (365.25 * 86400):.1f} years"
    if seconds < 60:
        return f"{seconds:.0f} s"
    return human_duration(seconds)
