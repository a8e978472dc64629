"""Per-entity facts and the findings they imply.

Each entity (shipment, invoice, competitor price, customer) keeps the facts
seen about it as a small tuple in the state mapping. Facts merge
commutatively (a payment is a payment whatever arrives first), and every
finding is a pure function of (facts, clock): that is what makes duplicates
harmless and arrival order within the allowed lateness irrelevant.
Tuples are replaced, never mutated, so a faust Table persists every change.
"""

from __future__ import annotations

import bisect
import sys
from fractions import Fraction
from decimal import Decimal
from typing import Callable, Iterable, NamedTuple

from riskwatch.engine.alertbook import Finding
from riskwatch.rules.loader import CompiledIndicator

HOUR = 3600.0
DAY = 86400.0
EMPTY: tuple = ()


def minor_units(amount: Decimal, currency: str, rates: dict[str, float]) -> int:
    """Money in CNY fen: exact integers are smaller and faster than Decimals in state."""
    rate = rates.get(currency, 1.0)
    if rate == 1.0:
        return int((amount * 100).to_integral_value())
    return int(round(float(amount) * rate * 100))


def micro_units(price: Decimal, currency: str, rates: dict[str, float]) -> int:
    """Prices in millionths of a CNY (the contract allows six decimal places)."""
    rate = rates.get(currency, 1.0)
    if rate == 1.0:
        return int(price * 1_000_000)
    return int(round(float(price) * rate * 1_000_000))


def intern(text: str | None) -> str | None:
    # Customer ids, regions and currencies repeat across millions of records.
    return sys.intern(text) if text is not None else None


# --- shipments ---------------------------------------------------------------

class Shipment(NamedTuple):
    customer_id: str
    order_id: str | None
    promised_ts: float | None
    eta_ts: float | None
    eta_event_ts: float | None
    delivered_ts: float | None
    evidence: tuple
    order_fen: int | None = None    # the order's amount, once known


def shipment_finding(
    shipment_id: str, rec: Shipment, indicator: CompiledIndicator, now: float | None,
    customer_class: str | None, region: str | None, amount_cny: float | None,
) -> tuple[Finding | None, float | None]:
    """(finding, next deadline) for delivery_delay."""
    if rec.promised_ts is None or not indicator.enabled:
        return None, None
    limit = indicator.threshold * HOUR
    deadline = rec.promised_ts + limit
    subject = {"kind": "shipment", "id": shipment_id, "customer_id": rec.customer_id}
    if rec.order_id is not None:
        subject["order_id"] = rec.order_id
    eta_late = rec.eta_ts is not None and rec.eta_ts > deadline
    if rec.delivered_ts is not None:
        delay = rec.delivered_ts - rec.promised_ts
        if not delay > limit:
            return _cleared(indicator, subject, rec, amount_cny, customer_class, region, delay / HOUR, "delivered"), None
        return Finding(
            indicator, subject, open=False, observed=delay / HOUR, onset_ts=deadline,
            resolved_ts=rec.delivered_ts, amount_cny=amount_cny, customer_class=customer_class,
            region=region, evidence=rec.evidence, eta_late=eta_late,
            detail=f"shipment {shipment_id} for {rec.customer_id} delivered", resolution="delivered",
            episode=episode(indicator, rec.promised_ts, HOUR, deadline, rec.delivered_ts, lambda _: amount_cny),
        ), None
    if now is None or not now > deadline:
        return None, deadline
    delay = now - rec.promised_ts
    next_point = _next_breakpoint(indicator, delay / HOUR, rec.promised_ts, HOUR)
    return Finding(
        indicator, subject, open=True, observed=delay / HOUR, onset_ts=deadline,
        amount_cny=amount_cny, customer_class=customer_class, region=region,
        evidence=rec.evidence, eta_late=eta_late,
        detail=f"shipment {shipment_id} for {rec.customer_id} still undelivered",
    ), next_point


def _cleared(indicator, subject, rec, amount_cny, customer_class, region, observed, resolution) -> Finding:
    """A finding that says "not (or no longer) a risk": resolves an alert raised earlier on older facts."""
    return Finding(
        indicator, subject, open=False, observed=observed, onset_ts=0.0, resolved_ts=None,
        amount_cny=amount_cny, customer_class=customer_class, region=region,
        evidence=rec.evidence, resolution=resolution, extra={"never_breached": True},
    )


