"""The console tests' data: one store filled by a real `riskwatch run` over
four simulated months for the whole session, copied for each API a test
starts (tests that act get their own copy; read-only modules share one)."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.alertmanager import free_port
from support.api import running_api
from support.console import TOKENS_ENV, copy_store, filled_store


@pytest.fixture(scope="session")
def store_template(tmp_path_factory) -> Path:
    return filled_store(tmp_path_factory.mktemp("console-store"))


@pytest.fixture()
def console(store_template, tmp_path):
    """A `riskwatch api` over a fresh copy of the store; yields its URL."""
    store = copy_store(store_template, tmp_path / "store")
    with running_api(free_port(), RISKWATCH_API_TOKENS=TOKENS_ENV, RISKWATCH_STORE_DIR=str(store),
                     RISKWATCH_LOG_LEVEL="WARNING") as url:
        yield url


@pytest.fixture(scope="module")
def read_only_console(store_template, tmp_path_factory):
    """One `riskwatch api` for a module whose tests only read."""
    store = copy_store(store_template, tmp_path_factory.mktemp("read-only") / "store")
    with running_api(free_port(), RISKWATCH_API_TOKENS=TOKENS_ENV, RISKWATCH_STORE_DIR=str(store),
                     RISKWATCH_LOG_LEVEL="WARNING") as url:
        yield url
