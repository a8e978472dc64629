"""Mapping files: how the rows of a source (an ERP export, a database table)
become the events of DOMAIN §3. docs/ingest.md describes the format.

`load_mapping(path, header=None)` reads one file strictly, as the rule files
are read (riskwatch.rules.files: YAML without duplicate keys, unknown keys
refused), and checks what the shape alone cannot: event types and their
fields, required fields, timestamp formats, time zones, templates,
condition operators, constants against the contract, and, when the header
of a sample export is given, every column the mapping names. Every problem
is collected and reported as `file: field.path: reason`; a file with any
problem is refused whole (MappingError).
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from riskwatch.errors import MappingError
from riskwatch.ingest.values import check_format, time_of_day, zone
from riskwatch.models import EVENT_MODELS, TIMESTAMP_FIELDS
from riskwatch.rules.files import read_yaml, validate_file

# Where a row comes from. A file row is a `row`; a database change event
# (Debezium) is a `read` (snapshot), `insert`, `update` or `delete`.
SOURCE_OPS = ("row", "read", "insert", "update", "delete")
# A delete says a row is gone, not that its facts happened: an event applies
# to it only when the mapping says so (e.g. a deleted order is cancelled).
DEFAULT_OPS = ("row", "read", "insert", "update")

OPERATORS = ("empty", "not_empty", "equals", "not_equals", "one_of", "not_one_of")
TRANSFORMS = ("trim", "upper", "lower", "map")
SPREADSHEET_FORMATS = ("xlsx", "xls", "ods")
FILE_FORMATS = ("csv", *SPREADSHEET_FORMATS, "jsonl")
# Sources whose rows are a database table's changes (riskwatch.ingest.debezium).
CHANGE_FORMATS = ("debezium",)
# The operations a change gives; a file row is "row".
CHANGE_OPS = ("read", "insert", "update", "delete")

# A change's commit time, put beside the row's columns by
# riskwatch.ingest.debezium (milliseconds since 1970). A change mapping
# reads it without naming its format.
SOURCE_TIME_COLUMN = "__source_ts_ms"

_TABLE = re.compile(r"[^\s.]+\.[^\s.]+")
_TOPIC = re.compile(r"[A-Za-z0-9._-]{1,249}")

# Kinds of contract fields: how a cell becomes the field's value.
ID, TEXT, MONEY, CURRENCY, CLASS, TIMESTAMP = "id", "text", "money", "currency", "class", "timestamp"
FIELD_KINDS: dict[str, str] = {
    "event_id": ID, "order_id": ID, "customer_id": ID, "shipment_id": ID, "invoice_id": ID, "competitor": ID, "sku": ID,
    "region": TEXT, "sales_rep": TEXT, "reason": TEXT, "segment": TEXT,
    "amount": MONEY, "price": MONEY, "our_price": MONEY, "credit_limit": MONEY,
    "currency": CURRENCY,
    "customer_tier": CLASS, "tier": CLASS,
    **{name: TIMESTAMP for name in TIMESTAMP_FIELDS},
}

Scalar = str | int | float | bool


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_transforms(items: Any) -> tuple:
    """The transform list: each item `trim`, `upper`, `lower`, or
    `{map: {word: value}, unmapped: error|keep}`."""
    if items is None:
        return ()
    if isinstance(items, (str, dict)):
        items = [items]
    if not isinstance(items, list):
        raise ValueError("must be a list of transforms (trim, upper, lower, map)")
    checked = []
    for index, item in enumerate(items):
        where = f"item {index + 1}: " if len(items) > 1 else ""
        if isinstance(item, str):
            if item not in ("trim", "upper", "lower"):
                hint = " (map takes its table: {map: {word: value}})" if item == "map" else ""
                raise ValueError(f"{where}unknown transform {item!r} (one of {', '.join(TRANSFORMS)}){hint}")
            checked.append(item)
            continue
        if not isinstance(item, dict) or "map" not in item:
            raise ValueError(f"{where}unknown transform {item!r} (one of {', '.join(TRANSFORMS)})")
        unknown = set(item) - {"map", "unmapped"}
        if unknown:
            raise ValueError(f"{where}map: unknown key {sorted(unknown)[0]!r} (map, unmapped)")
        table = item["map"]
        if not isinstance(table, dict) or not table:
            raise ValueError(f"{where}map: must be a non-empty table of export word: value")
        for word, value in table.items():
            if isinstance(word, (dict, list)) or isinstance(value, (dict, list)) or value is None:
                raise ValueError(f"{where}map: {word!r}: words and values must be single values")
        unmapped = item.get("unmapped", "error")
        if unmapped not in ("error", "keep"):
            raise ValueError(f"{where}map: unmapped must be error or keep")
        checked.append(("map", {_word(k): _word(v) for k, v in table.items()}, unmapped))
    return tuple(checked)


def _word(value: object) -> str:
    """A YAML scalar as the text a cell would hold (True -> "true", 1.0 -> "1")."""
    from riskwatch.ingest.values import text_of

    return text_of(value)


_TEMPLATE_PART = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


def parse_template(template: str) -> tuple[tuple[str, str | None], ...]:
    """"inv-{InvoiceNumber}" -> (("inv-", None), ("", "InvoiceNumber")).

    Each part is (literal text, column or None); `{{` and `}}` are literal
    braces. Raises ValueError for an unclosed or stray brace or an empty
    column name."""
    parts: list[tuple[str, str | None]] = []
    literal = ""
    position = 0
    for match in _TEMPLATE_PART.finditer(template):
        literal += template[position:match.start()]
        position = match.end()
        token = match.group(0)
        if token in ("{{", "}}"):
            literal += token[0]
        elif token in ("{", "}"):
            raise ValueError(f"malformed template {template!r}: unmatched {token!r} at character {match.start() + 1} "
                             f"(write {token * 2} for a literal brace)")
        else:
            column = match.group(1).strip()
            if not column:
                raise ValueError(f"malformed template {template!r}: empty column name {{}}")
            parts.append((literal, column))
            literal = ""
    literal += template[position:]
    if not any(column for _, column in parts):
        raise ValueError(f"malformed template {template!r}: it names no column (use value: for a constant)")
    if literal:
        parts.append((literal, None))
    return tuple(parts)


class FieldSource(_Strict):
    """Where one event field's value comes from: exactly one of a `column`,
    a constant `value` or a `template` over columns; then `transform`s; and
    a `default` (a constant or another source) used when the value is empty.
    A plain string is shorthand for a column."""

    column: str | None = None
    value: Scalar | None = None
    template: str | None = None
    transform: tuple = ()
    default: FieldSource | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"column": data}
        if isinstance(data, dict) and "default" in data and not isinstance(data["default"], dict):
            if data["default"] is None:
                raise ValueError("default: give a value, or leave default out")
            return {**data, "default": {"value": data["default"]}}
        return data

    @field_validator("transform", mode="before")
    @classmethod
    def _transforms(cls, value: Any) -> tuple:
        return _check_transforms(value)

    @field_validator("template")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        if value is not None:
            parse_template(value)
        return value

    @model_validator(mode="after")
    def _one_source(self) -> FieldSource:
        given = [name for name in ("column", "value", "template") if name in self.model_fields_set]
        if not given:
            raise ValueError("needs one of column, value, template")
        if len(given) > 1:
            raise ValueError(f"give only one of column, value, template (got {', '.join(given)})")
        if "value" in given and (self.value is None or (isinstance(self.value, str) and not self.value.strip())):
            raise ValueError("value: must not be empty (leave the field out instead)")
        return self

    def columns(self) -> list[str]:
        """Every column this source reads, its default's included."""
        named = [self.column] if self.column is not None else []
        if self.template is not None:
            named += [column for _, column in parse_template(self.template) if column is not None]
        if self.default is not None:
            named += self.default.columns()
        return named


