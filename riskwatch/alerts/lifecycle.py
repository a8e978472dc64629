"""The alert lifecycle: a pure fold of alert changes and actions.

State (a `Ledger`) is plain JSON-able dicts: one work item per alert, plus the
triggered contingency plans and the post-incident reviews. A work item keeps
the alert's last change as published (`AlertChange.to_json()`) under
"alert", which the API and the console show as it is. Three entry points,
none of which reads a clock or does I/O, all over the typed records of
`riskwatch.contracts` (a caller folding a log reads each record with
`AlertChange.from_json` / `Action.from_json` first):

- `apply_change(ledger, change, rules)` folds one engine `AlertChange`;
- `check_action(ledger, action, now)` raises ActionRefused when a person's
  `Action` does not fit the state, and `apply_action(ledger, action, rules)` folds it;
- `due_actions(ledger, now, rules)` lists the actions riskwatch records by
  itself because the clock passed a deadline: escalation past respond_by or
  a step's due time, end of a snooze, a tier drop that held long enough
  (hysteresis), re-notification, an overdue review.

States: open -> acknowledged -> in_progress -> resolved, and snoozed (until
a time, or until the condition recovers) from any working state.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from datetime import datetime

from riskwatch.alerts.actions import isoformat, make_action, parse_instant
from riskwatch.contracts import Action, AlertChange, Change, Status, Tier
from riskwatch.rules.response import ResponseRules, UnknownRole
from riskwatch.timeutil import duration_as_written
from riskwatch.errors import RiskwatchError

log = logging.getLogger(__name__)

WORKING = ("open", "acknowledged", "in_progress")
STATUSES = ("open", "acknowledged", "in_progress", "snoozed", "resolved")


class ActionRefused(RiskwatchError):
    """A person's action that the current state does not allow (HTTP 409/404)."""

    def __init__(self, reason: str, *, not_found: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.not_found = not_found


@dataclass
class Ledger:
    alerts: dict[str, dict] = field(default_factory=dict)
    plans: dict[str, dict] = field(default_factory=dict)
    reviews: dict[str, dict] = field(default_factory=dict)


def _t(value) -> datetime | None:
    return parse_instant(value)


def _steps_from(change: AlertChange) -> list[dict]:
    playbook = change.playbook
    return [{
        "step": step.step,
        "action": step.action,
        "owner": step.owner,
        "due_at": step.due_at,
        "status": "pending",
        "done_at": None, "done_by": None, "note": None,
        "escalated": False,
    } for step in (playbook.steps if playbook is not None else ())]


def _owner_level(change: AlertChange, rules: ResponseRules) -> int:
    """The owner chain level of the change's owner.

    The loader refuses any owner the chain does not list, so an unknown one
    comes from an alert made under other rules (an engine on another rule
    directory, a record fed over the API): said loudly, and worked from the
    lowest level so every level still sees it on its way up, rather than
    dropped (folding it must not lose the alert)."""
    try:
        return rules.escalation.level_of(change.owner)
    except UnknownRole as error:
        log.error("alert %s: %s; the alert is worked from the lowest level of the chain. "
                  "The engine that made it runs on other rule files than this desk.",
                  change.alert_id, error)
        return 0


def _new_item(change: AlertChange, rules: ResponseRules) -> dict:
    base_level = _owner_level(change, rules)
    return {
        "alert_id": change.alert_id,
        "alert": change.to_json(),
        "status": "open",
        "tier": change.tier.value,
        "engine_tier": change.tier.value,
        "pending_tier": None,
        "owner": change.owner,
        "base_owner": change.owner,
        "base_level": base_level,
        "level": base_level,
        "ack_due": change.respond_by,
        "acknowledged_at": None, "acknowledged_by": None,
        "snooze": None,
        "steps": _steps_from(change),
        "escalations": [],
        "last_notified_at": change.raised_at or change.updated_at,
        "resolved_at": None, "resolved_by": None, "resolution_reason": None,
        "cycle": 1,
        "review_ids": [],
        "plan_ids": [],
        "last_change": (change.change or Change.RAISED).value,
        "updated_at": change.updated_at or change.raised_at,
        "cycle_peak_tier": change.tier.value,
    }


def _reopen(item: dict, change: AlertChange, rules: ResponseRules, why: str) -> None:
    item.update({
        "status": "open",
        "tier": change.tier.value,
        "pending_tier": None,
        "base_owner": change.owner,
        "base_level": _owner_level(change, rules),
        "ack_due": change.respond_by,
        "acknowledged_at": None, "acknowledged_by": None,
        "snooze": None,
        "steps": _steps_from(change),
        "resolved_at": None, "resolved_by": None, "resolution_reason": None,
        "cycle": item["cycle"] + 1,
        "last_notified_at": change.updated_at or change.raised_at,
        "last_change": why,
        "cycle_peak_tier": change.tier.value,
    })
    item["level"] = item["base_level"]
    item["owner"] = item["base_owner"]


def _resolve(ledger: Ledger, item: dict, at: str, by: str, reason: str | None, rules: ResponseRules) -> None:
    item.update({"status": "resolved", "resolved_at": at, "resolved_by": by,
                 "resolution_reason": reason, "snooze": None, "pending_tier": None,
                 "last_change": "resolved"})
    review_rule = rules.escalation.review
    # The review is about the worst the alert got to in this cycle.
    if item["tier"] in review_rule.tiers or item.get("cycle_peak_tier") in review_rule.tiers:
        review_id = f"rv-{item['alert_id'][3:] if item['alert_id'].startswith('al-') else item['alert_id']}-{item['cycle']}"
        if review_id not in ledger.reviews:
            shown = item["alert"]  # the change as published (`AlertChange.to_json()`)
            ledger.reviews[review_id] = {
                "review_id": review_id,
                "alert_id": item["alert_id"],
                "tier": item.get("cycle_peak_tier") or item["tier"],
                "indicator": shown["indicator"],
                "owner": item["owner"],
                "customer_class": shown["customer_class"],
                "opened_at": at,
                "due_at": isoformat(_t(at) + review_rule.due_within),
                "status": "open",
                "whys": [], "root_cause": None, "corrective_actions": [],
                "submitted_at": None, "submitted_by": None,
                "signed_off_at": None, "signed_off_by": None,
                "overdue_flagged": False,
            }
            item["review_ids"].append(review_id)


def apply_change(ledger: Ledger, change: AlertChange, rules: ResponseRules) -> dict | None:
    """Fold one engine alert change; returns the work item, or None for a
    redelivered or stale change (a sequence not above the last one folded).
    A record read from a log becomes an `AlertChange` with
    `AlertChange.from_json` before it comes here."""
    alert_id = change.alert_id
    item = ledger.alerts.get(alert_id)
    if item is None:
        item = _new_item(change, rules)
        ledger.alerts[alert_id] = item
        if change.status == Status.RESOLVED:
            # A resolution for an alert this store never saw open: keep it for the register.
            _resolve(ledger, item, change.resolved_at or change.updated_at, "engine", "condition cleared", rules)
        return item
    previous = item["alert"]  # as published
    if previous["sequence"] is not None and change.sequence is not None and change.sequence <= previous["sequence"]:
        return None  # a redelivered or stale change
    item["alert"] = change.to_json()
    item["engine_tier"] = change.tier.value
    item["updated_at"] = change.updated_at or item["updated_at"]
    when = change.updated_at or change.raised_at
    tier = change.tier.value

    if change.status == Status.RESOLVED:
        if item["status"] != "resolved":
            # A late shipment or an overdue invoice closes at the highest tier its
            # measurement reached, which can be above the tier it was worked under.
            if change.tier.rank > Tier.rank_of(item.get("cycle_peak_tier")):
                item["cycle_peak_tier"] = tier
            _resolve(ledger, item, change.resolved_at or when, "engine", "condition cleared", rules)
        return item

    new_rank, shown_rank = change.tier.rank, Tier.rank_of(item["tier"])
    if item["status"] == "resolved":
        # Reopened by the engine, or worse again after a person resolved it.
        if previous["status"] == Status.RESOLVED or change.change == Change.REOPENED or new_rank > shown_rank:
            _reopen(item, change, rules, "reopened")
        return item

    if new_rank > shown_rank:
        # A rise applies at once, re-notifies, and ends a snooze: it got worse.
        item["tier"] = tier
        item["pending_tier"] = None
        item["last_notified_at"] = when
        item["last_change"] = "tier_raised"
        if new_rank > Tier.rank_of(item.get("cycle_peak_tier")):
            item["cycle_peak_tier"] = tier
        if item["status"] == "snoozed":
            item["status"] = item["snooze"]["resume_status"]
            item["snooze"] = None
        # The engine's owner for the higher tier may sit higher in the chain.
        level = _owner_level(change, rules)
        if level > item["level"]:
            item["level"] = item["base_level"] = level
            item["base_owner"] = change.owner
            item["owner"] = change.owner
        if change.respond_by:
            item["ack_due"] = change.respond_by if item["acknowledged_at"] is None else item["ack_due"]
        _merge_steps(item, change)
    elif new_rank < shown_rank:
        pending = item["pending_tier"]
        if pending is None or pending["tier"] != tier:
            item["pending_tier"] = {"tier": tier, "since": when}
        item["last_change"] = "updated"
    else:
        item["pending_tier"] = None
        item["last_change"] = "updated"
    return item


def _merge_steps(item: dict, change: AlertChange) -> None:
    """Playbook of the new tier: keep what was done, take the new steps and due times."""
    done = {s["step"]: s for s in item["steps"] if s["status"] != "pending"}
    steps = _steps_from(change)
    for step in steps:
        if step["step"] in done and done[step["step"]]["action"] == step["action"]:
            step.update({k: done[step["step"]][k] for k in ("status", "done_at", "done_by", "note")})
    if steps:
        item["steps"] = steps


# --------------------------------------------------------------------------- actions by people


def check_action(ledger: Ledger, action: Action, now: datetime) -> None:
    """Raise ActionRefused if the action does not fit the current state."""
    kind = action.kind
    data = action.data
    if kind in ("plan_step_done", "plan_closed"):
        plan = ledger.plans.get(action.plan_id or "")
        if plan is None:
            raise ActionRefused(f"plan {action.plan_id} not found", not_found=True)
        if plan["status"] != "active":
            raise ActionRefused(f"plan {plan['plan_id']} is {plan['status']}")
        if kind == "plan_step_done":
            step = _find_step(plan["steps"], data.get("step"))
            if step is None:
                raise ActionRefused(f"plan {plan['plan_id']} has no step {data.get('step')}", not_found=True)
            if step["status"] != "pending":
                raise ActionRefused(f"step {step['step']} is already {step['status']}")
        return
    if kind in ("review_submitted", "review_signed_off"):
        review = ledger.reviews.get(action.review_id or "")
        if review is None:
            raise ActionRefused(f"review {action.review_id} not found", not_found=True)
        if kind == "review_submitted" and review["status"] == "signed_off":
            raise ActionRefused(f"review {review['review_id']} is already signed off")
        if kind == "review_signed_off" and review["status"] != "submitted":
            raise ActionRefused(f"review {review['review_id']} is {review['status']}: submit the 5-Why first")
        return
    if kind == "rules_reloaded":
        return
    item = ledger.alerts.get(action.alert_id or "")
    if item is None:
        raise ActionRefused(f"alert {action.alert_id} not found", not_found=True)
    status = item["status"]
    if kind == "comment":
        return
    if kind == "plan_triggered":
        return
    if kind == "assign":
        assignee = data.get("assignee")
        if assignee is not None and (not isinstance(assignee, str) or not assignee.strip() or len(assignee) > 64):
            raise ActionRefused("assignee: a person's name of 1 to 64 characters, or null to unassign")
    if status == "resolved":
        raise ActionRefused(f"alert {item['alert_id']} is resolved")
    if kind == "acknowledge" and status != "open":
        raise ActionRefused(f"alert {item['alert_id']} is {status}, not open")
    if kind == "start" and status not in ("open", "acknowledged"):
        raise ActionRefused(f"alert {item['alert_id']} is {status}")
    if kind in ("step_done", "step_skipped"):
        if status == "snoozed":
            raise ActionRefused(f"alert {item['alert_id']} is snoozed")
        step = _find_step(item["steps"], data.get("step"))
        if step is None:
            raise ActionRefused(f"alert {item['alert_id']} has no playbook step {data.get('step')}", not_found=True)
        if step["status"] != "pending":
            raise ActionRefused(f"step {step['step']} is already {step['status']}")
    if kind == "snooze":
        if status == "snoozed":
            raise ActionRefused(f"alert {item['alert_id']} is already snoozed")
        until = parse_instant(data.get("until"))
        if until is None and not data.get("until_recovery"):
            raise ActionRefused("snooze needs `until` or `until_recovery`")
        if until is not None and until <= now:
            raise ActionRefused("snooze `until` must be in the future")
    if kind == "unsnooze" and status != "snoozed":
        raise ActionRefused(f"alert {item['alert_id']} is not snoozed")


def _find_step(steps: list[dict], number) -> dict | None:
    for step in steps:
        if step["step"] == number:
            return step
    return None


def apply_action(ledger: Ledger, action: Action, rules: ResponseRules) -> None:
    """Fold one action. Tolerant: an action that no longer fits
    (e.g. a duplicate escalation from a second process) changes nothing.
    A record read from a log becomes an `Action` with `Action.from_json`
    before it comes here."""
    kind, at, data = action.kind, action.at, action.data
    who = action.actor
    if kind == "plan_triggered":
        plan = copy.deepcopy(data["plan"])
        if plan["plan_id"] not in ledger.plans:
            ledger.plans[plan["plan_id"]] = plan
            item = ledger.alerts.get(action.alert_id or "")
            if item is not None:
                item["plan_ids"].append(plan["plan_id"])
        return
    if kind in ("plan_step_done", "plan_closed"):
        plan = ledger.plans.get(action.plan_id or "")
        if plan is None or plan["status"] != "active":
            return
        if kind == "plan_closed":
            plan.update({"status": data.get("outcome", "closed"), "closed_at": at, "closed_by": who,
                         "close_reason": action.reason})
            return
        step = _find_step(plan["steps"], data.get("step"))
        if step is not None and step["status"] == "pending":
            step.update({"status": "done", "done_at": at, "done_by": who, "note": data.get("note")})
        if all(s["status"] != "pending" for s in plan["steps"]):
            plan.update({"status": "completed", "closed_at": at, "closed_by": who})
        return
    if kind in ("review_submitted", "review_signed_off", "review_overdue"):
        review = ledger.reviews.get(action.review_id or "")
        if review is None:
            return
        if kind == "review_overdue":
            review["overdue_flagged"] = True
        elif kind == "review_submitted" and review["status"] != "signed_off":
            review.update({"status": "submitted", "whys": list(data.get("whys", [])),
                           "root_cause": data.get("root_cause"),
                           "corrective_actions": list(data.get("corrective_actions", [])),
                           "submitted_at": at, "submitted_by": who,
                           "submitted_late": _t(at) > _t(review["due_at"])})
        elif kind == "review_signed_off" and review["status"] == "submitted":
            review.update({"status": "signed_off", "signed_off_at": at, "signed_off_by": who,
                           "sign_off_note": action.reason})
        return
    item = ledger.alerts.get(action.alert_id or "")
    if item is None:
        return
    status = item["status"]
    if kind == "acknowledge" and status == "open":
        item.update({"status": "acknowledged", "acknowledged_at": at, "acknowledged_by": who,
                     "last_change": "acknowledged"})
    elif kind == "start" and status in ("open", "acknowledged"):
        if item["acknowledged_at"] is None:
            item.update({"acknowledged_at": at, "acknowledged_by": who})
        item.update({"status": "in_progress", "last_change": "in_progress"})
    elif kind in ("step_done", "step_skipped") and status in WORKING:
        step = _find_step(item["steps"], data.get("step"))
        if step is not None and step["status"] == "pending":
            step.update({"status": "done" if kind == "step_done" else "skipped",
                         "done_at": at, "done_by": who, "note": data.get("note")})
            if item["acknowledged_at"] is None:
                item.update({"acknowledged_at": at, "acknowledged_by": who})
            item.update({"status": "in_progress", "last_change": "step_" + step["status"]})
    elif kind == "snooze" and status in WORKING:
        item.update({"status": "snoozed", "last_change": "snoozed", "snooze": {
            "until": data.get("until"), "until_recovery": bool(data.get("until_recovery")),
            "resume_status": status, "by": who, "at": at, "reason": action.reason,
            "action_id": action.action_id}})
    elif kind in ("unsnooze", "snooze_ended") and status == "snoozed":
        if kind == "snooze_ended" and (item["snooze"] or {}).get("action_id") != data.get("snooze_action_id"):
            return
        item.update({"status": item["snooze"]["resume_status"], "snooze": None,
                     "last_change": "unsnoozed", "last_notified_at": at})
    elif kind == "resolve" and status != "resolved":
        _resolve(ledger, item, at, who, action.reason, rules)
    elif kind == "assign" and status != "resolved":
        # A named person works the alert; the owner role (and so escalation,
        # notification and the respond-by) stays as the rules say.
        item.update({"assignee": data.get("assignee"), "assigned_at": at, "assigned_by": who})
    elif kind == "escalate" and status != "resolved":
        if data.get("cycle", item["cycle"]) != item["cycle"] or data["to_level"] <= item["level"]:
            return
        item["escalations"].append({"at": at, "from": item["owner"], "to": data["to_owner"],
                                    "from_level": item["level"], "to_level": data["to_level"],
                                    "reason": action.reason})
        item["level"] = data["to_level"]
        item["owner"] = data["to_owner"]
        item["last_notified_at"] = at
        item["last_change"] = "escalated"
        if data.get("next_ack_due"):
            item["ack_due"] = data["next_ack_due"]
        for number in data.get("steps", []):
            step = _find_step(item["steps"], number)
            if step is not None:
                step["escalated"] = True
    elif kind == "renotify" and status == "open":
        item["last_notified_at"] = at
        item["last_change"] = "renotified"
    elif kind == "tier_lowered" and status != "resolved":
        pending = item["pending_tier"]
        if pending and pending["tier"] == data.get("tier") and Tier.rank_of(data.get("tier")) < Tier.rank_of(item["tier"]):
            item["tier"] = data["tier"]
            item["pending_tier"] = None
            item["last_change"] = "tier_lowered"


# --------------------------------------------------------------------------- the clock


def due_actions(ledger: Ledger, now: datetime, rules: ResponseRules) -> list[Action]:
    """Actions riskwatch must record because `now` passed a deadline.

    Apply them and call again until it returns nothing: one escalation at a
    time, so a long outage walks the chain level by level with a record each.
    """
    esc = rules.escalation
    out: list[Action] = []
    for alert_id in sorted(ledger.alerts):
        item = ledger.alerts[alert_id]
        status = item["status"]
        if status == "resolved":
            continue
        if status == "snoozed":
            until = _t((item["snooze"] or {}).get("until"))
            if until is not None and now >= until:
                out.append(make_action("snooze_ended", at=now, alert_id=alert_id, reason="snooze time passed",
                                       data={"snooze_action_id": item["snooze"]["action_id"]}))
            continue
        pending = item["pending_tier"]
        if pending and now - _t(pending["since"]) >= esc.hysteresis.tier_drop_hold:
            out.append(make_action("tier_lowered", at=now, alert_id=alert_id,
                                   reason=f"{pending['tier']} held {duration_as_written(esc.hysteresis.tier_drop_hold)} since {pending['since']}",
                                   data={"tier": pending["tier"], "since": pending["since"], "cycle": item["cycle"]}))
        escalation = _escalation_due(item, now, rules)
        if escalation is not None:
            out.append(escalation)
        elif status == "open" and item["last_notified_at"]:
            due = _t(item["last_notified_at"]) + esc.renotify_every.for_tier(item["tier"])
            if now >= due:
                out.append(make_action("renotify", at=now, alert_id=alert_id,
                                       reason=f"still unacknowledged after {duration_as_written(esc.renotify_every.for_tier(item['tier']))}",
                                       data={"due": isoformat(due), "cycle": item["cycle"]}))
    for review_id in sorted(ledger.reviews):
        review = ledger.reviews[review_id]
        if review["status"] == "open" and not review["overdue_flagged"] and now > _t(review["due_at"]):
            out.append(make_action("review_overdue", at=now, review_id=review_id,
                                   reason=f"review not submitted by {review['due_at']}",
                                   data={"due_at": review["due_at"]}))
    return out


def _escalation_due(item: dict, now: datetime, rules: ResponseRules) -> Action | None:
    esc = rules.escalation
    if item["level"] >= esc.top_level:
        return None
    reason = None
    ack_due = _t(item["ack_due"])
    if item["status"] == "open" and ack_due is not None and now > ack_due:
        reason = f"not acknowledged by {item['ack_due']}"
    grace = esc.step_overdue_grace
    late_steps = [s["step"] for s in item["steps"]
                  if s["status"] == "pending" and not s["escalated"] and s["due_at"]
                  and now > _t(s["due_at"]) + grace]
    if late_steps and reason is None:
        reason = "playbook step " + ", ".join(str(n) for n in late_steps) + " past its due time"
    if reason is None:
        return None
    to_level = item["level"] + 1
    next_ack_due = None
    if item["status"] == "open":
        # Counted from the missed deadline, not from when the tick ran: the
        # chain is walked the same whether the clock moves in one jump or many.
        next_ack_due = isoformat((ack_due or now) + esc.escalate_every.for_tier(item["tier"]))
    return make_action("escalate", at=now, alert_id=item["alert_id"], reason=reason, data={
        "to_level": to_level, "to_owner": esc.owner_chain[to_level].level, "cycle": item["cycle"],
        "steps": late_steps, "next_ack_due": next_ack_due})


# --------------------------------------------------------------------------- what the shells see


def overdue_steps(item: dict, now: datetime) -> list[dict]:
    if item["status"] in ("resolved", "snoozed"):
        return []
    return [s for s in item["steps"] if s["status"] == "pending" and s["due_at"] and now > _t(s["due_at"])]


def review_overdue(review: dict, now: datetime) -> bool:
    return review["status"] == "open" and now > _t(review["due_at"])


def notification_view(item: dict) -> dict:
    """The alert as the sinks see it: the engine's record with the shown tier,
    the current owner and the lifecycle status laid over it."""
    view = dict(item["alert"])
    view.update({
        "tier": item["tier"],
        "owner": item["owner"],
        "status": item["status"],
        "change": item["last_change"],
        "workflow": {
            "level": item["level"],
            "acknowledged_at": item["acknowledged_at"],
            "acknowledged_by": item["acknowledged_by"],
            "escalations": len(item["escalations"]),
            "snoozed_until": (item["snooze"] or {}).get("until"),
            "pending_tier": (item["pending_tier"] or {}).get("tier"),
            "cycle": item["cycle"],
        },
    })
    return view
