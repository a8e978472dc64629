"""Shared fixtures: the default rules, the real console script, event files.

CLI and acceptance tests run `.venv/bin/riskwatch` (the installed console
script, exactly what a risk officer types) in a subprocess; unit and
property tests call the core directly.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from riskwatch.testing import default_rules, final_states, to_jsonl

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `tests.support` when pytest is started from elsewhere
    sys.path.insert(0, str(REPO))

# Fixtures every directory may use; the module imports Playwright only when a browser test runs.
pytest_plugins = ("tests.support.browser",)
RULES_DIR = REPO / "rules"
DATA = Path(__file__).resolve().parent / "data"
CONSOLE_SCRIPT = Path(sys.executable).parent / "riskwatch"
if not CONSOLE_SCRIPT.exists():  # pragma: no cover - running outside the venv
    CONSOLE_SCRIPT = REPO / ".venv" / "bin" / "riskwatch"


@dataclass
class Completed:
    returncode: int
    stdout: str
    stderr: str

    @property
    def records(self) -> list[dict]:
        """stdout as JSON lines (alert change records of `replay`)."""
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]

    @property
    def final(self) -> dict[str, dict]:
        """The last record per alert_id: its final state (DOMAIN §6)."""
        return final_states(self.records)


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RISKWATCH_")}
    env["RISKWATCH_RULES"] = str(RULES_DIR)
    env.setdefault("PYTHONHASHSEED", "0")
    return env


def run_riskwatch(*args: str, input: str | bytes | None = None, timeout: float = 60, cwd: Path | None = None) -> Completed:
    """Run the real console script and collect what it printed."""
    if isinstance(input, str):
        input = input.encode()
    done = subprocess.run(
        [str(CONSOLE_SCRIPT), *map(str, args)], input=input, capture_output=True, timeout=timeout,
        env=_environment(), cwd=cwd or REPO,
    )
    return Completed(done.returncode, done.stdout.decode(), done.stderr.decode())


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory):
    """One real Kafka broker for the session (deploy/kafka/kafka.sh on a free loopback
    port with a fresh data dir, stopped at the end), shared by the streams and CDC tests."""
    from tests.support.kafka import KAFKA_SH, Broker

    if shutil.which("java") is None:
        pytest.fail("java is not installed: the Kafka tests need Java 17 for the broker")
    install = subprocess.run([str(KAFKA_SH), "install"], capture_output=True, text=True, timeout=900)
    if install.returncode != 0:
        pytest.fail(f"kafka.sh install failed: {install.stderr}")
    broker = Broker(tmp_path_factory.mktemp("kafka"))
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def rules():
    """The shipped rule files, loaded once."""
    return default_rules()


@pytest.fixture(scope="session")
def rules_dir() -> Path:
    """The shipped rule directory."""
    return RULES_DIR


@pytest.fixture
def riskwatch():
    """`riskwatch(*args)` runs the console script."""
    return run_riskwatch


@pytest.fixture
def start_riskwatch():
    """`start_riskwatch(*args)` starts the console script in the background (a Popen with
    text pipes); whatever is still running at the end of the test is stopped."""
    started: list[subprocess.Popen] = []

    def start(*args: str) -> subprocess.Popen:
        process = subprocess.Popen(
            [str(CONSOLE_SCRIPT), *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=_environment(), cwd=REPO,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture
def events_file(tmp_path):
    """`events_file(events, name=...)` writes events (dicts or raw lines) as a JSON-lines file."""

    def write(events, name: str = "events.jsonl") -> Path:
        path = tmp_path / name
        lines = []
        for event in events:
            lines.append(event if isinstance(event, str) else to_jsonl([event]).rstrip("\n"))
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    return write


@pytest.fixture
def rules_copy(tmp_path):
    """A writable copy of the default rule directory."""
    target = tmp_path / "rules"
    shutil.copytree(RULES_DIR, target)
    return target
