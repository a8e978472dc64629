"""A real PostgreSQL (logical decoding on) and a real Kafka Connect worker
with the Debezium PostgreSQL connector, for the change data capture tests.

`Postgres` runs deploy/postgres/postgres.sh and talks to the server with
Debian's `psql`; `Connect` runs deploy/connect/connect.sh and drives its
REST API exactly as docs/ingest.md tells an operator to;
`debezium_config` is the operator's connector configuration from
deploy/connect/erp-postgres-connector.json.
Nothing here is a mock.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import httpx

from tests.support.kafka import ROOT, free_port

POSTGRES_SH = ROOT / "deploy" / "postgres" / "postgres.sh"
CONNECT_SH = ROOT / "deploy" / "connect" / "connect.sh"
ERP_SCHEMA = ROOT / "tests" / "cdc" / "erp_schema.sql"
CONNECTOR_JSON = ROOT / "deploy" / "connect" / "erp-postgres-connector.json"
SUPERUSER_PASSWORD = "postgres"
CDC_USER = "riskwatch_cdc"
CDC_PASSWORD = "cdc-test-password"  # tests/cdc/erp_schema.sql
PUBLICATION = "riskwatch_cdc"
ERP_TABLES = ("customers", "orders", "shipments", "invoices", "payments")


def _psql() -> str:
    """Debian's psql: on PATH through postgresql-client-common, else beside the server."""
    found = shutil.which("psql") or next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/psql"), reverse=True)), None)
    if found is None:
        raise RuntimeError("psql not found: scripts/install-services.sh installs Debian's postgresql")
    return found


class Postgres:
    """One throw-away PostgreSQL server on a free loopback port."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.port = free_port()
        self.pid: int | None = None

    def start(self) -> "Postgres":
        done = subprocess.run([str(POSTGRES_SH), "start", str(self.directory), str(self.port)],
                              capture_output=True, text=True, timeout=120,
                              env={**os.environ, "POSTGRES_PASSWORD": SUPERUSER_PASSWORD})
        if done.returncode != 0:
            raise RuntimeError(f"postgres.sh start failed: {done.stderr}")
        self.pid = int(done.stdout.strip().splitlines()[-1])
        return self

    def remove(self) -> None:
        subprocess.run([str(POSTGRES_SH), "remove", str(self.directory)], capture_output=True, timeout=60)
        self.pid = None

    def sql(self, statements: str, database: str = "erp") -> str:
        """Run SQL as the superuser (stops at the first error); returns psql's unaligned output."""
        done = subprocess.run(
            [_psql(), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(self.port),
             "-U", "postgres", "-d", database, "-f", "-"],
            input=statements, capture_output=True, text=True, timeout=60,
            env={**os.environ, "PGPASSWORD": SUPERUSER_PASSWORD, "PGCONNECT_TIMEOUT": "10"},
        )
        if done.returncode != 0:
            raise RuntimeError(f"psql failed: {done.stderr.strip()}\n--- SQL ---\n{statements}")
        return done.stdout

    def create_erp(self) -> None:
        """The `erp` database with the test schema, its replication user and publication."""
        self.sql("CREATE DATABASE erp;", database="postgres")
        self.sql(ERP_SCHEMA.read_text(encoding="utf-8"))


class ConnectError(AssertionError):
    """Connect or a connector did not get where a test needed it; the message carries its log tail."""


