"""What the worker follows of a database: the change mappings it is given,
the table each maps, and the Kafka topic each table's changes are on.

`load_cdc(paths, topic_prefix, reserved)` reads the mapping files (a
directory stands for every `*.yaml` / `*.yml` in it, in name order) and
checks them as a set; every problem is collected as `file: field.path:
reason` and raised together (MappingError), as `load_mapping` does for one
file. The worker (streams/app.py) consumes `CdcPlan.topics` and hands each
record to `riskwatch.ingest.debezium.map_changes` with `CdcPlan.mappings`.

Topics: a mapping's `source.topic` when it names one, else Debezium's
default `<topic.prefix>.<schema>.<table>` (`erp.public.invoices` for
`public.invoices` under the connector's `topic.prefix=erp`). Several
tables may share a topic (a connector routing them together); a change is
matched to its mapping by the table its `source` block names, never by
the topic.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from riskwatch.errors import MappingError
from riskwatch.ingest.mapping import CHANGE_FORMATS, Mapping, load_mapping

MAPPING_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class CdcTable:
    """One followed table: "schema.table", the topic its changes are on, its mapping."""

    table: str
    topic: str
    mapping: Mapping


@dataclass(frozen=True)
class CdcPlan:
    """The tables the worker follows, by table name ("public.invoices")."""

    tables: dict[str, CdcTable]

    @property
    def topics(self) -> list[str]:
        """The distinct topics to consume, sorted."""
        return sorted({table.topic for table in self.tables.values()})

    @property
    def mappings(self) -> dict[str, Mapping]:
        """Table -> mapping, as `riskwatch.ingest.debezium.map_changes` takes them."""
        return {name: table.mapping for name, table in self.tables.items()}

    def describe(self) -> str:
        """"public.invoices (erp.public.invoices), ..." for the worker's start-up line."""
        return ", ".join(f"{name} ({table.topic})" for name, table in sorted(self.tables.items()))


def table_topic(topic_prefix: str, table: str) -> str:
    """Debezium's default topic of a table: `erp` + `public.invoices` -> `erp.public.invoices`."""
    return f"{topic_prefix}.{table}"


def mapping_files(paths: Iterable[Path], problems: list[str]) -> list[Path]:
    """The files `paths` name, a directory expanded to its mapping files in name order.

    A path that does not exist, or a directory without mapping files, adds a
    problem and gives no file."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix in MAPPING_SUFFIXES and p.is_file())
            if not found:
                problems.append(f"{path}: no mapping files (*.yaml, *.yml) in the directory")
            files.extend(found)
        elif path.exists():
            files.append(path)
        else:
            problems.append(f"{path}: cannot read: No such file or directory")
    # The same file named twice (a directory and one of its files) is read once.
    return list(dict.fromkeys(files))


def load_cdc(paths: Iterable[Path], topic_prefix: str | None, reserved: Iterable[str] = ()) -> CdcPlan:
    """Read and check the change mappings; raises MappingError listing every problem.

    `paths`: mapping files or directories of them. `topic_prefix`: the
    connector's `topic.prefix`, from which a mapping without `source.topic`
    gets its topic; None when not configured. `reserved`: topics no change
    mapping may read (the worker's own: reading its source topics as change
    events would feed its output back to itself).

    Problems: a file that cannot be read or is not a valid mapping (as
    `riskwatch mapping check` reports it), a file mapping (`source.format`
    other than debezium), two mappings of one table, a topic that cannot be
    derived (no `source.topic` and no prefix), a reserved topic.
    """
    problems: list[str] = []
    files = mapping_files(list(paths), problems)
    reserved = set(reserved)
    tables: dict[str, CdcTable] = {}
    for path in files:
        try:
            mapping = load_mapping(path)
        except MappingError as error:
            problems.extend(error.problems)
            continue
        source = mapping.spec.source
        label = mapping.label
        if not mapping.reads_changes:
            problems.append(f"{label}: source.format: {source.format} is a file; a change mapping reads a table's "
                            f"changes (format: {' or '.join(CHANGE_FORMATS)}, table: schema.table)")
            continue
        table = source.table
        if table in tables:
            problems.append(f"{label}: source.table: {table} is mapped by {tables[table].mapping.label} already "
                            f"(one mapping per table: put all of the table's events in one file)")
            continue
        if source.topic is not None:
            topic = source.topic
        elif topic_prefix:
            topic = table_topic(topic_prefix, table)
        else:
            problems.append(f"{label}: source.topic: not given, and no CDC topic prefix (the connector's "
                            f"topic.prefix: --cdc-topic-prefix, RISKWATCH_CDC_TOPIC_PREFIX) to derive it from")
            continue
        if topic in reserved:
            problems.append(f"{label}: source.topic: {topic} is one of riskwatch's own topics, not a change topic")
            continue
        tables[table] = CdcTable(table=table, topic=topic, mapping=mapping)
    if problems:
        raise MappingError(problems)
    if not tables:
        raise MappingError(["no change mappings given"])
    return CdcPlan(tables=tables)


__all__ = ["MAPPING_SUFFIXES", "CdcPlan", "CdcTable", "load_cdc", "mapping_files", "table_topic"]
