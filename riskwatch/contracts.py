"""The records that cross riskwatch's boundaries, typed once.

- `Event` and `parse_event` (with `Rejection`): what comes in. They are
  defined in `riskwatch.models` (pydantic) and re-exported here, so the
  three contracts have one home to import from.
- `AlertChange`: what the engine publishes, one record per change of an
  alert (DOMAIN §5; docs/contracts-internal.md, "Alert change record").
- `Action`: what people, and riskwatch's own clock, do to alerts, plans and
  reviews (docs/contracts-internal.md, "Action record").
- `Tier` (with its rank), `Status`, `Change`: the closed sets in them.

The engine, the desk (`riskwatch.alerts`), the API, the sinks and the Kafka
worker all pass these objects. JSON exists only at the edges: `to_json()`
gives the dict that is published (the alerts topic, `replay`'s stdout, the
workflow log, HTTP answers, Alertmanager's labels), `from_json()` reads one
back from a log, a topic or a request and raises `RecordInvalid` naming the
field it cannot use.

Instants stay the RFC 3339 text they are published as ("2026-04-01T08:00:00Z"):
a record is stored, compared and shown as that text, and a parse-and-format
round trip would be a second, lossy source of truth for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, Mapping

from riskwatch.errors import RiskwatchError
from riskwatch.models import Event, Rejection, parse_event

__all__ = [
    "ACTION_KINDS", "ACTION_SCHEMA", "Action", "AlertChange", "Change", "Event", "HUMAN_ACTION_KINDS",
    "Playbook", "PlaybookStep", "RecordInvalid", "Rejection", "SYSTEM_ACTION_KINDS", "SYSTEM_ACTOR",
    "SYSTEM_ROLE", "Status", "TIER_NAMES", "Tier", "TierName", "parse_event",
]


class RecordInvalid(RiskwatchError, ValueError):
    """A record read from outside (a log, a topic, a request) that does not
    fit its contract; the message names the record kind and the field."""


# --------------------------------------------------------------------------- closed sets


class Tier(StrEnum):
    """An alert's tier (DOMAIN §2), in order of severity, most severe first.

    Members are strings ("red" == Tier.RED), so they go into JSON, labels and
    dict keys as they are; compare severity with `.rank`, never with `<`
    (that compares the words)."""

    RED = "red"
    ORANGE = "orange"
    YELLOW = "yellow"
    BLUE = "blue"

    @property
    def rank(self) -> int:
        """Severity on one scale: blue 0, yellow 1, orange 2, red 3."""
        return _TIER_RANK[self]

    @classmethod
    def parse(cls, text: str) -> "Tier":
        """The tier named by `text` (case and surrounding blanks ignored);
        ValueError naming the tiers otherwise."""
        try:
            return cls(text.strip().lower())
        except (AttributeError, ValueError):
            raise ValueError(f"{text!r} is not a tier (one of {', '.join(TIER_NAMES)})") from None

    @classmethod
    def rank_of(cls, name: str | None) -> int:
        """`Tier(name).rank`, or -1 for no tier or a word that is not one
        (a record made elsewhere): below every tier, so any tier outranks it."""
        try:
            return _TIER_RANK[name]  # type: ignore[index]
        except KeyError:
            return -1


# Built once: `rank` is read for every alert change and every lifecycle step.
_TIER_RANK: dict[str, int] = {tier: len(Tier) - 1 - index for index, tier in enumerate(Tier)}
TIER_NAMES: tuple[str, ...] = tuple(tier.value for tier in Tier)   # most severe first
# For pydantic models (rule files, HTTP bodies and queries): the same words,
# with the error text and JSON schema of a plain choice of strings.
TierName = Literal[TIER_NAMES]  # type: ignore[valid-type]


class Status(StrEnum):
    """The engine's status of an alert's condition. The desk's work items
    have their own, finer states (acknowledged, snoozed, ...:
    `riskwatch.alerts.lifecycle.STATUSES`)."""

    OPEN = "open"
    RESOLVED = "resolved"


class Change(StrEnum):
    """What a change record changed."""

    RAISED = "raised"
    TIER_CHANGED = "tier_changed"
    UPDATED = "updated"
    RESOLVED = "resolved"
    REOPENED = "reopened"


# --------------------------------------------------------------------------- the alert change record


@dataclass(frozen=True, slots=True)
class PlaybookStep:
    """One step of an alert's playbook: `action` for `owner` (a role), due
    at `due_at` (RFC 3339), counted from the start of the alert's episode."""

    step: int
    action: str | None
    owner: str | None
    due_at: str | None

    def to_json(self) -> dict:
        return {"step": self.step, "action": self.action, "owner": self.owner, "due_at": self.due_at}


