"""Names one rule file gives for what another defines, and the rates to CNY
(issue 12): whatever the name or the number, it is either one the rules know
and kept exactly, or refused with exactly one problem naming where."""

from __future__ import annotations

import copy
import math
import string
from decimal import Decimal
from pathlib import Path

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from riskwatch.rules.response import validate_response_files
from riskwatch.rules.schema import check_currency_rates

RULES = Path(__file__).resolve().parents[2] / "rules"
RAW = {name: yaml.safe_load((RULES / name).read_text(encoding="utf-8"))
       for name in ("escalation.yaml", "contingency_plans.yaml")}
ROLES = {name for level in RAW["escalation.yaml"]["owner_chain"] for name in [level["level"], *level["roles"]]}
PLAN_STEPS = [(plan_id, index) for plan_id, plan in RAW["contingency_plans.yaml"]["plans"].items()
              for index in range(len(plan["steps"]))]
PROPERTY = settings(max_examples=60, deadline=None)

names = st.text(alphabet=string.ascii_lowercase + "_", min_size=1, max_size=24)
codes = st.text(alphabet=string.ascii_uppercase, min_size=3, max_size=3).filter(lambda c: c != "CNY")
# As YAML gives them: a number, or a decimal string.
positive = (st.decimals(min_value=Decimal("0.000001"), max_value=Decimal("100000"), places=6).map(str)
            | st.floats(min_value=1e-6, max_value=1e5) | st.integers(min_value=1, max_value=10**6))
not_positive = st.sampled_from([0, -1, -7.1, 0.0, math.inf, -math.inf, math.nan, "", "seven", True, None, [7.1]])


@PROPERTY
@given(st.sampled_from(PLAN_STEPS), names)
def test_a_plan_step_owner_is_a_role_of_the_chain_or_one_problem_naming_it(step, owner):
    plan_id, index = step
    raw = copy.deepcopy(RAW)
    raw["contingency_plans.yaml"]["plans"][plan_id]["steps"][index]["owner"] = owner
    problems: list[str] = []
    escalation, plans = validate_response_files(raw, problems)
    assert escalation is not None
    if owner in ROLES:
        assert problems == [] and plans is not None
    else:
        assert plans is None
        assert len(problems) == 1
        assert problems[0].startswith(
            f"contingency_plans.yaml: plans.{plan_id}.steps[{index}].owner: unknown role {owner!r} "
            "(not in escalation.yaml owner_chain")


@PROPERTY
@given(st.dictionaries(codes, positive, max_size=6))
def test_positive_finite_rates_are_kept_exactly_as_written(rates):
    written = {"CNY": 1, **rates}
    exact, problems = check_currency_rates(written)
    assert problems == []
    assert exact == {code: Decimal(str(value)) for code, value in written.items()}


@PROPERTY
@given(st.dictionaries(codes, positive, max_size=4), codes, not_positive)
def test_a_rate_that_is_not_a_positive_finite_number_is_one_problem_naming_its_code(rates, code, bad):
    written = {"CNY": 1, **rates, code: bad}
    exact, problems = check_currency_rates(written)
    assert problems == [(f".{code}", f"must be a positive finite number (CNY per 1 {code}), got {bad!r}")]
    assert code not in exact and set(exact) == set(written) - {code}
