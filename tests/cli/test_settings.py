"""Settings from RISKWATCH_ variables: a typo or a bad value is refused by
name before anything starts, so a deployment never runs on a default it did
not mean."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from riskwatch.settings import SettingsError, load_settings

RISKWATCH = str(Path(sys.executable).with_name("riskwatch"))


def test_the_workflow_log_is_the_local_store_unless_kafka_is_asked_for():
    assert load_settings({}).workflow_log == "store"
    assert load_settings({"RISKWATCH_WORKFLOW_LOG": "kafka"}).workflow_log == "kafka"


@pytest.mark.parametrize("environ, named", [
    ({"RISKWATCH_WORKFLOW_LOG": "sqlite"}, "RISKWATCH_WORKFLOW_LOG: 'sqlite' is not one of store, kafka"),
    ({"RISKWATCH_PARTITONS": "4"}, "RISKWATCH_PARTITONS: unknown setting"),
    ({"RISKWATCH_PARTITIONS": "four"}, "RISKWATCH_PARTITIONS: 'four' is not a number"),
])
def test_a_bad_setting_is_refused_naming_the_variable(environ, named):
    with pytest.raises(SettingsError, match=named):
        load_settings(environ)


def test_the_api_refuses_to_start_on_an_unknown_workflow_log():
    env = {k: v for k, v in os.environ.items() if not k.startswith("RISKWATCH_")}
    env.update(RISKWATCH_WORKFLOW_LOG="sqlite", RISKWATCH_API_TOKENS="officer-token-0123456789:officer")
    done = subprocess.run([RISKWATCH, "api"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "RISKWATCH_WORKFLOW_LOG" in done.stderr