@dataclass(frozen=True, slots=True)
class Playbook:
    """The playbook an alert is worked by (rules/playbooks.yaml) with its steps for the alert's tier."""

    id: str | None
    title: str | None
    steps: tuple[PlaybookStep, ...] = ()

    def to_json(self) -> dict:
        return {"id": self.id, "title": self.title, "steps": [step.to_json() for step in self.steps]}

    @classmethod
    def from_json(cls, body: object) -> "Playbook":
        if not isinstance(body, Mapping):
            raise RecordInvalid(f"alert change: playbook: {type(body).__name__}, not an object")
        steps = body.get("steps") or []
        if not isinstance(steps, list) or not all(isinstance(step, Mapping) for step in steps):
            raise RecordInvalid("alert change: playbook.steps: not a list of objects")
        return cls(body.get("id"), body.get("title"), tuple(
            # A step without its number (a record made by hand) is numbered by its place.
            PlaybookStep(step.get("step", number), step.get("action"), step.get("owner"), step.get("due_at"))
            for number, step in enumerate(steps, start=1)))


@dataclass(frozen=True, slots=True)
class AlertChange:
    """One change of one alert (DOMAIN §5); the last for an `alert_id` is its state.

    Made by the engine (`riskwatch.engine.alertbook.AlertBook.record`), which
    fills every field; read back with `from_json` from a log, a topic or a
    request, where only `alert_id`, `indicator`, `tier` and `status` are
    required and a missing field is None (an empty tuple for `notify` and
    `evidence`).

    Fields, in the order `to_json` publishes them:

    - `alert_id`: stable, "al-" + 16 hex digits derived from indicator and subject;
    - `indicator`: an indicator id (DOMAIN §2); `title` its title;
    - `tier`, `status`, `change`: see `Tier`, `Status`, `Change`;
    - `subject`: what the alert is about, a dict with at least "kind" and
      "id" plus "customer_id", "competitor", "sku", "segment", "target",
      "period" where they apply. A dict rather than a type: its keys vary
      with the indicator and are published in the order the indicator
      wrote them. Do not change it in place;
    - `customer_class` (A-D) and `region`, or None;
    - `probability`, `impact`, `controllability`: ratios 0-1;
    - `observed` (in `unit`, 4 decimals, never rounded onto or across the
      threshold; None when it has no finite value: a ratio against a limit
      of 0) against `threshold`, `direction` "above" or "below";
    - `amount_at_stake_cny`, `impact_reference_cny`: CNY, or None;
    - `summary`: one line for people;
    - `raised_at`, `updated_at`, `resolved_at`, `respond_by`: RFC 3339 text
      (event time); `resolution`: why the condition cleared, or None;
    - `owner`, `escalate_to` (roles), `notify` (roles);
    - `playbook`: `Playbook`; `evidence`: the event_ids that caused it;
    - `sequence`: per alert, grows by one with every change;
    - `extra`: fields a record read from outside carried beyond these,
      (name, value) pairs kept in order, published after them.
    """

    alert_id: str
    indicator: str
    tier: Tier
    status: Status
    change: Change | None = None
    title: str | None = None
    subject: dict = field(default_factory=dict)
    customer_class: str | None = None
    region: str | None = None
    probability: float | None = None
    impact: float | None = None
    controllability: float | None = None
    observed: float | None = None
    threshold: float | None = None
    unit: str | None = None
    direction: str | None = None
    amount_at_stake_cny: float | None = None
    impact_reference_cny: float | None = None
    summary: str | None = None
    raised_at: str | None = None
    updated_at: str | None = None
    resolved_at: str | None = None
    resolution: str | None = None
    owner: str | None = None
    escalate_to: str | None = None
    notify: tuple[str, ...] = ()
    respond_by: str | None = None
    playbook: Playbook | None = None
    evidence: tuple[str, ...] = ()
    sequence: int | None = None
    extra: tuple[tuple[str, Any], ...] = ()

    @property
    def is_open(self) -> bool:
        return self.status == Status.OPEN

    def to_json(self) -> dict:
        """The published record: a new JSON-able dict, keys in the order of
        docs/contracts-internal.md (a consumer that compares records as text,
        or shows them, sees the same record whichever process made it)."""
        record = {
            "alert_id": self.alert_id,
            "indicator": self.indicator,
            "title": self.title,
            "tier": self.tier.value,
            "status": self.status.value,
            "change": None if self.change is None else self.change.value,
            "subject": dict(self.subject),
            "customer_class": self.customer_class,
            "region": self.region,
            "probability": self.probability,
            "impact": self.impact,
            "controllability": self.controllability,
            "observed": self.observed,
            "threshold": self.threshold,
            "unit": self.unit,
            "direction": self.direction,
            "amount_at_stake_cny": self.amount_at_stake_cny,
            "impact_reference_cny": self.impact_reference_cny,
            "summary": self.summary,
            "raised_at": self.raised_at,
            "updated_at": self.updated_at,
            "resolved_at": self.resolved_at,
            "resolution": self.resolution,
            "owner": self.owner,
            "escalate_to": self.escalate_to,
            "notify": list(self.notify),
            "respond_by": self.respond_by,
            "playbook": None if self.playbook is None else self.playbook.to_json(),
            "evidence": list(self.evidence),
            "sequence": self.sequence,
        }
        for name, value in self.extra:
            record[name] = value
        return record

    @classmethod
    def from_json(cls, body: object) -> "AlertChange":
        """The change a published record describes. Raises RecordInvalid for
        a record that is not an object, lacks `alert_id` or `indicator` (or
        has them empty), names no known tier or status or change, or has a
        `subject`, `playbook`, `notify` or `evidence` of the wrong shape."""
        if not isinstance(body, Mapping):
            raise RecordInvalid(f"alert change: {type(body).__name__}, not an object")
        for name in ("alert_id", "indicator"):
            if not isinstance(body.get(name), str) or not body.get(name):
                raise RecordInvalid(f"alert change: {name}: missing or not a string")
        tier = _member(Tier, body, "tier", required=True)
        status = _member(Status, body, "status", required=True)
        change = _member(Change, body, "change", required=False)
        subject = body.get("subject")
        if subject is None:
            subject = {}
        elif not isinstance(subject, Mapping):
            raise RecordInvalid("alert change: subject: not an object")
        playbook = body.get("playbook")
        return cls(
            alert_id=body["alert_id"],
            indicator=body["indicator"],
            tier=tier,
            status=status,
            change=change,
            title=body.get("title"),
            subject=dict(subject),
            customer_class=body.get("customer_class"),
            region=body.get("region"),
            probability=body.get("probability"),
            impact=body.get("impact"),
            controllability=body.get("controllability"),
            observed=body.get("observed"),
            threshold=body.get("threshold"),
            unit=body.get("unit"),
            direction=body.get("direction"),
            amount_at_stake_cny=body.get("amount_at_stake_cny"),
            impact_reference_cny=body.get("impact_reference_cny"),
            summary=body.get("summary"),
            raised_at=body.get("raised_at"),
            updated_at=body.get("updated_at"),
            resolved_at=body.get("resolved_at"),
            resolution=body.get("resolution"),
            owner=body.get("owner"),
            escalate_to=body.get("escalate_to"),
            notify=_strings(body, "notify"),
            respond_by=body.get("respond_by"),
            playbook=None if playbook is None else Playbook.from_json(playbook),
            evidence=_strings(body, "evidence"),
            sequence=body.get("sequence"),
            extra=tuple((name, value) for name, value in body.items() if name not in _ALERT_FIELDS),
        )


