"""The console's fixed words: tier, status, role and action names as
catalogue messages (English source; translations in locale/*/messages.po).

`N_` marks a message for `pybabel extract` without translating it here: the
page translates it in the reader's language when it is shown."""

from __future__ import annotations


def N_(message: str) -> str:  # noqa: N802 - gettext's conventional marker name
    return message


TIER_NAMES = {"red": N_("Red"), "orange": N_("Orange"), "yellow": N_("Yellow"), "blue": N_("Blue")}
STATUS_NAMES = {"open": N_("Open"), "acknowledged": N_("Acknowledged"), "in_progress": N_("In progress"),
                "snoozed": N_("Snoozed"), "resolved": N_("Resolved")}
ROLE_NAMES = {"officer": N_("Risk officer"), "director": N_("Sales director"), "operator": N_("Operator"),
              "readonly": N_("Read-only"), "system": N_("riskwatch")}
STEP_NAMES = {"pending": N_("Pending"), "done": N_("Done"), "skipped": N_("Skipped")}
PLAN_NAMES = {"active": N_("Active"), "completed": N_("Completed"), "closed": N_("Closed"),
              "cancelled": N_("Cancelled")}
REVIEW_NAMES = {"open": N_("Open"), "submitted": N_("Submitted"), "signed_off": N_("Signed off")}
ACTION_NAMES = {
    "acknowledge": N_("Acknowledged"), "start": N_("Started"), "step_done": N_("Step done"),
    "step_skipped": N_("Step skipped"), "snooze": N_("Snoozed"), "unsnooze": N_("Snooze ended"),
    "resolve": N_("Resolved"), "comment": N_("Comment"), "assign": N_("Assigned"), "plan_triggered": N_("Plan triggered"),
    "plan_step_done": N_("Plan step done"), "plan_closed": N_("Plan closed"),
    "review_submitted": N_("Review submitted"), "review_signed_off": N_("Review signed off"),
    "rules_reloaded": N_("Rules reloaded"), "escalate": N_("Escalated"), "renotify": N_("Notified again"),
    "snooze_ended": N_("Snooze ended"), "tier_lowered": N_("Tier lowered"), "review_overdue": N_("Review overdue"),
}
# What an alert is about (`subject.kind`) and the unit of its reading
# (`unit`, rules/indicators.yaml thresholds), as the register's export writes
# them: through the catalogue, so a Chinese export says 发货, not shipment.
SUBJECT_KINDS = [N_("customer"), N_("shipment"), N_("invoice"), N_("price"), N_("segment"), N_("target")]
READING_UNITS = [N_("hours"), N_("days"), N_("ratio")]
# Owner roles of the shipped rule files (rules/escalation.yaml), as their
# names are written in the catalogue (`Formatter.role` looks them up).
OWNER_ROLES = [N_("frontline team"), N_("customer success manager"), N_("technical expert"),
               N_("account executive"), N_("department head"), N_("sales leadership group"), N_("sales director"),
               N_("general manager"), N_("crisis team"), N_("credit controller"), N_("finance"),
               N_("supply chain manager"), N_("procurement"), N_("marketing"), N_("sales operations")]
