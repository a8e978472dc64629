"""Debezium change events (Kafka Connect's JSON converter) as plain rows.

The ERP's database streams its tables into Kafka through Debezium
(docs/ingest.md, "Change data capture (Debezium)"). One Kafka record is one
row change: its key holds the row's primary key, its value an envelope
`{"before", "after", "source", "op", ...}`, either bare (the converter's
`schemas.enable=false`) or wrapped as `{"schema": ..., "payload": ...}`
with the schema of every field embedded. A delete is followed by a
tombstone (a record with a key and no value) for log compaction.

`decode_change(value, key)` turns one record into a `Change`: what happened
(create, update, delete, or a snapshot read), to which table, the row as a
dict of plain values (the new row; for a delete, the old one), and when the
database committed it. Values are made plain with the embedded schema's
logical types, so a mapping reads a database row as it reads a row of an
export file:

| column type (Debezium logical type)                  | value in `Change.row`            |
|------------------------------------------------------|----------------------------------|
| date (io.debezium.time.Date, connect Date)           | "2024-03-01"                     |
| timestamp without time zone (io.debezium.time.Timestamp, MicroTimestamp, NanoTimestamp, connect Timestamp) | "2024-03-01T09:30:00.250000" (no offset: the mapping's time zone applies) |
| timestamptz (io.debezium.time.ZonedTimestamp)         | "2024-03-01T01:30:00.250000Z" as Debezium writes it (UTC) |
| time (io.debezium.time.Time, MicroTime, NanoTime, connect Time) | "09:30:00"            |
| numeric with decimal.handling.mode=string             | "1234.50" as sent               |
| numeric with the default `precise` mode (connect Decimal: base64 bytes + scale; io.debezium.data.VariableScaleDecimal) | "1234.50", exact |
| text, integers, booleans, floats, JSON, UUID, enums   | as sent                          |

Without an embedded schema the values are whatever the JSON holds: a date
is a day count, a timestamp without time zone a count of micro- or
milliseconds since 1970 (by column precision and time.precision.mode), a
precise decimal an unreadable base64 string. Only two shapes are
recognisable on their own and decoded anyway: the `{"scale", "value"}`
object of a variable-scale decimal, and everything that already is text.
docs/ingest.md therefore recommends `decimal.handling.mode=string` always,
and embedded schemas for tables with dates or timestamps without time zone.

A delete from a table with PostgreSQL's default replica identity carries
only the primary key: Debezium fills the other NOT NULL columns with
placeholders ("" and 1970-01-01). Such a delete is recognised (every
non-key column empty or its schema default) and its row holds the key
columns alone, `complete=False`, so a mapping reports the missing columns
instead of reading a placeholder as data.

Everything that is not a change event raises `ChangeError` naming what is
wrong; a tombstone is not an error (None).

The worker's side, plain Python over records: `changes_to_rows` decodes
each record of the CDC topics into the row its table's mapping reads
(`change_row`: the columns plus the change's own values __op, __table,
__source_ts_ms, __lsn) or a dead letter; `map_changes` hands each row to
riskwatch.ingest's `map_row` and gives the events to send on, or the dead
letter (DOMAIN §7 headers) of a change that cannot be mapped.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Callable, Container, Iterable, Iterator, Literal, Mapping

import orjson

from riskwatch.errors import RiskwatchError
from riskwatch.ingest.mapping import SOURCE_TIME_COLUMN as MAPPING_SOURCE_TIME_COLUMN
from riskwatch.sinks.kafka import DeadLetter
from riskwatch.sinks.kafka import dead_letter as dead_letter_record

Operation = Literal["create", "update", "delete", "read"]

_OPERATIONS: dict[str, Operation] = {"c": "create", "u": "update", "d": "delete", "r": "read"}
# Debezium's other codes: "t" truncate (skipped by the connectors unless
# skipped.operations says otherwise) and "m" logical-decoding message.
_UNSUPPORTED = {"t": "a truncate", "m": "a logical decoding message"}

_EPOCH_DAY = date(1970, 1, 1)
_EPOCH = datetime(1970, 1, 1)

# Debezium's logical type names -> how many of the unit make a second.
_TIMESTAMPS = {
    "io.debezium.time.Timestamp": 1_000,
    "org.apache.kafka.connect.data.Timestamp": 1_000,
    "io.debezium.time.MicroTimestamp": 1_000_000,
    "io.debezium.time.NanoTimestamp": 1_000_000_000,
}
_TIMES = {
    "io.debezium.time.Time": 1_000,
    "org.apache.kafka.connect.data.Time": 1_000,
    "io.debezium.time.MicroTime": 1_000_000,
    "io.debezium.time.NanoTime": 1_000_000_000,
}
_DATES = {"io.debezium.time.Date", "org.apache.kafka.connect.data.Date"}
_DECIMAL = "org.apache.kafka.connect.data.Decimal"
_VARIABLE_DECIMAL = "io.debezium.data.VariableScaleDecimal"

# What Debezium writes into the NOT NULL columns of a key-only old row (a
# delete under the default replica identity), besides a column's schema
# default: the empty value of the column's type.
_PLACEHOLDERS: tuple[Any, ...] = ("", 0, "0", False, "1970-01-01T00:00:00Z", "1970-01-01", "00:00:00Z")


class ChangeError(RiskwatchError):
    """A Kafka record that is not a usable Debezium change event.

    `reason` says what is wrong and where (which field, which column), in
    words fit for the dead-letter header `riskwatch.reason`.
    """

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class Change:
    """One row change of one table, decoded.

    - `op`: "create", "update", "delete", or "read" (a row read by the
      connector's initial snapshot: the row as it stood then).
    - `table`: "schema.table" ("public.invoices"; MySQL: "database.table").
    - `row`: column -> plain value (see the module docstring): the new row
      for create, update and read, the old row for delete.
    - `source_time`: when the database committed the change, in seconds
      since 1970 (Debezium's `source.ts_ms`); for a snapshot read, when the
      snapshot read the row, not when the row last changed.
    - `has_schema`: the record embedded its schema (values were decoded
      by their logical types).
    - `key`: the primary key columns from the record key ({} for a table
      without one).
    - `previous`: the old row of an update when the table's replica identity
      sends it (PostgreSQL: REPLICA IDENTITY FULL), else None.
    - `complete`: False for a delete that carried only the key (`row` then
      holds the key columns alone).
    - `position`: where in the database's log the change is (PostgreSQL's
      LSN, MySQL's binlog file and position), as text; None when absent.
    """

    op: Operation
    table: str
    row: dict[str, Any]
    source_time: float
    has_schema: bool
    key: dict[str, Any]
    previous: dict[str, Any] | None = None
    complete: bool = True
    position: str | None = None

    @property
    def snapshot(self) -> bool:
        """The row comes from the connector's snapshot, not from a change seen as it happened."""
        return self.op == "read"


def decode_change(value: bytes | None, key: bytes | None) -> Change | None:
    """The change a Debezium record carries; None for a tombstone (no value).

    `value` and `key` are the Kafka record's bytes as the JSON converter
    wrote them, with or without embedded schema. Raises `ChangeError` for
    anything else: bytes that are not JSON, JSON that is not a change
    envelope (a record already flattened by ExtractNewRecordState, say), an
    unknown or unsupported `op`, a missing row or source timestamp, or a
    column whose value does not fit its declared logical type.
    """
    if value is None or value == b"":
        return None
    document = _json(value, "value")
    envelope, schema = _unwrap(document, "value")
    if envelope is None:  # {"schema": ..., "payload": null}: a tombstone written with a schema
        return None
    if not isinstance(envelope, dict):
        raise ChangeError(f"value: a change event is a JSON object, not {_kind(envelope)}")
    code = envelope.get("op")
    if code is None:
        raise ChangeError("value: no \"op\" field: not a Debezium change envelope (was the record flattened, "
                          "e.g. by the ExtractNewRecordState transform?)")
    if not isinstance(code, str):
        raise ChangeError(f"value: op is {_kind(code)}, not one of c, u, d, r")
    if code in _UNSUPPORTED:
        raise ChangeError(f"value: op {code!r} is {_UNSUPPORTED[code]}, which carries no row to map")
    if code not in _OPERATIONS:
        raise ChangeError(f"value: unknown op {code!r} (expected one of c, u, d, r)")
    op = _OPERATIONS[code]

    source = envelope.get("source")
    if not isinstance(source, dict):
        raise ChangeError("value: no \"source\" block")
    table = _table(source)
    source_time = _source_time(source)
    columns = _row_schemas(schema) if schema is not None else {}
    side = "before" if op == "delete" else "after"
    raw_row = envelope.get(side)
    if not isinstance(raw_row, dict):
        what = "a delete needs the old row" if op == "delete" else f"a {op} needs the new row"
        raise ChangeError(f"value: {side} is {_kind(raw_row)}: {what} ({table})")
    row = _plain_row(raw_row, columns.get(side, {}), side)
    previous = None
    if op == "update" and isinstance(envelope.get("before"), dict):
        previous = _plain_row(envelope["before"], columns.get("before", {}), "before")

    key_row = _key(key)
    complete = True
    if op == "delete" and key_row and _key_only(raw_row, key_row, columns.get("before", {})):
        row = {column: row[column] for column in key_row if column in row}
        complete = False
    return Change(op=op, table=table, row=row, source_time=source_time, has_schema=schema is not None,
                  key=key_row, previous=previous, complete=complete, position=_position(source))


def _json(raw: bytes, where: str) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        # Position only: orjson's wording changes between releases.
        raise ChangeError(f"{where}: not JSON (at line {error.lineno}, column {error.colno})") from None


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(type(value), "a number")


def _unwrap(document: Any, where: str) -> tuple[Any, dict | None]:
    """(payload, schema) of a record with embedded schema; (document, None) without."""
    if isinstance(document, dict) and set(document) == {"schema", "payload"}:
        schema = document["schema"]
        if schema is not None and not isinstance(schema, dict):
            raise ChangeError(f"{where}: schema is {_kind(schema)}, not an object")
        return document["payload"], schema
    return document, None


def _table(source: dict) -> str:
    table = source.get("table")
    # PostgreSQL and SQL Server name a schema; MySQL's namespace is the database.
    namespace = source.get("schema") or source.get("db")
    if not isinstance(table, str) or not table or not isinstance(namespace, str) or not namespace:
        raise ChangeError("value: source.table and source.schema (or source.db) are needed to know the table")
    return f"{namespace}.{table}"


def _source_time(source: dict) -> float:
    millis = source.get("ts_ms")
    if isinstance(millis, bool) or not isinstance(millis, int):
        raise ChangeError(f"value: source.ts_ms is {_kind(millis)}, not milliseconds since 1970")
    return millis / 1000.0


def _position(source: dict) -> str | None:
    if source.get("lsn") is not None:
        return str(source["lsn"])
    if source.get("file") is not None and source.get("pos") is not None:
        return f"{source['file']}:{source['pos']}"
    return None


def _fields(struct: Any) -> dict[str, dict]:
    """Field name -> field schema of a Connect struct schema; parts that are not schemas are left out
    (their values then pass through undecoded, and the mapping judges them)."""
    fields = struct.get("fields") if isinstance(struct, dict) else None
    if not isinstance(fields, list):
        return {}
    return {field["field"]: field for field in fields if isinstance(field, dict) and isinstance(field.get("field"), str)}


def _row_schemas(schema: dict) -> dict[str, dict[str, dict]]:
    """"before"/"after" -> column -> that column's field schema, from the envelope schema."""
    envelope = _fields(schema)
    return {side: _fields(envelope.get(side)) for side in ("before", "after")}


def _key(raw: bytes | None) -> dict[str, Any]:
    if raw is None or raw == b"":
        return {}
    payload, schema = _unwrap(_json(raw, "key"), "key")
    if payload is None:
        return {}
    if not isinstance(payload, dict):
        raise ChangeError(f"key: {_kind(payload)}, not an object of primary key columns")
    return _plain_row(payload, _fields(schema), "key")


def _plain_row(raw: Mapping[str, Any], columns: Mapping[str, dict], side: str) -> dict[str, Any]:
    row = {}
    for column, value in raw.items():
        try:
            row[column] = _plain(value, columns.get(column))
        except (ValueError, TypeError, OverflowError, ArithmeticError, binascii.Error) as error:
            declared = (columns.get(column) or {}).get("name") or (columns.get(column) or {}).get("type")
            declared = declared if isinstance(declared, str) else None
            raise ChangeError(f"{side}.{column}: {value!r} is not a valid {declared or 'value'} ({error})") from None
    return row


def _plain(value: Any, field: dict | None) -> Any:
    """One column value as plain Python: text for dates, times and decimals (see the module docstring)."""
    if value is None:
        return None
    if not isinstance(field, dict):
        # No schema: only a variable-scale decimal is recognisable by its shape.
        if isinstance(value, dict) and set(value) == {"scale", "value"}:
            return _decimal_text(value["value"], value["scale"])
        return value
    name = field.get("name")
    if name in _DATES:
        return (_EPOCH_DAY + timedelta(days=_integer(value))).isoformat()
    if name in _TIMESTAMPS:
        return _from_epoch(_integer(value), _TIMESTAMPS[name]).isoformat()
    if name in _TIMES:
        return _from_epoch(_integer(value), _TIMES[name]).time().isoformat()
    if name == _DECIMAL:
        parameters = field.get("parameters")
        if isinstance(value, str) and field.get("type") == "bytes":
            return _decimal_text(value, parameters.get("scale", 0) if isinstance(parameters, dict) else 0)
        return value
    if name == _VARIABLE_DECIMAL and isinstance(value, dict):
        return _decimal_text(value.get("value"), value.get("scale"))
    if field.get("type") == "array" and isinstance(value, list):
        return [_plain(item, field.get("items")) for item in value]
    return value


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {_kind(value)}")
    return value


def _from_epoch(count: int, per_second: int) -> datetime:
    # Integer arithmetic: a float would round micro- and nanosecond counts.
    seconds, fraction = divmod(count, per_second)
    return _EPOCH + timedelta(seconds=seconds, microseconds=fraction * 1_000_000 // per_second)


def _decimal_text(encoded: Any, scale: Any) -> str:
    """The exact decimal of Kafka Connect's Decimal: base64 of a big-endian two's-complement unscaled integer."""
    if not isinstance(encoded, str):
        raise TypeError(f"expected base64 text, got {_kind(encoded)}")
    if isinstance(scale, bool) or not isinstance(scale, (int, str)):
        raise TypeError(f"the scale is {_kind(scale)}")
    scale = int(scale)
    # Far beyond any SQL numeric (PostgreSQL's is at most 16383 digits) and
    # small enough that the text cannot take the worker's memory.
    if abs(scale) > 20_000:
        raise ValueError(f"scale {scale} is out of range")
    unscaled = int.from_bytes(base64.b64decode(encoded, validate=True), "big", signed=True)
    return format(Decimal(unscaled).scaleb(-scale), "f")


def _key_only(before: Mapping[str, Any], key: Mapping[str, Any], columns: Mapping[str, dict]) -> bool:
    """The old row carried nothing but the key: every other column empty or its schema default."""
    others = [column for column in before if column not in key]
    if not others:
        return False
    for column in others:
        value = before[column]
        if value is None:
            continue
        default = (columns.get(column) or {}).get("default")
        if value in _PLACEHOLDERS:
            continue
        if default is not None and value == default:
            continue
        return False
    return True


# --- From change events to the rows a mapping reads (the worker's CDC side) ---

# Debezium's operations in the mapping files' words (riskwatch.ingest's
# `ops`: a file row is a "row", a change is one of these).
MAPPING_OPS: dict[Operation, str] = {"create": "insert", "update": "update", "delete": "delete", "read": "read"}
_CODES: dict[Operation, str] = {operation: code for code, operation in _OPERATIONS.items()}

# Values of the change itself, put beside the row's columns under the names
# Debezium's ExtractNewRecordState transform gives them (add.fields), so a
# mapping can name them like columns: __source_ts_ms (format epoch_millis)
# dates a change by the database's commit, __op is c, u, d or r.
OP_COLUMN = "__op"
TABLE_COLUMN = "__table"
SOURCE_TIME_COLUMN = MAPPING_SOURCE_TIME_COLUMN
POSITION_COLUMN = "__lsn"

# Kinds of dead letter (header riskwatch.reason.kind) a change can give.
NOT_A_CHANGE = "cdc_not_a_change"
NO_MAPPING = "cdc_no_mapping"
UNMAPPABLE = "cdc_unmappable"


@dataclass(frozen=True)
class CdcRecord:
    """One record of a CDC topic as the consumer got it: where it was, its key and value bytes."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True)
class ChangeRow:
    """What one CDC record asks of the mappings.

    Exactly one of:
    - a row to map: `table` ("public.invoices"), `op` in the mapping files'
      words ("read", "insert", "update", "delete"), `row` (the change's row
      plus the change's own values under __op, __table, __source_ts_ms,
      __lsn; a real column of the same name wins), `change` (all of it);
    - `dead_letter`: the record could not be decoded, or its table has no
      mapping (DOMAIN §7 headers, the original bytes unchanged);
    - neither: a tombstone, nothing to do.
    """

    record: CdcRecord
    table: str | None = None
    op: str | None = None
    row: dict[str, Any] | None = None
    change: Change | None = None
    dead_letter: DeadLetter | None = None


def change_row(change: Change) -> dict[str, Any]:
    """The row a mapping reads for `change`: its columns, then the change's own values."""
    row = dict(change.row)
    row.setdefault(OP_COLUMN, _CODES[change.op])
    row.setdefault(TABLE_COLUMN, change.table)
    row.setdefault(SOURCE_TIME_COLUMN, round(change.source_time * 1000))
    if change.position is not None:
        row.setdefault(POSITION_COLUMN, change.position)
    return row


def changes_to_rows(records: Iterable[CdcRecord], tables: Container[str]) -> Iterator[ChangeRow]:
    """Each CDC record decoded into the row its table's mapping reads, or its dead letter.

    `tables`: the tables ("schema.table") that have a mapping. A record that
    is not a change event, or a change of a table without a mapping, gives a
    dead letter naming why; a tombstone gives an empty ChangeRow. Never
    raises for a record's content.
    """
    for record in records:
        def refused(kind: str, reason: str) -> ChangeRow:
            return ChangeRow(record=record, dead_letter=dead_letter_record(
                record.value, reason=reason, kind=kind, topic=record.topic, partition=record.partition,
                offset=record.offset))

        try:
            change = decode_change(record.value, record.key)
        except ChangeError as error:
            yield refused(NOT_A_CHANGE, error.reason)
            continue
        if change is None:
            yield ChangeRow(record=record)
            continue
        if change.table not in tables:
            yield refused(NO_MAPPING, f"no mapping for table {change.table}")
            continue
        yield ChangeRow(record=record, table=change.table, op=MAPPING_OPS[change.op], row=change_row(change),
                        change=change)


# map_row(mapping, row, op) -> (events, problems), problems being (column or None, reason).
MapRow = Callable[[Any, dict, str], "tuple[list[dict], list[tuple[str | None, str]]]"]


@dataclass(frozen=True)
class MappedChange:
    """One CDC record's result: the events to send on (dicts of the DOMAIN §3
    contract; none for a tombstone or a change no event applies to), or its
    dead letter; `tombstone` says the record was one (nothing to map)."""

    record: CdcRecord
    events: tuple[dict, ...] = ()
    dead_letter: DeadLetter | None = None
    tombstone: bool = False


def map_changes(records: Iterable[CdcRecord], mappings: Mapping[str, Any], map_row: MapRow) -> Iterator[MappedChange]:
    """CDC records to events through each table's mapping: `mappings` is table ("public.invoices") ->
    mapping, `map_row` riskwatch.ingest's. A record that cannot be decoded or mapped becomes a dead
    letter (DOMAIN §7) whose reason names the table, the operation and every problem; the others go on.
    """
    for item in changes_to_rows(records, mappings):
        if item.row is None:
            yield MappedChange(record=item.record, dead_letter=item.dead_letter, tombstone=item.dead_letter is None)
            continue
        events, problems = map_row(mappings[item.table], item.row, item.op)
        if not problems:
            yield MappedChange(record=item.record, events=tuple(events))
            continue
        described = "; ".join(f"{column}: {reason}" if column else reason for column, reason in problems)
        reason = f"{item.table} {item.op}: {described}"
        if item.change is not None and not item.change.complete:
            reason = (f"{item.table} delete carried only the primary key (the table's replica identity is not "
                      f"FULL): {described}")
        record = item.record
        yield MappedChange(record=record, dead_letter=dead_letter_record(
            record.value, reason=reason, kind=UNMAPPABLE, topic=record.topic, partition=record.partition,
            offset=record.offset))


__all__ = [
    "MAPPING_OPS", "NOT_A_CHANGE", "NO_MAPPING", "OP_COLUMN", "POSITION_COLUMN", "SOURCE_TIME_COLUMN", "TABLE_COLUMN",
    "UNMAPPABLE", "CdcRecord", "Change", "ChangeError", "ChangeRow", "MapRow", "MappedChange", "Operation",
    "change_row", "changes_to_rows", "decode_change", "map_changes",
]
