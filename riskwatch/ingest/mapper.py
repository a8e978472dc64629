"""A checked mapping compiled into a function from one row to its events.

Compiling turns every field source, transform, condition and format into a
small closure once, so mapping a row is a few calls per field and one JSON
encoding per event; no pydantic model is built per row. The events it gives
pass `riskwatch.models.parse_event` (the converters check what the contract
checks), and tests hold them to it.

Rows are either lists (a file's record, read by column position once the
header is known) or dicts keyed by column name (`map_row`, for rows that
come from elsewhere, e.g. a Debezium change event's `after`).
"""

from __future__ import annotations

import hashlib
from datetime import time
from typing import Any, Callable, Mapping as RowDict

import orjson

from riskwatch.ingest.mapping import (
    CHANGE_FORMATS, CLASS, CURRENCY, FIELD_KINDS, ID, MONEY, SOURCE_TIME_COLUMN, TEXT, TIMESTAMP,
    ColumnFormat, Condition, EventSpec, FieldSource, Mapping, MappingFile, parse_template,
)
from riskwatch.ingest.values import (
    MoneyReader, TimestampReader, Unmappable, echo, is_empty, single_value, text_of, time_of_day,
    to_class, to_currency, to_identifier, to_text, zone,
)
from riskwatch.models import EVENT_MODELS, MAX_ID_CHARS, MAX_TEXT_CHARS
from riskwatch.errors import RiskwatchError

# A change's commit time is milliseconds since 1970 (Debezium's source.ts_ms).
_SOURCE_TIME_FORMAT = ColumnFormat(format="epoch_millis")

# (column or None, reason): one problem of one row.
RowProblem = tuple[str | None, str]

# Values a JSON row may hold that are not one value (values.single_value).
_CONTAINERS = (list, dict)


class _FieldProblem(RiskwatchError):
    """A field that cannot be built: the column it read (None when the value
    came from no single column) and the reason."""

    def __init__(self, column: str | None, reason: str):
        self.column = column
        self.reason = reason


def _transformer(steps: tuple) -> Callable[[str], str] | None:
    """The transform list as one function on text, or None when there is none."""
    if not steps:
        return None
    simple = {"trim": '" ".join({}.split())', "upper": "{}.upper()", "lower": "{}.lower()"}
    if all(isinstance(step, str) for step in steps):
        # trim, upper, lower composed into one expression: one call per value, not one per step.
        expression = "text"
        for step in steps:
            expression = simple[step].format(expression)
        return eval(f"lambda text: {expression}")  # noqa: S307 - built from the fixed table above only
    functions: list[Callable[[str], str]] = []
    for step in steps:
        if step == "trim":
            # As a spreadsheet's TRIM: inner runs of spaces become one.
            functions.append(lambda text: " ".join(text.split()))
        elif step == "upper":
            functions.append(str.upper)
        elif step == "lower":
            functions.append(str.lower)
        else:
            _, table, unmapped = step

            def mapped(text: str, table=table, unmapped=unmapped) -> str:
                try:
                    return table[text]
                except KeyError:
                    if unmapped == "keep":
                        return text
                    words = ", ".join(repr(word) for word in list(table)[:8]) + (", ..." if len(table) > 8 else "")
                    raise Unmappable(f"{echo(text)} is not one of the mapped words ({words})") from None
            functions.append(mapped)
    if len(functions) == 1:
        return functions[0]

    def chain(text: str) -> str:
        for function in functions:
            text = function(text)
        return text
    return chain


