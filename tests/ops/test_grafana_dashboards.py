"""The Grafana dashboards as shipped: they load, use the provisioned
datasource, and every panel asks Prometheus something riskwatch answers.
(tests/ops/test_prometheus_integration.py runs every query for real.)"""

from __future__ import annotations

import pytest
import yaml

from tests.support.ops import (
    COMPOSE_FILE,
    GRAFANA_DIR,
    dashboards,
    faust_sensor_series,
    panels,
    query_panels,
    recorded_series,
    riskwatch_series,
    series_in,
)

EXPECTED_TITLES = {"riskwatch — service health", "riskwatch — risk overview"}
# Grafana 10.x and 11.x write 38-39; below 36 panels use the old datasource strings.
MIN_SCHEMA_VERSION = 36


def provisioned_datasource() -> dict:
    (datasource,) = yaml.safe_load((GRAFANA_DIR / "provisioning/datasources/prometheus.yml").read_text())["datasources"]
    return datasource


def datasource_refs(node):
    """Every `datasource` reference anywhere in a dashboard document."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "datasource":
                yield value
            else:
                yield from datasource_refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from datasource_refs(item)


def test_both_dashboards_are_shipped_with_stable_uids():
    loaded = dashboards()
    assert {d["title"] for d in loaded.values()} == EXPECTED_TITLES
    uids = [d["uid"] for d in loaded.values()]
    assert len(set(uids)) == len(uids) and all(uids), uids


@pytest.mark.parametrize("name", sorted(dashboards()))
def test_dashboard_loads_with_a_current_schema(name):
    dashboard = dashboards()[name]
    assert isinstance(dashboard["schemaVersion"], int) and dashboard["schemaVersion"] >= MIN_SCHEMA_VERSION
    assert dashboard["panels"], "no panels"
    assert "id" not in dashboard or dashboard["id"] is None, "a provisioned dashboard must not carry a database id"


@pytest.mark.parametrize("name", sorted(dashboards()))
def test_every_datasource_is_the_provisioned_prometheus(name):
    datasource = provisioned_datasource()
    assert datasource["type"] == "prometheus" and datasource["uid"]
    refs = list(datasource_refs(dashboards()[name]))
    assert refs
    for ref in refs:
        if ref == {"type": "grafana", "uid": "-- Grafana --"}:  # built-in annotations
            continue
        assert ref == {"type": "prometheus", "uid": datasource["uid"]}, ref


@pytest.mark.parametrize("name", sorted(dashboards()))
def test_panel_ids_are_unique_and_panels_do_not_overlap(name):
    all_panels = panels(dashboards()[name])
    ids = [panel["id"] for panel in all_panels]
    assert len(ids) == len(set(ids)), f"duplicate panel ids: {sorted(i for i in ids if ids.count(i) > 1)}"
    cells = {}
    for panel in all_panels:
        pos = panel["gridPos"]
        assert 0 <= pos["x"] and pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"{panel['title']!r} overlaps {cells[(x, y)]!r}"
                cells[(x, y)] = panel["title"]


@pytest.mark.parametrize("name", sorted(dashboards()))
def test_every_panel_has_a_promql_target_on_known_series(name):
    known = riskwatch_series() | faust_sensor_series() | recorded_series() | {"up"}
    for panel in query_panels(dashboards()[name]):
        targets = panel.get("targets", [])
        assert targets, f"{panel['title']!r} has no query"
        ref_ids = [t["refId"] for t in targets]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
        for target in targets:
            expr = target.get("expr", "").strip()
            assert expr, f"{panel['title']!r} {target['refId']}: empty PromQL"
            read = series_in(expr)
            assert read, f"{panel['title']!r}: {expr!r} reads no riskwatch series"
            assert read <= known, f"{panel['title']!r}: unknown series {sorted(read - known)}"


def test_job_variable_lets_the_operator_pick_workers_or_run():
    for dashboard in dashboards().values():
        variables = {v["name"]: v for v in dashboard["templating"]["list"]}
        assert "job" in variables, dashboard["title"]
        for panel in query_panels(dashboard):
            for target in panel["targets"]:
                assert 'job=~"$job"' in target["expr"], f"{panel['title']!r} ignores the job selection"


def test_dashboard_provider_reads_the_directory_compose_mounts():
    (provider,) = yaml.safe_load((GRAFANA_DIR / "provisioning/dashboards/riskwatch.yml").read_text())["providers"]
    assert provider["type"] == "file"
    grafana = yaml.safe_load(COMPOSE_FILE.read_text())["services"]["grafana"]
    mounts = {target: source for source, target, *_ in (v.split(":") for v in grafana["volumes"])}
    assert mounts.get(provider["options"]["path"]) == "../grafana/dashboards"
    assert mounts.get("/etc/grafana/provisioning") == "../grafana/provisioning"
