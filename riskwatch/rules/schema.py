"""The shapes of the rule files a risk officer edits (strict: unknown keys are errors)."""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from riskwatch.contracts import TIER_NAMES, TierName
from riskwatch.timeutil import parse_duration

# The tiers as the rule files name them, most severe first (the matrix rows
# run in this order); their rank is `riskwatch.contracts.Tier.rank`.
TIER_ORDER = TIER_NAMES
CLASSES = ("A", "B", "C", "D", "unknown")
# The eight indicators every rule set must configure (an entry may switch one
# off); their modules are riskwatch/engine/indicators/<id>.py.
INDICATOR_IDS = (
    "customer_churn_rate",
    "delivery_delay",
    "payment_overdue",
    "competitor_price_cut",
    "key_account_decline",
    "credit_limit_breach",
    "collection_rate",
    "sales_target_lag",
)
_UNIT_SECONDS = {"hours": 3600.0, "days": 86400.0}
# The business references an impact share may be measured against; each
# indicator's spec says which of them its findings carry
# (riskwatch/engine/indicators/, riskwatch/engine/exposure.py).
REFERENCES = ("customer_trailing_12m_purchases", "segment_amount_due", "segment_trailing_12m_purchases",
              "target_to_date")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Fraction = float  # validated to [0, 1] where used


class Step(Strict):
    above: float | None = None
    below: float | None = None
    value: float = Field(ge=0, le=1)

    @model_validator(mode="after")
    def _one_bound(self) -> "Step":
        if (self.above is None) == (self.below is None):
            raise ValueError("give exactly one of above or below")
        return self


class AmountStep(Strict):
    above: float = Field(ge=0)
    value: float = Field(ge=0, le=1)


class ShareStep(Strict):
    """A step on the share at stake: amount / reference, a ratio (0.25 is a quarter)."""

    above: float = Field(ge=0)
    value: float = Field(ge=0, le=1)


class ClassTable(Strict):
    A: float | None = Field(default=None, ge=-1, le=1)
    B: float | None = Field(default=None, ge=-1, le=1)
    C: float | None = Field(default=None, ge=-1, le=1)
    D: float | None = Field(default=None, ge=-1, le=1)
    unknown: float | None = Field(default=None, ge=-1, le=1)

    def get(self, customer_class: str | None) -> float | None:
        return getattr(self, customer_class or "unknown", None)


class Score(Strict):
    value: float | None = Field(default=None, ge=0, le=1)
    by_observed: list[Step] | None = None
    by_amount: list[AmountStep] | None = None
    by_share: list[ShareStep] | None = None
    reference: Literal[REFERENCES] | None = None  # type: ignore[valid-type]
    by_class: ClassTable | None = None
    add_by_class: ClassTable | None = None
    add_if_eta_late: float | None = Field(default=None, ge=-1, le=1)

    @model_validator(mode="after")
    def _has_a_primary(self) -> "Score":
        if (self.value is None and not self.by_observed and not self.by_amount and not self.by_share
                and self.by_class is None):
            raise ValueError("give at least one of value, by_observed, by_amount, by_share, by_class")
        if self.by_share and self.reference is None:
            raise ValueError("by_share needs a reference: the amount the share at stake is measured against")
        if self.reference is not None and not self.by_share:
            raise ValueError("a reference is only read by by_share steps: give them, or drop the reference")
        return self


class Threshold(Strict):
    above: float | str | None = None
    below: float | str | None = None
    unit: Literal["ratio", "hours", "days"]

    @model_validator(mode="after")
    def _one_side(self) -> "Threshold":
        if (self.above is None) == (self.below is None):
            raise ValueError("give exactly one of above or below")
        return self

    @property
    def direction(self) -> str:
        return "above" if self.above is not None else "below"

    @property
    def value(self) -> float:
        """The threshold in the unit (hours, days or a ratio)."""
        raw = self.above if self.above is not None else self.below
        if isinstance(raw, str):
            seconds = parse_duration(raw)
            return seconds / _UNIT_SECONDS.get(self.unit, 1.0)
        return float(raw)  # type: ignore[arg-type]

    @field_validator("above", "below")
    @classmethod
    def _number_or_duration(cls, raw: float | str | None) -> float | str | None:
        if isinstance(raw, str):
            parse_duration(raw)
        return raw


class Indicator(Strict):
    title: str
    subject: Literal["segment", "shipment", "invoice", "price", "customer", "target"]
    enabled: bool = True
    threshold: Threshold
    params: dict[str, object] = Field(default_factory=dict)
    evaluate_every: str | None = None
    playbook: str
    probability: Score
    impact: Score
    controllability: Score

    @field_validator("evaluate_every")
    @classmethod
    def _duration(cls, raw: str | None) -> str | None:
        if raw is not None and parse_duration(raw) <= 0:
            raise ValueError("must be a positive duration")
        return raw


CURRENCY_RATES_FIELD = "currency_rates_to_cny"
_ISO_4217 = re.compile(r"[A-Z]{3}")


