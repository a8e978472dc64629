"""Operations tests: deploy/ checked with the real promtool, amtool, kubectl
and Prometheus. Helpers live in tests/support/ops.py."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # `tests.support` when pytest is started from elsewhere
    sys.path.insert(0, str(REPO))

from tests.support.ops import rules  # noqa: E402


@pytest.fixture(scope="session")
def all_rules() -> list[dict]:
    return rules()
