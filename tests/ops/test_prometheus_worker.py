"""The real Prometheus scraping a real `riskwatch worker` on a real Kafka
broker: the panels `riskwatch run` cannot fill (consumer lag, commit latency,
rebalances) return data too, dead letters are counted, and the service
rules evaluate on the worker's series without error."""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import dataclass

import pytest
import yaml

from riskwatch.models import Rejection, parse_event
from riskwatch.simulate import SimulationSettings, simulate
from riskwatch.sinks.kafka import route_line, topic_name
from tests.support.kafka import KAFKA_SH, Broker, Worker, produce_lines
from tests.support.ops import PROMETHEUS_DIR, expand, panel_targets
from tests.support.prometheus import PrometheusServer, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.prometheus, pytest.mark.slow]

JOB = "riskwatch-worker"
PREFIX = "ops."
PARTITIONS = 2
SIMULATION = SimulationSettings(seed=5, customers=40, days=60, bad_record_rate=0.03)


def prometheus_config(web_port: int) -> dict:
    """The shipped Compose prometheus.yml with the worker job pointed at the
    test's worker, 1 s intervals, and no Alertmanager or API to reach."""
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s", scrape_timeout="1s")
    config["rule_files"] = [str(PROMETHEUS_DIR / pattern) for pattern in config["rule_files"]]
    config.pop("alerting")
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == JOB]
    job.pop("dns_sd_configs")
    job["static_configs"] = [{"targets": [f"127.0.0.1:{web_port}"]}]
    config["scrape_configs"] = [job]
    return config


@dataclass
class Observed:
    prometheus: PrometheusServer
    worker: Worker
    accepted: int
    dead_letters: int
    start: float
    end: float


def _produce_unroutable(broker: str, lines: list[bytes]) -> None:
    """Records no producer would route (not JSON...) still land on a source topic by mistake."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=broker, acks="all")
    for line in lines:
        producer.send(topic_name(PREFIX, "orders"), value=line)
    producer.flush()
    producer.close()


@pytest.fixture(scope="module")
def observed(tmp_path_factory) -> Observed:
    if shutil.which("java") is None or not KAFKA_SH.exists():
        pytest.fail("the worker test needs Java 17 and deploy/kafka/kafka.sh (scripts/install-services.sh)")
    lines = list(simulate(SIMULATION))
    routable = [line for line in lines if route_line(line) is not None]
    unroutable = [line for line in lines if route_line(line) is None]
    accepted = sum(not isinstance(parse_event(line), Rejection) for line in lines)
    workdir = tmp_path_factory.mktemp("prometheus-worker")

    broker = Broker(workdir / "kafka")
    broker.start()
    worker = prometheus = None
    try:
        worker = Worker(broker=broker.bootstrap, prefix=PREFIX, directory=workdir / "worker", partitions=PARTITIONS).start()
        worker.wait_ready(timeout=90)
        prometheus = PrometheusServer.start(prometheus_config(worker.web_port), workdir / "prometheus")
        start = time.time()
        wait_for(lambda: prometheus.value(f'up{{job="{JOB}"}}') == 1, 20, what="the worker scraped")
        # Two batches a few scrapes apart, so rates and lag have a before and an after.
        half = len(routable) // 2
        produce_lines(broker.bootstrap, PREFIX, routable[:half])
        _produce_unroutable(broker.bootstrap, unroutable)
        wait_for(lambda: (prometheus.value(f'sum(riskwatch_events_processed_total{{job="{JOB}"}})') or 0) > 0, 120,
                 what="first events scraped")
        time.sleep(3)
        produce_lines(broker.bootstrap, PREFIX, routable[half:])
        wait_for(lambda: prometheus.value(f'sum(riskwatch_events_processed_total{{job="{JOB}"}})') == accepted, 120,
                 what=f"Prometheus seeing all {accepted} events evaluated")
        end = time.time()
        wait_for(lambda: prometheus.rules_evaluated_since(end + 2), 30, what="rules evaluated after the feed")
        yield Observed(prometheus, worker, accepted, len(lines) - accepted, start, end)
    except Exception:
        if worker is not None:
            print(worker.tail_log(80))
        if prometheus is not None:
            print(prometheus.log()[-3000:])
        raise
    finally:
        if prometheus is not None:
            prometheus.stop()
        if worker is not None:
            worker.stop(timeout=20)
        broker.stop()


def test_worker_counts_every_record_refused_as_a_dead_letter(observed):
    value = observed.prometheus.value
    assert observed.dead_letters > 0
    assert value(f'sum(riskwatch_dead_letters_total{{job="{JOB}"}})') == observed.dead_letters
    assert value(f'sum(riskwatch_events_rejected_total{{job="{JOB}"}})') == observed.dead_letters


def test_a_lone_worker_owns_every_partition(observed):
    # Sources are co-partitioned: the gauge counts partition numbers, so the
    # sum over workers is the topics' partition count once all are assigned.
    owned = observed.prometheus.value(f'sum(riskwatch_worker_partitions_assigned{{job="{JOB}"}})')
    assert owned == PARTITIONS


def test_consumer_lag_is_recorded_per_source_topic_and_drains(observed):
    lag = observed.prometheus.query(f'riskwatch:consumer_lag_messages:sum_by_topic{{job="{JOB}"}}')
    topics = {series["metric"]["topic"] for series in lag}
    assert {topic_name(PREFIX, stream) for stream in ("orders", "payments")} <= topics, topics
    # Everything was processed: what is left uncommitted is at most one commit interval's worth.
    assert all(float(series["value"][1]) < 1000 for series in lag), lag


def test_service_rules_evaluate_without_error_on_worker_series(observed):
    groups = observed.prometheus.rule_groups()
    assert groups
    broken = [(r["name"], r.get("lastError")) for g in groups for r in g["rules"] if r["health"] != "ok"]
    assert not broken
    states = {r["name"]: r["state"] for g in groups for r in g["rules"] if r["type"] == "alerting"}
    for alert in ("RiskwatchWorkerDown", "RiskwatchNoEvents", "RiskwatchClockStalled", "RiskwatchConsumerLagGrowing"):
        assert states[alert] == "inactive", f"{alert} is {states[alert]} on a healthy worker"


@pytest.mark.parametrize("expr", [pytest.param(expr, id=name) for name, expr in panel_targets()])
def test_dashboard_query_returns_data_for_a_worker(observed, expr):
    query = expand(expr)
    result = observed.prometheus.query_range(query, observed.start, observed.end + 5, step=1)
    finite = sum(1 for series in result for _, value in series["values"] if math.isfinite(float(value)))
    assert finite > 0, f"no data for {query}"


def test_worker_answers_the_probes_the_deployment_uses(observed):
    from tests.support.ops import KUBERNETES_DIR

    (deployment,) = [d for d in yaml.safe_load_all((KUBERNETES_DIR / "worker.yaml").read_text())
                     if d and d["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        path = container[probe]["httpGet"]["path"]
        assert observed.worker.get(path)[0] == 200, f"{probe} {path}"