class Condition(_Strict):
    """A test on one column of the row: exactly one operator."""

    column: str
    empty: Literal[True] | None = None
    not_empty: Literal[True] | None = None
    equals: Scalar | None = None
    not_equals: Scalar | None = None
    one_of: tuple[Scalar, ...] | None = Field(None, min_length=1)
    not_one_of: tuple[Scalar, ...] | None = Field(None, min_length=1)
    transform: tuple = ()

    @model_validator(mode="before")
    @classmethod
    def _operators(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        unknown = [key for key in data if key not in ("column", "transform") and key not in OPERATORS]
        if unknown:
            raise ValueError(f"unknown operator {unknown[0]!r} (one of {', '.join(OPERATORS)})")
        given = [key for key in data if key in OPERATORS]
        if not given:
            raise ValueError(f"needs an operator (one of {', '.join(OPERATORS)})")
        if len(given) > 1:
            raise ValueError(f"give one operator per condition (got {', '.join(given)}); list several conditions "
                             f"to require them all")
        return data

    @field_validator("transform", mode="before")
    @classmethod
    def _transforms(cls, value: Any) -> tuple:
        return _check_transforms(value)

    @property
    def operator(self) -> str:
        return next(key for key in OPERATORS if key in self.model_fields_set)


def _zone_name(value: str | None) -> str | None:
    if value is not None:
        zone(value)
    return value


class ColumnFormat(_Strict):
    """How to read one column's values: timestamp `format`s (tried in order),
    the `time` of day for date-only values, the `timezone` of values without
    an offset, and number separators, each overriding the mapping's."""

    format: str | tuple[str, ...] | None = None
    time: str | None = None
    timezone: str | None = None
    decimal: Literal[".", ","] | None = None
    thousands: Literal["", ",", ".", " ", "'", "\u00a0"] | None = None

    @field_validator("format")
    @classmethod
    def _formats(cls, value: str | tuple[str, ...] | None) -> str | tuple[str, ...] | None:
        for fmt in (value,) if isinstance(value, str) else value or ():
            check_format(fmt)
        if isinstance(value, tuple) and not value:
            raise ValueError("must name at least one format")
        return value

    @field_validator("time")
    @classmethod
    def _time(cls, value: str | None) -> str | None:
        if value is not None:
            time_of_day(value)
        return value

    _zone = field_validator("timezone")(_zone_name)

    @property
    def formats(self) -> tuple[str, ...]:
        return (self.format,) if isinstance(self.format, str) else (self.format or ("iso",))


class Source(_Strict):
    """The source's format and how to read it.

    A file (`csv`, `xlsx`, `xls`, `ods`, `jsonl`) is read with the file
    keys; a database table followed by change data capture (`debezium`)
    names its `table` ("schema.table", as Debezium's `source` block names
    it: `public.invoices`; MySQL: `database.table`) and, when its topic is
    not `<connector topic.prefix>.<table>`, the `topic` its changes are on.
    """

    format: Literal["csv", "xlsx", "xls", "ods", "jsonl", "debezium"]
    encoding: str | None = None
    delimiter: str | None = None
    quotechar: str | None = None
    header_row: int | None = Field(None, ge=1)
    sheet: str | int | None = None
    decimal: Literal[".", ","] = "."
    thousands: Literal["", ",", ".", " ", "'", "\u00a0"] = ""
    table: str | None = None
    topic: str | None = None

    @field_validator("table")
    @classmethod
    def _table(cls, value: str | None) -> str | None:
        if value is not None and not _TABLE.fullmatch(value):
            raise ValueError(f"{value!r} is not schema.table (the table as Debezium names it, e.g. public.invoices)")
        return value

    @field_validator("topic")
    @classmethod
    def _topic(cls, value: str | None) -> str | None:
        # Kafka's own rule for topic names.
        if value is not None and not _TOPIC.fullmatch(value):
            raise ValueError(f"{value!r} is not a Kafka topic name (1 to 249 of a-z A-Z 0-9 . _ -)")
        return value

    @field_validator("encoding")
    @classmethod
    def _encoding(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                codecs.lookup(value)
            except LookupError:
                raise ValueError(f"unknown encoding {value!r} (e.g. utf-8, gbk, gb18030)") from None
        return value

    @field_validator("delimiter", "quotechar")
    @classmethod
    def _one_character(cls, value: str | None) -> str | None:
        if value is not None and len(value) != 1:
            raise ValueError("must be one character (write a tab as \"\\t\")")
        return value

    @field_validator("sheet")
    @classmethod
    def _sheet(cls, value: str | int | None) -> str | int | None:
        if isinstance(value, int) and value < 1:
            raise ValueError("a sheet's position counts from 1")
        return value

    @model_validator(mode="after")
    def _fits_format(self) -> Source:
        only = {"encoding": ("csv",), "delimiter": ("csv",), "quotechar": ("csv",),
                "header_row": ("csv", *SPREADSHEET_FORMATS), "sheet": SPREADSHEET_FORMATS,
                # A database's numbers are not written with a locale's separators.
                "decimal": FILE_FORMATS, "thousands": FILE_FORMATS,
                "table": CHANGE_FORMATS, "topic": CHANGE_FORMATS}
        for name, formats in only.items():
            if name in self.model_fields_set and self.format not in formats:
                raise ValueError(f"{name} applies to {', '.join(formats)} sources, not {self.format}")
        if self.format in CHANGE_FORMATS and self.table is None:
            raise ValueError(f"a {self.format} source names its table (table: schema.table, e.g. public.invoices)")
        if self.thousands == self.decimal:
            raise ValueError(f"decimal and thousands separators must differ (both {self.decimal!r})")
        return self


class EventSpec(_Strict):
    """One event a row may give: its type, the source operations it applies
    to, the conditions on the row, and where each field comes from."""

    type: str
    # Not `on`: YAML 1.1 reads that key as the boolean true.
    ops: tuple[Literal["row", "read", "insert", "update", "delete"], ...] = DEFAULT_OPS
    when: tuple[Condition, ...] = ()
    fields: dict[str, FieldSource]

    @field_validator("when", mode="before")
    @classmethod
    def _one_or_more(cls, value: Any) -> Any:
        return [value] if isinstance(value, dict) else value

    @field_validator("ops", mode="before")
    @classmethod
    def _single_op(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("ops")
    @classmethod
    def _some_op(cls, value: tuple) -> tuple:
        if not value:
            raise ValueError(f"must name at least one of {', '.join(SOURCE_OPS)}")
        return value


_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,39}")


class MappingFile(_Strict):
    """The whole mapping file."""

    name: str
    description: str | None = None
    source: Source
    timezone: str
    key: tuple[str, ...]
    columns: dict[str, ColumnFormat] = {}
    events: tuple[EventSpec, ...]

    _zone = field_validator("timezone")(_zone_name)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.fullmatch(value):
            raise ValueError("must be 1 to 40 lower-case letters, digits, '.', '_' or '-', starting with a letter "
                             "or digit (it starts every event id the mapping derives)")
        return value

    # Checked here rather than with min_length: a list whose items have
    # problems would also be reported as empty.
    @field_validator("key", "events")
    @classmethod
    def _not_empty(cls, value: tuple) -> tuple:
        if not value:
            raise ValueError("must not be empty")
        return value

    @field_validator("key", mode="before")
    @classmethod
    def _single_key(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


@dataclass(frozen=True)
class ColumnUse:
    """A column the mapping reads, and the field path that names it."""

    column: str
    where: str


class Mapping:
    """A checked mapping file: `spec` (the MappingFile), `label` (the file as
    named in problems), `name` (the mapping's name, part of every derived
    event id). Compile it to map rows with `riskwatch.ingest.mapper`."""

    def __init__(self, spec: MappingFile, label: str):
        self.spec = spec
        self.label = label
        self.name = spec.name
        self._dict_mapper = None

    @property
    def table(self) -> str | None:
        """The database table ("public.invoices") whose changes the mapping reads; None for a file mapping."""
        return self.spec.source.table

    @property
    def reads_changes(self) -> bool:
        """The mapping reads a table's change events (source.format debezium), not a file."""
        return self.spec.source.format in CHANGE_FORMATS

    def column_uses(self) -> list[ColumnUse]:
        """Every column the mapping reads, in file order, with where it is named."""
        uses = [ColumnUse(column, f"key[{i}]") for i, column in enumerate(self.spec.key)]
        for index, event in enumerate(self.spec.events):
            for c, condition in enumerate(event.when):
                uses.append(ColumnUse(condition.column, f"events[{index}].when[{c}].column"))
            for field_name, source in event.fields.items():
                path = f"events[{index}].fields.{field_name}"
                uses.extend(_source_uses(source, path))
        return uses

    def columns(self) -> list[str]:
        """The distinct columns the mapping reads, in file order."""
        return list(dict.fromkeys(use.column for use in self.column_uses()))

    def header_problems(self, header: list[str], described: str) -> list[str]:
        """Problems (`file: field.path: reason`) for each column the mapping
        names that `header` lacks; `described` names the header's file."""
        present = set(header)
        problems = []
        listed = ", ".join(name for name in header if name) or "none"
        for use in self.column_uses():
            if use.column not in present:
                problems.append(f"{self.label}: {use.where}: column {use.column!r} is not in the header of "
                                f"{described} (its columns: {listed})")
        for column in self.spec.columns:
            if column not in present:
                problems.append(f"{self.label}: columns.{column}: not in the header of {described} (its columns: {listed})")
        return problems


def _source_uses(source: FieldSource, path: str) -> list[ColumnUse]:
    uses = []
    if source.column is not None:
        uses.append(ColumnUse(source.column, f"{path}.column"))
    if source.template is not None:
        uses += [ColumnUse(column, f"{path}.template") for _, column in parse_template(source.template) if column]
    if source.default is not None:
        uses += _source_uses(source.default, f"{path}.default")
    return uses


def _semantic_problems(spec: MappingFile, label: str) -> list[str]:
    """What the shape cannot say: event types, their fields, constants."""
    problems = []
    changes = spec.source.format in CHANGE_FORMATS
    for index, event in enumerate(spec.events):
        problems.extend(_event_problems(event, index, label, changes, spec))
    return problems


def _event_problems(event: EventSpec, index: int, label: str, changes: bool, spec: MappingFile | None) -> list[str]:
    """One event's type, fields and constants; the constants only with the
    whole file's `spec` (their formats and time zone come from it)."""
    from riskwatch.ingest.mapper import constant_problem

    problems = []
    where = f"{label}: events[{index}]"
    if changes and "ops" in event.model_fields_set and "row" in event.ops:
        problems.append(f"{where}.ops: row is a line of a file; a {spec.source.format} source's changes are "
                        f"{', '.join(CHANGE_OPS)}")
    model = EVENT_MODELS.get(event.type)
    if model is None:
        problems.append(f"{where}.type: unknown event type {event.type!r} (one of {', '.join(EVENT_MODELS)})")
        return problems
    own = [name for name in model.model_fields if name != "type"]
    for field_name in event.fields:
        if field_name == "type":
            problems.append(f"{where}.fields.type: given by events[{index}].type, not a field")
        elif field_name not in model.model_fields:
            problems.append(f"{where}.fields.{field_name}: unknown field of {event.type} (its fields: {', '.join(own)})")
    for field_name, info in model.model_fields.items():
        if field_name in ("type", "event_id") or not info.is_required():
            continue
        if field_name not in event.fields:
            problems.append(f"{where}.fields.{field_name}: required for {event.type}")
    if spec is not None:
        for field_name, source in event.fields.items():
            if field_name in model.model_fields and field_name != "type":
                problems.extend(f"{where}.fields.{field_name}{path}: {reason}"
                                for path, reason in constant_problem(spec, field_name, source))
    return problems


def _events_of_a_refused_file(data: object, label: str) -> list[str]:
    """The event checks of a file whose shape was refused elsewhere (a bad
    time zone, an unknown key): each event that is well formed by itself is
    still checked, so one run of `mapping check` lists every problem."""
    if not isinstance(data, dict) or not isinstance(data.get("events"), list):
        return []
    source = data.get("source")
    changes = isinstance(source, dict) and source.get("format") in CHANGE_FORMATS
    problems = []
    for index, raw in enumerate(data["events"]):
        try:
            event = EventSpec.model_validate(raw)
        except ValueError:
            continue    # its own problems are among those reported
        if changes and "ops" in event.model_fields_set and "row" in event.ops:
            continue    # needs the source's name; reported once the file's shape is right
        problems.extend(_event_problems(event, index, label, False, None))
    return problems


def load_mapping(path: str | Path, header: list[str] | None = None, sample: str | None = None) -> Mapping:
    """Read and check one mapping file; raises MappingError listing every problem.

    `header`: the column names of a sample export (`sample` names it in the
    messages); every column the mapping reads must be among them. Problems
    name the file as `path` was given.
    """
    path = Path(path)
    label = str(path)
    problems: list[str] = []
    data = read_yaml(path, problems, label=label)
    spec = validate_file(label, data, MappingFile, problems)
    if spec is None:
        raise MappingError(problems + _events_of_a_refused_file(data, label))
    problems.extend(_semantic_problems(spec, label))
    mapping = Mapping(spec, label)
    if header is not None:
        problems.extend(mapping.header_problems(header, sample or "the sample"))
    if problems:
        raise MappingError(problems)
    return mapping
