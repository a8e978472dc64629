"""A seeded simulation of a believable sales business, as JSON-lines events.

Customers in classes A–D with credit limits, orders, shipments of which some
run late, invoices of which some go overdue, competitor price observations
with occasional cuts, and one customer segment drifting into churn. The same
seed gives the same bytes. Days run from `SimulationSettings.start`
(2024-01-01 unless given).
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterator

import orjson

DAY = 86400
CLASS_MIX = (("A", 0.05), ("B", 0.15), ("C", 0.40), ("D", 0.40))
ORDERS_PER_DAY = {"A": 0.45, "B": 0.25, "C": 0.12, "D": 0.05}
ORDER_SIZE = {"A": (300_000, 1_500_000), "B": (80_000, 400_000), "C": (10_000, 90_000), "D": (1_000, 12_000)}
CREDIT_LIMIT = {"A": 20_000_000, "B": 3_000_000, "C": 600_000, "D": 80_000}
REGIONS = ("east", "north", "south", "west")
COMPETITORS = ("Apex", "Borealis", "Cobalt")
# A fixed start, so the same seed gives the same bytes; in the past, so that
# `riskwatch run`'s two simulated years end before today and no event is
# rejected as in the future (DOMAIN §3).
DEFAULT_START = datetime(2024, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class SimulationSettings:
    seed: int = 7
    customers: int = 400
    days: int | None = 200
    events: int | None = None
    skus: int = 24
    start: datetime = DEFAULT_START
    late_delivery_rate: float = 0.03
    late_payment_rate: float = 0.04
    unpaid_rate: float = 0.01
    price_cut_rate: float = 0.02
    churn_segment: str = "C"
    churn_from_day: int = 60
    churn_share: float = 0.35
    bad_record_rate: float = 0.0


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def simulate(settings: SimulationSettings) -> Iterator[bytes]:
    """JSON lines (without newline), in event-time order."""
    rng = random.Random(settings.seed)
    start = settings.start.timestamp()
    pending: list[tuple[float, int, dict]] = []
    sequence = 0
    emitted = 0

    def later(ts: float, event: dict) -> None:
        nonlocal sequence
        sequence += 1
        event["occurred_at"] = _iso(ts)
        heapq.heappush(pending, (ts, sequence, event))

    customers = []
    for number in range(settings.customers):
        roll, customer_class = rng.random(), "D"
        acc = 0.0
        for name, share in CLASS_MIX:
            acc += share
            if roll < acc:
                customer_class = name
                break
        customer_id = f"CUST-{number:05d}"
        region = REGIONS[number % len(REGIONS)]
        drifts = customer_class == settings.churn_segment and rng.random() < settings.churn_share
        customers.append((customer_id, customer_class, region, drifts))
        later(start + number, {
            "type": "customer.profile", "customer_id": customer_id, "tier": customer_class, "region": region,
            "sales_rep": f"rep-{number % 17:02d}", "credit_limit": CREDIT_LIMIT[customer_class],
        })
    reference_price = {sku: float(rng.randrange(200, 5000)) for sku in range(settings.skus)}
    current_price = {(c, sku): reference_price[sku] for c in COMPETITORS for sku in range(settings.skus)}

    counters = {"order": 0, "shipment": 0, "invoice": 0}
    day = 0
    while settings.days is None or day < settings.days:
        day_start = start + day * DAY
        for customer_id, customer_class, region, drifts in customers:
            if drifts and day >= settings.churn_from_day:
                continue
            if rng.random() >= ORDERS_PER_DAY[customer_class]:
                continue
            counters["order"] += 1
            order_id = f"ORD-{counters['order']:07d}"
            placed = day_start + rng.randrange(8 * 3600, 18 * 3600)
            low, high = ORDER_SIZE[customer_class]
            amount = rng.randrange(low, high)
            promised = placed + rng.choice((3, 5, 7)) * DAY
            later(placed, {
                "type": "order.placed", "order_id": order_id, "customer_id": customer_id, "amount": f"{amount}.00",
                "currency": "CNY", "customer_tier": customer_class, "region": region,
                "promised_delivery_at": _iso(promised),
            })
            counters["shipment"] += 1
            shipment_id = f"SHP-{counters['shipment']:07d}"
            later(placed + 600, {
                "type": "delivery.scheduled", "shipment_id": shipment_id, "order_id": order_id,
                "customer_id": customer_id, "promised_at": _iso(promised),
            })
            if rng.random() < settings.late_delivery_rate:
                delay = rng.randrange(80, 240) * 3600
                later(promised - DAY, {"type": "delivery.eta_updated", "shipment_id": shipment_id,
                                       "customer_id": customer_id, "eta": _iso(promised + delay)})
            else:
                delay = rng.randrange(-48, 30) * 3600
            delivered = promised + delay
            later(delivered, {"type": "delivery.delivered", "shipment_id": shipment_id,
                              "customer_id": customer_id, "delivered_at": _iso(delivered)})
            counters["invoice"] += 1
            invoice_id = f"INV-{counters['invoice']:07d}"
            due = delivered + 30 * DAY
            later(delivered + 3600, {"type": "invoice.issued", "invoice_id": invoice_id, "customer_id": customer_id,
                                     "amount": f"{amount}.00", "currency": "CNY", "due_at": _iso(due)})
            roll = rng.random()
            if roll < settings.unpaid_rate:
                continue
            if roll < settings.unpaid_rate + settings.late_payment_rate:
                paid = due + rng.randrange(31, 75) * DAY
            else:
                paid = due - rng.randrange(0, 20) * DAY + rng.randrange(0, 3600)
            later(paid, {"type": "payment.received", "invoice_id": invoice_id, "customer_id": customer_id,
                         "amount": f"{amount}.00", "currency": "CNY"})
        if day % 3 == 0:
            for competitor in COMPETITORS:
                for sku in range(settings.skus):
                    key = (competitor, sku)
                    price = current_price[key]
                    if price < reference_price[sku] * 0.95 and rng.random() < 0.3:
                        price = reference_price[sku]
                    elif rng.random() < settings.price_cut_rate:
                        price = round(reference_price[sku] * rng.uniform(0.75, 0.88), 2)
                    else:
                        price = round(price * rng.uniform(0.985, 1.015), 2)
                    current_price[key] = price
                    later(day_start + 12 * 3600 + sku * 60, {
                        "type": "competitor.price_observed", "competitor": competitor, "sku": f"SKU-{sku:04d}",
                        "price": price, "currency": "CNY", "our_price": reference_price[sku],
                    })
        horizon = day_start + DAY
        while pending and pending[0][0] < horizon:
            ts, _, event = heapq.heappop(pending)
            emitted += 1
            event = {"event_id": f"evt-{emitted:09d}", **event}
            if settings.bad_record_rate and rng.random() < settings.bad_record_rate:
                yield _spoil(rng, event)
            else:
                yield orjson.dumps(event)
            if settings.events is not None and emitted >= settings.events:
                return
        day += 1
    while pending and settings.days is not None:
        # The simulated period is over; what happens after it is not part of it.
        break


def _spoil(rng: random.Random, event: dict) -> bytes:
    """A realistic bad record: truncated, a negative amount, a naive timestamp, an unknown type."""
    choice = rng.randrange(4)
    if choice == 0:
        return orjson.dumps(event)[: rng.randrange(5, 40)]
    if choice == 1:
        return orjson.dumps({**event, "amount": "-1"} if "amount" in event else {**event, "type": "order.updated"})
    if choice == 2:
        return orjson.dumps({**event, "occurred_at": event["occurred_at"].rstrip("Z")})
    return orjson.dumps({**event, "type": "order.updated"})