@dataclass
class Connect:
    """One distributed-mode Kafka Connect worker (deploy/connect/connect.sh)."""

    directory: Path
    broker: str
    port: int = field(default_factory=free_port)
    pid: int | None = None
    started_in: float = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "Connect":
        began = time.monotonic()
        done = subprocess.run([str(CONNECT_SH), "start", str(self.directory), self.broker, str(self.port)],
                              capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise ConnectError(f"connect.sh start failed: {done.stderr}")
        self.pid = int(done.stdout.strip().splitlines()[-1])
        self.started_in = time.monotonic() - began
        return self

    def stop(self) -> None:
        subprocess.run([str(CONNECT_SH), "stop", str(self.directory)], capture_output=True, timeout=60)
        self.pid = None

    def log_tail(self, lines: int = 60) -> str:
        path = self.directory / "connect.log"
        if not path.exists():
            return "(no connect.log)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def plugins(self) -> list[str]:
        return [plugin["class"] for plugin in httpx.get(f"{self.url}/connector-plugins", timeout=10).json()]

    def register(self, name: str, config: dict[str, str], timeout: float = 60) -> None:
        """POST the connector; a worker still rebalancing answers 409, which is retried."""
        deadline = time.monotonic() + timeout
        while True:
            response = httpx.post(f"{self.url}/connectors", json={"name": name, "config": config}, timeout=30)
            if response.status_code == 201:
                return
            if response.status_code != 409 or time.monotonic() > deadline:
                raise ConnectError(f"registering connector {name}: HTTP {response.status_code} {response.text}\n"
                                   f"--- Connect log ---\n{self.log_tail()}")
            time.sleep(0.5)

    def status(self, name: str) -> dict:
        response = httpx.get(f"{self.url}/connectors/{name}/status", timeout=10)
        return response.json() if response.status_code == 200 else {}

    def wait_running(self, name: str, timeout: float = 120) -> None:
        """Until the connector and its task are RUNNING; a FAILED one fails at once with its trace."""
        deadline = time.monotonic() + timeout
        status: dict = {}
        while time.monotonic() < deadline:
            status = self.status(name)
            states = [status.get("connector", {}).get("state")] + [task.get("state") for task in status.get("tasks", [])]
            if "FAILED" in states:
                traces = [status.get("connector", {}).get("trace")] + [t.get("trace") for t in status["tasks"]]
                raise ConnectError(f"connector {name} failed: {json.dumps(status)[:400]}\n"
                                   + "\n".join(t for t in traces if t)[:4000]
                                   + f"\n--- Connect log ---\n{self.log_tail()}")
            if status.get("tasks") and all(state == "RUNNING" for state in states):
                return
            time.sleep(0.5)
        raise ConnectError(f"connector {name} not RUNNING after {timeout:.0f} s: {json.dumps(status)}\n"
                           f"--- Connect log ---\n{self.log_tail()}")

    def delete(self, name: str) -> None:
        httpx.delete(f"{self.url}/connectors/{name}", timeout=30)


def debezium_config(postgres: Postgres, *, prefix: str, slot: str, tables: tuple[str, ...] = ERP_TABLES,
                    schemas: bool = True) -> dict[str, str]:
    """The operator's connector configuration (deploy/connect/erp-postgres-connector.json, shown in
    docs/ingest.md), pointed at `postgres`'s `erp` database.

    `prefix` is Debezium's topic.prefix (topics `<prefix>.public.<table>`),
    `slot` the replication slot (one per connector), `schemas` whether the
    JSON converter embeds each record's schema.
    """
    config = json.loads(CONNECTOR_JSON.read_text(encoding="utf-8"))["config"]
    enabled = "true" if schemas else "false"
    config.update({
        "database.hostname": "127.0.0.1",
        "database.port": str(postgres.port),
        "database.user": CDC_USER,
        "database.password": CDC_PASSWORD,
        "database.dbname": "erp",
        "topic.prefix": prefix,
        "slot.name": slot,
        "publication.name": PUBLICATION,
        "table.include.list": ",".join(f"public.{table}" for table in tables),
        "key.converter.schemas.enable": enabled,
        "value.converter.schemas.enable": enabled,
    })
    return config


@dataclass
class Capture:
    """One registered connector: where its change events go."""

    name: str
    prefix: str
    schemas: bool

    def topic(self, table: str) -> str:
        return f"{self.prefix}.public.{table}"


def read_changes(broker: str, topic: str, until: Callable[[list], bool], timeout: float = 90) -> list:
    """Records of `topic` from its beginning (in offset order per partition) until `until(records)` holds.

    Waits for the topic to exist (Debezium creates it on the first change).
    Raises AssertionError with what was read when `timeout` passes first.
    """
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=broker, group_id=None, enable_auto_commit=False,
                             auto_offset_reset="earliest")
    records: list = []
    deadline = time.monotonic() + timeout
    try:
        partitions = None
        while not partitions:
            partitions = consumer.partitions_for_topic(topic)
            if not partitions:
                if time.monotonic() > deadline:
                    raise AssertionError(f"topic {topic} never appeared")
                time.sleep(0.5)
                consumer.topics()  # refreshes the metadata
        consumer.assign([TopicPartition(topic, p) for p in sorted(partitions)])
        consumer.seek_to_beginning()
        while not until(records):
            if time.monotonic() > deadline:
                shown = [(r.key, r.value[:200] if r.value else None) for r in records]
                raise AssertionError(f"timed out reading {topic}; read {len(records)} records: {shown}")
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
    finally:
        consumer.close()
    return records
