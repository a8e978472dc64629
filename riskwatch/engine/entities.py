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
from riskwatch.timeutil import iso
from riskwatch.errors import RiskwatchError

HOUR = 3600.0
DAY = 86400.0
EMPTY: tuple = ()


MICRO = 1_000_000


class UnknownCurrency(RiskwatchError, ValueError):
    """A currency the rule files give no rate for (DOMAIN §3: never taken 1:1).

    `currency` is the ISO 4217 code as the event spelt it."""

    def __init__(self, currency: str):
        self.currency = currency
        super().__init__(currency)


def exact_rates(rates: dict[str, Decimal]) -> dict[str, Fraction]:
    """The rule files' rates to CNY (`RuleSet.currency_rates_exact`, decimals as
    written: `7.1` is 71/10, not the nearest binary float) as fractions, so a
    conversion rounds once, at the end."""
    return {code: Fraction(rate) for code, rate in rates.items()}


def doc_micro(amount: Decimal) -> int:
    """A document amount in millionths of its own currency: exact for every
    amount the contract allows (at most six decimal places)."""
    return int(amount * MICRO)


def fen_of(micro: int, currency: str, rates: dict[str, Fraction]) -> int:
    """Millionths of `currency` to CNY fen, rounded half to even once.

    Raises UnknownCurrency when the rules carry no rate for `currency`."""
    rate = rates.get(currency)
    if rate is None:
        raise UnknownCurrency(currency)
    if rate == 1:
        # round(Fraction(micro, 10_000)) without the Fraction: half to even.
        fen, rest = divmod(micro, 10_000)
        return fen + 1 if rest > 5_000 or (rest == 5_000 and fen % 2) else fen
    return round(micro * rate / 10_000)


def minor_units(amount: Decimal, currency: str, rates: dict[str, Fraction]) -> int:
    """Money in CNY fen: exact integers are smaller and faster than Decimals in state.

    Raises UnknownCurrency when the rules carry no rate for `currency`."""
    return fen_of(doc_micro(amount), currency, rates)


def micro_units(price: Decimal, currency: str, rates: dict[str, Fraction]) -> int:
    """Prices in millionths of a CNY (the contract allows six decimal places).

    Raises UnknownCurrency when the rules carry no rate for `currency`."""
    rate = rates.get(currency)
    if rate is None:
        raise UnknownCurrency(currency)
    micro = doc_micro(price)
    return micro if rate == 1 else round(micro * rate)


def convert_micro(micro: int, source: str, target: str, rates: dict[str, Fraction]) -> int:
    """Millionths of `source` to millionths of `target` through the rules' CNY rates
    (a payment made in another currency than its invoice's, DOMAIN §3)."""
    if source == target:
        return micro
    if source not in rates:
        raise UnknownCurrency(source)
    if target not in rates:
        raise UnknownCurrency(target)
    return round(micro * rates[source] / rates[target])


def intern(text: str | None) -> str | None:
    # Customer ids, regions and currencies repeat across millions of records.
    return sys.intern(text) if text is not None else None


# --- shipments ---------------------------------------------------------------

class Shipment(NamedTuple):
    customer_id: str
    order_id: str | None
    promised_ts: float | None
    eta_ts: float | None
    eta_rev: tuple | None           # (occurred_at, event_id) of the ETA that holds
    delivered_ts: float | None
    evidence: tuple
    order_fen: int | None = None    # the order's amount, once known
    promised_rev: tuple | None = None  # (occurred_at, event_id) of the schedule that holds


