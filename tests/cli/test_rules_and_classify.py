"""`riskwatch rules check` and `riskwatch classify` through the console script."""

from __future__ import annotations

from pathlib import Path

import pytest

BAD = Path(__file__).resolve().parents[1] / "data" / "rules" / "bad"
CASES = sorted(p.name for p in BAD.iterdir() if p.is_dir())
SPURIOUS_EMPTY = pytest.mark.xfail(
    strict=True,
    reason="bug: a YAML syntax error or duplicate key is followed by a false '<file>: (top level): the file is empty'",
)
KNOWN_BUGS: dict = {}


def test_the_shipped_rules_pass_the_check(riskwatch, rules_dir):
    RULES_DIR = rules_dir
    done = riskwatch("rules", "check", RULES_DIR)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout == f"{RULES_DIR}: ok (8 indicators enabled, 5 playbooks, tiers red, orange, yellow, blue)\n"


def test_without_a_directory_the_check_reads_the_configured_rules(riskwatch):
    done = riskwatch("rules", "check")
    assert done.returncode == 0, done.stderr
    assert ": ok (8 indicators enabled" in done.stdout


@pytest.mark.parametrize("case", [pytest.param(c, marks=KNOWN_BUGS.get(c, ())) for c in CASES])
def test_a_broken_rule_directory_fails_the_check_word_for_word(riskwatch, case):
    done = riskwatch("rules", "check", BAD / case)
    assert done.returncode == 1
    expected = (BAD / case / "expected.txt").read_text(encoding="utf-8").splitlines()
    assert done.stdout.splitlines() == expected
    assert done.stderr == f"{len(expected)} problem(s) in {BAD / case}\n"


def test_replay_with_broken_rules_exits_non_zero_naming_the_problem(riskwatch, events_file):
    from riskwatch.testing import payment_received

    path = events_file([payment_received("INV-1", "C1", 10)])
    done = riskwatch("replay", path, "--rules", BAD / "unknown_playbook")
    assert done.returncode != 0
    assert done.stdout == ""
    assert "indicators.yaml: indicators.payment_overdue.playbook: unknown playbook 'credit_squeeze'" in done.stderr


@pytest.mark.parametrize("p, i, c, tier", [
    ("0.9", "0.5", "0.2", "red"),
    ("0.6", "0.25", "0.6", "orange"),
    ("0.4", "0.15", "0.8", "yellow"),
    ("0.1", "0.05", "0.9", "blue"),
    ("0.6", "0.12", "0.6", "yellow"),
])
def test_classify_prints_the_tier(riskwatch, p, i, c, tier):
    done = riskwatch("classify", "--probability", p, "--impact", i, "--controllability", c)
    assert done.returncode == 0, done.stderr
    assert done.stdout == tier + "\n"


@pytest.mark.parametrize("args", [
    ("--probability", "1.5", "--impact", "0.1", "--controllability", "0.5"),
    ("--probability", "70%", "--impact", "0.1", "--controllability", "0.5"),
    ("--probability", "0.7", "--impact", "0.1"),
])
def test_classify_refuses_values_outside_the_unit_interval(riskwatch, args):
    done = riskwatch("classify", *args)
    assert done.returncode == 2
    assert done.stdout == ""
    assert "--probability" in done.stderr or "--controllability" in done.stderr
