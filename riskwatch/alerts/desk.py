"""The alert desk: where alerts are worked.

It wires the pure lifecycle fold to the append-only store: engine alert
changes come in through `ingest`, people's actions through `act` /
`trigger_plan`, and `tick(now)` records what the clock made due (escalation,
end of snooze, hysteresis, re-notification, overdue reviews). Every record
is appended before it is folded, so the state after a restart is the state
before it. `notify` (e.g. the Alertmanager sink) sees the alert as it should
be shown after each change, whichever process recorded it.

The desk never reads a clock: callers pass `now`. Deadlines are measured
on the service clock (DOMAIN §4, the event-time watermark) in every mode:
`riskwatch run` ticks with its engine's watermark and records it in the
store (`keep_clock`); the API on the same store ticks with what it recorded
(`service_clock`); in the Kafka deployment the worker ticks with the shared
watermark. People's actions are stamped with the time they were made.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from typing import Callable, Iterable

from riskwatch.alerts import lifecycle
from riskwatch.alerts.actions import isoformat, make_action, parse_instant
from riskwatch.alerts.lifecycle import ActionRefused, Ledger
from riskwatch.alerts.store import StoreError, WorkflowStore
from riskwatch.contracts import SYSTEM_ROLE, Action, AlertChange
from riskwatch.engine.indicators import spec_of
from riskwatch.engine.indicators.base import UnknownIndicator
from riskwatch.rules.response import ResponseRules
from riskwatch.units import reading
from riskwatch.errors import RiskwatchError

log = logging.getLogger(__name__)

# Changes that alter what Alertmanager (or any sink) should show.
_SHOWN_ACTIONS = frozenset({
    "acknowledge", "start", "step_done", "step_skipped", "snooze", "unsnooze", "resolve",
    "escalate", "renotify", "snooze_ended", "tier_lowered",
})


class InvalidField(RiskwatchError, ValueError):
    """A request field whose value the rules refuse (HTTP 422 naming the field)."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class FundExceeded(ActionRefused):
    """A commitment the fund's budget period has not got left (HTTP 409);
    `facts` (period, left, cap, committed, currency; amounts as decimal
    strings) go into the answer beside the reason."""

    def __init__(self, reason: str, **facts: str):
        super().__init__(reason)
        self.facts = facts