def newer_revision(candidate: tuple, holding: tuple | None) -> bool:
    """Whether a revision (occurred_at, event_id) replaces the one holding.

    The latest event time holds whatever the arrival order (DOMAIN §3
    "Revisions"); equal times are settled by event id, so that too does not
    depend on arrival."""
    return holding is None or candidate > holding


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
            return _cleared(indicator, subject, evidence, amount_cny, customer_class, region, delay / HOUR,
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
    next_point = _next_breakpoint(indicator, delay / HOUR, rec.promised_ts, HOUR)
    return Finding(
        indicator, subject, open=True, observed=delay / HOUR, onset_ts=deadline,
        amount_cny=amount_cny, customer_class=customer_class, region=region,
        evidence=rec.evidence, eta_late=eta_late,
        detail=f"shipment {shipment_id} for {rec.customer_id} still undelivered",
    ), next_point


class BeforeDeadline:
    """The resolution of an alert cleared by a fact dated before its deadline
    (DOMAIN §4: a late fact resolves the alert "with a resolution that says
    so"). Worded only when a record is written: most such findings clear
    nothing and are dropped unread."""

    __slots__ = ("what", "fact_ts", "deadline_ts")

    def __init__(self, what: str, fact_ts: float, deadline_ts: float):
        self.what, self.fact_ts, self.deadline_ts = what, fact_ts, deadline_ts

    def __str__(self) -> str:
        return f"{self.what} {iso(self.fact_ts)}, before the deadline {iso(self.deadline_ts)}"


def _cleared(indicator, subject, evidence, amount_cny, customer_class, region, observed, resolution) -> Finding:
    """A finding that says "not (or no longer) a risk": resolves an alert raised earlier on older facts."""
    return Finding(
        indicator, subject, open=False, observed=observed, onset_ts=0.0, resolved_ts=None,
        amount_cny=amount_cny, customer_class=customer_class, region=region,
        evidence=evidence, resolution=resolution, extra={"never_breached": True},
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
    amount: int | None              # millionths of the invoice's own currency
    issued_ts: float | None         # the first issue: the receivable exists from then on
    due_ts: float | None
    payments: tuple                 # ((event_id, ts, micro, currency or None), ...); None: the invoice's currency
    written_off_ts: float | None
    evidence: tuple
    currency: str | None = None     # ISO 4217 of the invoice (DOMAIN §3: settled in its own currency)
    terms_rev: tuple | None = None  # (occurred_at, event_id) of the issue whose terms hold


def paid_by(rec: Invoice, instant: float, rates: dict[str, Fraction]) -> int:
    """Paid up to an instant, in millionths of the invoice's currency: exact
    for payments in that currency (or none stated), converted at the rules'
    rates otherwise."""
    currency = rec.currency or "CNY"
    return sum(_in_currency(micro, paid_in, currency, rates) for _, ts, micro, paid_in in rec.payments if ts <= instant)


def _in_currency(micro: int, paid_in: str | None, currency: str, rates: dict[str, Fraction]) -> int:
    """A payment in millionths of its invoice's currency (None: paid in it)."""
    return micro if paid_in is None or paid_in == currency else convert_micro(micro, paid_in, currency, rates)


def open_micro(rec: Invoice, instant: float, rates: dict[str, Fraction]) -> int:
    """Open balance at an instant in millionths of the invoice's currency
    (0 before issue, after write-off, and once paid in full)."""
    if rec.amount is None or rec.issued_ts is None or rec.issued_ts > instant:
        return 0
    if rec.written_off_ts is not None and rec.written_off_ts <= instant:
        return 0
    return max(0, rec.amount - paid_by(rec, instant, rates))


def balance_as_of(rec: Invoice, instant: float, rates: dict[str, Fraction]) -> int:
    """Open balance at an instant in CNY fen, for comparing across documents
    (credit exposure): the balance is settled exactly in the invoice's own
    currency first, then converted once."""
    micro = open_micro(rec, instant, rates)
    return fen_of(micro, rec.currency or "CNY", rates) if micro else 0


def payments_in_fen(rec: Invoice, rates: dict[str, Fraction]) -> list[list]:
    """[[ts, fen], ...] by payment time, converted on the running total so that
    an invoice paid in full in its own currency adds up to exactly its amount
    in fen (collection rate compares the two)."""
    currency = rec.currency or "CNY"
    running = converted = 0
    out = []
    for _, ts, micro, paid_in in sorted(rec.payments, key=lambda p: (p[1], p[0])):
        running += _in_currency(micro, paid_in, currency, rates)
        fen = fen_of(running, currency, rates)
        out.append([ts, fen - converted])
        converted = fen
    return out


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
        return _cleared(indicator, subject, rec.evidence, fen_of(max(0, open_at_deadline), currency, rates) / 100,
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
    ), _next_breakpoint(indicator, observed, rec.due_ts, DAY)


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
            running += _in_currency(micro, paid_in, currency, rates)
            if running >= rec.amount:
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


def decided(observations: tuple, now: float | None) -> tuple:
    """The observations the watermark has passed (sorted input, sorted output).

    A price cut is decided only once the clock is past the observation, as an
    event-time window closes at the watermark: every observation up to then
    has arrived, so a late one within the allowed lateness cannot change
    what was decided (DOMAIN §4)."""
    if now is None:
        return EMPTY
    index = bisect.bisect_left(observations, (now,))
    return observations[:index]


def price_finding(
    competitor: str, sku: str, history: PriceHistory, indicator: CompiledIndicator, now: float | None,
) -> tuple[Finding | None, float | None]:
    """(finding, next deadline) for competitor_price_cut over the observations
    the watermark has passed; the deadline is the next observation still
    waiting for it."""
    if not indicator.enabled:
        return None, None
    ready = decided(history.observations, now)
    pending = history.observations[len(ready):]
    deadline = pending[0][0] if pending else None
    if not ready and history.carry is START:
        return None, deadline
    walk = walk_prices(history.carry, ready, indicator.threshold,
                       indicator.params.get("reference") == "our_price")
    subject = {"kind": "price", "id": f"{competitor}/{sku}", "competitor": competitor, "sku": sku}
    if not walk.ever:
        # An observation later than the allowed lateness can still show that
        # an earlier "cut" was measured against a stale reference: an alert
        # raised on it is withdrawn.
        return Finding(indicator, subject, open=False, observed=walk.observed, onset_ts=0.0,
                       evidence=walk.evidence, resolution="withdrawn: a late observation filled the gap"), deadline
    return Finding(
        indicator, subject, open=walk.open, observed=walk.observed, onset_ts=walk.onset_ts or 0.0,
        resolved_ts=None if walk.open else walk.resolved_ts, evidence=walk.evidence, assess_observed=walk.assessed,
        detail=f"{competitor} prices {sku} at {walk.previous.price / 1e6:g}; cut" if walk.previous else "cut",
        resolution=None if walk.open else "price back",
    ), deadline


# --- customers ---------------------------------------------------------------

class Customer(NamedTuple):
    customer_class: str | None
    region: str | None
    sales_rep: str | None
    credit_limit: int | None        # CNY fen
    profile_ts: float | None
    orders: tuple                   # ((ts, fen, order_id, region, event_id[, cancelled_ts]), ...) recent window, sorted
    cancelled: tuple                # order ids
    invoices: tuple                 # invoice ids with receivables to follow
    evidence: tuple                 # profile event id(s)


NEW_CUSTOMER = Customer(None, None, None, None, None, EMPTY, EMPTY, EMPTY, EMPTY)
