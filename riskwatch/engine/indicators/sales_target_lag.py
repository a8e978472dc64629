"""sales_target_lag: how far a region's (or the whole company's) sales in the
month so far lag the pro-rated monthly target (rules/targets.yaml; rules/
indicators.yaml `sales_target_lag`), from `min_elapsed` (7 days) into the
month; last month's alert closes when the month does.

Fed `sale` segment facts (an order, or its cancellation) by the entity
engine. Evaluated on a schedule (daily), as of each instant.

State: `gs:<order_id>` -> (targets, ts, fen, cancelled, event id)."""

from __future__ import annotations

import calendar
from collections import defaultdict
from datetime import datetime, timezone

from riskwatch.engine.alertbook import Finding
from riskwatch.engine.indicators.base import ON_FACT, ON_SCHEDULE, Context, Indicator, IndicatorSpec, register
from riskwatch.engine.indicators.findings import group_finding
from riskwatch.engine.records import Sale, decode, encode

SALE = "gs:"

SPEC = IndicatorSpec(
    id="sales_target_lag", subject="target", unit="ratio", evaluated=(ON_FACT, ON_SCHEDULE),
    consumes=("sale",), params={"min_elapsed": "7d"}, duration_params=frozenset({"min_elapsed"}),
    references=("target_to_date",), evaluate_every="1d",
)


def _month_bounds(instant: float) -> tuple[float, float]:
    moment = datetime.fromtimestamp(instant - 1, tz=timezone.utc)
    start = datetime(moment.year, moment.month, 1, tzinfo=timezone.utc)
    days = calendar.monthrange(moment.year, moment.month)[1]
    return start.timestamp(), start.timestamp() + days * 86400.0


@register
class SalesTargetLag(Indicator):
    spec = SPEC

    def __init__(self, indicator, context: Context):
        super().__init__(indicator, context)
        self._sales: dict[str, set[str]] = defaultdict(set)

    def rebuild(self) -> None:
        self._sales.clear()
        for key, value in list(self.context.state.items()):
            if key.startswith(SALE):
                for target in decode(Sale, value).targets:
                    self._sales[target].add(key[len(SALE):])

    def apply(self, fact: dict) -> None:
        """A `sale` segment fact (docs/contracts-internal.md): an order, or its cancellation, whatever came first."""
        state = self.context.state
        key = SALE + fact["order_id"]
        held = state.get(key)
        previous = None if held is None else decode(Sale, held)
        if fact.get("cancelled"):
            value = previous._replace(cancelled=True) if previous is not None \
                else Sale((), 0.0, 0, True, fact["event_id"])
        else:
            already_cancelled = previous is not None and previous.cancelled
            value = Sale(tuple(fact["targets"]), fact["ts"], fact["fen"], already_cancelled, fact["event_id"])
        state[key] = encode(value)
        for target in value.targets:
            self._sales[target].add(fact["order_id"])

    def evaluate(self, as_of: float) -> list[Finding]:
        indicator = self.indicator
        month_start, month_end = _month_bounds(as_of)
        elapsed = as_of - month_start
        period = datetime.fromtimestamp(month_start, tz=timezone.utc).strftime("%Y-%m")
        previous_period = datetime.fromtimestamp(month_start - 1, tz=timezone.utc).strftime("%Y-%m")
        findings = []
        for target, monthly in sorted(self.context.rules.targets.items()):
            # Last month's alert closes when the month does.
            closing_id = f"{target}@{previous_period}"
            if as_of - month_start < 86400 * 1.5 and self.context.book.is_open(indicator.id, "target", closing_id):
                findings.append(group_finding(
                    indicator, closing_id, False, 0.0, as_of, (), "month closed", kind="target",
                    extra_subject={"target": target, "period": previous_period}, resolution="month closed"))
            if elapsed < indicator.params["min_elapsed"]:
                continue
            sold = 0
            for order_id in list(self._sales.get(target, ())):
                targets, ts, fen, cancelled, _ = decode(Sale, self.context.state[SALE + order_id])
                if ts < month_start - 40 * 86400:
                    self._sales[target].discard(order_id)
                    continue
                if not cancelled and month_start <= ts <= as_of:
                    sold += fen
            expected = monthly * 100 * (elapsed / (month_end - month_start))
            lag = 1.0 - sold / expected if expected > 0 else 0.0
            subject_id = f"{target}@{period}"
            breached = indicator.breached(lag)
            if breached or self.context.book.has_alert(indicator.id, "target", subject_id):
                findings.append(group_finding(
                    indicator, subject_id, breached, lag, as_of, (),
                    f"{target} {period}: {sold / 100:,.0f} CNY sold against {expected / 100:,.0f} CNY pro-rated target; lag",
                    kind="target", amount_cny=max(0.0, (expected - sold) / 100), reference_cny=expected / 100,
                    extra_subject={"target": target, "period": period},
                    region=None if target == "all" else target,
                ))
        return findings

