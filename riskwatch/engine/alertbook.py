"""From a finding (what an indicator sees now) to alert changes.

A finding is a pure description of a subject's risk; the book compares it
with the last change it emitted for that subject and emits a new
`riskwatch.contracts.AlertChange` only when something a person would care
about changed. What it keeps per alert is an `AlertState` (that change plus
the bookkeeping the next one is computed from), in the same state mapping as
everything else, under `a:<alert_id>`.
"""

from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import dataclass, field
from typing import MutableMapping

from riskwatch.contracts import AlertChange, Change, Playbook, PlaybookStep, Status, Tier
from riskwatch.engine.scoring import score
from riskwatch.rules.loader import CompiledIndicator, RuleSet
from riskwatch.timeutil import iso, parse_duration
from riskwatch.units import reading, round_beside

ALERT_PREFIX = "a:"


@dataclass(slots=True)
class Finding:
    indicator: CompiledIndicator
    subject: dict
    open: bool                       # condition holds now
    observed: float                  # in the indicator's unit
    onset_ts: float | None           # event time the condition started (None: when first seen)
    resolved_ts: float | None = None
    amount_cny: float | None = None
    # The business reference the money at stake is a share of (CNY), as the
    # indicator's rules name it (rules/indicators.yaml `reference`).
    reference_cny: float | None = None
    customer_class: str | None = None
    region: str | None = None
    evidence: tuple = ()
    eta_late: bool = False
    detail: str = ""
    resolution: object = None        # why it cleared (str, or an object worded by str()): paid, delivered, ...
    assess_observed: float | None = None  # the value to score on, when not the latest observed
    # An absence condition closed by a clearing fact (a late shipment
    # delivered, an overdue invoice settled): (observed, amount_cny) for each
    # stretch from its deadline to that fact. It closes at the highest tier
    # among them, so the closing tier does not depend on how far the clock
    # had got when the clearing fact was evaluated.
    episode: tuple = ()
    extra: dict = field(default_factory=dict)


@functools.lru_cache(maxsize=65536)
def alert_id_for(indicator: str, subject_kind: str, subject_id: str) -> str:
    """Stable across replays, redeliveries and restarts: the same subject, the same id."""
    digest = hashlib.sha1(f"{indicator}\x1f{subject_kind}\x1f{subject_id}".encode()).hexdigest()
    return "al-" + digest[:16]


@dataclass(frozen=True, slots=True)
class AlertState:
    """What the book keeps per alert, under `a:<alert_id>`: the last change it
    published and the bookkeeping the next change is computed from. Kept
    apart from the change, so nothing has to be stripped before publishing.

    - `raised_ts`: Unix seconds the condition started (the change's raised_at);
    - `tier_since`: Unix seconds the current tier holds since (respond_by counts from it);
    - `episode_ts`: Unix seconds the current episode (raised, or reopened) started;
      the playbook's step due times count from it;
    - `inputs`: what the change was computed from (`AlertBook.record`): equal
      inputs, no new change and no scoring. None for a state kept before
      they were recorded.

    Picklable (the Kafka worker pickles state values into its changelog) and
    never changed in place: a new change replaces the whole value."""

    change: AlertChange
    raised_ts: float
    tier_since: float
    episode_ts: float
    inputs: tuple | None


# Bookkeeping the engine once kept inside the change record's dict: a worker
# recovering a changelog written then still finds records of that shape.
_FORMER_BOOKKEEPING = ("raised_ts", "tier_since", "inputs", "episode_ts")


def stored_state(value: object) -> AlertState:
    """The `AlertState` a state value under `a:` holds (either form it was kept in)."""
    if isinstance(value, AlertState):
        return value
    if isinstance(value, dict):
        raised_ts = value["raised_ts"]
        return AlertState(
            AlertChange.from_json({k: v for k, v in value.items() if k not in _FORMER_BOOKKEEPING}),
            raised_ts, value["tier_since"], value.get("episode_ts", raised_ts), value.get("inputs"))
    raise TypeError(f"not an alert state: {type(value).__name__}")