def _money(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01")))


class AlertDesk:
    def __init__(
        self,
        rules: ResponseRules,
        store: WorkflowStore | None = None,
        *,
        metrics=None,
        notify: Callable[[dict], None] | None = None,
    ):
        self.rules = rules
        self.store = store
        self.metrics = metrics
        self._late_counted: set[tuple] = set()
        self.notify = notify
        self.ledger = Ledger()
        self._seq = 0
        self._last_tick: tuple | None = None
        self._memory_log: list[tuple[str, dict]] = []  # without a store: the audit trail in memory
        # Plan claims the log's order refused (the Kafka deployment): plan_id -> why.
        self.refused_claims: dict[str, ActionRefused | InvalidField] = {}
        if store is not None:
            self._catch_up(notify=False)
        if notify is not None:
            for item in self.ledger.alerts.values():
                if item["status"] != "resolved":
                    notify(lifecycle.notification_view(item))

    # ------------------------------------------------------------------ log

    def _catch_up(self, notify: bool = True) -> None:
        if self.store is None:
            return
        for seq, kind, record in self.store.read_after(self._seq):
            self._seq = seq
            self._fold(kind, record, notify)

    def _fold(self, kind: str, record: dict, notify: bool = True) -> None:
        """Fold one record of the log (its JSON: the log is the boundary where
        records become `AlertChange` / `Action`)."""
        try:
            if kind == "alert_change":
                item = lifecycle.apply_change(self.ledger, AlertChange.from_json(record), self.rules)
            else:
                action = Action.from_json(record)
                if action.kind == "plan_triggered" and "claim" in action.data:
                    action = self._decide_claim(action)
                    if action is None:
                        return
                lifecycle.apply_action(self.ledger, action, self.rules)
                item = self.ledger.alerts.get(action.alert_id or "")
                if action.kind not in _SHOWN_ACTIONS:
                    item = None
        except Exception:
            # A record some other client wrote to a shared log: it stays in the
            # log for inspection, and the desk goes on with the next one.
            log.exception("workflow record %s could not be folded; skipped",
                          (record.get("action_id") or record.get("alert_id")) if isinstance(record, dict) else record)
            return
        if notify and item is not None and self.notify is not None:
            try:
                self.notify(lifecycle.notification_view(item))
            except Exception:  # a sink failure must not lose the record
                log.exception("notification of %s failed", item["alert_id"])

    def _decide_claim(self, action: Action) -> Action | None:
        """A plan trigger written as a claim (a log that does not serialise
        its writers: the Kafka deployment), decided where it stands in the
        log: against the plans folded before it, by the rules `trigger_plan`
        applies (one active plan per (alert, plan) unless `another`; the
        fund's budget period). Returns the action to fold, its plan's fund
        part and `another_alongside` as of that point, or None when refused
        (the reason kept in `refused_claims`). Every desk folding the log in
        the same order decides the same, so a claim refused here is refused
        on every replica and in the worker."""
        data = action.data
        plan, claim = data["plan"], data["claim"]
        plan_id = plan["plan_id"]
        active = self._active_plans(plan["alert_id"], plan["plan"])
        fund = plan.get("fund")
        try:
            if active and not claim.get("another"):
                raise _already_active(plan["plan"], plan["alert_id"], active)
            definition = self.rules.plans.get(plan["plan"])
            if definition is not None and definition.fund is not None and fund is not None:
                fund = self._fund_commitment(definition.fund, parse_instant(action.at), fund["committed_amount"],
                                             fund["currency"], claim.get("annual_sales_budget"),
                                             claim.get("budget_override"))
        except (ActionRefused, InvalidField) as refusal:
            self.refused_claims[plan_id] = refusal
            log.info("plan claim %s refused by the log's order: %s", plan_id, refusal)
            return None
        decided = {k: v for k, v in plan.items() if k != "another_alongside"}
        decided["fund"] = fund
        if active:
            decided["another_alongside"] = active
        return dataclasses.replace(action, data={**data, "plan": decided})

    def _active_plans(self, alert_id: str, plan_key: str) -> list[str]:
        return sorted(p["plan_id"] for p in self.ledger.plans.values()
                      if p["alert_id"] == alert_id and p["plan"] == plan_key and p["status"] == "active")

    def _record(self, kind: str, record: dict) -> bool:
        """Append one record (as JSON) to the log and fold what the log now holds;
        False when the log already had it (the same action id or change)."""
        if self.store is None:
            if kind == "action" and any(r.get("action_id") == record["action_id"] for k, r in self._memory_log if k == "action"):
                return False
            self._memory_log.append((kind, record))
            self._fold(kind, record)
            return True
        if self.store.append(kind, record) is None:
            return False
        self._catch_up()
        return True

    def sync(self) -> None:
        """Fold what other processes appended since the last call."""
        if self.store is not None:
            with self.store.transaction():
                self._catch_up()

    @contextmanager
    def _transaction(self):
        if self.store is None:
            yield
            return
        try:
            with self.store.transaction():
                yield
        except StoreError:
            # The store rolled the transaction back (disk full at COMMIT, say),
            # but the ledger may have folded what was appended in it: then
            # fold the log again so the desk shows only what is recorded.
            if self._seq > self.store.last_seq():
                self.ledger = Ledger()
                self._seq = 0
                self._catch_up(notify=False)
            raise

    # ------------------------------------------------------------------ inputs

    def ingest(self, change: AlertChange | dict) -> dict | None:
        """One engine alert change, or its published JSON (read with
        `AlertChange.from_json`: RecordInvalid, and nothing recorded, if it
        does not fit); returns the work item."""
        if not isinstance(change, AlertChange):
            change = AlertChange.from_json(change)
        with self._transaction():
            self._catch_up()
            self._record("alert_change", change.to_json())
            return self.ledger.alerts.get(change.alert_id)

    def __call__(self, change: AlertChange | dict) -> None:
        """So the desk can be used as a sink for alert changes."""
        self.ingest(change)

    def act(
        self,
        kind: str,
        *,
        now: datetime,
        actor: str,
        role: str,
        reason: str | None = None,
        alert_id: str | None = None,
        plan_id: str | None = None,
        review_id: str | None = None,
        data: dict | None = None,
        clock: datetime | None = None,
    ) -> Action:
        """Record a person's action made at `now`, and return it; raises ActionRefused if the
        state does not allow it. `clock` is the service clock its deadlines
        are checked against (a snooze must end after it, an acknowledgement
        is in time up to respond_by on it); `now` when not given."""
        clock = now if clock is None else clock
        with self._transaction():
            self._catch_up()
            action = make_action(kind, at=now, actor=actor, role=role, reason=reason, alert_id=alert_id,
                                 plan_id=plan_id, review_id=review_id, data=data)
            lifecycle.check_action(self.ledger, action, clock)
            ack_due = None
            if kind == "acknowledge" and alert_id in self.ledger.alerts:
                ack_due = self.ledger.alerts[alert_id].get("ack_due")
            self._record("action", action.to_json())
            if kind == "acknowledge" and self.metrics is not None and alert_id in self.ledger.alerts:
                item = self.ledger.alerts[alert_id]
                in_time = ack_due is None or clock <= datetime.fromisoformat(ack_due.replace("Z", "+00:00"))
                self.metrics.alert_responses.labels(tier=item["tier"], outcome="in_time" if in_time else "late").inc()
            return action

    def trigger_plan(
        self,
        plan_key: str,
        *,
        alert_id: str,
        now: datetime,
        actor: str,
        role: str,
        reason: str,
        committed_amount: float | None = None,
        currency: str = "CNY",
        annual_sales_budget: float | None = None,
        another: bool = False,
        budget_override: str | None = None,
    ) -> dict:
        """Trigger contingency plan `plan_key` (rules/contingency_plans.yaml)
        from an alert, at `now`; returns the tracked plan.

        One active plan per (alert, plan): a second is refused (ActionRefused,
        409) unless `another` is True, which the plan and its action record
        keep. A plan with a fund (DOMAIN §2: the price-response fund, a share
        of the annual sales budget) needs `committed_amount` (InvalidField
        otherwise); the commitments of every plan on that fund in the budget
        period (`Fund.period_of`) are summed, and one that would take the sum
        past share x annual sales budget is refused with what is left
        (FundExceeded, 409) unless `budget_override` gives the reason, which
        the plan's fund record keeps. The annual sales budget is the one given,
        or the one the period's earlier commitments were checked against; a
        different one in the same period, or a commitment in another currency,
        is InvalidField (422). Money is summed exactly (Decimal)."""
        definition = self.rules.plans.get(plan_key)
        if definition is None:
            raise InvalidField("plan", f"unknown contingency plan {plan_key!r} (known: {', '.join(sorted(self.rules.plans))})")
        with self._transaction():
            self._catch_up()
            item = self.ledger.alerts.get(alert_id)
            if item is None:
                raise ActionRefused(f"alert {alert_id} not found", not_found=True)
            indicator = item["alert"].get("indicator")
            if definition.indicators and indicator not in definition.indicators:
                raise InvalidField("plan", f"{plan_key} applies to {', '.join(definition.indicators)}, not {indicator}")
            active = self._active_plans(alert_id, plan_key)
            if active and not another:
                raise _already_active(plan_key, alert_id, active)
            fund = None
            if definition.fund is not None:
                if committed_amount is None:
                    raise InvalidField("committed_amount", f"{plan_key} draws on the {definition.fund.name}: record the amount committed")
                fund = self._fund_commitment(definition.fund, now, committed_amount, currency, annual_sales_budget,
                                             budget_override)
            elif committed_amount is not None:
                fund = {"name": None, "committed_amount": committed_amount, "currency": currency}
            plan_id = "pl-" + uuid.uuid4().hex[:16]
            plan = {
                "plan_id": plan_id, "plan": plan_key, "title": definition.title,
                "alert_id": alert_id, "indicator": indicator, "tier": item["tier"],
                "owner": item["owner"], "customer_class": item["alert"].get("customer_class"),
                "status": "active", "triggered_at": isoformat(now), "triggered_by": actor, "reason": reason,
                "fund": fund,
                "steps": [{"step": n, "action": s.action, "owner": s.owner,
                           "due_at": isoformat(now + s.due_within), "status": "pending",
                           "done_at": None, "done_by": None, "note": None}
                          for n, s in enumerate(definition.steps, start=1)],
                "closed_at": None, "closed_by": None,
            }
            if active:
                plan["another_alongside"] = active  # the director asked for it explicitly
            data: dict = {"plan": plan}
            if self.store is not None and not getattr(self.store, "serialises_writers", True):
                # Another replica may be claiming the same plan or fund right now:
                # the log's order decides (`_decide_claim`), with what was asked.
                data["claim"] = {"another": another, "annual_sales_budget": annual_sales_budget,
                                 "budget_override": budget_override}
            action = make_action("plan_triggered", at=now, actor=actor, role=role, reason=reason,
                                 alert_id=alert_id, plan_id=plan_id, data=data)
            lifecycle.check_action(self.ledger, action, now)
            self._record("action", action.to_json())
            if plan_id not in self.ledger.plans:
                raise self.refused_claims.get(plan_id) or ActionRefused(f"plan {plan_id} was not recorded")
            return self.ledger.plans[plan_id]

    def _fund_commitment(self, fund, now: datetime, amount: float, currency: str,
                         annual_sales_budget: float | None, override: str | None) -> dict:
        """The fund part of a plan record, after checking the commitment against
        what the fund's budget period has left (see `trigger_plan`)."""
        label, start, end = fund.period_of(now)
        earlier = [p for p in self.ledger.plans.values()
                   if (p.get("fund") or {}).get("name") == fund.name and p["status"] != "cancelled"
                   and start <= parse_instant(p["triggered_at"]) < end]
        for plan in earlier:
            if plan["fund"].get("currency") != currency:
                raise InvalidField("currency", f"the {fund.name}'s {label} commitments are in {plan['fund']['currency']} "
                                               f"({plan['plan_id']}); commit in that currency")
        stated = sorted({Decimal(str(p["fund"]["annual_sales_budget"])) for p in earlier
                         if p["fund"].get("annual_sales_budget") is not None})
        budget = None if annual_sales_budget is None else Decimal(str(annual_sales_budget))
        if budget is not None and stated and budget != stated[-1]:
            raise InvalidField("annual_sales_budget", f"the {fund.name}'s {label} commitments were checked against an "
                                                      f"annual sales budget of {stated[-1]} {currency}, not {budget}")
        if budget is None and stated:
            budget = stated[-1]
        committed = sum((Decimal(str(p["fund"]["committed_amount"])) for p in earlier), Decimal(0))
        share = Decimal(str(fund.share_of_annual_sales_budget))
        cap = left = None
        if budget is not None:
            cap = budget * share
            left = cap - committed
            if Decimal(str(amount)) > left and not override:
                raise FundExceeded(
                    f"committed_amount {amount} exceeds what the {fund.name} has left for {label}: "
                    f"{_money(left)} {currency} of {_money(cap)} ({share:%} of the annual sales budget {budget}; "
                    f"{_money(committed)} committed by {', '.join(sorted(p['plan_id'] for p in earlier)) or 'no plan'}). "
                    "Commit at most what is left, or record why the fund may be exceeded (`budget_override`).",
                    period=label, left=_money(left), cap=_money(cap), committed=_money(committed), currency=currency)
        return {"name": fund.name, "share_of_annual_sales_budget": fund.share_of_annual_sales_budget,
                "annual_sales_budget": None if budget is None else float(budget),
                "cap": None if cap is None else float(cap),
                "committed_amount": amount, "currency": currency,
                "budget_period": label, "committed_in_period_before": _money(committed),
                "left_before": None if left is None else _money(left),
                "budget_override": override if override and left is not None and Decimal(str(amount)) > left else None}

    def tick(self, now: datetime) -> list[Action]:
        """Record every action the clock made due; returns them.

        What falls due is a function of the folded log and `now` alone, so a
        tick at the same clock over the same log position finds nothing new
        and is skipped: the API ticks before every request, and scanning
        10,000 open alerts each time cost a third of a second per request."""
        recorded: list[Action] = []
        with self._transaction():
            self._catch_up()
            if self._last_tick == (now, self.position, id(self.rules)):
                return recorded
            for _ in range(64):  # each round moves at most one level per alert
                due = lifecycle.due_actions(self.ledger, now, self.rules)
                fresh = [a for a in due if self._record("action", a.to_json())]
                if not fresh:
                    break
                recorded.extend(fresh)
            self._last_tick = (now, self.position, id(self.rules))
        self._update_metrics(now, recorded)
        return recorded

    def keep_clock(self, now: datetime) -> list[Action]:
        """For the process whose events make the service clock (`riskwatch
        run`, with its engine's watermark): record `now` as the store's
        service clock, so the other processes on the store (the API) measure
        deadlines on it too, and tick with it (`tick`). The stored clock never
        moves back: an earlier `now` leaves it, and the tick uses the stored one."""
        with self._transaction():
            if self.store is not None:
                now = self.store.advance_clock(now)
            return self.tick(now)

    @property
    def position(self) -> int:
        """How many log records the desk has folded: it grows with every
        change, so a reader (the console's live updates) can tell whether
        anything happened since it last looked."""
        return len(self._memory_log) if self.store is None else self._seq

    def service_clock(self) -> datetime | None:
        """The service clock recorded in the store by the process feeding it
        (`keep_clock`); None before any was recorded, or without a store."""
        return None if self.store is None else self.store.service_clock()

    def reload_rules(self, rules: ResponseRules, *, now: datetime, actor: str, role: str) -> Action:
        with self._transaction():
            self.rules = rules
            action = make_action("rules_reloaded", at=now, actor=actor, role=role, reason="rule reload",
                                 data={"plans": sorted(rules.plans)})
            self._record("action", action.to_json())
            return action

    def _update_metrics(self, now: datetime, recorded: Iterable[Action]) -> None:
        if self.metrics is None:
            return
        for action in recorded:
            if action.kind == "escalate":
                item = self.ledger.alerts.get(action.alert_id or "")
                if item is not None:
                    self.metrics.alerts_escalated.labels(
                        indicator=item["alert"]["indicator"], tier=item["tier"]).inc()
                    late_key = (action.alert_id, action.data.get("cycle"))
                    if (action.reason or "").startswith("not acknowledged") and late_key not in self._late_counted:
                        # respond_by passed with nobody on it: a late response, counted once per alert cycle.
                        self._late_counted.add(late_key)
                        self.metrics.alert_responses.labels(tier=item["tier"], outcome="late").inc()
        self.metrics.playbook_steps_overdue.set(
            sum(len(lifecycle.overdue_steps(i, now)) for i in self.ledger.alerts.values()))
        self.metrics.reviews_overdue.set(
            sum(1 for r in self.ledger.reviews.values() if lifecycle.review_overdue(r, now)))

    # ------------------------------------------------------------------ reading

    def audit(self, *, subject: str | None = None, after: int = 0, limit: int = 1000) -> list[dict]:
        if self.store is None:
            rows = [(n, r) for n, (k, r) in enumerate(self._memory_log, start=1) if k == "action"]
            rows = [(n, r) for n, r in rows if n > after and (subject is None or r.get("subject_key") == subject)]
            return [{"seq": n, **r} for n, r in rows[:limit]]
        rows = [{"seq": seq, **record} for seq, record in self.store.actions(subject=subject, after=after, limit=limit)]
        for row in rows:
            refusal = self.refused_claims.get(row.get("plan_id") or "") if row.get("kind") == "plan_triggered" else None
            if refusal is not None:
                # The claim is in the log, but the log's order gave the plan to another.
                row["refused"] = getattr(refusal, "reason", None) or str(refusal)
        return rows

    def alert(self, alert_id: str, now: datetime) -> dict | None:
        item = self.ledger.alerts.get(alert_id)
        return None if item is None else describe_alert(item, now)

    def visible(self, regions: frozenset[str] | None, *, alert_id: str | None = None, plan_id: str | None = None,
                review_id: str | None = None) -> bool:
        """Whether a token limited to `regions` (None: all) may see the alert,
        plan or review (a plan or review by its alert's region). An unknown
        one is visible: the caller's own lookup answers 404 for it."""
        if regions is None:
            return True
        if alert_id is None:
            thing = self.ledger.plans.get(plan_id or "") if plan_id else self.ledger.reviews.get(review_id or "")
            if thing is None:
                return True
            alert_id = thing.get("alert_id")
        item = self.ledger.alerts.get(alert_id or "")
        return item is None or item["alert"].get("region") in regions

    def latest_alerts(self, now: datetime, limit: int, **filters) -> list[dict]:
        """The `limit` most recently raised alerts matching `filters`, newest
        first, described (`alerts` describes every match; a page of the
        API's list describes only what it returns)."""
        found = [i for i in self.ledger.alerts.values() if _matches(i, filters)]
        found.sort(key=lambda i: i["alert"].get("raised_at") or "", reverse=True)
        return [describe_alert(i, now) for i in found[:limit]]

    def alerts(self, now: datetime, **filters) -> list[dict]:
        return [describe_alert(i, now) for i in self.ledger.alerts.values() if _matches(i, filters)]

    def plans(self, now: datetime, **filters) -> list[dict]:
        return [describe_plan(p, now) for p in self.ledger.plans.values() if _matches_linked(self, p, filters)]

    def reviews(self, now: datetime, **filters) -> list[dict]:
        return [describe_review(r, now) for r in self.ledger.reviews.values() if _matches_linked(self, r, filters)]


def _already_active(plan_key: str, alert_id: str, active: list[str]) -> ActionRefused:
    return ActionRefused(f"plan {plan_key} is already active on alert {alert_id} ({', '.join(active)}); "
                         "to run another one alongside, ask for it explicitly (`another: true`)")


def describe_alert(item: dict, now: datetime) -> dict:
    """A work item as the API shows it; `now` is the clock its steps and
    acknowledgement are measured against (overdue flags)."""
    out = {k: v for k, v in item.items() if k != "alert"}
    out["alert"] = item["alert"]
    out["indicator"] = item["alert"].get("indicator")
    out["customer_class"] = item["alert"].get("customer_class")
    out["region"] = item["alert"].get("region")
    out["summary"] = item["alert"].get("summary")
    out["reading"] = describe_reading(item["alert"], now)
    overdue = {s["step"] for s in lifecycle.overdue_steps(item, now)}
    out["steps"] = [{**s, "overdue": s["step"] in overdue} for s in item["steps"]]
    ack_due = parse_instant(item["ack_due"])
    out["response_overdue"] = item["status"] == "open" and ack_due is not None and now > ack_due
    return out


def describe_reading(record: dict, now: datetime | None = None) -> dict | None:
    """The record's observed value against its threshold, printed so that a
    breach reads as one (`riskwatch.units.reading`): {"observed": "72 h 5 min",
    "threshold": "72 h", "relation": "above"|"below"|"at", "beyond": bool,
    "text": "72 h 5 min > 72 h", "as_of": RFC 3339 text}. Computed from the
    numbers, so a record whose summary was written by an older version still
    shows right. None for a record without a usable measurement (fed over
    HTTP, say).

    An open alert of an indicator whose observed value is time elapsed
    (`IndicatorSpec.grows_while_open`: days past due, hours undelivered) is
    shown as of `now` (the service clock): the engine records that value at
    each scoring step only, and an invoice two years past due read "90 days"
    from its last step on. Other values, and resolved alerts, are shown as
    recorded, as of `updated_at`."""
    try:
        observed = float(record["observed"])
        threshold = float(record["threshold"])
        unit = record["unit"]
    except (KeyError, TypeError, ValueError):
        return None
    as_of = parse_instant(record.get("updated_at"))
    if now is not None and as_of is not None and now > as_of and record.get("status") == "open" \
            and _grows_while_open(record.get("indicator")) and unit in _UNIT_SECONDS:
        observed += (now - as_of).total_seconds() / _UNIT_SECONDS[unit]
        as_of = now
    try:
        shown = reading(observed, threshold, unit, record.get("direction") or "above")
    except ValueError:
        return None
    return {"observed": shown.value, "threshold": shown.threshold, "relation": shown.relation,
            "beyond": shown.beyond, "text": shown.comparison(), "as_of": isoformat(as_of) if as_of else None}


_UNIT_SECONDS = {"hours": 3600.0, "days": 86400.0}


def _grows_while_open(indicator_id: str | None) -> bool:
    try:
        return indicator_id is not None and spec_of(indicator_id).grows_while_open
    except UnknownIndicator:
        return False


def describe_plan(plan: dict, now: datetime) -> dict:
    active = plan["status"] == "active"
    steps = [{**s, "overdue": active and s["status"] == "pending" and now > parse_instant(s["due_at"])}
             for s in plan["steps"]]
    return {**plan, "steps": steps, "overdue": any(s["overdue"] for s in steps)}


def describe_review(review: dict, now: datetime) -> dict:
    return {**review, "overdue": lifecycle.review_overdue(review, now)}


def _within(value: str | None, since: datetime | None, until: datetime | None) -> bool:
    if since is None and until is None:
        return True
    instant = parse_instant(value)
    if instant is None:
        return False
    return (since is None or instant >= since) and (until is None or instant < until)


def _matches(item: dict, filters: dict) -> bool:
    alert = item["alert"]
    checks = {
        "tier": item["tier"], "indicator": alert.get("indicator"), "owner": item["owner"],
        "status": item["status"], "customer_class": alert.get("customer_class"), "region": alert.get("region"),
    }
    for key, actual in checks.items():
        wanted = filters.get(key)
        if wanted is not None and actual != wanted:
            return False
    regions = filters.get("regions")
    if regions is not None and alert.get("region") not in regions:
        return False
    return _within(alert.get("raised_at"), filters.get("since"), filters.get("until"))


def _matches_linked(desk: AlertDesk, thing: dict, filters: dict) -> bool:
    item = desk.ledger.alerts.get(thing.get("alert_id") or "")
    checks = {"tier": thing.get("tier"), "indicator": thing.get("indicator"), "owner": thing.get("owner"),
              "status": thing.get("status"), "customer_class": thing.get("customer_class"),
              "region": item["alert"].get("region") if item else None}
    for key, actual in checks.items():
        wanted = filters.get(key)
        if wanted is not None and actual != wanted:
            return False
    regions = filters.get("regions")
    if regions is not None and checks["region"] not in regions:
        return False
    when = thing.get("triggered_at") or thing.get("opened_at")
    return _within(when, filters.get("since"), filters.get("until"))


def open_desk(settings, *, metrics=None, notify: Callable[[dict], None] | None = None,
              persistent: bool = True) -> AlertDesk:
    """The desk `riskwatch run`/`api`/`worker` use: rules from settings.rules_dir,
    the log under settings.store_dir (in memory when `persistent` is False).
    Raises ValueError listing the rule problems."""
    from riskwatch.rules.response import load_response_rules

    rules, problems = load_response_rules(settings.rules_dir)
    if rules is None:
        raise ValueError("response rules invalid: " + "; ".join(problems))
    store = WorkflowStore(settings.store_dir) if persistent else None
    return AlertDesk(rules, store, metrics=metrics, notify=notify)


__all__ = ["AlertDesk", "ActionRefused", "FundExceeded", "InvalidField", "SYSTEM_ROLE", "open_desk"]