class _Compiler:
    """Builds the closures for one mapping and one way of addressing columns:
    `position` maps a column name to its index in a list row, or is None for
    dict rows (addressed by name)."""

    def __init__(self, spec: MappingFile, position: dict[str, int] | None):
        self.spec = spec
        self.position = position
        self.zone = zone(spec.timezone)

    def address(self, column: str) -> int | str:
        return column if self.position is None else self.position[column]

    def raw_getter(self, column: str) -> Callable[[Any], object]:
        key = self.address(column)
        if self.position is not None:
            return lambda row: row[key]

        def by_name(row: RowDict) -> object:
            try:
                return row[key]
            except KeyError:
                raise _FieldProblem(column, "not in the row") from None
        return by_name

    def column_format(self, column: str | None) -> ColumnFormat:
        if column is not None and column in self.spec.columns:
            return self.spec.columns[column]
        if column == SOURCE_TIME_COLUMN and self.spec.source.format in CHANGE_FORMATS:
            return _SOURCE_TIME_FORMAT
        return ColumnFormat()

    def converter(self, kind: str, column: str | None) -> Callable[[object], str]:
        """Cell value (not empty; text already without surrounding spaces) ->
        the field's value; raises Unmappable."""
        if kind == TIMESTAMP:
            fmt = self.column_format(column)
            at = time_of_day(fmt.time) if fmt.time else time(0, 0)
            return TimestampReader(fmt.formats, zone(fmt.timezone) if fmt.timezone else self.zone, at)
        if kind == MONEY:
            fmt = self.column_format(column)
            source = self.spec.source
            return MoneyReader(fmt.decimal or source.decimal,
                               source.thousands if fmt.thousands is None else fmt.thousands)
        if kind in (ID, TEXT):
            limit = MAX_ID_CHARS if kind == ID else MAX_TEXT_CHARS
            check = to_identifier if kind == ID else to_text

            def words(value: object) -> str:
                text = value if value.__class__ is str else text_of(value)
                return text if len(text) <= limit else check(text)
            return words
        checks = {CURRENCY: to_currency, CLASS: to_class}[kind]
        return lambda value: checks(value if value.__class__ is str else text_of(value))

    def field(self, name: str, source: FieldSource, required: bool, event_type: str) -> Callable[[Any], str | None]:
        """The field's value for a row: one closure doing the read, the
        transforms and the conversion (a row is many fields: calls count).
        None when the value is empty and the field optional; its default
        when it has one; a problem when it is required."""
        kind = FIELD_KINDS[name]
        described = f"{name} of {event_type}"
        if source.default is not None:
            on_empty = self.field(name, source.default, required, event_type)
        elif required:
            column = _single_column(source)

            def on_empty(row: Any) -> None:
                raise _FieldProblem(column, f"empty, but {described} is required")
        else:
            def on_empty(row: Any) -> None:
                return None
        transform = _transformer(source.transform)
        if source.value is not None:
            value = self.constant(kind, source)
            return lambda row: value
        if source.template is not None:
            return self.template_getter(kind, source, transform, described, on_empty)
        column = source.column
        key = self.address(column)
        convert = self.converter(kind, column)

        def get(row: Any) -> str | None:
            try:
                value = row[key]
            except KeyError:
                raise _FieldProblem(column, "not in the row") from None
            if value.__class__ is str:
                value = value.strip()
                if not value:
                    return on_empty(row)
            elif value is None:
                return on_empty(row)
            try:
                if value.__class__ in _CONTAINERS:
                    single_value(value)
                if transform is not None:
                    value = transform(value if value.__class__ is str else text_of(value))
                    if not value:
                        return on_empty(row)
                return convert(value)
            except Unmappable as problem:
                raise _FieldProblem(column, f"{problem.reason} ({described})") from None
        return get

    def template_getter(self, kind: str, source: FieldSource, transform, described: str,
                        on_empty) -> Callable[[Any], str | None]:
        parts = [(literal, None if column is None else (column, self.raw_getter(column)))
                 for literal, column in parse_template(source.template)]
        convert = self.converter(kind, None)
        columns = "+".join(column for _, column in parse_template(source.template) if column)

        def get(row: Any) -> str | None:
            pieces = []
            for literal, reader in parts:
                pieces.append(literal)
                if reader is not None:
                    value = reader[1](row)
                    if is_empty(value):
                        # A half-made id ("inv-") would merge unrelated rows.
                        raise _FieldProblem(reader[0], f"empty, but the template of {described} needs it")
                    try:
                        pieces.append(text_of(value))
                    except Unmappable as problem:
                        raise _FieldProblem(reader[0], f"{problem.reason} ({described})") from None
            text = "".join(pieces)
            try:
                if transform is not None:
                    text = transform(text)
                    if not text:
                        return on_empty(row)
                return convert(text)
            except Unmappable as problem:
                raise _FieldProblem(columns, f"{problem.reason} ({described})") from None
        return get

    def constant(self, kind: str, source: FieldSource) -> str:
        value: object = source.value
        transform = _transformer(source.transform)
        if transform is not None:
            value = transform(text_of(value))
        return self.converter(kind, None)(value)

    def condition(self, condition: Condition) -> Callable[[Any], bool]:
        column = condition.column
        key = self.address(column)
        transform = _transformer(condition.transform)
        operator = condition.operator
        if operator in ("empty", "not_empty"):
            wanted, negate = frozenset({""}), operator == "not_empty"
        elif operator in ("equals", "not_equals"):
            wanted, negate = frozenset({text_of(getattr(condition, operator))}), operator == "not_equals"
        else:
            wanted = frozenset(text_of(word) for word in getattr(condition, operator))
            negate = operator == "not_one_of"

        def holds(row: Any) -> bool:
            try:
                value = row[key]
            except KeyError:
                raise _FieldProblem(column, "not in the row") from None
            if value.__class__ is str:
                value = value.strip()
            elif value is None:
                value = ""
            else:
                try:
                    value = text_of(value)
                except Unmappable as problem:
                    raise _FieldProblem(column, problem.reason) from None
            if transform is not None and value:
                try:
                    value = transform(value)
                except Unmappable as problem:
                    raise _FieldProblem(column, problem.reason) from None
            return (value in wanted) is not negate
        return holds


