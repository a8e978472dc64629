"""Strict rule loading: the shipped rules load, and every broken copy under
tests/data/rules/bad/ is refused with exactly the problems in its expected.txt."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from riskwatch.errors import RulesError
from riskwatch.rules import check_rules, load_rules
from riskwatch.rules.response import UnknownRole
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
    # Names one file gives for what another defines (issue 12: rule files that lie quietly).
    assert {"unknown_owner_role", "unknown_escalate_to", "unknown_notify_role", "escalate_to_skips_a_level",
            "unknown_playbook_step_owner", "unknown_by_tier_step_owner", "unknown_tier_name",
            "unknown_plan_indicator", "unknown_plan_step_owner", "quiet_lies_in_three_files",
            "missing_escalation_file", "currency_code_not_iso", "currency_rate_not_positive_finite",
            "cny_rate_not_one", "cny_rate_missing"} <= set(CASES)


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


def test_every_owner_the_shipped_rules_name_has_its_level_in_the_owner_chain(rules):
    escalation = rules.response_rules.escalation
    owners = [r.owner for r in rules.response.values()] + [r.escalate_to for r in rules.response.values()]
    owners += [role for r in rules.response.values() for role in r.notify]
    owners += [s.owner for p in rules.playbooks.values() for s in [*p.steps, *(x for l in p.by_tier.values() for x in l)]]
    owners += [s.owner for plan in rules.response_rules.plans.values() for s in plan.steps]
    levels = {owner: escalation.level_of(owner) for owner in owners}
    assert levels["frontline_team"] == 0 and levels["crisis_team"] == escalation.top_level == 3


def test_an_owner_the_chain_does_not_list_has_no_level(rules):
    """The old lookup put any unknown owner at the lowest level; now it is an error."""
    with pytest.raises(UnknownRole, match="unknown role 'frontlne_team' .*did you mean 'frontline_team'"):
        rules.response_rules.escalation.level_of("frontlne_team")
    with pytest.raises(UnknownRole):
        rules.response_rules.escalation.level_of(None)


def test_a_level_name_is_a_role_of_its_level(rules_copy):
    # An escalated alert is owned by the level's name, so the rules may name it too.
    matrix = rules_copy / "matrix.yaml"
    matrix.write_text(matrix.read_text().replace("    owner: frontline_team\n", "    owner: frontline\n"))
    assert check_rules(rules_copy) == []
    assert load_rules(rules_copy).response["blue"].owner == "frontline"


def test_a_role_misspelt_everywhere_is_reported_everywhere(rules_copy):
    for name in ("matrix.yaml", "playbooks.yaml", "contingency_plans.yaml"):
        path = rules_copy / name
        path.write_text(path.read_text().replace("department_head", "department_haed"))
    problems = check_rules(rules_copy)
    places = [p.split(": unknown role")[0] for p in problems]
    assert places == [
        "contingency_plans.yaml: plans.price_war_response.steps[2].owner",
        "contingency_plans.yaml: plans.progress_lag_level_1.steps[0].owner",
        "contingency_plans.yaml: plans.progress_lag_level_2.steps[1].owner",
        "matrix.yaml: response.yellow.owner",
        "matrix.yaml: response.yellow.notify[0]",
        "matrix.yaml: response.blue.escalate_to",
        "playbooks.yaml: playbooks.progress_lag_response.steps[0].owner",
    ]
    assert all(p.endswith("(not in escalation.yaml owner_chain; did you mean 'department_head'?)") for p in problems)


def test_currency_rates_are_kept_exact(rules):
    assert rules.currency_rates_exact == {
        "CNY": Decimal("1"), "USD": Decimal("7.1"), "EUR": Decimal("7.7"),
        "HKD": Decimal("0.91"), "JPY": Decimal("0.047"), "GBP": Decimal("9.0"),
    }
    assert rules.currency_rates == {code: float(rate) for code, rate in rules.currency_rates_exact.items()}
    # 3 JPY is 0.141 CNY exactly (through the float rate: 0.14100000000000001).
    assert Decimal("3") * rules.currency_rates_exact["JPY"] == Decimal("0.141")


def test_currency_rates_given_as_decimal_strings_are_read_exactly(rules_copy):
    indicators = rules_copy / "indicators.yaml"
    indicators.write_text(indicators.read_text().replace("USD: 7.1,", 'USD: "7.1234567890123456789",'))
    assert load_rules(rules_copy).currency_rates_exact["USD"] == Decimal("7.1234567890123456789")


def test_without_currency_rates_only_cny_is_known(rules_copy):
    indicators = rules_copy / "indicators.yaml"
    text = indicators.read_text()
    indicators.write_text("\n".join(l for l in text.splitlines() if not l.startswith("currency_rates_to_cny:")))
    assert load_rules(rules_copy).currency_rates_exact == {"CNY": Decimal("1")}


def test_currency_rates_that_are_not_a_mapping_are_refused(rules_copy):
    indicators = rules_copy / "indicators.yaml"
    text = indicators.read_text()
    start = text.index("currency_rates_to_cny:")
    end = text.index("\n", start)
    indicators.write_text(text[:start] + "currency_rates_to_cny: [USD, 7.1]" + text[end:])
    assert check_rules(rules_copy) == ["indicators.yaml: currency_rates_to_cny: must be a mapping"]
