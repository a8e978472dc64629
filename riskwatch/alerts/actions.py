"""Making action records: what a person (or riskwatch itself) did to an alert, plan or review.

Actions are events like the business events: each is one
`riskwatch.contracts.Action`, appended as its JSON to the store (embedded)
or to the Kafka topic `riskwatch.actions` (keyed by `subject_key`), and
folded into the lifecycle state by `riskwatch.alerts.lifecycle.apply_action`.
A record carries everything needed to apply it (an escalation names the
level it moves to, a triggered plan carries its steps and deadlines), so
replaying the records gives the same state whatever the rule files say at
replay time. The shape is described in docs/contracts-internal.md, "Action
record".
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timezone

from riskwatch.contracts import ACTION_KINDS, SYSTEM_ACTOR, SYSTEM_ROLE, Action


def isoformat(instant: datetime) -> str:
    if instant.tzinfo is None:
        raise ValueError("naive datetime: riskwatch only handles aware instants")
    return instant.astimezone(timezone.utc).isoformat()


def parse_instant(value: str | datetime | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    instant = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=timezone.utc)
    return instant


def make_action(
    kind: str,
    *,
    at: datetime,
    actor: str = SYSTEM_ACTOR,
    role: str = SYSTEM_ROLE,
    reason: str | None = None,
    alert_id: str | None = None,
    plan_id: str | None = None,
    review_id: str | None = None,
    data: dict | None = None,
    action_id: str | None = None,
) -> Action:
    """One action, recorded at `at` (an aware instant). System actions get a
    deterministic id so that two processes ticking the same store record a
    missed deadline only once. ValueError for a kind not in `ACTION_KINDS`
    or a naive `at`."""
    if kind not in ACTION_KINDS:
        raise ValueError(f"unknown action kind {kind!r}")
    subject_key = alert_id or plan_id or review_id or "rules"
    if action_id is None:
        if role == SYSTEM_ROLE:
            digest = hashlib.sha256(repr((kind, subject_key, sorted((data or {}).items()))).encode()).hexdigest()
            action_id = "act-" + digest[:20]
        else:
            action_id = "act-" + uuid.uuid4().hex[:20]
    return Action(action_id=action_id, kind=kind, subject_key=subject_key, actor=actor, role=role,
                  at=isoformat(at), alert_id=alert_id, plan_id=plan_id, review_id=review_id, reason=reason,
                  data=data or {})