def episode(
    indicator: CompiledIndicator, origin_ts: float, unit_seconds: float, deadline: float, cleared_ts: float,
    amount_at: Callable[[float], float | None], changes: Iterable[float] = (),
) -> tuple:
    """(observed, amount_cny) for each stretch of an absence condition, from its
    deadline to the fact that cleared it.

    A score steps up just after the observed value passes a breakpoint, and the
    amount at stake changes at the instants in `changes` (payments), so within a
    stretch neither moves: it is measured at its end (observed, the largest it
    reached there) and at its start (amount, the largest it was there)."""
    cuts = {deadline: (deadline - origin_ts) / unit_seconds, cleared_ts: (cleared_ts - origin_ts) / unit_seconds}
    for instant in changes:
        if deadline < instant < cleared_ts:
            cuts.setdefault(instant, (instant - origin_ts) / unit_seconds)
    for point in indicator.params.get("_breakpoints", ()):
        instant = origin_ts + point * unit_seconds
        if deadline < instant <= cleared_ts:
            cuts[instant] = point    # exactly the bound, whatever the float sum gave
    instants = sorted(cuts)
    return tuple((cuts[end], amount_at(start)) for start, end in zip(instants, instants[1:]))


def _next_breakpoint(indicator: CompiledIndicator, observed: float, origin_ts: float, unit_seconds: float) -> float | None:
    """When the observed value of a still-open absence alert next crosses a scoring step."""
    points = indicator.params.get("_breakpoints", ())
    index = bisect.bisect_right(points, observed)
    if index < len(points):
        return origin_ts + points[index] * unit_seconds
    return None


# --- invoices ----------------------------------------------------------------

class Invoice(NamedTuple):
    customer_id: str
    amount: int | None              # CNY fen
    issued_ts: float | None
    due_ts: float | None
    payments: tuple                 # ((event_id, ts, fen), ...)
    written_off_ts: float | None
    evidence: tuple


def paid_by(rec: Invoice, instant: float) -> int:
    return sum(fen for _, ts, fen in rec.payments if ts <= instant)


def balance_as_of(rec: Invoice, instant: float) -> int:
    """Open balance at an instant (0 before issue or after write-off)."""
    if rec.amount is None or rec.issued_ts is None or rec.issued_ts > instant:
        return 0
    if rec.written_off_ts is not None and rec.written_off_ts <= instant:
        return 0
    return max(0, rec.amount - paid_by(rec, instant))


def invoice_finding(
    invoice_id: str, rec: Invoice, indicator: CompiledIndicator, now: float | None,
    customer_class: str | None, region: str | None,
) -> tuple[Finding | None, float | None]:
    """(finding, next deadline) for payment_overdue."""
    if rec.amount is None or rec.due_ts is None or not indicator.enabled:
        return None, None
    limit = indicator.threshold * DAY
    deadline = rec.due_ts + limit
    subject = {"kind": "invoice", "id": invoice_id, "customer_id": rec.customer_id}
    open_at_deadline = rec.amount - paid_by(rec, deadline)
    written_off_by_deadline = rec.written_off_ts is not None and rec.written_off_ts <= deadline
    balance_now = rec.amount - sum(fen for _, _, fen in rec.payments)
    if open_at_deadline <= 0 or written_off_by_deadline:
        overdue = ((now or rec.due_ts) - rec.due_ts) / DAY
        resolution = "written off" if written_off_by_deadline else "paid"
        return _cleared(indicator, subject, rec, open_at_deadline / 100, customer_class, region, overdue, resolution), None
    later_facts = [ts for _, ts, _ in rec.payments if ts > deadline]
    if rec.written_off_ts is not None:
        later_facts.append(rec.written_off_ts)
    clock_passed = now is not None and now > deadline
    if not clock_passed and not later_facts:
        return None, deadline
    settled_ts = _settled_at(rec)
    if settled_ts is not None:
        return Finding(
            indicator, subject, open=False, observed=(settled_ts - rec.due_ts) / DAY, onset_ts=deadline,
            resolved_ts=settled_ts, amount_cny=open_at_deadline / 100, customer_class=customer_class,
            region=region, evidence=rec.evidence,
            detail=f"invoice {invoice_id} of {rec.customer_id}: {open_at_deadline / 100:,.2f} CNY was open",
            resolution="written off" if rec.written_off_ts == settled_ts else "paid",
            # Payments after the deadline lower what stays at stake: a stretch
            # is scored on the balance still open during it.
            episode=episode(indicator, rec.due_ts, DAY, deadline, settled_ts,
                            lambda instant: (rec.amount - paid_by(rec, instant)) / 100, (ts for _, ts, _ in rec.payments)),
        ), None
    observed = ((now if now is not None else deadline) - rec.due_ts) / DAY
    if now is not None and now <= deadline:
        observed = (max(later_facts) - rec.due_ts) / DAY
    return Finding(
        indicator, subject, open=True, observed=observed, onset_ts=deadline,
        amount_cny=balance_now / 100, customer_class=customer_class, region=region, evidence=rec.evidence,
        detail=f"invoice {invoice_id} of {rec.customer_id}: {balance_now / 100:,.2f} CNY open",
    ), _next_breakpoint(indicator, observed, rec.due_ts, DAY)


