"""Fixtures for the workflow tests: response rules and the repository paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from riskwatch.rules.response import load_response_rules

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def response_rules():
    rules, problems = load_response_rules(REPO / "rules")
    assert problems == []
    return rules
