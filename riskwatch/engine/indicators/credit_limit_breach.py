"""credit_limit_breach: a customer's open receivables beyond its credit limit
(ratio of receivables to the limit, threshold 1.0; DOMAIN §3 "Credit limit":
a limit of 0 is a credit hold, no limit known is nothing to check;
rules/indicators.yaml `credit_limit_breach`).

Evaluated on a schedule (hourly by default), as of each instant: the
receivables are every open balance of the customer's invoices then,
converted to CNY at the rules' rates. Only customers whose invoices or
profile changed since their last check are measured again, adding the
changed invoices' differences instead of summing every open invoice."""

from __future__ import annotations

from riskwatch.engine.alertbook import Finding
from riskwatch.engine.entities import balance_as_of
from riskwatch.engine.records import Customer, Invoice, followed_invoices
from riskwatch.engine.indicators.base import ON_SCHEDULE, Context, Indicator, IndicatorSpec, register

SPEC = IndicatorSpec(
    id="credit_limit_breach", subject="customer", unit="ratio", evaluated=(ON_SCHEDULE,),
    consumes=("invoice.issued", "payment.received", "invoice.written_off", "customer.profile"),
    references=("customer_trailing_12m_purchases",), evaluate_every="1h",
)


@register
class CreditLimitBreach(Indicator):
    """`invoice_changed` and `customer_changed` are called by the engine's fact
    layer; `context.facts` is the engine (`customer`, `invoice`,
    `follow_invoices`)."""

    spec = SPEC

    def __init__(self, indicator, context: Context):
        super().__init__(indicator, context)
        # customer -> invoices changed since its last check, and customer ->
        # (as of, receivables then in fen, invoices kept): a check adds the
        # changes instead of summing every open invoice every hour.
        self._dirty: dict[str, set[str]] = {}
        self._base: dict[str, tuple[float, int, int]] = {}

    def invoice_changed(self, customer_id: str, invoice_id: str) -> None:
        self._dirty.setdefault(customer_id, set()).add(invoice_id)

    def customer_changed(self, customer_id: str) -> None:
        self._dirty.setdefault(customer_id, set())

    def rebuild(self) -> None:
        self._dirty.clear()
        self._base.clear()

    def watch(self, customer_id: str) -> None:
        """A customer recovered from state with invoices to follow."""
        self._dirty.setdefault(customer_id, set())

    def evaluate(self, as_of: float) -> list[Finding]:
        indicator = self.indicator
        facts = self.context.facts
        rates = facts.rates
        findings: list[Finding] = []
        still_dirty: dict[str, set[str]] = {}
        for customer_id in sorted(self._dirty):
            changed = self._dirty[customer_id]
            customer = facts.customer(customer_id)
            base = self._base.get(customer_id)
            pending: set[str] = set()
            followed = followed_invoices(customer)
            if base is None or len(followed) > 2 * base[2] + 16:
                receivable, kept = self._receivables_in_full(customer_id, customer, followed, as_of, pending)
            else:
                receivable, kept = base[1], base[2]
                for invoice_id in changed:
                    rec = facts.invoice(invoice_id)
                    if rec is None:
                        continue
                    receivable += balance_as_of(rec, as_of, rates) - balance_as_of(rec, base[0], rates)
                    if facts_after(rec, as_of):
                        pending.add(invoice_id)
            self._base[customer_id] = (as_of, receivable, kept)
            if pending:
                still_dirty[customer_id] = pending
            limit = customer.credit_limit
            if limit is None:
                continue    # no limit known: nothing to check (DOMAIN §3 "Credit limit")
            # A limit of 0 is a credit hold: any open receivable breaches it.
            ratio = receivable / limit if limit else (float("inf") if receivable > 0 else 0.0)
            breached = indicator.breached(ratio)
            # A finding below the limit only matters to an open alert: the book
            # keeps a resolved one as it was closed (AlertBook.record), and
            # walking the invoices for evidence of every customer ever alerted
            # grew with the history of alerts.
            if breached or self.context.book.is_open("credit_limit_breach", "customer", customer_id):
                evidence = []
                for invoice_id in followed:
                    rec = facts.invoice(invoice_id)
                    if rec is not None and balance_as_of(rec, as_of, rates) > 0:
                        evidence.append(rec.evidence[0])
                        if len(evidence) == 20:
                            break
                findings.append(Finding(
                    indicator, {"kind": "customer", "id": customer_id, "customer_id": customer_id},
                    open=breached, observed=ratio, onset_ts=None, resolved_ts=None if breached else as_of,
                    amount_cny=max(0, receivable - limit) / 100, customer_class=customer.customer_class,
                    region=customer.region, evidence=tuple(evidence) + customer.evidence,
                    detail=(f"customer {customer_id}: receivables {receivable / 100:,.2f} CNY against a limit of {limit / 100:,.2f} CNY;"
                            if limit else f"customer {customer_id} on credit hold (limit 0): receivables {receivable / 100:,.2f} CNY open;"),
                    resolution=None if breached else "receivables back under the limit",
                ))
        self._dirty = still_dirty
        return findings

    def _receivables_in_full(self, customer_id: str, customer: Customer, followed: tuple[str, ...], as_of: float,
                             pending: set[str]) -> tuple[int, int]:
        """Sum every followed invoice of a customer as of an instant (fen), and forget the settled ones."""
        receivable = 0
        keep: list[str] = []
        for invoice_id in followed:
            rec = self.context.facts.invoice(invoice_id)
            if rec is None:
                continue
            balance = balance_as_of(rec, as_of, self.context.facts.rates)
            receivable += balance
            later = facts_after(rec, as_of)
            if later:
                pending.add(invoice_id)
            if balance > 0 or later or rec.amount is None:
                keep.append(invoice_id)
        if len(keep) != len(followed):
            self.context.facts.follow_invoices(customer_id, customer, tuple(keep))
        return receivable, len(keep)


def facts_after(rec: Invoice, instant: float) -> bool:
    """Whether an invoice has facts dated after an instant (it must be measured again later)."""
    return ((rec.issued_ts or 0) > instant or (rec.written_off_ts or 0) > instant
            or any(p[1] > instant for p in rec.payments))
