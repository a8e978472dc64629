"""The Alertmanager delivery limits as flags of `run`, `replay` and `worker`.

A flag that is given wins over its RISKWATCH_ALERTMANAGER_* variable: an
operator who passes `--alertmanager-drain 0.5` to a command whose
environment says 30 s gets a command that ends half a second after its
input, not one that hangs on for half a minute behind a silent Alertmanager.
"""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from tests.conftest import CONSOLE_SCRIPT, REPO, RULES_DIR
from tests.support.neighbours import closed_port, silent_server

FLAGS_AND_VARIABLES = {
    "--alertmanager-queue-size": "RISKWATCH_ALERTMANAGER_QUEUE_SIZE",
    "--alertmanager-batch-size": "RISKWATCH_ALERTMANAGER_BATCH_SIZE",
    "--alertmanager-timeout": "RISKWATCH_ALERTMANAGER_TIMEOUT_SECONDS",
    "--alertmanager-max-age": "RISKWATCH_ALERTMANAGER_MAX_AGE_SECONDS",
    "--alertmanager-backoff-initial": "RISKWATCH_ALERTMANAGER_BACKOFF_INITIAL_SECONDS",
    "--alertmanager-backoff-max": "RISKWATCH_ALERTMANAGER_BACKOFF_MAX_SECONDS",
    "--alertmanager-breaker-failures": "RISKWATCH_ALERTMANAGER_BREAKER_FAILURES",
    "--alertmanager-drain": "RISKWATCH_ALERTMANAGER_DRAIN_SECONDS",
}
# A silent Alertmanager held for half a minute by the environment: a post
# waits 30 s, the breaker never opens, shutdown gives the queue 30 s.
PATIENT = {
    "RISKWATCH_ALERTMANAGER_TIMEOUT_SECONDS": "30",
    "RISKWATCH_ALERTMANAGER_DRAIN_SECONDS": "30",
    "RISKWATCH_ALERTMANAGER_BREAKER_FAILURES": "100",
}
NOT_DELIVERED = "not delivered to"
# One invoice 40 days overdue: one red/orange payment_overdue alert.
OVERDUE = (
    '{"event_id": "i-1", "type": "invoice.issued", "occurred_at": "2025-01-01T09:00:00Z", "invoice_id": "INV-1", '
    '"customer_id": "C-1", "amount": "120000", "currency": "CNY", "due_at": "2025-01-31T09:00:00Z"}\n'
)


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RISKWATCH_")}
    env.update(RISKWATCH_RULES=str(RULES_DIR), PYTHONHASHSEED="0", **extra)
    return env


def riskwatch(*args, env: dict[str, str], timeout: float = 60) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    done = subprocess.run([str(CONSOLE_SCRIPT), *map(str, args)], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=timeout)
    return done, time.monotonic() - started


@pytest.mark.parametrize("command", ["run", "replay", "worker"])
def test_each_command_documents_every_delivery_flag_with_its_variable_and_default(command):
    done, _ = riskwatch(command, "--help", env=environment())
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.split())  # help is wrapped at any space
    for flag, variable in FLAGS_AND_VARIABLES.items():
        assert flag in text, flag
        described = text.split(flag, 1)[1].split(" --", 1)[0].replace(" ", "")
        assert variable in described, (flag, described)
        assert "default" in described, (flag, described)


def test_replay_ends_at_the_drain_flag_not_the_drain_variable(tmp_path):
    events = tmp_path / "overdue.jsonl"
    events.write_text(OVERDUE)
    with silent_server() as silent:
        done, took = riskwatch("replay", events, "--until", "2025-03-15T00:00:00Z", "--alertmanager", silent.url,
                               "--alertmanager-drain", "0.5", env=environment(**PATIENT))
        assert silent.accepted, "replay never tried to reach Alertmanager"
    assert done.returncode == 0, done.stderr
    assert '"payment_overdue"' in done.stdout
    # 30 s if the variable held; the drain flag gives up after half a second.
    assert took < 15, f"replay took {took:.1f} s: the environment's 30 s drain won over --alertmanager-drain 0.5"
    assert NOT_DELIVERED in done.stderr, done.stderr


def test_run_ends_at_the_drain_flag_not_the_drain_variable(tmp_path):
    events = tmp_path / "overdue.jsonl"
    events.write_text(OVERDUE + OVERDUE.replace('"i-1"', '"i-2"').replace("2025-01-01T09", "2025-03-15T09")
                      .replace("INV-1", "INV-2"))
    with silent_server() as silent:
        done, took = riskwatch("run", "--input", events, "--rate", "0", "--metrics-port", "0", "--exit-when-done",
                               "--no-color", "--store-dir", tmp_path / "store", "--alertmanager", silent.url,
                               "--alertmanager-drain", "0.5", env=environment(**PATIENT))
        assert silent.accepted, "run never tried to reach Alertmanager"
    assert done.returncode == 0, done.stderr
    assert "payment_overdue" in done.stdout
    assert took < 15, f"run took {took:.1f} s: the environment's 30 s drain won over --alertmanager-drain 0.5"
    assert NOT_DELIVERED in done.stderr, done.stderr


def test_a_flag_overrides_a_variable_the_command_would_refuse(tmp_path):
    events = tmp_path / "overdue.jsonl"
    events.write_text(OVERDUE)
    target = f"http://127.0.0.1:{closed_port()}"
    refused, _ = riskwatch("replay", events, "--alertmanager", target,
                           env=environment(RISKWATCH_ALERTMANAGER_QUEUE_SIZE="0"))
    assert refused.returncode == 2
    assert "RISKWATCH_ALERTMANAGER_QUEUE_SIZE: 0 must be greater than 0" in refused.stderr
    done, _ = riskwatch("replay", events, "--until", "2025-03-15T00:00:00Z", "--alertmanager", target,
                        "--alertmanager-queue-size", "8", env=environment(RISKWATCH_ALERTMANAGER_QUEUE_SIZE="0"))
    assert done.returncode == 0, done.stderr
    assert '"payment_overdue"' in done.stdout


@pytest.mark.parametrize("command", ["run", "replay", "worker"])
def test_a_delivery_flag_out_of_range_is_a_usage_error_naming_the_flag(command, tmp_path):
    events = tmp_path / "overdue.jsonl"
    events.write_text(OVERDUE)
    inputs = {"run": ["--input", events, "--metrics-port", "0"], "replay": [events], "worker": []}[command]
    done, took = riskwatch(command, *inputs, "--alertmanager", f"http://127.0.0.1:{closed_port()}",
                           "--alertmanager-timeout", "0", env=environment(RISKWATCH_BROKER=f"127.0.0.1:{closed_port()}"))
    assert done.returncode == 2, done.stderr
    assert "--alertmanager-timeout" in done.stderr
    assert took < 15  # refused before any broker or input is touched


def test_the_worker_refuses_a_variable_out_of_range_before_contacting_the_broker():
    done, took = riskwatch("worker", "--alertmanager", f"http://127.0.0.1:{closed_port()}",
                           "--alertmanager-backoff-max", "0.1",
                           env=environment(RISKWATCH_BROKER=f"127.0.0.1:{closed_port()}",
                                           RISKWATCH_ALERTMANAGER_BACKOFF_INITIAL_SECONDS="1"))
    assert done.returncode == 2, done.stderr
    assert "RISKWATCH_ALERTMANAGER_BACKOFF_MAX_SECONDS: must not be less than" in done.stderr
    assert "Traceback" not in done.stderr
    assert took < 15
