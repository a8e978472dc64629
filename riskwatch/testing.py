"""Helpers for testing code that uses riskwatch: event builders and a scenario.

Every builder returns a plain dict in the event contract (DOMAIN.md §3) with
sensible defaults, so a test only spells out what its story is about::

    from riskwatch.testing import Scenario, invoice_issued, payment_received

    story = Scenario()
    story.feed(invoice_issued("INV-1", "C1", 250_000, due_at="2026-03-01T00:00:00Z",
                              at="2026-02-01T09:00:00Z"))
    story.advance_to("2026-04-01T00:00:00Z")
    assert story.alert("payment_overdue", "INV-1")["status"] == "open"

Instants may be given as RFC 3339 text or timezone-aware datetimes; amounts
as numbers, Decimals or decimal strings (they are written as decimal
strings, the way a careful producer sends money). `event_id`s come from a
counter (`evt-000001`, ...) unless a test passes its own, which is how a
redelivery is written: the same dict fed twice.
"""

from __future__ import annotations

import itertools
import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Iterable

from riskwatch.engine import Engine
from riskwatch.models import Rejection, parse_event
from riskwatch.rules.loader import RuleSet, load_rules
from riskwatch.timeutil import parse_instant

DEFAULT_RULES = Path(__file__).resolve().parent.parent / "rules"
DEFAULT_AT = "2026-01-05T09:00:00Z"

_ids = itertools.count(1)

Instant = str | datetime


def next_event_id() -> str:
    """A fresh, process-wide unique event id."""
    return f"evt-{next(_ids):06d}"


def instant(value: Instant) -> datetime:
    """RFC 3339 text or an aware datetime, as an aware datetime."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime: give a timezone")
        return value
    return parse_instant(value)


def rfc3339(value: Instant) -> str:
    moment = instant(value).astimezone(timezone.utc)
    text = moment.isoformat().replace("+00:00", "Z")
    return text


def _money(amount: int | float | Decimal | str) -> str:
    return str(Decimal(str(amount)))


def _event(type_: str, at: Instant, event_id: str | None, fields: dict, extra: dict) -> dict:
    event = {"event_id": event_id or next_event_id(), "type": type_, "occurred_at": rfc3339(at)}
    event.update({k: v for k, v in fields.items() if v is not None})
    event.update(extra)
    return event


# --- builders, one per event type ------------------------------------------------

def order_placed(order_id: str, customer_id: str, amount=100_000, *, at: Instant = DEFAULT_AT,
                 customer_tier: str | None = None, region: str | None = None, currency: str = "CNY",
                 promised_delivery_at: Instant | None = None, event_id: str | None = None, **extra) -> dict:
    return _event("order.placed", at, event_id, {
        "order_id": order_id, "customer_id": customer_id, "amount": _money(amount), "currency": currency,
        "customer_tier": customer_tier, "region": region,
        "promised_delivery_at": rfc3339(promised_delivery_at) if promised_delivery_at else None,
    }, extra)


def order_cancelled(order_id: str, customer_id: str, *, at: Instant = DEFAULT_AT, reason: str | None = None,
                    event_id: str | None = None, **extra) -> dict:
    return _event("order.cancelled", at, event_id,
                  {"order_id": order_id, "customer_id": customer_id, "reason": reason}, extra)


def delivery_scheduled(shipment_id: str, customer_id: str, promised_at: Instant, *, order_id: str | None = None,
                       at: Instant = DEFAULT_AT, event_id: str | None = None, **extra) -> dict:
    return _event("delivery.scheduled", at, event_id, {
        "shipment_id": shipment_id, "order_id": order_id or f"ORD-{shipment_id}", "customer_id": customer_id,
        "promised_at": rfc3339(promised_at),
    }, extra)


def eta_updated(shipment_id: str, customer_id: str, eta: Instant, *, at: Instant = DEFAULT_AT,
                event_id: str | None = None, **extra) -> dict:
    return _event("delivery.eta_updated", at, event_id,
                  {"shipment_id": shipment_id, "customer_id": customer_id, "eta": rfc3339(eta)}, extra)


def delivered(shipment_id: str, customer_id: str, delivered_at: Instant, *, at: Instant | None = None,
              event_id: str | None = None, **extra) -> dict:
    """Delivered at `delivered_at`; the event itself occurs then unless `at` says otherwise."""
    return _event("delivery.delivered", at or delivered_at, event_id, {
        "shipment_id": shipment_id, "customer_id": customer_id, "delivered_at": rfc3339(delivered_at),
    }, extra)


def invoice_issued(invoice_id: str, customer_id: str, amount, due_at: Instant, *, at: Instant = DEFAULT_AT,
                   currency: str = "CNY", event_id: str | None = None, **extra) -> dict:
    return _event("invoice.issued", at, event_id, {
        "invoice_id": invoice_id, "customer_id": customer_id, "amount": _money(amount), "currency": currency,
        "due_at": rfc3339(due_at),
    }, extra)


def payment_received(invoice_id: str, customer_id: str, amount, *, at: Instant = DEFAULT_AT,
                     currency: str | None = None, event_id: str | None = None, **extra) -> dict:
    """A payment; without `currency` it is in its invoice's currency (DOMAIN §3)."""
    fields = {"invoice_id": invoice_id, "customer_id": customer_id, "amount": _money(amount)}
    if currency is not None:
        fields["currency"] = currency
    return _event("payment.received", at, event_id, fields, extra)