def _single_column(source: FieldSource) -> str | None:
    if source.column is not None:
        return source.column
    if source.template is not None:
        return "+".join(column for _, column in parse_template(source.template) if column)
    return None


def constant_problem(spec: MappingFile, field_name: str, source: FieldSource) -> list[tuple[str, str]]:
    """(path suffix, reason) for a constant (`value`) the field cannot take,
    its defaults' included; checked when the mapping is loaded."""
    kind = FIELD_KINDS.get(field_name)
    problems: list[tuple[str, str]] = []
    path = ""
    while source is not None and kind is not None:
        if source.value is not None:
            try:
                _Compiler(spec, None).constant(kind, source)
            except Unmappable as problem:
                problems.append((f"{path}.value", problem.reason))
        source, path = source.default, path + ".default"
    return problems


class _EventPlan:
    """One EventSpec compiled: conditions, field getters, identity."""

    __slots__ = ("type", "ops", "conditions", "fields", "event_id", "mapping_name", "key")

    def __init__(self, compiler: _Compiler, spec: EventSpec, key: list[Callable[[Any], object]]):
        model = EVENT_MODELS[spec.type]
        self.type = spec.type
        self.ops = frozenset(spec.ops)
        self.conditions = [compiler.condition(condition) for condition in spec.when]
        self.fields = [(name, compiler.field(name, source, model.model_fields[name].is_required(), spec.type))
                       for name, source in spec.fields.items() if name != "event_id"]
        own_id = spec.fields.get("event_id")
        self.event_id = compiler.field("event_id", own_id, True, spec.type) if own_id is not None else None
        self.mapping_name = compiler.spec.name.encode()
        self.key = key


