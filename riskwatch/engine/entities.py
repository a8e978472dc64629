"""Per-entity facts: what the engine keeps about each shipment, invoice,
competitor price and customer, and the money arithmetic over them. What
the facts imply is the indicators' business (riskwatch/engine/indicators/).

Each entity (shipment, invoice, competitor price, customer) keeps the facts
seen about it as a small tuple in the state mapping. Facts merge
commutatively (a payment is a payment whatever arrives first), and every
finding is a pure function of (facts, clock): that is what makes duplicates
harmless and arrival order within the allowed lateness irrelevant.
Tuples are replaced, never mutated, so a faust Table persists every change.
"""

from __future__ import annotations

import sys
from fractions import Fraction
from decimal import Decimal

from riskwatch.engine.records import Invoice
from riskwatch.errors import RiskwatchError

HOUR = 3600.0
DAY = 86400.0


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

def newer_revision(candidate: tuple, holding: tuple | None) -> bool:
    """Whether a revision (occurred_at, event_id) replaces the one holding.

    The latest event time holds whatever the arrival order (DOMAIN §3
    "Revisions"); equal times are settled by event id, so that too does not
    depend on arrival."""
    return holding is None or candidate > holding


# --- invoices ----------------------------------------------------------------

def paid_by(rec: Invoice, instant: float, rates: dict[str, Fraction]) -> int:
    """Paid up to an instant, in millionths of the invoice's currency: exact
    for payments in that currency (or none stated), converted at the rules'
    rates otherwise."""
    currency = rec.currency or "CNY"
    return sum(in_currency(micro, paid_in, currency, rates) for _, ts, micro, paid_in in rec.payments if ts <= instant)


def in_currency(micro: int, paid_in: str | None, currency: str, rates: dict[str, Fraction]) -> int:
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


def receivable_in_fen(rec: Invoice, rates: dict[str, Fraction]) -> tuple[int, list[list]]:
    """(amount, [[ts, fen], ...] payments) of an invoice in CNY fen, as a
    segment's collection rate counts it: what the receivable fact carries
    to the worker's segment engine and what an in-process one reads."""
    return fen_of(rec.amount, rec.currency or "CNY", rates), payments_in_fen(rec, rates)


def payments_in_fen(rec: Invoice, rates: dict[str, Fraction]) -> list[list]:
    """[[ts, fen], ...] by payment time, converted on the running total so that
    an invoice paid in full in its own currency adds up to exactly its amount
    in fen (collection rate compares the two)."""
    currency = rec.currency or "CNY"
    running = converted = 0
    out = []
    for _, ts, micro, paid_in in sorted(rec.payments, key=lambda p: (p[1], p[0])):
        running += in_currency(micro, paid_in, currency, rates)
        fen = fen_of(running, currency, rates)
        out.append([ts, fen - converted])
        converted = fen
    return out


# --- competitor prices -------------------------------------------------------

# --- customers ---------------------------------------------------------------
