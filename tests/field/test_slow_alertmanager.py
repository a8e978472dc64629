"""Issue 13, "Slow neighbours must not slow the engine": an Alertmanager that
accepts connections and never answers, or a port nobody listens on.

Measured before: `riskwatch run` stalled at 350 of 5,120 events in 60 s
behind a silent Alertmanager (a blocking 5 s post per alert change), and a
closed port logged one warning per alert change. Now the engine's output is
the same as without Alertmanager, the queue and its drops show in the
metrics, and the outage is one warning.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import CONSOLE_SCRIPT, REPO, RULES_DIR
from tests.support.neighbours import closed_port, silent_server

pytestmark = pytest.mark.slow

OUTAGE_WARNING = "does not accept alerts"
METRICS_AT = re.compile(r"metrics at (http://[^ ]+/metrics)")
# Small limits so that a few thousand events overflow the queue; the
# defaults are documented in docs/operations.md.
LIMITS = {
    "RISKWATCH_ALERTMANAGER_TIMEOUT_SECONDS": "0.5",
    "RISKWATCH_ALERTMANAGER_QUEUE_SIZE": "8",
    "RISKWATCH_ALERTMANAGER_BACKOFF_INITIAL_SECONDS": "0.2",
    "RISKWATCH_ALERTMANAGER_BACKOFF_MAX_SECONDS": "1",
}


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RISKWATCH_")}
    env.update(RISKWATCH_RULES=str(RULES_DIR), PYTHONHASHSEED="0", **extra)
    return env


def riskwatch(*args, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([str(CONSOLE_SCRIPT), *map(str, args)], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=timeout)


@pytest.fixture(scope="module")
def business(tmp_path_factory) -> Path:
    """Two months of a 60-customer business: about 4,000 events, a few hundred alert changes."""
    path = tmp_path_factory.mktemp("business") / "business.jsonl"
    done = riskwatch("simulate", "--seed", "9", "--customers", "60", "--days", "60", "--output", path, env=environment())
    assert done.returncode == 0, done.stderr
    return path


@pytest.fixture(scope="module")
def without_alertmanager(business) -> subprocess.CompletedProcess:
    done = riskwatch("replay", business, env=environment())
    assert done.returncode == 0, done.stderr
    return done


def summary(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(("events:", "alerts ", "clock:"))]


def alertmanager_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "alertmanager" in line.lower()]


def metric(page: str, name: str, **labels: str) -> float:
    selector = name + ("{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}" if labels else "")
    for line in page.splitlines():
        if line.startswith(selector + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{selector} not exported")


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()


def test_replay_behind_a_closed_port_gives_the_same_alerts_and_one_warning(business, without_alertmanager):
    done = riskwatch("replay", business, "--alertmanager", f"http://127.0.0.1:{closed_port()}",
                     env=environment(**LIMITS))
    assert done.returncode == 0, done.stderr
    assert done.stdout == without_alertmanager.stdout
    assert summary(done.stderr) == summary(without_alertmanager.stderr)
    changes = len(done.stdout.splitlines())
    assert changes > 100  # one warning per change would be hundreds of lines
    assert sum(OUTAGE_WARNING in line for line in done.stderr.splitlines()) == 1, done.stderr
    assert len(alertmanager_lines(done.stderr)) <= 3, alertmanager_lines(done.stderr)


def test_replay_behind_a_silent_alertmanager_finishes_with_the_same_alerts(business, without_alertmanager):
    with silent_server() as silent:
        # Before: a blocking post of up to the timeout per alert change.
        done = riskwatch("replay", business, "--alertmanager", silent.url,
                         env=environment(RISKWATCH_ALERTMANAGER_TIMEOUT_SECONDS="5"), timeout=60)
        assert silent.accepted, "riskwatch never tried to reach the silent Alertmanager"
    assert done.returncode == 0, done.stderr
    assert done.stdout == without_alertmanager.stdout
    assert sum(OUTAGE_WARNING in line for line in done.stderr.splitlines()) <= 1, done.stderr


def test_run_behind_a_silent_alertmanager_reports_every_alert_and_shows_the_queue(business, without_alertmanager):
    with silent_server() as silent:
        process = subprocess.Popen(
            [str(CONSOLE_SCRIPT), "run", "--input", str(business), "--alertmanager", silent.url, "--rate", "0",
             "--metrics-port", "0", "--quiet", "--no-color", "--store-dir", str(business.parent / "store")],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=environment(**LIMITS), cwd=REPO,
        )
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(process.stderr), daemon=True)
        reader.start()
        try:
            deadline = time.monotonic() + 60
            while not any("input done" in line for line in lines):
                assert process.poll() is None, "".join(lines)
                assert time.monotonic() < deadline, "run did not get through its input behind a silent Alertmanager"
                time.sleep(0.1)
            url = METRICS_AT.search("".join(lines)).group(1)
            page = scrape(url)
            assert metric(page, "riskwatch_events_processed_total", type="order.placed") > 0
            assert metric(page, "riskwatch_alertmanager_notifications_dropped_total", reason="overflow") > 0
            # After a few failed posts the breaker holds posts back.
            while metric(page, "riskwatch_alertmanager_circuit_open") != 1:
                assert time.monotonic() < deadline, page
                time.sleep(0.5)
                page = scrape(url)
            # Full at its limit of 8 waiting, plus at most the batch being posted.
            assert 8 <= metric(page, "riskwatch_alertmanager_notifications_queued") <= 16
            assert metric(page, "riskwatch_alertmanager_push_failures_total") >= 3
            assert metric(page, "riskwatch_alertmanager_pushes_total") == 0
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            finally:
                reader.join(timeout=5)
    stderr = "".join(lines)
    assert process.returncode == 0, stderr
    assert summary(stderr) == summary(without_alertmanager.stderr)
    assert sum(OUTAGE_WARNING in line for line in stderr.splitlines()) == 1, stderr
    assert len(alertmanager_lines(stderr)) <= 3, alertmanager_lines(stderr)


def test_a_delivery_limit_out_of_range_is_refused_before_reading_naming_the_variable(business):
    done = riskwatch("replay", business, "--alertmanager", f"http://127.0.0.1:{closed_port()}",
                     env=environment(RISKWATCH_ALERTMANAGER_QUEUE_SIZE="0"))
    assert done.returncode == 2
    assert "RISKWATCH_ALERTMANAGER_QUEUE_SIZE: 0 must be greater than 0" in done.stderr
    assert done.stdout == ""
