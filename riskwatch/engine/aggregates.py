"""Indicators about a group: churn and collection rate per customer segment,
sales-target lag per region.

They are fed segment facts (JSON-able dicts keyed by `segment`) by the
entity engine: in-process directly, in the Kafka worker through a
repartition topic. They are evaluated on a schedule (`evaluate_every`), as of
each scheduled instant, counting only facts up to that instant: when the
clock passes the instant every event up to it has arrived (that is what the
allowed lateness promises), so the result does not depend on arrival order.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from datetime import datetime, timezone
from typing import Callable, MutableMapping

from riskwatch.engine.alertbook import AlertBook, Finding
from riskwatch.engine.clock import Watermark
from riskwatch.rules.loader import RuleSet
from riskwatch.units import span

MEMBER = "gm:"     # churn membership: customer -> (segment, last order ts, previous order ts, event ids,
                   #   purchases fen as of the last order, as of the previous one)
RECEIVABLE = "gi:"  # collection: invoice -> (segment, due ts, fen, ((ts, fen), ...), written off ts, event id)
SALE = "gs:"       # target: order -> (targets, ts, fen, cancelled, event id)
TICK = "gt:"       # last evaluated instant per indicator


DAY_SECONDS = 86400.0


def _day(instant: float) -> int:
    return int(instant // DAY_SECONDS)


def _month_bounds(instant: float) -> tuple[float, float]:
    moment = datetime.fromtimestamp(instant - 1, tz=timezone.utc)
    start = datetime(moment.year, moment.month, 1, tzinfo=timezone.utc)
    days = calendar.monthrange(moment.year, moment.month)[1]
    return start.timestamp(), start.timestamp() + days * 86400.0


class SegmentEngine:
    def __init__(self, rules: RuleSet, state: MutableMapping[str, object] | None = None,
                 lateness_seconds: float = 600.0, clock: Watermark | None = None):
        self.rules = rules
        self.state: MutableMapping[str, object] = {} if state is None else state
        self.clock = clock if clock is not None else Watermark(lateness_seconds)
        self.book = AlertBook(rules, self.state)
        self._members: dict[str, set[str]] = defaultdict(set)
        # segment -> due day -> invoice ids, and the per-day sums already computed:
        # a day whose invoices did not change and saw no payment after the
        # evaluation instant sums the same every time.
        self._receivables: dict[str, dict[int, set[str]]] = defaultdict(lambda: defaultdict(set))
        self._day_sums: dict[tuple[str, int], tuple] = {}
        self._sales: dict[str, set[str]] = defaultdict(set)
        self.rebuild()

    def rebuild(self) -> None:
        """Re-derive the in-memory indexes from state (after recovery)."""
        self._members.clear()
        self._receivables.clear()
        self._day_sums.clear()
        self._sales.clear()
        for key, value in list(self.state.items()):
            if key.startswith(MEMBER):
                self._members[value[0]].add(key[len(MEMBER):])
            elif key.startswith(RECEIVABLE):
                self._receivables[value[0]][_day(value[1])].add(key[len(RECEIVABLE):])
            elif key.startswith(SALE):
                for target in value[0]:
                    self._sales[target].add(key[len(SALE):])

    # --- facts ---------------------------------------------------------------

    def apply(self, fact: dict) -> list[dict]:
        kind = fact["kind"]
        if kind == "activity":
            self._apply_activity(fact)
        elif kind == "left":
            key = MEMBER + fact["customer_id"]
            current = self.state.get(key)
            if current is not None and current[0] == fact["segment"]:
                del self.state[key]
                self._members[fact["segment"]].discard(fact["customer_id"])
        elif kind == "receivable":
            key = RECEIVABLE + fact["invoice_id"]
            value = (fact["segment"], fact["due_ts"], fact["fen"], tuple(tuple(p) for p in fact["payments"]),
                     fact["written_off_ts"], fact["event_id"])
            previous = self.state.get(key)
            if previous is not None:
                self._receivables[previous[0]][_day(previous[1])].discard(fact["invoice_id"])
                self._day_sums.pop((previous[0], _day(previous[1])), None)
            self.state[key] = value
            self._receivables[fact["segment"]][_day(value[1])].add(fact["invoice_id"])
            self._day_sums.pop((fact["segment"], _day(value[1])), None)
        elif kind == "sale":
            key = SALE + fact["order_id"]
            previous = self.state.get(key)
            if fact.get("cancelled"):
                value = (previous[0], previous[1], previous[2], True, previous[4]) if previous is not None \
                    else ((), 0.0, 0, True, fact["event_id"])
            else:
                already_cancelled = previous is not None and previous[3]
                value = (tuple(fact["targets"]), fact["ts"], fact["fen"], already_cancelled, fact["event_id"])
            self.state[key] = value
            for target in value[0]:
                self._sales[target].add(fact["order_id"])
        return []

    def _apply_activity(self, fact: dict) -> None:
        key = MEMBER + fact["customer_id"]
        segment = fact["segment"]
        ts = fact["ts"]
        # The customer's annual purchases as the entity engine reckoned them at
        # this order (facts from before they were carried weigh nothing).
        fen = fact.get("purchases_fen") or 0
        current = self.state.get(key)
        if current is None or current[0] != segment:
            if current is not None:
                self._members[current[0]].discard(fact["customer_id"])
            last, previous, events, last_fen, previous_fen = ts, None, (fact["event_id"],), fen, 0
            if current is not None:
                _, last0, previous0, events0, last_fen0, previous_fen0 = _member(current)
                if ts >= last0:
                    last, previous, last_fen, previous_fen = ts, last0, fen, last_fen0
                else:
                    last, last_fen = last0, last_fen0
                    previous, previous_fen = (ts, fen) if previous0 is None or ts > previous0 else (previous0, previous_fen0)
                events = ((fact["event_id"],) + tuple(events0))[:2]
        else:
            _, last0, previous0, events0, last_fen0, previous_fen0 = _member(current)
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
        self.state[key] = (segment, last, previous, events, last_fen, previous_fen)
        self._members[segment].add(fact["customer_id"])

    # --- the schedule ---------------------------------------------------------

    def advance_to(self, instant: float | None = None) -> list[dict]:
        if instant is not None:
            self.clock.advance_to(instant)
        now = self.clock.now
        if now is None:
            return []
        changes: list[dict] = []
        for indicator_id, evaluate in (
            ("customer_churn_rate", self._churn),
            ("collection_rate", self._collection),
            ("sales_target_lag", self._target_lag),
        ):
            indicator = self.rules.indicators[indicator_id]
            if not indicator.enabled or not indicator.evaluate_every:
                continue
            every = indicator.evaluate_every
            last = self.state.get(TICK + indicator_id)
            if last is None:
                # Start at the last scheduled instant before the clock.
                last = (now // every) * every - every
            tick = last + every
            evaluated = last
            while tick < now:
                changes.extend(evaluate(tick))
                evaluated = tick
                tick += every
            if evaluated != last:
                self.state[TICK + indicator_id] = evaluated
            elif self.state.get(TICK + indicator_id) is None:
                self.state[TICK + indicator_id] = last
        return changes

    def _emit(self, findings: list[Finding], as_of: float) -> list[dict]:
        changes = []
        for finding in findings:
            record = self.book.record(finding, as_of)
            if record is not None:
                changes.append(record)
        return changes

    def _previously_alerted(self, indicator_id: str, kind: str, subject_id: str) -> bool:
        return self.book.has_alert(indicator_id, kind, subject_id)

    def _churn(self, as_of: float) -> list[dict]:
        indicator = self.rules.indicators["customer_churn_rate"]
        window = indicator.params["base_window"]
        churn_after = indicator.params["churn_after"]
        findings = []
        for segment, members in sorted(self._members.items()):
            base = churned = 0
            base_fen = churned_fen = 0    # the same customers weighed by their annual purchases
            evidence: list[str] = []
            for customer_id in members:
                _, last, previous, events, last_fen, previous_fen = _member(self.state[MEMBER + customer_id])
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
                if self._previously_alerted(indicator.id, "segment", segment):
                    findings.append(self._segment_finding(indicator, segment, False, 0.0, as_of, (), "segment base too small"))
                continue
            rate = churned / base
            breached = indicator.breached(rate)
            if breached or self._previously_alerted(indicator.id, "segment", segment):
                findings.append(self._segment_finding(
                    indicator, segment, breached, rate, as_of, tuple(evidence),
                    f"segment {segment}: {churned} of {base} customers without an order for {span(churn_after)}; churn",
                    customer_class=segment if segment in ("A", "B", "C", "D") else None,
                    # What the churned customers bought in a year, of what the base did.
                    amount_cny=churned_fen / 100, reference_cny=base_fen / 100 if base_fen else None,
                ))
        return self._emit(findings, as_of)

    def _collection(self, as_of: float) -> list[dict]:
        indicator = self.rules.indicators["collection_rate"]
        window = indicator.params["window"]
        findings = []
        low = as_of - window
        for segment, days in sorted(self._receivables.items()):
            due_total = collected = count = 0
            evidence: list[str] = []
            for day in [d for d in days if (d + 1) * DAY_SECONDS <= low]:
                # Due before every future window: forget them.
                for invoice_id in days.pop(day):
                    self.state.pop(RECEIVABLE + invoice_id, None)
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
                if self._previously_alerted(indicator.id, "segment", segment):
                    findings.append(self._segment_finding(indicator, segment, False, 1.0, as_of, (), "too few invoices due"))
                continue
            rate = collected / due_total
            breached = indicator.breached(rate)
            if breached or self._previously_alerted(indicator.id, "segment", segment):
                findings.append(self._segment_finding(
                    indicator, segment, breached, rate, as_of, tuple(evidence),
                    f"segment {segment}: {collected / 100:,.0f} of {due_total / 100:,.0f} CNY due in {span(window)} collected; rate",
                    amount_cny=(due_total - collected) / 100, reference_cny=due_total / 100,
                    customer_class=segment if segment in ("A", "B", "C", "D") else None,
                ))
        return self._emit(findings, as_of)

    def _sum_day(self, invoices: set[str], low: float, as_of: float) -> tuple:
        """(count, due, collected, unpaid event ids, latest payment time) of one due day, as of an instant."""
        count = due_total = collected = 0
        unpaid: list[str] = []
        latest = float("-inf")
        for invoice_id in invoices:
            _, due_ts, fen, payments, _, event_id = self.state[RECEIVABLE + invoice_id]
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

    def _target_lag(self, as_of: float) -> list[dict]:
        indicator = self.rules.indicators["sales_target_lag"]
        month_start, month_end = _month_bounds(as_of)
        elapsed = as_of - month_start
        period = datetime.fromtimestamp(month_start, tz=timezone.utc).strftime("%Y-%m")
        previous_period = datetime.fromtimestamp(month_start - 1, tz=timezone.utc).strftime("%Y-%m")
        findings = []
        for target, monthly in sorted(self.rules.targets.items()):
            # Last month's alert closes when the month does.
            closing_id = f"{target}@{previous_period}"
            if as_of - month_start < 86400 * 1.5 and self._open(indicator.id, "target", closing_id):
                findings.append(self._segment_finding(
                    indicator, closing_id, False, 0.0, as_of, (), "month closed", kind="target",
                    extra_subject={"target": target, "period": previous_period}, resolution="month closed"))
            if elapsed < indicator.params["min_elapsed"]:
                continue
            sold = 0
            for order_id in list(self._sales.get(target, ())):
                targets, ts, fen, cancelled, _ = self.state[SALE + order_id]
                if ts < month_start - 40 * 86400:
                    self._sales[target].discard(order_id)
                    continue
                if not cancelled and month_start <= ts <= as_of:
                    sold += fen
            expected = monthly * 100 * (elapsed / (month_end - month_start))
            lag = 1.0 - sold / expected if expected > 0 else 0.0
            subject_id = f"{target}@{period}"
            breached = indicator.breached(lag)
            if breached or self._previously_alerted(indicator.id, "target", subject_id):
                findings.append(self._segment_finding(
                    indicator, subject_id, breached, lag, as_of, (),
                    f"{target} {period}: {sold / 100:,.0f} CNY sold against {expected / 100:,.0f} CNY pro-rated target; lag",
                    kind="target", amount_cny=max(0.0, (expected - sold) / 100), reference_cny=expected / 100,
                    extra_subject={"target": target, "period": period},
                    region=None if target == "all" else target,
                ))
        return self._emit(findings, as_of)

    def _open(self, indicator_id: str, kind: str, subject_id: str) -> bool:
        record = self.book.current(indicator_id, kind, subject_id)
        return record is not None and record.status == "open"

    def _segment_finding(self, indicator, subject_id, breached, observed, as_of, evidence, detail,
                         kind="segment", amount_cny=None, customer_class=None, extra_subject=None,
                         region=None, resolution=None, reference_cny=None) -> Finding:
        subject = {"kind": kind, "id": subject_id}
        if kind == "segment":
            subject["segment"] = subject_id
        subject.update(extra_subject or {})
        return Finding(
            indicator, subject, open=breached, observed=observed, onset_ts=None,
            resolved_ts=None if breached else as_of, amount_cny=amount_cny, reference_cny=reference_cny,
            customer_class=customer_class, region=region, evidence=evidence, detail=detail,
            resolution=None if breached else (resolution or "back within threshold"),
        )


def _member(value: tuple) -> tuple:
    """A churn membership record; one kept before purchases were carried weighs nothing."""
    return value if len(value) == 6 else (*value[:4], 0, 0)


SegmentSink = Callable[[dict], None]
