"""Workers and simulated events for the streams tests, on the one real Kafka
broker of the session (`kafka_broker`, tests/conftest.py).

Each test uses its own topic prefix, so tests share the broker but never
each other's topics, consumer groups or clock.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # `tests.support` when pytest runs from elsewhere
    sys.path.insert(0, str(REPO))

from tests.support.kafka import LATENESS, RISKWATCH, Broker, Worker, replay_states  # noqa: E402

_prefixes = itertools.count(1)


@pytest.fixture
def topic_prefix(request: pytest.FixtureRequest) -> str:
    return f"t{next(_prefixes)}-{request.node.name[:24].replace('[', '-').strip(']')}."


@pytest.fixture
def start_worker(kafka_broker: Broker, topic_prefix: str, tmp_path: Path):
    """Start `riskwatch worker` processes on this test's topics; all stopped after the test."""
    started: list[Worker] = []

    def start(wait: bool = True, **options) -> Worker:
        worker = Worker(broker=kafka_broker.bootstrap, prefix=topic_prefix, directory=tmp_path, **options).start()
        started.append(worker)
        if wait:
            worker.wait_ready()
        return worker

    yield start
    for worker in started:
        worker.stop(timeout=15)


@pytest.fixture(scope="session")
def simulated_events(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five months of a 60-customer business from the core simulator."""
    path = tmp_path_factory.mktemp("events") / "simulated.jsonl"
    subprocess.run([str(RISKWATCH), "simulate", "--seed", "3", "--customers", "60", "--days", "150", "-o", str(path)],
                   check=True, capture_output=True, timeout=120)
    return path


@pytest.fixture(scope="session")
def replayed(simulated_events: Path) -> dict:
    """alert_id -> (tier, status) from `riskwatch replay` of the same events."""
    return replay_states(simulated_events, "--lateness", str(LATENESS))
