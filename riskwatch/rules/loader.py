"""Strict loading of the rule directory: every problem collected, none guessed.

Each problem reads `file: field.path: reason`, so a risk officer can go
straight to the line to fix. A directory with any problem is refused whole;
the caller keeps the rules it was running.

Besides each file's own shape, every name one file gives for something
another file defines is checked: owner roles (matrix.yaml responses,
playbook and contingency-plan steps) against escalation.yaml's owner_chain,
playbook ids, indicator ids, tier names. A misspelt name is a refusal, never
a default.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from riskwatch.errors import RulesError
from riskwatch.rules.files import read_yaml, validate_file
from riskwatch.rules.response import ResponseRules, role_hint, validate_response_files
from riskwatch.rules.matrix import Matrix, compile_matrix
from riskwatch.rules.schema import (
    CURRENCY_RATES_FIELD,
    INDICATOR_IDS,
    Indicator,
    IndicatorsFile,
    MatrixFile,
    Playbook,
    PlaybooksFile,
    References,
    Score,
    TargetsFile,
    TierResponse,
    check_currency_rates,
)
from riskwatch.timeutil import parse_duration

# Files validated by the alert-workflow module (riskwatch.rules.response). They
# are required: escalation.yaml's owner_chain is where the roles are defined.
RESPONSE_FILES = ("escalation.yaml", "contingency_plans.yaml")
REQUIRED_FILES = ("indicators.yaml", "matrix.yaml", "playbooks.yaml") + RESPONSE_FILES
OPTIONAL_FILES = ("targets.yaml",)

@dataclass(frozen=True)
class CompiledIndicator:
    id: str
    title: str
    subject: str
    enabled: bool
    direction: str            # "above" or "below"
    threshold: float          # in `unit`
    unit: str
    params: dict[str, Any]    # durations already in seconds
    evaluate_every: float | None
    playbook: str
    probability: Score
    impact: Score
    controllability: Score

    def breached(self, observed: float) -> bool:
        """Strict: exactly at the threshold is not a breach."""
        if self.direction == "above":
            return observed > self.threshold
        return observed < self.threshold


@dataclass(frozen=True)
class RuleSet:
    """A rule directory that passed every check (`load_rules`).

    `currency_rates` are CNY per unit of each ISO 4217 currency as floats;
    `currency_rates_exact` are the same rates as `Decimal`s read from the
    YAML text (7.1 is Decimal('7.1')), for exact money conversion (DOMAIN §3).
    `response_rules` is the escalation chain and the contingency plans
    (riskwatch.rules.response.ResponseRules)."""

    directory: Path
    indicators: dict[str, CompiledIndicator]
    matrix: Matrix
    response: dict[str, TierResponse]
    respond_within: dict[str, float]
    playbooks: dict[str, Playbook]
    targets: dict[str, float]
    currency_rates: dict[str, float]
    response_rules: Any = None
    files: tuple[str, ...] = field(default=())
    currency_rates_exact: dict[str, Decimal] = field(default_factory=dict)
    references: References = field(default_factory=References)

    def classify(self, probability: float, impact: float, controllability: float) -> str:
        return self.matrix.classify(probability, impact, controllability)


def load_rules(directory: Path | str) -> RuleSet:
    """Load and cross-check every rule file, or raise RulesError listing every problem."""
    directory = Path(directory)
    problems: list[str] = []
    if not directory.is_dir():
        raise RulesError([f"{directory}: not a directory of rule files"])

    known = set(REQUIRED_FILES) | set(OPTIONAL_FILES) | set(RESPONSE_FILES)
    for path in sorted(directory.glob("*.y*ml")):
        if path.name not in known:
            problems.append(f"{path.name}: (top level): not a rule file riskwatch knows (expected one of {', '.join(sorted(known))})")
    raw: dict[str, Any] = {}
    for name in REQUIRED_FILES + OPTIONAL_FILES:
        path = directory / name
        if not path.exists():
            if name in REQUIRED_FILES:
                problems.append(f"{name}: (top level): required file is missing")
            continue
        raw[name] = read_yaml(path, problems)

    indicators_file = validate_file("indicators.yaml", raw.get("indicators.yaml"), IndicatorsFile, problems) if "indicators.yaml" in raw else None
    matrix_file = validate_file("matrix.yaml", raw.get("matrix.yaml"), MatrixFile, problems) if "matrix.yaml" in raw else None
    playbooks_file = validate_file("playbooks.yaml", raw.get("playbooks.yaml"), PlaybooksFile, problems) if "playbooks.yaml" in raw else None
    targets_file = validate_file("targets.yaml", raw.get("targets.yaml"), TargetsFile, problems) if "targets.yaml" in raw else None

    matrix = None
    if matrix_file is not None:
        matrix, matrix_problems = compile_matrix(matrix_file, "matrix.yaml")
        problems.extend(matrix_problems)

    compiled: dict[str, CompiledIndicator] = {}
    exact_rates: dict[str, Decimal] = {}
    if indicators_file is not None:
        exact_rates, rate_problems = check_currency_rates(indicators_file.currency_rates_to_cny)
        problems.extend(f"indicators.yaml: {CURRENCY_RATES_FIELD}{where}: {reason}" for where, reason in rate_problems)
        playbook_ids = set(playbooks_file.playbooks) if playbooks_file is not None else None
        for indicator_id in INDICATOR_IDS:
            if indicator_id not in indicators_file.indicators:
                problems.append(f"indicators.yaml: indicators.{indicator_id}: required (set enabled: false to switch it off)")
        for indicator_id, indicator in indicators_file.indicators.items():
            result = _compile_indicator(indicator_id, indicator, playbook_ids, problems)
            if result is not None:
                compiled[indicator_id] = result

    response_rules = _load_response_rules(raw, matrix_file, playbooks_file, problems)

    if problems:
        raise RulesError(problems)
    assert matrix is not None and matrix_file is not None and playbooks_file is not None and indicators_file is not None
    return RuleSet(
        directory=directory,
        indicators=compiled,
        matrix=matrix,
        response=dict(matrix_file.response),
        respond_within={tier: parse_duration(r.respond_within) for tier, r in matrix_file.response.items()},
        playbooks=dict(playbooks_file.playbooks),
        targets=dict(targets_file.monthly) if targets_file is not None else {},
        currency_rates={code: float(rate) for code, rate in exact_rates.items()},
        response_rules=response_rules,
        files=tuple(sorted(raw)),
        currency_rates_exact=exact_rates,
        references=indicators_file.references,
    )


def _compile_indicator(
    indicator_id: str, indicator: Indicator, playbook_ids: set[str] | None, problems: list[str]
) -> CompiledIndicator | None:
    path = f"indicators.yaml: indicators.{indicator_id}"
    ok = True
    # Imported here: the indicator modules import this module's types.
    from riskwatch.engine.indicators.base import UnknownIndicator, registered, spec_of
    try:
        spec = spec_of(indicator_id)
    except UnknownIndicator:
        known = list(INDICATOR_IDS) + [other for other in registered() if other not in INDICATOR_IDS]
        problems.append(f"{path}: unknown indicator (known: {', '.join(known)})")
        return None
    if indicator.subject != spec.subject:
        problems.append(f"{path}.subject: must be {spec.subject!r} for this indicator")
        ok = False
    if indicator.threshold.unit != spec.unit:
        problems.append(f"{path}.threshold.unit: must be {spec.unit!r} for this indicator")
        ok = False
    if playbook_ids is not None and indicator.playbook not in playbook_ids:
        problems.append(f"{path}.playbook: unknown playbook {indicator.playbook!r} (defined: {', '.join(sorted(playbook_ids))})")
        ok = False
    params = dict(spec.params)
    for name, value in indicator.params.items():
        if name not in spec.params:
            problems.append(f"{path}.params.{name}: unknown key")
            ok = False
            continue
        params[name] = value
    for name in list(params):
        if name in spec.duration_params:
            try:
                params[name] = parse_duration(params[name])  # type: ignore[arg-type]
            except ValueError as error:
                problems.append(f"{path}.params.{name}: {error}")
                ok = False
    if indicator_id == "competitor_price_cut" and params.get("reference") not in ("previous_observation", "our_price"):
        problems.append(f"{path}.params.reference: must be 'previous_observation' or 'our_price'")
        ok = False
    for name in ("min_base", "min_invoices", "keep_observations"):
        if name in params and (not isinstance(params[name], int) or isinstance(params[name], bool) or params[name] < 1):
            problems.append(f"{path}.params.{name}: must be a whole number >= 1")
            ok = False
    if indicator_id == "key_account_decline":
        classes = params.get("classes")
        if not isinstance(classes, list) or not classes or any(c not in ("A", "B", "C", "D") for c in classes):
            problems.append(f"{path}.params.classes: must be a list of customer classes A-D")
            ok = False
    try:
        threshold = indicator.threshold.value
    except ValueError as error:
        problems.append(f"{path}.threshold: {error}")
        return None
    for score_name in ("probability", "impact", "controllability"):
        score: Score = getattr(indicator, score_name)
        for index, step in enumerate(score.by_observed or ()):
            side = "above" if step.above is not None else "below"
            if side != indicator.threshold.direction:
                problems.append(
                    f"{path}.{score_name}.by_observed[{index}]: use '{indicator.threshold.direction}' like the threshold"
                )
                ok = False
        if score.reference is not None and score.reference not in spec.references:
            offered = ", ".join(spec.references) or "none"
            problems.append(f"{path}.{score_name}.reference: {score.reference!r} is not known to this indicator (it offers: {offered})")
            ok = False
    every = indicator.evaluate_every or spec.evaluate_every
    if not ok:
        return None
    # Absence indicators re-evaluate where a score step changes the tier.
    params["_breakpoints"] = tuple(sorted({
        step.above
        for score in (indicator.probability, indicator.impact, indicator.controllability)
        for step in (score.by_observed or ())
        if step.above is not None and step.above > threshold
    }))
    return CompiledIndicator(
        id=indicator_id,
        title=indicator.title,
        subject=indicator.subject,
        enabled=indicator.enabled,
        direction=indicator.threshold.direction,
        threshold=threshold,
        unit=indicator.threshold.unit,
        params=params,
        evaluate_every=parse_duration(every) if every else None,
        playbook=indicator.playbook,
        probability=indicator.probability,
        impact=indicator.impact,
        controllability=indicator.controllability,
    )


def _load_response_rules(
    raw: dict[str, Any], matrix_file: MatrixFile | None, playbooks_file: PlaybooksFile | None, problems: list[str]
) -> Any:
    """The escalation chain and plans (validated by their own module), then every
    role matrix.yaml and playbooks.yaml name, checked against the chain."""

    # A missing file is already reported; validate_response_files skips it.
    escalation, plans = validate_response_files(raw, problems)
    if escalation is None:
        return None  # its problems are reported; which roles exist is unknown
    if matrix_file is not None:
        _check_response_roles(matrix_file, escalation, problems)
    if playbooks_file is not None:
        _check_playbook_roles(playbooks_file, escalation, problems)
    if plans is None:
        return None
    return ResponseRules(escalation=escalation, plans=plans.plans)


def _unknown_role(path: str, role: str, escalation: Any) -> str:

    return f"{path}: unknown role {role!r} ({role_hint(role, escalation.roles)})"


def _check_response_roles(matrix_file: MatrixFile, escalation: Any, problems: list[str]) -> None:
    """matrix.yaml `response.<tier>`: owner, escalate_to and notify are roles of the chain,
    and escalate_to is where the chain sends an unanswered alert: the level above the
    owner's (the owner's own level when it is the top), so the alert never names one
    escalation target while the desk escalates to another."""
    roles = escalation.roles
    chain = escalation.owner_chain
    for tier, response in matrix_file.response.items():
        path = f"matrix.yaml: response.{tier}"
        if response.owner not in roles:
            problems.append(_unknown_role(f"{path}.owner", response.owner, escalation))
        if response.escalate_to not in roles:
            problems.append(_unknown_role(f"{path}.escalate_to", response.escalate_to, escalation))
        elif response.owner in roles:
            owner_level = roles[response.owner]
            target_level = min(owner_level + 1, len(chain) - 1)
            if roles[response.escalate_to] != target_level:
                if owner_level == target_level:
                    why = (f"the owner {response.owner!r} is in the top level ({chain[owner_level].level}), "
                           "so escalate_to must be a role of that level")
                else:
                    why = (f"an alert owned by {response.owner!r} (level {chain[owner_level].level}) "
                           f"escalates to level {chain[target_level].level}")
                problems.append(
                    f"{path}.escalate_to: {response.escalate_to!r} is in level {chain[roles[response.escalate_to]].level}, "
                    f"but {why} (escalation.yaml owner_chain)"
                )
        for index, role in enumerate(response.notify):
            if role not in roles:
                problems.append(_unknown_role(f"{path}.notify[{index}]", role, escalation))


def _check_playbook_roles(playbooks_file: PlaybooksFile, escalation: Any, problems: list[str]) -> None:
    """Every playbook step owner, in `steps` and in each `by_tier` list, is a role of the chain."""
    roles = escalation.roles
    for playbook_id, playbook in playbooks_file.playbooks.items():
        lists = [("steps", playbook.steps)] + [(f"by_tier.{tier}", steps) for tier, steps in playbook.by_tier.items()]
        for where, steps in lists:
            for index, step in enumerate(steps):
                if step.owner not in roles:
                    problems.append(_unknown_role(f"playbooks.yaml: playbooks.{playbook_id}.{where}[{index}].owner",
                                                  step.owner, escalation))


def load_workflow_rules(directory: Path | str) -> tuple[Any, list[str]]:
    """The escalation chain and contingency plans of a rule directory that passes
    every check, as `(ResponseRules, [])`, or `(None, every problem)`.

    What the alert desk and the API load and reload: checking only escalation.yaml
    and contingency_plans.yaml would let a matrix or playbook owner the chain
    does not know through."""
    try:
        return load_rules(directory).response_rules, []
    except RulesError as error:
        return None, error.problems


def check_rules(directory: Path | str) -> list[str]:
    """Every problem in a rule directory; empty when it would load."""
    try:
        load_rules(directory)
    except RulesError as error:
        return error.problems
    return []