_ALERT_FIELDS = frozenset(name for name in AlertChange.__dataclass_fields__ if name != "extra")


def _member(enum: type[StrEnum], body: Mapping, name: str, *, required: bool):
    value = body.get(name)
    if value is None and not required:
        return None
    try:
        return enum(value)
    except ValueError:
        words = ", ".join(member.value for member in enum)
        raise RecordInvalid(f"alert change: {name}: {value!r} is not one of {words}") from None


def _strings(body: Mapping, name: str) -> tuple[str, ...]:
    value = body.get(name)
    if value is None:
        return ()
    if not isinstance(value, (list, tuple)):
        raise RecordInvalid(f"alert change: {name}: not a list")
    return tuple(value)


# --------------------------------------------------------------------------- the action record

ACTION_SCHEMA = 1
SYSTEM_ACTOR = "riskwatch"
SYSTEM_ROLE = "system"

# Kinds a person can record (through the API or the console), whatever role the route allows.
HUMAN_ACTION_KINDS = (
    "acknowledge", "start", "step_done", "step_skipped", "snooze", "unsnooze", "resolve", "comment", "assign",
    "plan_triggered", "plan_step_done", "plan_closed",
    "review_submitted", "review_signed_off",
    "rules_reloaded",
)
# Kinds riskwatch records by itself when the clock passes a deadline.
SYSTEM_ACTION_KINDS = ("escalate", "renotify", "snooze_ended", "tier_lowered", "review_overdue")
ACTION_KINDS = HUMAN_ACTION_KINDS + SYSTEM_ACTION_KINDS


