"""payment_overdue: an invoice with an open balance more than the threshold
(days) after its due date (DOMAIN §2; rules/indicators.yaml `payment_overdue`).

Evaluated on a fact (issue, re-issue, payment, write-off) and on its
deadline: the due date plus the threshold, then each scoring step of the
growing delay. Balances are exact in the invoice's own currency (DOMAIN §3
"Money"); the amount at stake is converted to CNY for scoring."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from riskwatch.engine.alertbook import Finding
from riskwatch.engine.entities import DAY, MICRO, fen_of, in_currency, paid_by
from riskwatch.engine.records import Invoice
from riskwatch.engine.indicators.base import ON_DEADLINE, ON_FACT, Indicator, IndicatorSpec, register
from riskwatch.engine.indicators.findings import BeforeDeadline, cleared, episode, next_breakpoint
from riskwatch.rules.loader import CompiledIndicator

SPEC = IndicatorSpec(
    id="payment_overdue", subject="invoice", unit="days", evaluated=(ON_FACT, ON_DEADLINE),
    consumes=("invoice.issued", "payment.received", "invoice.written_off"),
    references=("customer_trailing_12m_purchases",),
    grows_while_open=True,
)


@register
class PaymentOverdue(Indicator):
    """The engine keeps each invoice's facts (riskwatch/engine/entities.py
    `Invoice`) and asks `assess` whenever they change or a deadline passes."""

    spec = SPEC

    def assess(self, invoice_id: str, rec: Invoice, now: float | None, customer_class: str | None,
               region: str | None, rates: dict[str, Fraction]) -> tuple[Finding | None, float | None]:
        """(finding, next deadline in Unix seconds); `rates` are the rules' exact rates to CNY."""
        return invoice_finding(invoice_id, rec, self.indicator, now, customer_class, region, rates)

    def first_deadline(self, rec: Invoice) -> float | None:
        """Unix seconds an invoice's balance becomes overdue (its due date plus
        the threshold), the deadline `assess` asks for while it is open; None
        before its terms are known."""
        return None if rec.due_ts is None else rec.due_ts + self.indicator.threshold * DAY


def _money(micro: int, currency: str, rates: dict[str, Fraction]) -> str:
    text = f"{Decimal(micro) / MICRO:,.2f} {currency}"
    if currency != "CNY":
        text += f" ({fen_of(micro, currency, rates) / 100:,.2f} CNY)"
    return text


def invoice_finding(
    invoice_id: str, rec: Invoice, indicator: CompiledIndicator, now: float | None,
    customer_class: str | None, region: str | None, rates: dict[str, Fraction],
) -> tuple[Finding | None, float | None]:
    """(finding, next deadline) for payment_overdue.

    Balances are exact in the invoice's own currency (DOMAIN §3 "Money"); the
    amount at stake is converted to CNY for scoring."""
    if rec.amount is None or rec.due_ts is None or not indicator.enabled:
        return None, None
    currency = rec.currency or "CNY"
    limit = indicator.threshold * DAY
    deadline = rec.due_ts + limit
    subject = {"kind": "invoice", "id": invoice_id, "customer_id": rec.customer_id}
    open_at_deadline = rec.amount - paid_by(rec, deadline, rates)
    written_off_by_deadline = rec.written_off_ts is not None and rec.written_off_ts <= deadline
    balance_now = rec.amount - paid_by(rec, float("inf"), rates)
    if open_at_deadline <= 0 or written_off_by_deadline:
        overdue = ((now or rec.due_ts) - rec.due_ts) / DAY
        if written_off_by_deadline:
            resolution = BeforeDeadline("written off", rec.written_off_ts, deadline)
        else:
            resolution = BeforeDeadline("paid: settled by a payment dated", _settled_at(rec, rates), deadline)
        return cleared(indicator, subject, rec.evidence, fen_of(max(0, open_at_deadline), currency, rates) / 100,
                        customer_class, region,
                        overdue, resolution), None
    later_facts = [ts for _, ts, _, _ in rec.payments if ts > deadline]
    if rec.written_off_ts is not None:
        later_facts.append(rec.written_off_ts)
    clock_passed = now is not None and now > deadline
    if not clock_passed and not later_facts:
        return None, deadline
    settled_ts = _settled_at(rec, rates)

    def at_stake(instant: float) -> float:
        return fen_of(rec.amount - paid_by(rec, instant, rates), currency, rates) / 100

    if settled_ts is not None:
        return Finding(
            indicator, subject, open=False, observed=(settled_ts - rec.due_ts) / DAY, onset_ts=deadline,
            resolved_ts=settled_ts, amount_cny=at_stake(deadline), customer_class=customer_class,
            region=region, evidence=rec.evidence,
            detail=f"invoice {invoice_id} of {rec.customer_id}: {_money(open_at_deadline, currency, rates)} was open",
            resolution="written off" if rec.written_off_ts == settled_ts else "paid",
            # Payments after the deadline lower what stays at stake: a stretch
            # is scored on the balance still open during it.
            episode=episode(indicator, rec.due_ts, DAY, deadline, settled_ts, at_stake,
                            (ts for _, ts, _, _ in rec.payments)),
        ), None
    observed = ((now if now is not None else deadline) - rec.due_ts) / DAY
    if now is not None and now <= deadline:
        observed = (max(later_facts) - rec.due_ts) / DAY
    return Finding(
        indicator, subject, open=True, observed=observed, onset_ts=deadline,
        amount_cny=fen_of(balance_now, currency, rates) / 100, customer_class=customer_class, region=region,
        evidence=rec.evidence,
        detail=f"invoice {invoice_id} of {rec.customer_id}: {_money(balance_now, currency, rates)} open",
    ), next_breakpoint(indicator, observed, rec.due_ts, DAY)


def _settled_at(rec: Invoice, rates: dict[str, Fraction]) -> float | None:
    """When the balance reached zero (paid in full or written off), if it has."""
    if rec.written_off_ts is not None:
        candidates = [rec.written_off_ts]
    else:
        candidates = []
    if rec.amount is not None:
        currency = rec.currency or "CNY"
        running = 0
        for _, ts, micro, paid_in in sorted(rec.payments, key=lambda p: p[1]):
            running += in_currency(micro, paid_in, currency, rates)
            if running >= rec.amount:
                candidates.append(ts)
                break
    return min(candidates) if candidates else None
