"""Helpers for the operations tests (tests/ops): where the deploy/ files
are, the series riskwatch and faust's sensor expose, the rules, the
dashboards' panels, and the series a PromQL expression reads."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from prometheus_client import CollectorRegistry

REPO = Path(__file__).resolve().parents[2]

DEPLOY = REPO / "deploy"
PROMETHEUS_DIR = DEPLOY / "prometheus"
GRAFANA_DIR = DEPLOY / "grafana"
COMPOSE_FILE = DEPLOY / "compose" / "docker-compose.yml"
KUBERNETES_DIR = DEPLOY / "kubernetes"
OPERATIONS_DOC = REPO / "docs" / "operations.md"

# `riskwatch worker` registers faust's Prometheus sensor
# (faust/sensors/prometheus.py FaustMetrics) on its registry with this name
# prefix (streams/app.py); consumer lag, commit latency and rebalances come
# from it.
FAUST_SENSOR_PREFIX = "faust"


def sample_names(registry: CollectorRegistry) -> set[str]:
    """Every series name a registry can expose (counter `_total`, histogram `_bucket`...)."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",),
                "summary": ("", "_sum", "_count"), "info": ("_info",)}
    names: set[str] = set()
    for family in registry.collect():
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ("",)))
    return names


def riskwatch_series() -> set[str]:
    from riskwatch.metrics import RiskwatchMetrics

    return sample_names(RiskwatchMetrics.create(CollectorRegistry()).registry)


def faust_sensor_series() -> set[str]:
    from faust.sensors.prometheus import FaustMetrics

    registry = CollectorRegistry()
    FaustMetrics.create(registry, FAUST_SENSOR_PREFIX)
    return sample_names(registry)


def rule_files() -> list[Path]:
    return sorted((PROMETHEUS_DIR / "rules").glob("*.yml"))


def rules() -> list[dict]:
    return [rule for path in rule_files() for group in yaml.safe_load(path.read_text())["groups"]
            for rule in group["rules"]]


def recorded_series() -> set[str]:
    return {rule["record"] for rule in rules() if "record" in rule}


def dashboards() -> dict[str, dict]:
    return {path.name: json.loads(path.read_text()) for path in sorted((GRAFANA_DIR / "dashboards").glob("*.json"))}


def panels(dashboard: dict) -> list[dict]:
    """Every panel, including those nested in collapsed rows."""
    found = []
    for panel in dashboard["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


def query_panels(dashboard: dict) -> list[dict]:
    return [panel for panel in panels(dashboard) if panel["type"] != "row"]


_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
_SERIES = re.compile(r"(?<![\w:])((?:riskwatch[_:]|faust_)[\w:]*|up)(?![\w:(])")


def series_in(expr: str) -> set[str]:
    """Series names a PromQL expression reads (label values and functions excluded)."""
    return set(_SERIES.findall(_QUOTED.sub('""', expr)))


def worker_only_series() -> set[str]:
    """Series only a Kafka worker fills: faust's sensor and what is recorded from it."""
    faust = faust_sensor_series()
    derived = {rule["record"] for rule in rules() if "record" in rule and series_in(rule["expr"]) & faust}
    return faust | derived


# Grafana's built-in variables, as a dashboard of the last few minutes would
# expand them; `$job` is the dashboards' own variable (All = `.+`).
GRAFANA_VARIABLES = {
    "$__rate_interval": "20s",
    "$__interval": "5s",
    "$__range": "5m",
    "$job": ".+",
}


def expand(expr: str) -> str:
    for name in sorted(GRAFANA_VARIABLES, key=len, reverse=True):
        expr = expr.replace(name, GRAFANA_VARIABLES[name])
    return expr


def panel_targets() -> list[tuple[str, str]]:
    """(test id, PromQL) of every panel target of every dashboard."""
    return [(f"{name}:{panel['title']}:{target['refId']}", target["expr"])
            for name, dashboard in dashboards().items()
            for panel in query_panels(dashboard)
            for target in panel["targets"]]