class AlertBook:
    def __init__(self, rules: RuleSet, state: MutableMapping[str, object]):
        self.rules = rules
        self.state = state

    def has_alert(self, indicator_id: str, subject_kind: str, subject_id: str) -> bool:
        """Whether an alert about this subject was ever raised (open or resolved):
        a scheduled check must then keep measuring it, to resolve or reopen it."""
        return (ALERT_PREFIX + alert_id_for(indicator_id, subject_kind, subject_id)) in self.state

    def current(self, indicator_id: str, subject_kind: str, subject_id: str) -> AlertChange | None:
        """The latest change of the alert about this subject, or None if none was raised."""
        value = self.state.get(ALERT_PREFIX + alert_id_for(indicator_id, subject_kind, subject_id))
        return None if value is None else stored_state(value).change

    def is_open(self, indicator_id: str, subject_kind: str, subject_id: str) -> bool:
        """Whether the alert about this subject is open now."""
        change = self.current(indicator_id, subject_kind, subject_id)
        return change is not None and change.status == "open"

    def changes(self) -> list[AlertChange]:
        """The latest change of every alert in the state (open and resolved)."""
        return [stored_state(value).change for key, value in self.state.items() if key.startswith(ALERT_PREFIX)]

    def record(self, finding: Finding, now_ts: float) -> AlertChange | None:
        """The change this finding makes (kept as the alert's state), or None if nothing changed.
        `now_ts`: the service clock, Unix seconds."""
        indicator = finding.indicator
        subject = finding.subject
        alert_id = alert_id_for(indicator.id, subject["kind"], subject["id"])
        key = ALERT_PREFIX + alert_id
        stored = self.state.get(key)
        kept = None if stored is None else stored_state(stored)
        previous = None if kept is None else kept.change
        if previous is None and not finding.open and finding.resolved_ts is None:
            return None
        if previous is not None and previous.status == Status.RESOLVED and not finding.open:
            return None  # a resolved alert stays as it was closed until it reopens
        # Everything the change is computed from: equal inputs, no change, no scoring.
        inputs = (finding.open, round(finding.observed, 4), finding.evidence, finding.amount_cny,
                  finding.customer_class, finding.eta_late, finding.assess_observed, finding.resolved_ts,
                  finding.reference_cny)
        if kept is not None and kept.inputs == inputs:
            return None

        worked = None if previous is None else (previous.probability, previous.impact, previous.controllability, previous.tier)
        if finding.episode and not finding.open:
            # Closing a measurement that grew with time: the highest tier it
            # reached before the clearing fact. Within the allowed lateness the
            # clock never measured past that fact, so this is at least the tier
            # the alert was worked under; if an event came later than that, the
            # alert still never closes below the tier it was worked under.
            probability, impact, controllability, tier = self._peak(finding)
            if worked is not None and worked[3].rank > tier.rank:
                probability, impact, controllability, tier = worked
        elif worked is not None and not finding.open and finding.assess_observed is None:
            # Resolving keeps the assessment the alert was worked under; the
            # observed value still shows the final measurement. (Findings that
            # recompute their assessment from the full history say so.)
            probability, impact, controllability, tier = worked
        else:
            basis = finding.assess_observed if finding.assess_observed is not None else finding.observed
            probability, impact, controllability, tier = self._assess(finding, basis, finding.amount_cny)
        onset_ts = finding.onset_ts
        if onset_ts is None:
            onset_ts = kept.raised_ts if previous is not None and previous.status == Status.OPEN else now_ts
        status = Status.OPEN if finding.open else Status.RESOLVED
        # A ratio against a limit of 0 (credit hold) has no finite value.
        observed = round_beside(finding.observed, indicator.threshold) if math.isfinite(finding.observed) else None
        evidence = tuple(dict.fromkeys(finding.evidence))
        if not evidence and previous is not None:
            # A group measured again after its events left the window still
            # owes the events that caused it (DOMAIN §5).
            evidence = previous.evidence

        if previous is not None:
            if (
                previous.status == status
                and previous.tier == tier
                and previous.observed == observed
                and previous.evidence == evidence
                and previous.probability == probability
                and previous.impact == impact
            ):
                return None
            if previous.status == Status.RESOLVED and status == Status.OPEN:
                change = Change.REOPENED
            elif status == Status.RESOLVED and previous.status != Status.RESOLVED:
                change = Change.RESOLVED
            elif previous.tier != tier:
                change = Change.TIER_CHANGED
            else:
                change = Change.UPDATED
            sequence = previous.sequence + 1
            tier_since = kept.tier_since if previous.tier == tier and change != Change.REOPENED else max(now_ts, onset_ts)
        else:
            change = Change.RAISED
            sequence = 1
            tier_since = onset_ts

        response = self.rules.response[tier]
        playbook = self.rules.playbooks[indicator.playbook]
        steps = playbook.by_tier.get(tier) or playbook.steps
        # An alert keeps its raised_at for life (DOMAIN §4): a clearing fact
        # dated before the deadline has no onset of its own. The playbook's
        # clock starts again when the alert reopens.
        raised_ts = kept.raised_ts if kept is not None else onset_ts
        if kept is None:
            episode_ts = onset_ts
        elif change == Change.REOPENED:
            episode_ts = onset_ts if onset_ts else now_ts
        else:
            episode_ts = kept.episode_ts
        record = AlertChange(
            alert_id=alert_id,
            indicator=indicator.id,
            title=indicator.title,
            tier=tier,
            status=status,
            change=change,
            subject=subject,
            customer_class=finding.customer_class,
            region=finding.region,
            probability=probability,
            impact=impact,
            controllability=controllability,
            observed=observed,
            threshold=indicator.threshold,
            unit=indicator.unit,
            direction=indicator.direction,
            amount_at_stake_cny=None if finding.amount_cny is None else round(finding.amount_cny, 2),
            impact_reference_cny=None if finding.reference_cny is None else round(finding.reference_cny, 2),
            summary=self._summary(finding, finding.observed if observed is None else observed),
            raised_at=iso(raised_ts),
            updated_at=iso(max(now_ts, raised_ts)),
            resolved_at=iso(finding.resolved_ts if finding.resolved_ts is not None else max(now_ts, raised_ts)) if status == Status.RESOLVED else None,
            resolution=None if status != Status.RESOLVED or finding.resolution is None else str(finding.resolution),
            owner=response.owner,
            escalate_to=response.escalate_to,
            notify=tuple(response.notify),
            respond_by=iso(tier_since + self.rules.respond_within[tier]),
            playbook=Playbook(indicator.playbook, playbook.title, tuple(
                PlaybookStep(number, step.action, step.owner, iso(episode_ts + parse_duration(step.due)))
                for number, step in enumerate(steps, start=1))),
            evidence=evidence,
            sequence=sequence,
        )
        self.state[key] = AlertState(record, raised_ts, tier_since, episode_ts, inputs)
        return record

    def _assess(self, finding: Finding, observed: float, amount_cny: float | None) -> tuple[float, float, float, Tier]:
        """(probability, impact, controllability, tier) of one measurement."""
        indicator = finding.indicator
        reference = finding.reference_cny
        probability = score(indicator.probability, observed, amount_cny, finding.customer_class, finding.eta_late, reference)
        impact = score(indicator.impact, observed, amount_cny, finding.customer_class, finding.eta_late, reference)
        controllability = score(indicator.controllability, observed, amount_cny, finding.customer_class, finding.eta_late, reference)
        return probability, impact, controllability, Tier(self.rules.classify(probability, impact, controllability))

    def _peak(self, finding: Finding) -> tuple[float, float, float, Tier]:
        """The assessment of the most severe stretch of an episode (the latest of equals)."""
        peak = None
        for observed, amount_cny in finding.episode:
            assessment = self._assess(finding, observed, amount_cny)
            if peak is None or assessment[3].rank >= peak[3].rank:
                peak = assessment
        assert peak is not None
        return peak

    def _summary(self, finding: Finding, observed: float) -> str:
        indicator = finding.indicator
        shown = reading(observed, indicator.threshold, indicator.unit, indicator.direction)
        text = f"{indicator.title}: {finding.detail} {shown}".replace("  ", " ")
        if not finding.open and finding.resolution:
            text += f"; cleared: {finding.resolution}"
        return text
