"""The issue's command names for the Kafka deployment: `riskwatch simulate
--to-kafka` feeds the source topics, `riskwatch alerts tail` prints the
alert changes the worker made of them, like `riskwatch run` does."""

from __future__ import annotations

import subprocess

import pytest

from tests.support.kafka import RISKWATCH, wait_processed

pytestmark = [pytest.mark.kafka]


def test_simulate_to_kafka_feeds_the_worker_and_alerts_tail_prints_its_alerts(kafka_broker, start_worker, topic_prefix):
    worker = start_worker()
    kafka = ["--broker", kafka_broker.bootstrap, "--topic-prefix", topic_prefix]
    simulated = subprocess.run([str(RISKWATCH), "simulate", "--seed", "5", "--customers", "20", "--days", "60",
                                "--to-kafka", *kafka], capture_output=True, text=True, timeout=120)
    assert simulated.returncode == 0, simulated.stderr
    assert simulated.stdout == "", "with --to-kafka nothing goes to stdout"
    sent = int(simulated.stderr.split("sent ")[1].split()[0])
    assert sent > 100
    wait_processed([worker], sent)

    shown = subprocess.run([str(RISKWATCH), "alerts", "tail", "--no-follow", "--no-colour", *kafka],
                           capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines and all("owner " in line and "respond by" in line for line in lines if "resolved" not in line)


def test_simulate_refuses_both_a_file_and_kafka(tmp_path):
    done = subprocess.run([str(RISKWATCH), "simulate", "--to-kafka", "-o", str(tmp_path / "x.jsonl")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "--to-kafka and --output" in done.stderr
