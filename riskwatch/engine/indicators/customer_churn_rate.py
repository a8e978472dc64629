"""customer_churn_rate: the share of a segment's customers (by customer class)
without an order for `churn_after` (90 days), among those with an order in
`base_window` (365 days), for segments of at least `min_base` customers
(DOMAIN §4 "Churn"; rules/indicators.yaml `customer_churn_rate`).

Fed segment facts (`activity`: an order, with the customer's annual
purchases that weigh it; `left`: a customer moved to another segment) by
the entity engine, in the Kafka worker through a repartition topic keyed by
segment. Evaluated on a schedule (daily), as of each instant.

State: `gm:<customer_id>` -> (segment, last order ts, previous order ts,
event ids, purchases fen as of the last order, as of the previous one)."""

from __future__ import annotations

from collections import defaultdict

from riskwatch.engine.alertbook import Finding
from riskwatch.engine.indicators.base import ON_FACT, ON_SCHEDULE, Context, Indicator, IndicatorSpec, register
from riskwatch.engine.indicators.findings import group_finding
from riskwatch.engine.records import Member, decode, encode
from riskwatch.units import span

MEMBER = "gm:"

SPEC = IndicatorSpec(
    id="customer_churn_rate", subject="segment", unit="ratio", evaluated=(ON_FACT, ON_SCHEDULE),
    consumes=("activity", "left"),
    params={"base_window": "365d", "churn_after": "90d", "min_base": 10},
    duration_params=frozenset({"base_window", "churn_after"}),
    references=("segment_trailing_12m_purchases",), evaluate_every="1d",
)


@register
class CustomerChurnRate(Indicator):
    spec = SPEC

    def __init__(self, indicator, context: Context):
        super().__init__(indicator, context)
        self._members: dict[str, set[str]] = defaultdict(set)

    def rebuild(self) -> None:
        self._members.clear()
        for key, value in list(self.context.state.items()):
            if key.startswith(MEMBER):
                self._members[member_record(value).segment].add(key[len(MEMBER):])

    def apply(self, fact: dict) -> None:
        """A segment fact of kind `activity` or `left` (docs/contracts-internal.md)."""
        if fact["kind"] == "activity":
            self._apply_activity(fact)
            return
        key = MEMBER + fact["customer_id"]
        current = self.context.state.get(key)
        if current is not None and member_record(current).segment == fact["segment"]:
            del self.context.state[key]
            self._members[fact["segment"]].discard(fact["customer_id"])

    def _apply_activity(self, fact: dict) -> None:
        key = MEMBER + fact["customer_id"]
        segment = fact["segment"]
        ts = fact["ts"]
        # The customer's annual purchases as the entity engine reckoned them at
        # this order (facts from before they were carried weigh nothing).
        fen = fact.get("purchases_fen") or 0
        held = self.context.state.get(key)
        current = None if held is None else member_record(held)
        if current is None or current.segment != segment:
            if current is not None:
                self._members[current.segment].discard(fact["customer_id"])
            last, previous, events, last_fen, previous_fen = ts, None, (fact["event_id"],), fen, 0
            if current is not None:
                _, last0, previous0, events0, last_fen0, previous_fen0 = current
                if ts >= last0:
                    last, previous, last_fen, previous_fen = ts, last0, fen, last_fen0
                else:
                    last, last_fen = last0, last_fen0
                    previous, previous_fen = (ts, fen) if previous0 is None or ts > previous0 else (previous0, previous_fen0)
                events = ((fact["event_id"],) + tuple(events0))[:2]
        else:
            _, last0, previous0, events0, last_fen0, previous_fen0 = current
            if fact["event_id"] in events0 and ts in (last0, previous0):
                return
            if ts >= last0:
                last, previous, last_fen, previous_fen = ts, last0, fen, last_fen0
                events = (fact["event_id"],) + tuple(events0[:1])
            elif previous0 is None or ts > previous0:
                last, previous, last_fen, previous_fen = last0, ts, last_fen0, fen
                events = tuple(events0[:1]) + (fact["event_id"],)
            else:
                return
        self.context.state[key] = encode(Member(segment, last, previous, events, last_fen, previous_fen))
        self._members[segment].add(fact["customer_id"])

    def evaluate(self, as_of: float) -> list[Finding]:
        indicator = self.indicator
        window = indicator.params["base_window"]
        churn_after = indicator.params["churn_after"]
        findings = []
        for segment, members in sorted(self._members.items()):
            base = churned = 0
            base_fen = churned_fen = 0    # the same customers weighed by their annual purchases
            evidence: list[str] = []
            for customer_id in members:
                _, last, previous, events, last_fen, previous_fen = member_record(self.context.state[MEMBER + customer_id])
                event_id = events[0] if events else None
                if last > as_of:
                    last, last_fen, event_id = previous, previous_fen, (events[1] if len(events) > 1 else None)
                if last is None or as_of - last > window:
                    continue
                base += 1
                base_fen += last_fen
                if as_of - last > churn_after:
                    churned += 1
                    churned_fen += last_fen
                    if event_id is not None:
                        evidence.append(event_id)
            evidence = sorted(evidence)[:20]
            if base < indicator.params["min_base"]:
                if self.context.book.has_alert(indicator.id, "segment", segment):
                    findings.append(group_finding(indicator, segment, False, 0.0, as_of, (), "segment base too small"))
                continue
            rate = churned / base
            breached = indicator.breached(rate)
            if breached or self.context.book.has_alert(indicator.id, "segment", segment):
                findings.append(group_finding(
                    indicator, segment, breached, rate, as_of, tuple(evidence),
                    f"segment {segment}: {churned} of {base} customers without an order for {span(churn_after)}; churn",
                    customer_class=segment if segment in ("A", "B", "C", "D") else None,
                    # What the churned customers bought in a year, of what the base did.
                    amount_cny=churned_fen / 100, reference_cny=base_fen / 100 if base_fen else None,
                ))
        return findings



def member_record(value: tuple) -> Member:
    """A churn membership record; one kept before purchases were carried weighs nothing."""
    return decode(Member, value)
