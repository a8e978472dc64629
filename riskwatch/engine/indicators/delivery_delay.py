"""delivery_delay: a shipment undelivered more than the threshold (hours) after
its promised date (DOMAIN §2; rules/indicators.yaml `delivery_delay`).

Evaluated on a fact (a schedule, an ETA, a delivery, the order's
cancellation) and on its deadline: the promise plus the threshold, then each
scoring step of the growing delay. The latest revision of the promise by
event time holds (DOMAIN §3 "Revisions"); a cancellation before delivery
ends the obligation (DOMAIN §3 "Cancellation")."""

from __future__ import annotations

from riskwatch.engine.alertbook import Finding
from riskwatch.engine.entities import HOUR
from riskwatch.engine.records import Shipment
from riskwatch.engine.indicators.base import ON_DEADLINE, ON_FACT, Indicator, IndicatorSpec, register
from riskwatch.engine.indicators.findings import BeforeDeadline, cleared, episode, next_breakpoint
from riskwatch.rules.loader import CompiledIndicator

SPEC = IndicatorSpec(
    id="delivery_delay", subject="shipment", unit="hours", evaluated=(ON_FACT, ON_DEADLINE),
    consumes=("delivery.scheduled", "delivery.eta_updated", "delivery.delivered", "order.cancelled"),
    references=("customer_trailing_12m_purchases",),
    grows_while_open=True,
)


@register
class DeliveryDelay(Indicator):
    """The engine keeps each shipment's facts (riskwatch/engine/entities.py
    `Shipment`) and asks `assess` whenever they change or a deadline passes."""

    spec = SPEC

    def assess(self, shipment_id: str, rec: Shipment, now: float | None, customer_class: str | None,
               region: str | None, amount_cny: float | None, cancelled: tuple | None = None,
               ) -> tuple[Finding | None, float | None]:
        """(finding, next deadline in Unix seconds); `amount_cny` is the order's
        amount (None until known), `cancelled` the order's cancellation
        (occurred_at, event_id), if any."""
        return shipment_finding(shipment_id, rec, self.indicator, now, customer_class, region, amount_cny, cancelled)

    def first_deadline(self, rec: Shipment) -> float | None:
        """Unix seconds an undelivered shipment becomes late (its promise plus
        the threshold), the deadline `assess` asks for while it is open; None
        before a promise is known."""
        return None if rec.promised_ts is None else rec.promised_ts + self.indicator.threshold * HOUR


def shipment_finding(
    shipment_id: str, rec: Shipment, indicator: CompiledIndicator, now: float | None,
    customer_class: str | None, region: str | None, amount_cny: float | None,
    cancelled: tuple | None = None,
) -> tuple[Finding | None, float | None]:
    """(finding, next deadline) for delivery_delay.

    `cancelled` is (occurred_at, event_id) of the order's cancellation, if any:
    it ends the delivery obligation (DOMAIN §3 "Cancellation")."""
    if rec.promised_ts is None or not indicator.enabled:
        return None, None
    limit = indicator.threshold * HOUR
    deadline = rec.promised_ts + limit
    subject = {"kind": "shipment", "id": shipment_id, "customer_id": rec.customer_id}
    if rec.order_id is not None:
        subject["order_id"] = rec.order_id
    eta_late = rec.eta_ts is not None and rec.eta_ts > deadline
    end_ts, resolution, evidence = rec.delivered_ts, "delivered", rec.evidence
    if cancelled is not None and (end_ts is None or cancelled[0] < end_ts):
        end_ts, resolution, evidence = cancelled[0], "order cancelled", rec.evidence + (cancelled[1],)
    if end_ts is not None:
        delay = end_ts - rec.promised_ts
        if not delay > limit:
            return cleared(indicator, subject, evidence, amount_cny, customer_class, region, delay / HOUR,
                            BeforeDeadline(resolution, end_ts, deadline)), None
        return Finding(
            indicator, subject, open=False, observed=delay / HOUR, onset_ts=deadline,
            resolved_ts=end_ts, amount_cny=amount_cny, customer_class=customer_class,
            region=region, evidence=evidence, eta_late=eta_late,
            detail=f"shipment {shipment_id} for {rec.customer_id} {'delivered' if resolution == 'delivered' else 'undelivered until the order was cancelled'}",
            resolution=resolution,
            episode=episode(indicator, rec.promised_ts, HOUR, deadline, end_ts, lambda _: amount_cny),
        ), None
    if now is None or not now > deadline:
        return None, deadline
    delay = now - rec.promised_ts
    next_point = next_breakpoint(indicator, delay / HOUR, rec.promised_ts, HOUR)
    return Finding(
        indicator, subject, open=True, observed=delay / HOUR, onset_ts=deadline,
        amount_cny=amount_cny, customer_class=customer_class, region=region,
        evidence=rec.evidence, eta_late=eta_late,
        detail=f"shipment {shipment_id} for {rec.customer_id} still undelivered",
    ), next_point
