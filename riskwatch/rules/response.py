"""The response rules: escalation.yaml and contingency_plans.yaml.

They say how people work an alert (owner chain, escalation and re-notify
intervals, hysteresis on tier drops, the 48 h review) and which contingency
plans a director can trigger. Strict like the rest of rules/: unknown fields
are errors, every problem is collected and reported as
"file: field.path: reason".
"""

from __future__ import annotations

import difflib
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from riskwatch.contracts import TIER_NAMES, TierName
from riskwatch.rules.files import UNREADABLE, read_yaml, validate_file
from riskwatch.rules.schema import INDICATOR_IDS
from riskwatch.errors import RiskwatchError

ESCALATION_FILE = "escalation.yaml"
PLANS_FILE = "contingency_plans.yaml"
TIERS = TIER_NAMES
Tier = TierName

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

    @property
    def roles(self) -> dict[str, int]:
        """Every name an owner may carry -> its index in the chain (0 = lowest).

        A level's own name counts as a role of that level: an escalated alert
        is owned by the level's name (e.g. `frontline`)."""
        names: dict[str, int] = {}
        for index, entry in enumerate(self.owner_chain):
            for name in (entry.level, *entry.roles):
                names.setdefault(name, index)
        return names

    def level_of(self, owner: str | None) -> int:
        """Index in the owner chain (0 = lowest) of a role or level name.

        Raises UnknownRole for a name the chain does not list: a checked rule
        set cannot give one (every owner in the rule files is checked against
        the chain), so it means an alert made under other rules."""
        level = self.roles.get(owner) if isinstance(owner, str) else None
        if level is None:
            raise UnknownRole(owner, self)
        return level

    @property
    def top_level(self) -> int:
        return len(self.owner_chain) - 1


class UnknownRole(RiskwatchError, ValueError):
    """An owner that escalation.yaml's owner_chain does not list; `role` is the name."""

    def __init__(self, role: object, escalation: EscalationRules):
        self.role = role
        super().__init__(f"unknown role {role!r} ({role_hint(role, escalation.roles)})")


def role_hint(role: object, known: dict[str, int] | set[str]) -> str:
    """Where roles come from, and the closest known name when there is one."""
    close = difflib.get_close_matches(role, sorted(known), n=1) if isinstance(role, str) else []
    hint = "not in escalation.yaml owner_chain"
    return f"{hint}; did you mean {close[0]!r}?" if close else hint


class PlanStep(_Strict):
    action: str = Field(min_length=1)
    owner: str = Field(min_length=1)
    due_within: Duration


BUDGET_PERIODS = ("calendar_year", "calendar_quarter", "calendar_month")


class Fund(_Strict):
    """A fund a plan draws on: a budget of `share_of_annual_sales_budget` of
    the annual sales budget per `budget_period` (DOMAIN §2: the price-response
    fund, 5% of the annual sales budget). Commitments of every plan on the
    fund are summed over the period that holds at the trigger, periods cut
    at midnight at `budget_utc_offset` (e.g. "+08:00")."""
    name: str = Field(min_length=1)
    share_of_annual_sales_budget: float = Field(gt=0, le=1)
    budget_period: Literal["calendar_year", "calendar_quarter", "calendar_month"] = "calendar_year"
    budget_utc_offset: str = Field("+00:00", pattern=r"^[+-](0\d|1[0-4]):[0-5]\d$")

    def period_of(self, instant: datetime) -> tuple[str, datetime, datetime]:
        """(label, start, end) of the budget period holding `instant` (aware):
        ("2026", ...), ("2026-Q2", ...) or ("2026-04", ...); start inclusive,
        end exclusive, both aware at `budget_utc_offset`."""
        sign = -1 if self.budget_utc_offset[0] == "-" else 1
        hours, minutes = int(self.budget_utc_offset[1:3]), int(self.budget_utc_offset[4:6])
        zone = timezone(sign * timedelta(hours=hours, minutes=minutes))
        local = instant.astimezone(zone)
        if self.budget_period == "calendar_year":
            start, end, label = (datetime(local.year, 1, 1, tzinfo=zone), datetime(local.year + 1, 1, 1, tzinfo=zone),
                                 f"{local.year}")
        else:
            months = 3 if self.budget_period == "calendar_quarter" else 1
            first = (local.month - 1) // months * months + 1
            start = datetime(local.year, first, 1, tzinfo=zone)
            year, month = (local.year + 1, 1) if first + months > 12 else (local.year, first + months)
            end = datetime(year, month, 1, tzinfo=zone)
            label = f"{local.year}-Q{(first + 2) // 3}" if months == 3 else f"{local.year}-{first:02d}"
        return label, start, end


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


def validate_response_files(
    raw: dict[str, object], problems: list[str]
) -> tuple[EscalationRules | None, ContingencyPlans | None]:
    """Validate the parsed escalation.yaml and contingency_plans.yaml (`raw`: file name -> YAML data).

    Each file is validated on its own, then the plans' references: every step
    owner must be a role of the owner chain, every indicator one of the eight
    (DOMAIN §2). Problems are appended as `file: field.path: reason`; a file
    with problems comes back as None, the other one still checked."""
    escalation = validate_file(ESCALATION_FILE, raw.get(ESCALATION_FILE, UNREADABLE), EscalationRules, problems)
    plans = validate_file(PLANS_FILE, raw.get(PLANS_FILE, UNREADABLE), ContingencyPlans, problems)
    if plans is not None:
        before = len(problems)
        roles = escalation.roles if escalation is not None else None
        for plan_id, plan in plans.plans.items():
            path = f"{PLANS_FILE}: plans.{plan_id}"
            for index, indicator in enumerate(plan.indicators):
                if indicator not in INDICATOR_IDS:
                    problems.append(f"{path}.indicators[{index}]: unknown indicator {indicator!r} (known: {', '.join(INDICATOR_IDS)})")
            if roles is None:
                continue  # the chain's own problems are reported; its roles are unknown
            for index, step in enumerate(plan.steps):
                if step.owner not in roles:
                    problems.append(f"{path}.steps[{index}].owner: unknown role {step.owner!r} ({role_hint(step.owner, roles)})")
        if len(problems) > before:
            plans = None
    return escalation, plans


def load_response_rules(rules_dir: Path) -> tuple[ResponseRules | None, list[str]]:
    """Load and check both files; (rules, []) or (None, every problem found).

    Checks these two files only; `riskwatch.rules.loader.load_workflow_rules`
    also checks them against the rest of the rule directory."""
    rules_dir = Path(rules_dir)
    problems: list[str] = []
    # Same reader and wording as the other rule files (duplicate keys refused, too).
    raw = {name: read_yaml(rules_dir / name, problems) for name in (ESCALATION_FILE, PLANS_FILE)}
    escalation, plans = validate_response_files(raw, problems)
    if problems or escalation is None or plans is None:
        return None, problems
    return ResponseRules(escalation=escalation, plans=plans.plans), []
