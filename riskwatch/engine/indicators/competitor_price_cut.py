"""competitor_price_cut: a competitor's price more than the threshold (ratio)
below the reference: its previous observation for the same (competitor,
sku), or our own price when the rules say `reference: our_price` (DOMAIN
§4; rules/indicators.yaml `competitor_price_cut`).

Evaluated on a fact and on its deadline: a cut is decided once the
watermark passes the observation, as an event-time window closes, so a late
observation within the allowed lateness gives the alerts in-order
processing would (DOMAIN §4; docs/decisions.md)."""

from __future__ import annotations

import bisect
from fractions import Fraction

from riskwatch.engine.alertbook import Finding
from riskwatch.engine.records import EMPTY, START, PriceHistory, PriceWalk
from riskwatch.engine.indicators.base import ON_DEADLINE, ON_FACT, Indicator, IndicatorSpec, register
from riskwatch.rules.loader import CompiledIndicator

SPEC = IndicatorSpec(
    id="competitor_price_cut", subject="price", unit="ratio", evaluated=(ON_FACT, ON_DEADLINE),
    consumes=("competitor.price_observed",),
    params={"reference": "previous_observation", "keep_observations": 16},
)


@register
class CompetitorPriceCut(Indicator):
    """The engine keeps each (competitor, sku)'s recent observations
    (riskwatch/engine/entities.py `PriceHistory`) and asks `assess` when one
    arrives or the watermark passes one still waiting."""

    spec = SPEC

    def assess(self, competitor: str, sku: str, history: PriceHistory, now: float | None,
               ) -> tuple[Finding | None, float | None]:
        """(finding, next deadline in Unix seconds: the next observation still waiting for the watermark)."""
        return price_finding(competitor, sku, history, self.indicator, now)

    def fold(self, carry: PriceWalk, observations: tuple) -> PriceWalk:
        """The walk over decided observations, to prune them into the carry."""
        return walk_prices(carry, observations, self.indicator.threshold,
                           self.indicator.params.get("reference") == "our_price")


def cut_beyond(reference: int, price: int, threshold: Fraction) -> bool:
    """Strictly more than `threshold` below the reference, in exact arithmetic."""
    return (reference - price) * threshold.denominator > threshold.numerator * reference


def walk_prices(carry: PriceWalk, observations: tuple, threshold: float, use_our_price: bool) -> PriceWalk:
    """Replay the observations in event-time order: open on a cut beyond the
    threshold against the reference, stay open (against the same anchor) until
    the price is back within the threshold."""
    exact = Fraction(str(threshold))
    walk = carry
    for obs in observations:
        previous, is_open, anchor, onset, observed, resolved_ts, evidence, ever, assessed = walk
        if is_open and anchor:
            cut = 1.0 - obs.price / anchor
            if cut_beyond(anchor, obs.price, exact):
                walk = PriceWalk(obs, True, anchor, onset, cut, None, evidence + (obs.event_id,), ever, cut)
            else:
                walk = PriceWalk(obs, False, None, onset, cut, obs.ts, evidence + (obs.event_id,), ever, assessed)
            continue
        reference = obs.our_price if (use_our_price and obs.our_price) else (previous.price if previous else None)
        if reference and reference > 0 and cut_beyond(reference, obs.price, exact):
            cut = 1.0 - obs.price / reference
            trail = (previous.event_id,) if previous is not None and not (use_our_price and obs.our_price) else ()
            walk = PriceWalk(obs, True, reference, obs.ts, cut, None, trail + (obs.event_id,), True, cut)
            continue
        walk = PriceWalk(obs, False, None, onset, observed, resolved_ts, evidence, ever, assessed)
    return walk


def decided(observations: tuple, now: float | None) -> tuple:
    """The observations the watermark has passed (sorted input, sorted output).

    A price cut is decided only once the clock is past the observation, as an
    event-time window closes at the watermark: every observation up to then
    has arrived, so a late one within the allowed lateness cannot change
    what was decided (DOMAIN §4)."""
    if now is None:
        return EMPTY
    index = bisect.bisect_left(observations, (now,))
    return observations[:index]


def price_finding(
    competitor: str, sku: str, history: PriceHistory, indicator: CompiledIndicator, now: float | None,
) -> tuple[Finding | None, float | None]:
    """(finding, next deadline) for competitor_price_cut over the observations
    the watermark has passed; the deadline is the next observation still
    waiting for it."""
    if not indicator.enabled:
        return None, None
    ready = decided(history.observations, now)
    pending = history.observations[len(ready):]
    deadline = pending[0][0] if pending else None
    if not ready and history.carry is START:
        return None, deadline
    walk = walk_prices(history.carry, ready, indicator.threshold,
                       indicator.params.get("reference") == "our_price")
    subject = {"kind": "price", "id": f"{competitor}/{sku}", "competitor": competitor, "sku": sku}
    if not walk.ever:
        # An observation later than the allowed lateness can still show that
        # an earlier "cut" was measured against a stale reference: an alert
        # raised on it is withdrawn.
        return Finding(indicator, subject, open=False, observed=walk.observed, onset_ts=0.0,
                       evidence=walk.evidence, resolution="withdrawn: a late observation filled the gap"), deadline
    return Finding(
        indicator, subject, open=walk.open, observed=walk.observed, onset_ts=walk.onset_ts or 0.0,
        resolved_ts=None if walk.open else walk.resolved_ts, evidence=walk.evidence, assess_observed=walk.assessed,
        detail=f"{competitor} prices {sku} at {walk.previous.price / 1e6:g}; cut" if walk.previous else "cut",
        resolution=None if walk.open else "price back",
    ), deadline
