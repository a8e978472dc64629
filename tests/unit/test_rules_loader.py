"""Strict rule loading: the shipped rules load, and every broken copy under
tests/data/rules/bad/ is refused with exactly the problems in its expected.txt."""

from __future__ import annotations

from pathlib import Path

import pytest

from riskwatch.errors import RulesError
from riskwatch.rules import check_rules, load_rules
from riskwatch.rules.schema import INDICATOR_IDS, TIER_ORDER

BAD = Path(__file__).resolve().parents[1] / "data" / "rules" / "bad"
CASES = sorted(p.name for p in BAD.iterdir() if p.is_dir())
KNOWN_BUGS: dict = {}


def expected_problems(case: str) -> list[str]:
    return (BAD / case / "expected.txt").read_text(encoding="utf-8").splitlines()


def test_the_shipped_rules_load_with_all_eight_indicators_and_four_tiers(rules):
    assert set(rules.indicators) == set(INDICATOR_IDS)
    assert all(indicator.enabled for indicator in rules.indicators.values())
    assert [row.tier for row in rules.matrix.rules] == list(TIER_ORDER)
    for indicator in rules.indicators.values():
        assert indicator.playbook in rules.playbooks


def test_the_seed_thresholds_are_in_the_rule_files(rules):
    assert rules.indicators["customer_churn_rate"].threshold == 0.15
    assert rules.indicators["delivery_delay"].threshold == 72.0        # hours
    assert rules.indicators["payment_overdue"].threshold == 30.0       # days
    assert rules.indicators["competitor_price_cut"].threshold == 0.10


def test_there_is_a_broken_case_for_every_kind_of_mistake():
    assert {"unknown_key", "wrong_type", "unknown_playbook", "missing_indicator", "duplicate_tier_row",
            "missing_catch_all", "non_monotone", "bad_duration", "yaml_syntax_error",
            "duplicate_yaml_key"} <= set(CASES)


@pytest.mark.parametrize("case", [pytest.param(c, marks=KNOWN_BUGS.get(c, ())) for c in CASES])
def test_a_broken_rule_directory_is_refused_with_exactly_its_problems(case):
    with pytest.raises(RulesError) as refused:
        load_rules(BAD / case)
    assert refused.value.problems == expected_problems(case)
    assert check_rules(BAD / case) == expected_problems(case)


def test_every_problem_names_the_file_first():
    for case in CASES:
        for problem in check_rules(BAD / case):
            assert problem.split(":", 1)[0].endswith(".yaml"), problem


def test_a_missing_directory_is_refused(tmp_path):
    with pytest.raises(RulesError) as refused:
        load_rules(tmp_path / "nowhere")
    assert "not a directory of rule files" in refused.value.problems[0]


def test_a_missing_required_file_is_named(rules_copy):
    (rules_copy / "playbooks.yaml").unlink()
    assert "playbooks.yaml: (top level): required file is missing" in check_rules(rules_copy)


def test_every_problem_is_collected_not_just_the_first(rules_copy):
    indicators = rules_copy / "indicators.yaml"
    text = indicators.read_text()
    text = text.replace("    playbook: supply_chain_guarantee\n", "    playbook: supply_chain_guarantee\n    colour: red\n")
    text = text.replace("  payment_overdue:\n    title: Invoice overdue\n", "  payment_overdue:\n    title: Invoice overdue\n    owner: me\n")
    indicators.write_text(text)
    problems = check_rules(rules_copy)
    assert "indicators.yaml: indicators.delivery_delay.colour: unknown key" in problems
    assert "indicators.yaml: indicators.payment_overdue.owner: unknown key" in problems
