"""The tier matrix: classify (probability, impact, controllability) into a tier.

The matrix is an ordered list of tier rows, most severe first; the first row
whose bounds all hold wins and the last row is a catch-all. Bounds may only
ask for more probability/impact or less controllability, which is what
makes the mapping monotone; `check_matrix` proves completeness and
monotonicity on a grid as a second line of defence.
"""

from __future__ import annotations

import itertools
import operator
import re
from dataclasses import dataclass
from typing import Callable

from riskwatch.rules.schema import TIER_ORDER, MatrixFile

_BOUND = re.compile(r"^\s*(>=|<=|>|<)\s*([0-9]*\.?[0-9]+)\s*$")
_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
}
# The direction in which each input makes a risk worse.
_WORSE_IS_HIGHER = {"probability": True, "impact": True, "controllability": False}
DIMENSIONS = ("probability", "impact", "controllability")


@dataclass(frozen=True)
class Bound:
    dimension: str
    op: str
    limit: float

    def holds(self, value: float) -> bool:
        return _OPS[self.op](value, self.limit)

    def __str__(self) -> str:
        return f"{self.dimension} {self.op} {self.limit:g}"


@dataclass(frozen=True)
class TierRule:
    tier: str
    bounds: tuple[Bound, ...]  # empty: the catch-all


@dataclass(frozen=True)
class Matrix:
    rules: tuple[TierRule, ...]

    def classify(self, probability: float, impact: float, controllability: float) -> str:
        values = {"probability": probability, "impact": impact, "controllability": controllability}
        for rule in self.rules:
            if all(bound.holds(values[bound.dimension]) for bound in rule.bounds):
                return rule.tier
        return self.rules[-1].tier  # unreachable when the matrix passed check_matrix


def compile_matrix(model: MatrixFile, where: str) -> tuple[Matrix | None, list[str]]:
    """Build the matrix, returning every problem as `where: field.path: reason`."""
    problems: list[str] = []
    rules: list[TierRule] = []
    seen: dict[str, int] = {}
    for index, row in enumerate(model.tiers):
        path = f"tiers[{index}]"
        if row.tier in seen:
            problems.append(
                f"{where}: {path}.tier: overlapping matrix: tier {row.tier!r} is already defined at tiers[{seen[row.tier]}]"
            )
            continue
        seen[row.tier] = index
        if row.otherwise:
            if row.when is not None:
                problems.append(f"{where}: {path}: a catch-all row (otherwise: true) takes no 'when'")
            if index != len(model.tiers) - 1:
                problems.append(f"{where}: {path}.otherwise: overlapping matrix: the catch-all must be the last row; rows after it can never match")
            rules.append(TierRule(row.tier, ()))
            continue
        if row.when is None:
            problems.append(f"{where}: {path}: give 'when' bounds or 'otherwise: true'")
            continue
        bounds: list[Bound] = []
        for dimension in DIMENSIONS:
            text = getattr(row.when, dimension)
            if text is None:
                continue
            match = _BOUND.match(text)
            if not match:
                problems.append(f"{where}: {path}.when.{dimension}: {text!r} is not a bound like '> 0.7' or '<= 0.5'")
                continue
            op, limit = match.group(1), float(match.group(2))
            if not 0.0 <= limit <= 1.0:
                problems.append(f"{where}: {path}.when.{dimension}: {limit:g} is outside [0, 1]")
                continue
            if (op in (">", ">=")) != _WORSE_IS_HIGHER[dimension]:
                wanted = "'>' or '>='" if _WORSE_IS_HIGHER[dimension] else "'<' or '<='"
                problems.append(
                    f"{where}: {path}.when.{dimension}: non-monotone matrix: {dimension} bounds must use {wanted} "
                    f"(a row may only ask for a worse risk)"
                )
                continue
            bounds.append(Bound(dimension, op, limit))
        if not bounds:
            problems.append(f"{where}: {path}.when: give at least one bound, or use 'otherwise: true'")
            continue
        rules.append(TierRule(row.tier, tuple(bounds)))

    order = [row.tier for row in model.tiers]
    ranked = [tier for tier in TIER_ORDER if tier in order]
    if order == ranked + [t for t in order if t not in ranked] and len(set(order)) == len(order):
        pass
    elif not problems:
        problems.append(f"{where}: tiers: non-monotone matrix: rows must run from the most severe tier down ({', '.join(TIER_ORDER)})")
    for tier in TIER_ORDER:
        if tier not in seen:
            problems.append(f"{where}: tiers: tier {tier!r} is missing")
        if tier not in model.response:
            problems.append(f"{where}: response.{tier}: required")
    if problems:
        return None, problems

    matrix = Matrix(tuple(rules))
    problems.extend(f"{where}: tiers: {problem}" for problem in check_matrix(matrix))
    return (None, problems) if problems else (matrix, [])


def _grid(steps: int = 20) -> list[float]:
    return [i / steps for i in range(steps + 1)]


def check_matrix(matrix: Matrix) -> list[str]:
    """Completeness and monotonicity on a grid (including every bound's limit)."""
    problems: list[str] = []
    if matrix.rules[-1].bounds:
        # No catch-all: find a point that no row covers.
        for p, i, c in itertools.product(_grid(), _grid(), _grid()):
            values = {"probability": p, "impact": i, "controllability": c}
            if not any(all(b.holds(values[b.dimension]) for b in rule.bounds) for rule in matrix.rules):
                problems.append(
                    f"incomplete matrix: (probability={p:g}, impact={i:g}, controllability={c:g}) matches no tier; "
                    "end with a catch-all row (otherwise: true)"
                )
                return problems
    points = set(_grid())
    for rule in matrix.rules:
        for bound in rule.bounds:
            points.add(bound.limit)
    axis = sorted(points)
    rank = {tier: index for index, tier in enumerate(TIER_ORDER)}
    for (pi, p), (ii, i), (ci, c) in itertools.product(enumerate(axis), enumerate(axis), enumerate(axis)):
        here = rank[matrix.classify(p, i, c)]
        neighbours = []
        if pi + 1 < len(axis):
            neighbours.append(("probability", axis[pi + 1], i, c))
        if ii + 1 < len(axis):
            neighbours.append(("impact", p, axis[ii + 1], c))
        if ci > 0:
            neighbours.append(("controllability", p, i, axis[ci - 1]))
        for dimension, np_, ni, nc in neighbours:
            if rank[matrix.classify(np_, ni, nc)] > here:
                problems.append(
                    f"non-monotone matrix: worsening {dimension} from (probability={p:g}, impact={i:g}, "
                    f"controllability={c:g}) lowers the tier"
                )
                return problems
    return problems
