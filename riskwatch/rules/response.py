"""The response rules: escalation.yaml and contingency_plans.yaml.

They say how people work an alert (owner chain, escalation and re-notify
intervals, hysteresis on tier drops, the 48 h review) and which contingency
plans a director can trigger. Strict like the rest of rules/: unknown fields
are errors, every problem is collected and reported as
"file: field.path: reason".
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from riskwatch.rules.loader import read_yaml, validate_file

ESCALATION_FILE = "escalation.yaml"
PLANS_FILE = "contingency_plans.yaml"
TIERS = ("red", "orange", "yellow", "blue")
Tier = Literal["red", "orange", "yellow", "blue"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: object) -> timedelta:
    """'90m', '48h', '1d', '0s' -> timedelta; plain numbers are seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("expected a duration like '72h'")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError("must not be negative")
        return timedelta(seconds=value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2)])
    raise ValueError(f"expected a duration like '72h' (number + s|m|h|d), got {value!r}")


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OwnerLevel(_Strict):
    level: str = Field(min_length=1)
    roles: list[str] = Field(default_factory=list)


class PerTier(_Strict):
    red: Duration
    orange: Duration
    yellow: Duration
    blue: Duration

    def for_tier(self, tier: str) -> timedelta:
        return getattr(self, tier, self.blue)


class Hysteresis(_Strict):
    tier_drop_hold: Duration


class ReviewRule(_Strict):
    tiers: list[Tier] = Field(default_factory=lambda: ["red", "orange"])
    due_within: Duration = timedelta(hours=48)


class EscalationRules(_Strict):
    owner_chain: list[OwnerLevel] = Field(min_length=1)
    escalate_every: PerTier
    renotify_every: PerTier
    hysteresis: Hysteresis
    step_overdue_grace: Duration = timedelta(0)
    review: ReviewRule = Field(default_factory=ReviewRule)

    @model_validator(mode="after")
    def _levels_unique(self) -> "EscalationRules":
        seen: dict[str, str] = {}
        for entry in self.owner_chain:
            for name in [entry.level, *entry.roles]:
                if name in seen and seen[name] != entry.level:
                    raise ValueError(f"role {name!r} is in two levels ({seen[name]}, {entry.level})")
                seen[name] = entry.level
        return self

    def level_of(self, owner: str | None) -> int:
        """Index in the owner chain of a role; unknown roles count as the first level."""
        for index, entry in enumerate(self.owner_chain):
            if owner == entry.level or owner in entry.roles:
                return index
        return 0

    @property
    def top_level(self) -> int:
        return len(self.owner_chain) - 1


class PlanStep(_Strict):
    action: str = Field(min_length=1)
    owner: str = Field(min_length=1)
    due_within: Duration


class Fund(_Strict):
    name: str = Field(min_length=1)
    share_of_annual_sales_budget: float = Field(gt=0, le=1)


class ContingencyPlan(_Strict):
    title: str = Field(min_length=1)
    indicators: list[str] = Field(default_factory=list)
    fund: Fund | None = None
    steps: list[PlanStep] = Field(min_length=1)


class ContingencyPlans(_Strict):
    plans: dict[str, ContingencyPlan] = Field(min_length=1)


class ResponseRules(BaseModel):
    model_config = ConfigDict(frozen=True)
    escalation: EscalationRules
    plans: dict[str, ContingencyPlan]


def load_response_rules(rules_dir: Path) -> tuple[ResponseRules | None, list[str]]:
    """Load and check both files; (rules, []) or (None, every problem found)."""
    rules_dir = Path(rules_dir)
    problems: list[str] = []
    loaded: dict[str, BaseModel | None] = {}
    # Same reader and wording as the other rule files (duplicate keys refused, too).
    for file_name, model in ((ESCALATION_FILE, EscalationRules), (PLANS_FILE, ContingencyPlans)):
        data = read_yaml(rules_dir / file_name, problems)
        loaded[file_name] = validate_file(file_name, data, model, problems)
    escalation, plans = loaded[ESCALATION_FILE], loaded[PLANS_FILE]
    if problems or escalation is None or plans is None:
        return None, problems
    return ResponseRules(escalation=escalation, plans=plans.plans), []