def _settled_at(rec: Invoice) -> float | None:
    """When the balance reached zero (paid in full or written off), if it has."""
    if rec.written_off_ts is not None:
        candidates = [rec.written_off_ts]
    else:
        candidates = []
    running = 0
    for _, ts, fen in sorted(rec.payments, key=lambda p: p[1]):
        running += fen
        if rec.amount is not None and running >= rec.amount:
            candidates.append(ts)
            break
    return min(candidates) if candidates else None


# --- competitor prices -------------------------------------------------------

class Observation(NamedTuple):
    ts: float
    event_id: str
    price: int              # millionths of a CNY: exact, so a cut of exactly 10% is exactly 10%
    our_price: int | None


def cut_beyond(reference: int, price: int, threshold: Fraction) -> bool:
    """Strictly more than `threshold` below the reference, in exact arithmetic."""
    return (reference - price) * threshold.denominator > threshold.numerator * reference


class PriceWalk(NamedTuple):
    """Where the walk over observations stands (also the carry for pruned history)."""
    previous: Observation | None
    open: bool
    anchor: float | None
    onset_ts: float | None
    observed: float
    resolved_ts: float | None
    evidence: tuple
    ever: bool
    assessed: float          # the cut the alert was last assessed on while open


START = PriceWalk(None, False, None, None, 0.0, None, (), False, 0.0)


class PriceHistory(NamedTuple):
    carry: PriceWalk
    observations: tuple  # sorted (ts, event_id)


def walk_prices(carry: PriceWalk, observations: tuple, threshold: float, use_our_price: bool) -> PriceWalk:
    """Replay the observations in event-time order: open on a cut beyond the
    threshold against the reference, stay open (against the same anchor) until
    the price is back within the threshold."""
    exact = Fraction(str(threshold))
    walk = carry
    for obs in observations:
        previous, is_open, anchor, onset, observed, resolved_ts, evidence, ever, assessed = walk
        if is_open and anchor:
            cut = 1.0 - obs.price / anchor
            if cut_beyond(anchor, obs.price, exact):
                walk = PriceWalk(obs, True, anchor, onset, cut, None, evidence + (obs.event_id,), ever, cut)
            else:
                walk = PriceWalk(obs, False, None, onset, cut, obs.ts, evidence + (obs.event_id,), ever, assessed)
            continue
        reference = obs.our_price if (use_our_price and obs.our_price) else (previous.price if previous else None)
        if reference and reference > 0 and cut_beyond(reference, obs.price, exact):
            cut = 1.0 - obs.price / reference
            trail = (previous.event_id,) if previous is not None and not (use_our_price and obs.our_price) else ()
            walk = PriceWalk(obs, True, reference, obs.ts, cut, None, trail + (obs.event_id,), True, cut)
            continue
        walk = PriceWalk(obs, False, None, onset, observed, resolved_ts, evidence, ever, assessed)
    return walk


def price_finding(
    competitor: str, sku: str, history: PriceHistory, indicator: CompiledIndicator,
) -> Finding | None:
    if not indicator.enabled:
        return None
    walk = walk_prices(history.carry, history.observations, indicator.threshold,
                       indicator.params.get("reference") == "our_price")
    subject = {"kind": "price", "id": f"{competitor}/{sku}", "competitor": competitor, "sku": sku}
    if not walk.ever:
        # A late observation can show that an earlier "cut" was measured
        # against a stale reference: an alert raised on it is withdrawn.
        return Finding(indicator, subject, open=False, observed=walk.observed, onset_ts=0.0,
                       evidence=walk.evidence, resolution="withdrawn: a late observation filled the gap")
    return Finding(
        indicator, subject, open=walk.open, observed=walk.observed, onset_ts=walk.onset_ts or 0.0,
        resolved_ts=None if walk.open else walk.resolved_ts, evidence=walk.evidence, assess_observed=walk.assessed,
        detail=f"{competitor} prices {sku} at {walk.previous.price / 1e6:g}; cut" if walk.previous else "cut",
        resolution=None if walk.open else "price back",
    )


# --- customers ---------------------------------------------------------------

class Customer(NamedTuple):
    customer_class: str | None
    region: str | None
    sales_rep: str | None
    credit_limit: int | None        # CNY fen
    profile_ts: float | None
    orders: tuple                   # ((ts, fen, order_id, region, event_id), ...) recent window, sorted
    cancelled: tuple                # order ids
    invoices: tuple                 # invoice ids with receivables to follow
    evidence: tuple                 # profile event id(s)


NEW_CUSTOMER = Customer(None, None, None, None, None, EMPTY, EMPTY, EMPTY, EMPTY)