class ClassAmounts(Strict):
    """CNY per customer class; every class, and "unknown", must be given."""

    A: float = Field(ge=0)
    B: float = Field(ge=0)
    C: float = Field(ge=0)
    D: float = Field(ge=0)
    unknown: float = Field(ge=0)

    def get(self, customer_class: str | None) -> float:
        return getattr(self, customer_class or "unknown", self.unknown)


class CustomerPurchasesReference(Strict):
    """How `customer_trailing_12m_purchases` is reckoned while a customer's history is short.

    `floor_by_class`: annual purchases assumed for a customer seen for fewer
    than 12 full months, when its annualized purchases are lower (DOMAIN §2
    classes: A > 10M CNY a year, B 5-10M, C 0.5-5M, D below)."""

    floor_by_class: ClassAmounts = Field(default_factory=lambda: ClassAmounts(
        A=10_000_000, B=5_000_000, C=500_000, D=100_000, unknown=500_000))


class References(Strict):
    customer_trailing_12m_purchases: CustomerPurchasesReference = Field(default_factory=CustomerPurchasesReference)


class IndicatorsFile(Strict):
    # Kept as read from YAML: check_currency_rates reports each entry on its own
    # and reads the rates as exact decimals.
    currency_rates_to_cny: dict[object, object] = Field(default_factory=lambda: {"CNY": 1})
    references: References = Field(default_factory=References)
    indicators: dict[str, Indicator]


def check_currency_rates(raw: dict[object, object]) -> tuple[dict[str, Decimal], list[tuple[str, str]]]:
    """Rates to CNY as read from indicators.yaml -> (exact rates, problems).

    `raw` maps a currency code to CNY per one unit of that currency (USD: 7.1).
    A code must be an ISO 4217 code (three upper-case letters); a rate a
    positive finite number (a YAML number, or a decimal string), read exactly:
    Decimal(str(value)), so 7.1 is Decimal('7.1'), not the float's binary
    expansion; CNY must be present at 1, since amounts are converted to CNY
    (DOMAIN §3). Problems are `(".CODE" or "", reason)`, one per bad entry;
    the exact rates hold only the good ones."""
    exact: dict[str, Decimal] = {}
    problems: list[tuple[str, str]] = []
    for code, value in raw.items():
        where = f".{code}"
        if not isinstance(code, str) or not _ISO_4217.fullmatch(code):
            problems.append((where, f"{code!r} is not an ISO 4217 currency code (three upper-case letters, e.g. USD)"))
            continue
        rate = _exact_rate(value)
        if rate is None:
            problems.append((where, f"must be a positive finite number (CNY per 1 {code}), got {value!r}"))
            continue
        if code == "CNY" and rate != 1:
            problems.append((where, f"must be 1 (rates are to CNY), got {value!r}"))
            continue
        exact[code] = rate
    if "CNY" not in raw:
        problems.append((".CNY", "required: rates are to CNY, so CNY: 1 must be given"))
    return exact, problems


def _exact_rate(value: object) -> Decimal | None:
    """A positive finite rate as an exact Decimal, or None."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        rate = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    # The float copy must be usable too: 1e999 is a finite Decimal but an infinite float.
    if not rate.is_finite() or rate <= 0 or not math.isfinite(float(rate)) or float(rate) <= 0:
        return None
    return rate


Bound = str  # "> 0.70", ">= 0.5", "< 0.5", "<= 0.7"


class TierWhen(Strict):
    probability: Bound | None = None
    impact: Bound | None = None
    controllability: Bound | None = None


class TierRow(Strict):
    tier: TierName
    when: TierWhen | None = None
    otherwise: bool = False


class TierResponse(Strict):
    owner: str
    escalate_to: str
    respond_within: str
    notify: list[str] = Field(default_factory=list)

    @field_validator("respond_within")
    @classmethod
    def _duration(cls, raw: str) -> str:
        parse_duration(raw)
        return raw


class MatrixFile(Strict):
    tiers: list[TierRow]
    response: dict[TierName, TierResponse]


class PlaybookStep(Strict):
    action: str = Field(min_length=1)
    owner: str = Field(min_length=1)
    due: str

    @field_validator("due")
    @classmethod
    def _duration(cls, raw: str) -> str:
        parse_duration(raw)
        return raw


class Playbook(Strict):
    title: str
    steps: list[PlaybookStep] = Field(min_length=1)
    by_tier: dict[TierName, list[PlaybookStep]] = Field(default_factory=dict)


class PlaybooksFile(Strict):
    playbooks: dict[str, Playbook]


class TargetsFile(Strict):
    monthly: dict[str, float]

    @field_validator("monthly")
    @classmethod
    def _positive(cls, targets: dict[str, float]) -> dict[str, float]:
        for name, amount in targets.items():
            if amount <= 0:
                raise ValueError(f"{name}: target must be > 0")
        return targets