@dataclass(frozen=True, slots=True)
class Action:
    """One thing done to an alert, a plan or a review (docs/contracts-internal.md).

    - `action_id`: unique ("act-" + 20 hex digits); a redelivered record is applied once;
    - `kind`: one of `ACTION_KINDS`;
    - `subject_key`: the Kafka key, `alert_id`, else `plan_id`, else `review_id`, else "rules";
    - `alert_id`, `plan_id`, `review_id`: what it is about, or None;
    - `actor`: who ("Ann Li (token 1a2b3c4d)"; `SYSTEM_ACTOR` for the clock); `role`: theirs
      (officer, director, operator, readonly; `SYSTEM_ROLE`);
    - `at`: when it was recorded, RFC 3339 text; `reason`: why, or None;
    - `data`: kind-specific, JSON-able (the table in docs/contracts-internal.md).
      Do not change it in place;
    - `schema`: the record's format version (`ACTION_SCHEMA`).
    """

    action_id: str
    kind: str
    subject_key: str
    actor: str
    role: str
    at: str
    alert_id: str | None = None
    plan_id: str | None = None
    review_id: str | None = None
    reason: str | None = None
    data: dict = field(default_factory=dict)
    schema: int = ACTION_SCHEMA

    def to_json(self) -> dict:
        """The record as the workflow log and the actions topic keep it (a new dict; `data` shared)."""
        return {
            "schema": self.schema,
            "action_id": self.action_id,
            "kind": self.kind,
            "subject_key": self.subject_key,
            "alert_id": self.alert_id,
            "plan_id": self.plan_id,
            "review_id": self.review_id,
            "actor": self.actor,
            "role": self.role,
            "at": self.at,
            "reason": self.reason,
            "data": self.data,
        }

    @classmethod
    def from_json(cls, body: object) -> "Action":
        """The action a logged record describes. Raises RecordInvalid for a
        record that is not an object, lacks `action_id`, `subject_key` or
        `at` (or has one empty), has a `kind` not in `ACTION_KINDS` (an
        idempotency key record on the actions topic has none) or a `data`
        that is not an object. Fields it does not know are passed over: the
        log keeps the record as written."""
        if not isinstance(body, Mapping):
            raise RecordInvalid(f"action: {type(body).__name__}, not an object")
        for name in ("action_id", "subject_key", "at"):
            if not isinstance(body.get(name), str) or not body.get(name):
                raise RecordInvalid(f"action: {name}: missing or not a string")
        kind = body.get("kind")
        if kind not in ACTION_KINDS:
            raise RecordInvalid(f"action: kind: {kind!r} is not an action kind")
        data = body.get("data")
        if data is None:
            data = {}
        elif not isinstance(data, Mapping):
            raise RecordInvalid("action: data: not an object")
        return cls(
            action_id=body["action_id"], kind=kind, subject_key=body["subject_key"],
            actor=body.get("actor") or "", role=body.get("role") or "", at=body["at"],
            alert_id=body.get("alert_id"), plan_id=body.get("plan_id"), review_id=body.get("review_id"),
            reason=body.get("reason"), data=dict(data), schema=body.get("schema", ACTION_SCHEMA),
        )
