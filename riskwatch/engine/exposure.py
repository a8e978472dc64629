"""A customer's purchases by month: the business reference that the impact of
customer-level risk is measured against (`customer_trailing_12m_purchases`
in rules/indicators.yaml).

Impact is the share of a reference at stake (docs/decisions.md, "Impact is a
share"): an overdue invoice of 2 % of what its customer buys in a year is a
frontline matter, 40 % is a crisis. The reference of a customer is what it
bought in the 12 full calendar months before the instant a risk is measured
at. The month in progress is left out: when the clock is in a month, every
order of the months before it has arrived (that is what the allowed lateness
promises), so the reference does not depend on arrival order.

A customer seen for fewer than 12 full months (a new customer, or a service
started recently) is measured against its annualized purchases over the full
months seen, and never against less than its class's floor
(`references.customer_trailing_12m_purchases.floor_by_class`). The first
month seen is partial and not counted.

State: one tuple per customer under `x:<customer_id>`:
`(first month seen, newest month, fen of the newest month, fen of the month
before, ...)`, months numbered `year * 12 + month - 1` (UTC), at most
KEEP_MONTHS amounts: bounded whatever the customer's history.
"""

from __future__ import annotations

import time
from typing import MutableMapping

from riskwatch.engine.alertbook import AlertBook, Finding
from riskwatch.rules.loader import RuleSet

PURCHASES = "x:"
CUSTOMER_REFERENCE = "customer_trailing_12m_purchases"
WINDOW_MONTHS = 12
# The window's 12 months, the month in progress, and one more for an order
# dated in the next month while the clock is still in this one.
KEEP_MONTHS = WINDOW_MONTHS + 2


def month_of(ts: float) -> int:
    """The UTC calendar month of an instant (epoch seconds), as year * 12 + month - 1."""
    moment = time.gmtime(ts)
    return moment.tm_year * 12 + moment.tm_mon - 1


def record_order(state: MutableMapping[str, object], customer_id: str, ts: float, fen: int) -> None:
    """Add an order's amount (CNY fen; 0 for an order cancelled before it was
    seen, negative to take a cancelled order back) to its customer's month.

    Any order placed, cancelled or not, makes its month one the customer was
    seen in (a cancellation does not undo that, so the first month seen does
    not depend on whether the order or its cancellation came first). Months
    older than the kept window are dropped."""
    key = PURCHASES + customer_id
    month = month_of(ts)
    rec = state.get(key)
    if rec is None:
        if fen >= 0:
            state[key] = (month, month, fen)
        return
    first, newest, amounts = rec[0], rec[1], list(rec[2:])
    if month > newest:
        amounts = [0] * (month - newest) + amounts
        newest = month
    index = newest - month
    if index < KEEP_MONTHS:
        amounts.extend([0] * (index + 1 - len(amounts)))
        amounts[index] = max(0, amounts[index] + fen)
    state[key] = (min(first, month) if fen >= 0 else first, newest, *amounts[:KEEP_MONTHS])


def order_placed(state: MutableMapping[str, object], customer, customer_id: str, ts: float, fen: int,
                 dedupe_window: float, cancelled: bool) -> None:
    """Count a new order unless a cancellation for it arrived first (`cancelled`).

    `customer` is the Customer before the order (riskwatch/engine/entities.py);
    it remembers the orders of the last `dedupe_window` seconds, which is how a
    redelivered order is recognised. An order older than that, arriving now,
    cannot be told from a redelivery (a re-imported export) and is not counted:
    counting it twice would inflate the reference."""
    if customer.recent and ts < customer.recent[-1][0] - dedupe_window:
        return
    record_order(state, customer_id, ts, 0 if cancelled else fen)


def order_cancelled(state: MutableMapping[str, object], customer_id: str, placed_ts: float, fen: int) -> None:
    """Take a cancelled order (placed at `placed_ts`, `fen` CNY fen) back out of
    its month; a cancellation seen before its order is handled by `order_placed`."""
    record_order(state, customer_id, placed_ts, -fen)


def purchases_in_window(rec: tuple | None, month: int) -> tuple[int, int]:
    """(CNY fen, full months counted): purchases in the full months of the 12
    before `month` that follow the first month seen."""
    if rec is None:
        return 0, 0
    first, newest, amounts = rec[0], rec[1], rec[2:]
    start = max(first + 1, month - WINDOW_MONTHS)
    if start >= month:
        return 0, 0
    total = 0
    for index in range(newest - month + 1, newest - start + 1):
        if 0 <= index < len(amounts):
            total += amounts[index]
    return total, month - start


def customer_reference_cny(state: MutableMapping[str, object], rules: RuleSet, customer_id: str,
                           customer_class: str | None, instant: float) -> float:
    """`customer_trailing_12m_purchases` of a customer as of an instant, in CNY.

    12 full months seen: what they add up to (0 for a customer that stopped
    buying a year ago: then any amount at stake is all of it). Fewer: the
    purchases annualized, but at least the class's floor."""
    total, months = purchases_in_window(state.get(PURCHASES + customer_id), month_of(instant))
    if months >= WINDOW_MONTHS:
        return total / 100
    floor = rules.references.customer_trailing_12m_purchases.floor_by_class.get(customer_class)
    annualized = total * WINDOW_MONTHS / months / 100 if months else 0.0
    return max(floor, annualized)


def uses_customer_reference(rules: RuleSet, indicator_id: str) -> bool:
    indicator = rules.indicators[indicator_id]
    return any(spec.reference == CUSTOMER_REFERENCE
               for spec in (indicator.probability, indicator.impact, indicator.controllability))


def attach_reference(state: MutableMapping[str, object], rules: RuleSet, finding: Finding, now: float | None,
                     book: AlertBook) -> None:
    """Set a customer-level finding's `reference_cny`, when its rules ask for one.

    Measured as of the instant the condition began (an overdue invoice's
    deadline), or of the evaluation for scheduled checks. While the alert
    stays open it keeps the reference it was raised with, so its tier moves
    with the money at stake, not with the customer's later orders or with
    months leaving the window (and a restart that re-evaluates it changes
    nothing)."""
    if not finding.open and finding.resolved_ts is None:
        return    # it can only close an alert, which keeps the assessment it was worked under
    indicator = finding.indicator
    customer_id = finding.subject.get("customer_id")
    if customer_id is None or finding.reference_cny is not None or not uses_customer_reference(rules, indicator.id):
        return
    previous = book.current(indicator.id, finding.subject["kind"], finding.subject["id"])
    if previous is not None and previous.status == "open" and previous.impact_reference_cny is not None:
        finding.reference_cny = previous.impact_reference_cny
        return
    instant = finding.onset_ts or now
    if instant is None:
        return
    finding.reference_cny = round(customer_reference_cny(state, rules, customer_id, finding.customer_class, instant), 2)


def purchases_fact(state: MutableMapping[str, object], rules: RuleSet, customer_id: str,
                   customer_class: str | None, ts: float) -> int:
    """The customer's reference in CNY fen as of an instant, for the segment
    facts: churn weighs each customer of a segment by it
    (`segment_trailing_12m_purchases`), on whichever worker the segment is.

    The engine passes an order's time less the allowed lateness: every order
    before that has arrived when the order is read, so the weight does not
    depend on arrival order even for an order in a month's first minutes."""
    return int(round(customer_reference_cny(state, rules, customer_id, customer_class, ts) * 100))
