"""Issue 12, "Rule files that lie quietly": three misspelt names that
`riskwatch rules check` used to pass, each now refused naming file, field
and reason; and a replay on such rules refused rather than run with an owner
nobody in the owner chain answers to."""

from __future__ import annotations

import pytest

from riskwatch.testing import invoice_issued

LIES = [
    pytest.param(
        "matrix.yaml", "    owner: frontline_team\n", "    owner: frontlne_team\n",
        "matrix.yaml: response.blue.owner: unknown role 'frontlne_team' "
        "(not in escalation.yaml owner_chain; did you mean 'frontline_team'?)",
        id="misspelt-matrix-owner"),
    pytest.param(
        "contingency_plans.yaml", "indicators: [delivery_delay]", "indicators: [delivery_delays]",
        "contingency_plans.yaml: plans.supply_chain_guarantee.indicators[0]: unknown indicator 'delivery_delays' "
        "(known: customer_churn_rate, delivery_delay, payment_overdue, competitor_price_cut, key_account_decline, "
        "credit_limit_breach, collection_rate, sales_target_lag)",
        id="plan-names-a-missing-indicator"),
    pytest.param(
        "playbooks.yaml", "owner: supply_chain_manager, due: 24h", "owner: supply_chain_manger, due: 24h",
        "playbooks.yaml: playbooks.supply_chain_guarantee.steps[0].owner: unknown role 'supply_chain_manger' "
        "(not in escalation.yaml owner_chain; did you mean 'supply_chain_manager'?)",
        id="misspelt-playbook-step-owner"),
]


def lie(rules_dir, file_name: str, right: str, wrong: str) -> None:
    path = rules_dir / file_name
    text = path.read_text(encoding="utf-8")
    assert text.count(right) == 1
    path.write_text(text.replace(right, wrong), encoding="utf-8")


@pytest.mark.parametrize("file_name, right, wrong, problem", LIES)
def test_rules_check_refuses_the_misspelt_name(riskwatch, rules_copy, file_name, right, wrong, problem):
    lie(rules_copy, file_name, right, wrong)
    done = riskwatch("rules", "check", rules_copy)
    assert done.returncode == 1
    assert done.stdout == problem + "\n"
    assert done.stderr == f"1 problem(s) in {rules_copy}\n"


def test_a_replay_on_rules_with_a_misspelt_owner_is_refused_not_run(riskwatch, rules, rules_copy, events_file):
    lie(rules_copy, "matrix.yaml", "    owner: sales_leadership_group\n", "    owner: sales_leadreship_group\n")
    # An invoice 41 days overdue: an alert owned by its tier's response owner.
    events = events_file([invoice_issued("INV-1", "C1", 250_000, "2026-01-01T00:00:00Z", at="2025-12-01T00:00:00Z")])
    done = riskwatch("replay", events, "--rules", rules_copy, "--until", "2026-02-11T00:00:00Z")
    assert done.returncode != 0
    assert done.stdout == ""
    assert ("matrix.yaml: response.orange.owner: unknown role 'sales_leadreship_group' "
            "(not in escalation.yaml owner_chain; did you mean 'sales_leadership_group'?)") in done.stderr
    # The same events on the shipped rules: the alert, owned by a role the chain knows.
    shipped = riskwatch("replay", events, "--until", "2026-02-11T00:00:00Z")
    assert shipped.returncode == 0, shipped.stderr
    (alert,) = shipped.final.values()
    assert alert["owner"] == rules.response[alert["tier"]].owner
    rules.response_rules.escalation.level_of(alert["owner"])  # a role of the chain
