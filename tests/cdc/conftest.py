"""Change data capture on real components: PostgreSQL from Debian's package
with logical decoding on (the ERP's database), the session's Kafka broker,
and Kafka Connect with the Debezium PostgreSQL connector from Maven Central.

PostgreSQL and Connect start once per session; each test registers its own
connector (its own topic prefix and replication slot), so tests share the
database and the broker but never each other's topics.
"""

from __future__ import annotations

import itertools
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # `tests.support` when pytest runs from elsewhere
    sys.path.insert(0, str(REPO))

from tests.support.cdc import CONNECT_SH, Capture, Connect, ConnectError, Postgres, debezium_config  # noqa: E402
from tests.support.kafka import Broker  # noqa: E402

_connectors = itertools.count(1)


@pytest.fixture(scope="session")
def erp_database(tmp_path_factory: pytest.TempPathFactory) -> Postgres:
    """A running PostgreSQL with the `erp` database of tests/cdc/erp_schema.sql."""
    postgres = Postgres(tmp_path_factory.mktemp("postgres"))
    try:
        postgres.start()
    except RuntimeError as error:
        pytest.fail(str(error))
    try:
        postgres.create_erp()
        yield postgres
    finally:
        postgres.remove()


@pytest.fixture(scope="session")
def kafka_connect(kafka_broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Connect:
    """A Kafka Connect worker on the session's broker, with the Debezium PostgreSQL connector installed."""
    if shutil.which("java") is None:
        pytest.fail("java is not installed: Kafka Connect needs Java 17")
    install = subprocess.run([str(CONNECT_SH), "install"], capture_output=True, text=True, timeout=900)
    if install.returncode != 0:
        pytest.fail(f"connect.sh install failed: {install.stderr}")
    connect = Connect(tmp_path_factory.mktemp("connect"), kafka_broker.bootstrap)
    try:
        connect.start()
    except ConnectError as error:
        pytest.fail(str(error))
    try:
        plugins = connect.plugins()
        if "io.debezium.connector.postgresql.PostgresConnector" not in plugins:
            pytest.fail(f"Connect did not load the Debezium PostgreSQL connector (plugins: {plugins})\n"
                        f"{connect.log_tail()}")
        yield connect
    finally:
        connect.stop()


@pytest.fixture
def capture(erp_database: Postgres, kafka_connect: Connect):
    """`capture(schemas=True, tables=...)` registers a Debezium connector on the `erp` database
    with its own topic prefix and slot, waits until its task runs, and returns a `Capture`;
    every connector is deleted after the test."""
    registered: list[str] = []

    def register(schemas: bool = True, tables: tuple[str, ...] | None = None) -> Capture:
        number = next(_connectors)
        name = prefix = f"erp{number}"
        config = debezium_config(erp_database, prefix=prefix, slot=f"riskwatch_test_{number}", schemas=schemas,
                                 **({"tables": tables} if tables else {}))
        kafka_connect.register(name, config)
        registered.append(name)
        kafka_connect.wait_running(name)
        return Capture(name=name, prefix=prefix, schemas=schemas)

    yield register
    for name in registered:
        kafka_connect.delete(name)
