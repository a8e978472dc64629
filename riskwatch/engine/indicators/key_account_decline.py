"""key_account_decline: a key account's orders over the last window (90 days)
fallen more than the threshold (ratio) below the window before it
(rules/indicators.yaml `key_account_decline`: `classes` are the key-account
classes, `window` the window).

Evaluated on a schedule (daily by default), as of each instant, over the
orders up to it (cancelled ones left out from their cancellation), summed
from the customer's order buckets (riskwatch/engine/orders.py)."""

from __future__ import annotations

from riskwatch.engine.alertbook import Finding
from riskwatch.engine.records import RecentOrder
from riskwatch.engine.indicators.base import ON_SCHEDULE, Context, Indicator, IndicatorSpec, register
from riskwatch.units import span

SPEC = IndicatorSpec(
    id="key_account_decline", subject="customer", unit="ratio", evaluated=(ON_SCHEDULE,),
    consumes=("order.placed", "order.cancelled", "customer.profile"),
    params={"classes": ["A"], "window": "90d"}, duration_params=frozenset({"window"}),
    references=("customer_trailing_12m_purchases",), evaluate_every="1d",
)


@register
class KeyAccountDecline(Indicator):
    """`customer_changed` is called by the engine's fact layer when a
    customer's class may have changed; `context.facts` is the engine."""

    spec = SPEC

    def __init__(self, indicator, context: Context):
        super().__init__(indicator, context)
        self.classes = frozenset(indicator.params["classes"])
        self._key_accounts: set[str] = set()

    def customer_changed(self, customer_id: str, customer_class: str | None) -> None:
        if customer_class in self.classes:
            self._key_accounts.add(customer_id)
        else:
            self._key_accounts.discard(customer_id)

    def rebuild(self) -> None:
        self._key_accounts.clear()

    def evaluate(self, as_of: float) -> list[Finding]:
        indicator = self.indicator
        window = indicator.params["window"]
        findings: list[Finding] = []
        for customer_id in sorted(self._key_accounts):
            customer = self.context.facts.customer(customer_id)
            orders = self.context.facts.order_window
            recent = orders.placed_between(customer, as_of - window, as_of, as_of)
            prior = orders.placed_between(customer, as_of - 2 * window, as_of - window, as_of)
            if prior <= 0:
                continue
            decline = 1.0 - recent / prior
            breached = indicator.breached(decline)
            # Not declining only matters to an open alert (the book keeps a
            # resolved one as it was closed); the evidence is read only for a finding.
            if breached or self.context.book.is_open("key_account_decline", "customer", customer_id):
                recent_events = [order.event_id for order in map(RecentOrder._make, customer.recent)
                                 if as_of - window < order.ts <= as_of
                                 and (order.cancelled_ts is None or order.cancelled_ts > as_of)]
                findings.append(Finding(
                    indicator, {"kind": "customer", "id": customer_id, "customer_id": customer_id},
                    open=breached, observed=max(decline, 0.0), onset_ts=None, resolved_ts=None if breached else as_of,
                    amount_cny=max(0, prior - recent) / 100, customer_class=customer.customer_class,
                    region=customer.region, evidence=tuple(recent_events[-20:]),
                    detail=f"key account {customer_id}: {recent / 100:,.0f} CNY ordered in {span(window)} against {prior / 100:,.0f} CNY before; decline",
                    resolution=None if breached else "orders recovered",
                ))
        return findings
