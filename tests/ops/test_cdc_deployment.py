"""The change data capture deployment agrees with itself: the connector
configuration docs/ingest.md shows is the one the CDC tests register, and
the compose `connect` service runs the versions and topics deploy/connect
installs and names."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ElementTree

import yaml

from tests.support.ops import COMPOSE_FILE, REPO

CONNECT_DIR = REPO / "deploy" / "connect"
POM = "{http://maven.apache.org/POM/4.0.0}"


def _pom_property(name: str) -> str:
    return ElementTree.parse(CONNECT_DIR / "pom.xml").getroot().find(f"{POM}properties/{POM}{name}").text


def _connect_service() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())["services"]["connect"]


def test_the_docs_show_the_connector_configuration_the_tests_register():
    docs = (REPO / "docs" / "ingest.md").read_text(encoding="utf-8")
    blocks = [json.loads(block) for block in re.findall(r"```json\n(.*?)```", docs, re.S)]
    shipped = json.loads((CONNECT_DIR / "erp-postgres-connector.json").read_text(encoding="utf-8"))
    assert shipped in blocks


def test_compose_runs_the_debezium_and_kafka_versions_deploy_connect_installs():
    image = _connect_service()["image"]
    assert image == f"quay.io/debezium/connect:{_pom_property('debezium.version')}"
    broker_pom = ElementTree.parse(REPO / "deploy" / "kafka" / "pom.xml").getroot()
    assert _pom_property("kafka.version") == broker_pom.find(f"{POM}properties/{POM}kafka.version").text


def test_compose_connect_uses_the_internal_topics_connect_sh_names_with_a_single_brokers_replication():
    environment = _connect_service()["environment"]
    script = (CONNECT_DIR / "connect.sh").read_text()
    group = re.search(r"CONNECT_GROUP_ID:-([\w.-]+)", script).group(1)
    assert environment["GROUP_ID"] == group
    assert (environment["CONFIG_STORAGE_TOPIC"], environment["OFFSET_STORAGE_TOPIC"],
            environment["STATUS_STORAGE_TOPIC"]) == (f"{group}.configs", f"{group}.offsets", f"{group}.status")
    for kind in ("CONFIG", "OFFSET", "STATUS"):
        assert environment[f"CONNECT_{kind}_STORAGE_REPLICATION_FACTOR"] == 1
    assert environment["BOOTSTRAP_SERVERS"].split(":")[0] == "kafka"
    assert _connect_service()["depends_on"]["kafka"]["condition"] == "service_healthy"