class RowMapper:
    """A mapping compiled for one way of addressing columns. `map(row, op)`
    gives (events as dicts, problems); `map_json(row, op)` gives (events as
    JSON lines without the line end, problems). See `map_row` for the
    meaning of both."""

    def __init__(self, mapping: Mapping, header: list[str] | None = None):
        spec = mapping.spec
        position = None if header is None else {name: index for index, name in reversed(list(enumerate(header)))}
        compiler = _Compiler(spec, position)
        self.mapping = mapping
        self.key_columns = spec.key
        key = [(column, compiler.raw_getter(column)) for column in spec.key]
        self.plans = [_EventPlan(compiler, event, key) for event in spec.events]
        self._key = key
        self._name = spec.name.encode()

    def _key_text(self, row: Any, problems: list[RowProblem]) -> bytes | None:
        texts = []
        for column, raw in self._key:
            try:
                value = raw(row)
            except _FieldProblem as problem:
                problems.append((problem.column, problem.reason))
                return None
            if is_empty(value):
                problems.append((column, "empty, but it is a key column of the mapping"))
                return None
            try:
                texts.append(text_of(value))
            except Unmappable as problem:
                problems.append((column, f"{problem.reason} (a key column of the mapping)"))
                return None
        return "\x1f".join(texts).encode()

    def map_json(self, row: Any, op: str = "row") -> tuple[list[bytes], list[RowProblem]]:
        problems: list[RowProblem] = []
        built = self._build(row, op, problems)
        if problems:
            return [], problems
        return [line for _, line in built], problems

    def map(self, row: Any, op: str = "row") -> tuple[list[dict], list[RowProblem]]:
        problems: list[RowProblem] = []
        built = self._build(row, op, problems)
        if problems:
            return [], problems
        return [event for event, _ in built], problems

    def _build(self, row: Any, op: str, problems: list[RowProblem]) -> list[tuple[dict, bytes]]:
        key = None
        built = []
        for plan in self.plans:
            if op not in plan.ops:
                continue
            try:
                for holds in plan.conditions:
                    if not holds(row):
                        break
                else:
                    holds = None
            except _FieldProblem as problem:
                problems.append((problem.column, problem.reason))
                continue
            if holds is not None:
                continue
            event = {"type": plan.type}
            for name, get in plan.fields:
                try:
                    value = get(row)
                except _FieldProblem as problem:
                    problems.append((problem.column, problem.reason))
                    continue
                if value is not None:
                    event[name] = value
            if problems:
                continue
            content = orjson.dumps(event, option=orjson.OPT_SORT_KEYS)
            if plan.event_id is not None:
                try:
                    event_id = plan.event_id(row)
                except _FieldProblem as problem:
                    problems.append((problem.column, problem.reason))
                    continue
            else:
                if key is None:
                    key = self._key_text(row, problems)
                    if key is None:
                        return []
                event_id = derived_event_id(self._name, key, content)
            event["event_id"] = event_id
            built.append((event, b'{"event_id":' + orjson.dumps(event_id) + b"," + content[1:]))
        return built


def derived_event_id(mapping_name: bytes, key: bytes, content: bytes) -> str:
    """`<mapping name>-<24 hex digits>`: BLAKE2b of the mapping's name, the
    row's key values and the event's content (its JSON with sorted keys,
    type and occurred_at included). The same row mapped again gives the same
    id and content: a duplicate (DOMAIN §4). A revised row (a new due date)
    gives another id: a revision, which holds by its occurred_at."""
    digest = hashlib.blake2b(mapping_name + b"\x1e" + key + b"\x1e" + content, digest_size=12).hexdigest()
    return mapping_name.decode() + "-" + digest


def map_row(mapping: Mapping | RowMapper, row: RowDict[str, object], op: str = "row") -> tuple[list[dict], list[RowProblem]]:
    """The events one row gives under `mapping`, or the row's problems.

    `row`: column name -> value, as the source gives it: str, int, float,
    bool, Decimal, datetime.date / datetime.datetime, or None for NULL (a
    Debezium change event's `before` or `after` decoded to Python values is
    such a dict; epoch-based temporal columns are ints, read with the
    `epoch_*` formats). Values a source carries outside the row (a change
    event's `ts_ms`, its source table) may be put in the dict under names
    of their own and named by the mapping like columns.

    `op`: what happened to the row: "row" (a line of a file), "read" (a
    snapshot), "insert", "update" or "delete". Only events whose `ops` list
    the op are considered (by default every op but delete).

    Returns (events, problems). `events`: a list of event dicts in the
    order the mapping lists them, each with `event_id`, `type`,
    `occurred_at` and the type's fields as the contract writes them
    (strings: ids, text, decimal amounts, RFC 3339 instants with an offset),
    ready for `orjson.dumps` and `parse_event`; empty when no event's
    conditions hold. `problems`: a list of (column, reason); column is the
    column read, "A+B" for a template over several, or None; when there is
    any problem the row gives no event at all, so a half-mapped row (an
    invoice without its payment) never reaches the engine.

    Never raises for a row's content. The mapping is compiled once and kept
    on it (pass a RowMapper to hold a compiled one yourself).
    """
    if isinstance(mapping, Mapping):
        mapper = mapping._dict_mapper
        if mapper is None:
            mapper = mapping._dict_mapper = RowMapper(mapping)
    else:
        mapper = mapping
    return mapper.map(row, op)


