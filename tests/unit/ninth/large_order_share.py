"""A ninth indicator, as docs/indicators.md describes adding one: one module
and one rules entry. An order worth more than the threshold share of its
customer's credit limit (a single order that by itself would eat most of
the limit) alerts on the customer."""

from __future__ import annotations

from riskwatch.engine.alertbook import Finding
from riskwatch.engine.entities import minor_units
from riskwatch.engine.indicators import ON_FACT, Indicator, IndicatorSpec, register

SPEC = IndicatorSpec(
    id="large_order_share", subject="customer", unit="ratio", evaluated=(ON_FACT,),
    consumes=("order.placed",), references=("customer_trailing_12m_purchases",),
)


@register
class LargeOrderShare(Indicator):
    spec = SPEC

    def on_event(self, event, ts, now):
        customer = self.context.facts.customer(event.customer_id)
        if not self.indicator.enabled or not customer.credit_limit:
            return ()
        fen = minor_units(event.amount, event.currency, self.context.facts.rates)
        share = fen / customer.credit_limit
        breached = self.indicator.breached(share)
        if not breached and not self.context.book.has_alert(self.id, "customer", event.customer_id):
            return ()
        return (Finding(
            self.indicator, {"kind": "customer", "id": event.customer_id, "customer_id": event.customer_id},
            open=breached, observed=share, onset_ts=ts, resolved_ts=None if breached else ts,
            amount_cny=fen / 100, customer_class=customer.customer_class, region=customer.region,
            evidence=(event.event_id,),
            detail=f"order {event.order_id} of {event.customer_id} against a credit limit of "
                   f"{customer.credit_limit / 100:,.0f} CNY; share",
            resolution=None if breached else "a later order within the limit",
        ),)
