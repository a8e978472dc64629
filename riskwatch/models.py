"""The input event contract (DOMAIN.md §3) and its one parse entry point.

`parse_event(raw)` turns raw bytes into an `Event` or a `Rejection` naming the
field and the reason. It never raises: a bad record is data to report, not a
reason to stop.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Literal, Union

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
)

Identifier = Annotated[str, Field(min_length=1, max_length=200)]
Money = Annotated[Decimal, Field(ge=0, allow_inf_nan=False, max_digits=24, decimal_places=6)]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
CustomerClass = Literal["A", "B", "C", "D"]


class _Event(BaseModel):
    # Unknown extra fields are allowed by the contract and ignored.
    model_config = ConfigDict(extra="ignore", frozen=True)

    event_id: Identifier
    occurred_at: AwareDatetime


class OrderPlaced(_Event):
    type: Literal["order.placed"]
    order_id: Identifier
    customer_id: Identifier
    amount: Money
    currency: Currency = "CNY"
    customer_tier: CustomerClass | None = None
    region: str | None = None
    sales_rep: str | None = None
    promised_delivery_at: AwareDatetime | None = None


class OrderCancelled(_Event):
    type: Literal["order.cancelled"]
    order_id: Identifier
    customer_id: Identifier
    reason: str | None = None


class DeliveryScheduled(_Event):
    type: Literal["delivery.scheduled"]
    shipment_id: Identifier
    order_id: Identifier
    customer_id: Identifier
    promised_at: AwareDatetime


class DeliveryEtaUpdated(_Event):
    type: Literal["delivery.eta_updated"]
    shipment_id: Identifier
    customer_id: Identifier
    eta: AwareDatetime


class DeliveryDelivered(_Event):
    type: Literal["delivery.delivered"]
    shipment_id: Identifier
    customer_id: Identifier
    delivered_at: AwareDatetime


class InvoiceIssued(_Event):
    type: Literal["invoice.issued"]
    invoice_id: Identifier
    customer_id: Identifier
    amount: Money
    currency: Currency = "CNY"
    due_at: AwareDatetime


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
    region: str
    segment: str | None = None
    sales_rep: str | None = None
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
    """One raw JSON record to an event, or a rejection that says why."""
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


def _reason(detail: dict) -> str:
    kind = detail["type"]
    ctx = detail.get("ctx", {})
    if kind == "greater_than_equal":
        return f"must be >= {ctx.get('ge')}"
    if kind in ("timezone_aware", "timezone_naive"):
        return "must be a timestamp with a timezone offset (RFC 3339)"
    if kind.startswith("datetime"):
        return "must be an RFC 3339 timestamp with offset"
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


def routing_key(event: Event) -> str:
    """The partition key of the event's source topic (DOMAIN.md §3)."""
    if isinstance(event, CompetitorPriceObserved):
        return event.sku
    return event.customer_id
