"""collection_rate: the share of what fell due in a segment over the last
`window` (30 days) that was collected by the evaluation instant, for
segments with at least `min_invoices` invoices due (rules/indicators.yaml
`collection_rate`).

Fed `receivable` segment facts (an invoice's due date, amount in fen and
payments) by the entity engine. Evaluated on a schedule (daily), as of each
instant, counting payments up to it.

State: `gi:<invoice_id>` -> (segment, due ts, fen, ((ts, fen), ...), written
off ts, event id) in the worker; in one process with the entity engine
(`Context.facts`), only (segment, due day), the amounts read from the
invoice record. In memory, the invoices by segment and due day and the sums
of whole days already computed."""

from __future__ import annotations

from collections import defaultdict

from riskwatch.engine.alertbook import Finding
from riskwatch.engine.indicators.base import ON_FACT, ON_SCHEDULE, Context, Indicator, IndicatorSpec, register
from riskwatch.engine.indicators.findings import group_finding
from riskwatch.engine.entities import receivable_in_fen
from riskwatch.engine.records import Receivable, ReceivablePlace, decode, encode
from riskwatch.units import span

RECEIVABLE = "gi:"
DAY_SECONDS = 86400.0

SPEC = IndicatorSpec(
    id="collection_rate", subject="segment", unit="ratio", evaluated=(ON_FACT, ON_SCHEDULE),
    consumes=("receivable", "receivable_left"), params={"window": "30d", "min_invoices": 5},
    duration_params=frozenset({"window"}), references=("segment_amount_due",), evaluate_every="1d",
)


def _day(instant: float) -> int:
    return int(instant // DAY_SECONDS)


@register
class CollectionRate(Indicator):
    spec = SPEC

    def __init__(self, indicator, context: Context):
        super().__init__(indicator, context)
        # segment -> due day -> state keys (`gi:<invoice_id>`), and the per-day sums already computed:
        # a day whose invoices did not change and saw no payment after the
        # evaluation instant sums the same every time.
        self._receivables: dict[str, dict[int, set[str]]] = defaultdict(lambda: defaultdict(set))
        self._day_sums: dict[tuple[str, int], tuple] = {}
        # In one process the invoice records are at hand: keep where each is
        # counted, one shared (segment, due day) tuple, not a copy of it.
        self._invoices = context.facts
        self._places: dict[tuple[str, int], ReceivablePlace] = {}

    def rebuild(self) -> None:
        self._receivables.clear()
        self._day_sums.clear()
        for key, value in list(self.context.state.items()):
            if key.startswith(RECEIVABLE):
                segment, day = self._place_of(value)
                self._receivables[segment][day].add(key)

    def apply(self, fact: dict) -> None:
        """A `receivable` segment fact (docs/contracts-internal.md); the latest replaces the one before.
        A `receivable_left` fact takes the invoice out of `fact["segment"]` (its
        customer moved to another segment, whose engine may be on another
        partition) unless a later fact already placed it elsewhere."""
        state = self.context.state
        key = RECEIVABLE + fact["invoice_id"]
        held = state.get(key)
        previous = None if held is None else self._place_of(held)
        if fact["kind"] == "receivable_left":
            if previous is not None and previous[0] == fact["segment"]:
                del state[key]
                self._unindex(key, *previous)
            return
        segment, day = fact["segment"], _day(fact["due_ts"])
        if self._invoices is None:
            state[key] = encode(Receivable(segment, fact["due_ts"], fact["fen"],
                                           tuple(tuple(p) for p in fact["payments"]), fact["written_off_ts"],
                                           fact["event_id"]))
        else:
            place = self._places.get((segment, day))
            if place is None:
                place = self._places[(segment, day)] = ReceivablePlace(segment, day)
            state[key] = place
        self._day_sums.pop((segment, day), None)
        if previous is not None:
            if previous == (segment, day):
                # Left as it is, the index keeps the key object the state
                # mapping holds: one string per receivable, not two.
                return
            self._unindex(key, *previous)
        self._receivables[segment][day].add(key)

    def _place_of(self, value) -> tuple[str, int]:
        if self._invoices is not None:
            return decode(ReceivablePlace, value)
        receivable = decode(Receivable, value)
        return receivable.segment, _day(receivable.due_ts)

    def _unindex(self, key: str, segment: str, day: int) -> None:
        self._receivables[segment][day].discard(key)
        self._day_sums.pop((segment, day), None)

    def evaluate(self, as_of: float) -> list[Finding]:
        indicator = self.indicator
        window = indicator.params["window"]
        findings = []
        low = as_of - window
        for segment, days in sorted(self._receivables.items()):
            due_total = collected = count = 0
            evidence: list[str] = []
            for day in [d for d in days if (d + 1) * DAY_SECONDS <= low]:
                # Due before every future window: forget them.
                for key in days.pop(day):
                    self.context.state.pop(key, None)
                self._day_sums.pop((segment, day), None)
            for day in range(_day(low), _day(as_of) + 1):
                invoices = days.get(day)
                if not invoices:
                    continue
                whole_day = day * DAY_SECONDS > low and (day + 1) * DAY_SECONDS <= as_of
                sums = self._day_sums.get((segment, day)) if whole_day else None
                if sums is None:
                    sums = self._sum_day(invoices, low, as_of)
                    if whole_day and sums[4] <= as_of:
                        self._day_sums[(segment, day)] = sums
                count += sums[0]
                due_total += sums[1]
                collected += sums[2]
                evidence.extend(sums[3])
            evidence = sorted(evidence)[:20]
            if count < indicator.params["min_invoices"] or due_total <= 0:
                if self.context.book.has_alert(indicator.id, "segment", segment):
                    findings.append(group_finding(indicator, segment, False, 1.0, as_of, (), "too few invoices due"))
                continue
            rate = collected / due_total
            breached = indicator.breached(rate)
            if breached or self.context.book.has_alert(indicator.id, "segment", segment):
                findings.append(group_finding(
                    indicator, segment, breached, rate, as_of, tuple(evidence),
                    f"segment {segment}: {collected / 100:,.0f} of {due_total / 100:,.0f} CNY due in {span(window)} collected; rate",
                    amount_cny=(due_total - collected) / 100, reference_cny=due_total / 100,
                    customer_class=segment if segment in ("A", "B", "C", "D") else None,
                ))
        return findings


    def _sum_day(self, keys: set[str], low: float, as_of: float) -> tuple:
        """(count, due, collected, unpaid event ids, latest payment time) of one due day, as of an instant."""
        count = due_total = collected = 0
        unpaid: list[str] = []
        latest = float("-inf")
        for key in keys:
            _, due_ts, fen, payments, _, event_id = self._receivable(key)
            if not low < due_ts <= as_of:
                continue
            count += 1
            due_total += fen
            paid = 0
            for ts, amount in payments:
                if ts > latest:
                    latest = ts
                if ts <= as_of:
                    paid += amount
            collected += min(fen, paid)
            if paid < fen:
                unpaid.append(event_id)
        return count, due_total, collected, tuple(sorted(unpaid)[:20]), latest

    def _receivable(self, key: str) -> Receivable:
        if self._invoices is None:
            return decode(Receivable, self.context.state[key])
        # What the entity engine's receivable fact carried (core.Engine._send_receivable).
        rec = self._invoices.invoice(key[len(RECEIVABLE):])
        fen, payments = receivable_in_fen(rec, self._invoices.rates)
        place = decode(ReceivablePlace, self.context.state[key])
        return Receivable(place.segment, rec.due_ts, fen, tuple(tuple(p) for p in payments), rec.written_off_ts,
                          rec.evidence[0])
