"""Money is exact in its document's currency (DOMAIN §3 "Money"): any split of
an invoice into payments in its currency settles it to the last cent, in any
currency the rules carry a rate for; conversion to CNY never leaves a residue
that reads as an open balance."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from riskwatch import testing as t
from riskwatch.testing import Scenario, default_rules

ISSUED = datetime(2024, 1, 2, 9, 0, tzinfo=timezone.utc)
DUE = ISSUED + timedelta(days=30)

currencies = st.sampled_from(sorted(default_rules().currency_rates))
cents = st.integers(min_value=1, max_value=10**11)


@st.composite
def split(draw) -> tuple[int, list[int]]:
    """An amount in cents and a split of it into 1–6 positive parts."""
    total = draw(cents)
    parts = draw(st.integers(1, min(6, total)))
    cuts = sorted(draw(st.lists(st.integers(1, total - 1), min_size=parts - 1, max_size=parts - 1, unique=True))) if parts > 1 else []
    bounds = [0, *cuts, total]
    return total, [b - a for a, b in zip(bounds, bounds[1:]) if b > a]


def money(cents_: int) -> str:
    return str(Decimal(cents_) / 100)


@settings(max_examples=150, deadline=None)
@given(split(), currencies, st.booleans())
def test_any_split_of_an_invoice_into_payments_in_its_currency_settles_it(invoice, currency, state_currency):
    total, parts = invoice
    events = [t.invoice_issued("INV-S", "C1", money(total), currency=currency, due_at=DUE, at=ISSUED)]
    for n, part in enumerate(parts):
        # Exports often leave the payment's currency out; some state it.
        events.append(t.payment_received("INV-S", "C1", money(part), currency=currency if state_currency else None,
                                         at=ISSUED + timedelta(days=1, minutes=n)))
    story = Scenario().feed(*events).advance_to(DUE + timedelta(days=400))
    assert story.rejections == []
    assert story.alerts() == []


@settings(max_examples=100, deadline=None)
@given(split(), currencies)
def test_one_cent_short_stays_open_in_any_currency(invoice, currency):
    total, parts = invoice
    events = [t.invoice_issued("INV-S", "C1", money(total + 1), currency=currency, due_at=DUE, at=ISSUED)]
    for n, part in enumerate(parts):
        events.append(t.payment_received("INV-S", "C1", money(part), at=ISSUED + timedelta(days=1, minutes=n)))
    story = Scenario().feed(*events).advance_to(DUE + timedelta(days=31))
    [alert] = story.alerts("payment_overdue")
    assert alert["status"] == "open"
    assert f"0.01 {currency}" in alert["summary"]
