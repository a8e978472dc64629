"""Probability, impact and controllability from what an indicator observed.

The rule files describe each score declaratively (riskwatch/rules/schema.py
`Score`); this module only reads them.
"""

from __future__ import annotations

from riskwatch.rules.schema import Score


def score(spec: Score, observed: float, amount_cny: float | None, customer_class: str | None, eta_late: bool = False,
          reference_cny: float | None = None) -> float:
    """One of probability, impact, controllability, in [0, 1], rounded to 4 places.

    `observed` is in the indicator's unit; `amount_cny` is the money at stake
    and `reference_cny` the business reference the rule names
    (`spec.reference`), both in CNY or None when not known; `by_share` steps
    on amount / reference (a reference of 0 puts any positive amount above
    every step: nothing left to measure it against). The largest of the
    primary candidates, plus the additions, clipped (rules/indicators.yaml)."""
    candidates: list[float] = []
    if spec.value is not None:
        candidates.append(spec.value)
    if spec.by_observed:
        stepped = _observed_step(spec, observed)
        if stepped is not None:
            candidates.append(stepped)
    if spec.by_amount and amount_cny is not None:
        stepped_amount = None
        for step in spec.by_amount:
            if amount_cny > step.above:
                stepped_amount = step.value
        if stepped_amount is not None:
            candidates.append(stepped_amount)
    if spec.by_share and amount_cny is not None and reference_cny is not None:
        stepped_share = None
        for share_step in spec.by_share:
            if _share_above(amount_cny, reference_cny, share_step.above):
                stepped_share = share_step.value
        if stepped_share is not None:
            candidates.append(stepped_share)
    if spec.by_class is not None:
        by_class = spec.by_class.get(customer_class)
        if by_class is not None:
            candidates.append(by_class)
    result = max(candidates) if candidates else 0.0
    if spec.add_by_class is not None:
        result += spec.add_by_class.get(customer_class) or 0.0
    if eta_late and spec.add_if_eta_late:
        result += spec.add_if_eta_late
    return round(min(1.0, max(0.0, result)), 4)


def _share_above(amount: float, reference: float, bound: float) -> bool:
    """amount / reference > bound, without dividing (so a zero reference is no error)."""
    if reference <= 0:
        return amount > 0
    return amount > bound * reference


def _observed_step(spec: Score, observed: float) -> float | None:
    chosen = None
    for step in spec.by_observed or ():
        if step.above is not None and observed > step.above:
            chosen = step.value
        elif step.below is not None and observed < step.below:
            chosen = step.value
    return chosen