def invoice_written_off(invoice_id: str, customer_id: str, *, at: Instant = DEFAULT_AT,
                        event_id: str | None = None, **extra) -> dict:
    return _event("invoice.written_off", at, event_id, {"invoice_id": invoice_id, "customer_id": customer_id}, extra)


def price_observed(competitor: str, sku: str, price, *, at: Instant = DEFAULT_AT, currency: str = "CNY",
                   our_price=None, event_id: str | None = None, **extra) -> dict:
    return _event("competitor.price_observed", at, event_id, {
        "competitor": competitor, "sku": sku, "price": _money(price), "currency": currency,
        "our_price": None if our_price is None else _money(our_price),
    }, extra)


def customer_profile(customer_id: str, tier: str = "C", *, region: str = "east", credit_limit=None,
                     segment: str | None = None, sales_rep: str | None = None, at: Instant = DEFAULT_AT,
                     event_id: str | None = None, **extra) -> dict:
    return _event("customer.profile", at, event_id, {
        "customer_id": customer_id, "tier": tier, "region": region, "segment": segment, "sales_rep": sales_rep,
        "credit_limit": None if credit_limit is None else _money(credit_limit),
    }, extra)


def to_jsonl(events: Iterable[dict]) -> str:
    """Events as the JSON-lines text `riskwatch replay` reads."""
    return "".join(json.dumps(event) + "\n" for event in events)


def at_plus(start: Instant, **delta: float) -> str:
    """`start` moved by a timedelta (`days=30, seconds=1`), as RFC 3339 text."""
    return rfc3339(instant(start) + timedelta(**delta))


# --- a scenario: events into an engine, final alerts out ---------------------------

def final_states(changes: Iterable[dict]) -> dict[str, dict]:
    """The last change record of every alert, by alert_id: its final state (DOMAIN §6)."""
    latest: dict[str, dict] = {}
    for record in changes:
        latest[record["alert_id"]] = record
    return latest


_RULES_CACHE: dict[Path, RuleSet] = {}


def default_rules() -> RuleSet:
    """The shipped rule files, loaded once per process."""
    if DEFAULT_RULES not in _RULES_CACHE:
        _RULES_CACHE[DEFAULT_RULES] = load_rules(DEFAULT_RULES)
    return _RULES_CACHE[DEFAULT_RULES]


class Scenario:
    """Feeds events (dicts or raw JSON) through the real parser into an Engine.

    A record the parser or the engine refuses lands in `rejections`, as a
    replay reports it.

    `changes` holds every alert change in order, as published
    (`AlertChange.to_json()`: what replay prints and the alerts topic
    carries); `final` the last record per alert_id, which is what a risk
    officer's register shows.
    """

    def __init__(self, rules: RuleSet | None = None, lateness_seconds: float = 600.0):
        self.engine = Engine(rules or default_rules(), lateness_seconds=lateness_seconds)
        self.changes: list[dict] = []
        self.rejections: list[Rejection] = []

    def feed(self, *events: dict | str | bytes) -> "Scenario":
        for event in events:
            raw = json.dumps(event) if isinstance(event, dict) else event
            parsed = parse_event(raw)
            if isinstance(parsed, Rejection):
                self.rejections.append(parsed)
                continue
            outcome = self.engine.process(parsed)
            if outcome.rejection is not None:
                self.rejections.append(outcome.rejection)
            self.changes.extend(change.to_json() for change in outcome.changes)
        return self

    def advance_to(self, moment: Instant) -> "Scenario":
        """Move the clock (as `replay --until` does)."""
        self.changes.extend(change.to_json() for change in self.engine.advance_to(instant(moment)))
        return self

    @property
    def final(self) -> dict[str, dict]:
        """The last record of every alert, by alert_id."""
        return final_states(self.changes)

    def alerts(self, indicator: str | None = None) -> list[dict]:
        """Final alert records, optionally of one indicator."""
        return [r for r in self.final.values() if indicator is None or r["indicator"] == indicator]

    def alert(self, indicator: str, subject_id: str) -> dict | None:
        """The final record of the alert about `subject_id` under `indicator`, if any."""
        for record in self.alerts(indicator):
            if record["subject"]["id"] == subject_id:
                return record
        return None

    def outcome(self) -> dict[str, tuple[str, str]]:
        """{alert_id: (status, tier)}: what must not depend on duplicates or arrival order."""
        return {alert_id: (r["status"], r["tier"]) for alert_id, r in self.final.items()}
