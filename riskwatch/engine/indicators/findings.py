"""Findings shared by the absence indicators (delivery delay, payment overdue):
a finding that clears an alert raised on older facts, the stretches of an
episode closed by a clearing fact, and the next instant a growing
measurement crosses a scoring step."""

from __future__ import annotations

import bisect
from typing import Callable, Iterable

from riskwatch.engine.alertbook import Finding
from riskwatch.rules.loader import CompiledIndicator
from riskwatch.timeutil import iso


class BeforeDeadline:
    """The resolution of an alert cleared by a fact dated before its deadline
    (DOMAIN §4: a late fact resolves the alert "with a resolution that says
    so"). Worded only when a record is written: most such findings clear
    nothing and are dropped unread."""

    __slots__ = ("what", "fact_ts", "deadline_ts")

    def __init__(self, what: str, fact_ts: float, deadline_ts: float):
        self.what, self.fact_ts, self.deadline_ts = what, fact_ts, deadline_ts

    def __str__(self) -> str:
        return f"{self.what} {iso(self.fact_ts)}, before the deadline {iso(self.deadline_ts)}"


def cleared(indicator, subject, evidence, amount_cny, customer_class, region, observed, resolution) -> Finding:
    """A finding that says "not (or no longer) a risk": resolves an alert raised earlier on older facts."""
    return Finding(
        indicator, subject, open=False, observed=observed, onset_ts=0.0, resolved_ts=None,
        amount_cny=amount_cny, customer_class=customer_class, region=region,
        evidence=evidence, resolution=resolution, extra={"never_breached": True},
    )


def episode(
    indicator: CompiledIndicator, origin_ts: float, unit_seconds: float, deadline: float, cleared_ts: float,
    amount_at: Callable[[float], float | None], changes: Iterable[float] = (),
) -> tuple:
    """(observed, amount_cny) for each stretch of an absence condition, from its
    deadline to the fact that cleared it.

    A score steps up just after the observed value passes a breakpoint, and the
    amount at stake changes at the instants in `changes` (payments), so within a
    stretch neither moves: it is measured at its end (observed, the largest it
    reached there) and at its start (amount, the largest it was there)."""
    cuts = {deadline: (deadline - origin_ts) / unit_seconds, cleared_ts: (cleared_ts - origin_ts) / unit_seconds}
    for instant in changes:
        if deadline < instant < cleared_ts:
            cuts.setdefault(instant, (instant - origin_ts) / unit_seconds)
    for point in indicator.params.get("_breakpoints", ()):
        instant = origin_ts + point * unit_seconds
        if deadline < instant <= cleared_ts:
            cuts[instant] = point    # exactly the bound, whatever the float sum gave
    instants = sorted(cuts)
    return tuple((cuts[end], amount_at(start)) for start, end in zip(instants, instants[1:]))


def next_breakpoint(indicator: CompiledIndicator, observed: float, origin_ts: float, unit_seconds: float) -> float | None:
    """When the observed value of a still-open absence alert next crosses a scoring step."""
    points = indicator.params.get("_breakpoints", ())
    index = bisect.bisect_right(points, observed)
    if index < len(points):
        return origin_ts + points[index] * unit_seconds
    return None


def group_finding(indicator, subject_id, breached, observed, as_of, evidence, detail,
                  kind="segment", amount_cny=None, customer_class=None, extra_subject=None,
                  region=None, resolution=None, reference_cny=None) -> Finding:
    """A finding about a group (segment, target) measured as of an instant:
    open while breached, resolved as of the instant otherwise."""
    subject = {"kind": kind, "id": subject_id}
    if kind == "segment":
        subject["segment"] = subject_id
    subject.update(extra_subject or {})
    return Finding(
        indicator, subject, open=breached, observed=observed, onset_ts=None,
        resolved_ts=None if breached else as_of, amount_cny=amount_cny, reference_cny=reference_cny,
        customer_class=customer_class, region=region, evidence=evidence, detail=detail,
        resolution=None if breached else (resolution or "back within threshold"),
    )
