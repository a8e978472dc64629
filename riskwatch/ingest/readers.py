"""Rows of a source file, one at a time: CSV (the standard csv module),
XLSX / XLS / ODS (python-calamine), JSON lines, and JSON lines of Debezium
change events (a CDC topic's record values, as a console consumer prints
them: `source.format: debezium`).

`open_rows(source, path)` gives a `Rows`: the header (the column names, or
None for JSON lines, whose records name their own) and an iterator of
(row number, values). Values are a list in header order, a `JsonRow` for
JSON lines (nested objects' fields under their path, `customer.code`; a key
the line lacks reads as None), or a `BadRow` saying why the row cannot be
read. Row numbers are the
ones a person finds the row by: a CSV record's first line in the file, a
spreadsheet's row number as the spreadsheet shows it, a JSON line's line
number. Blank rows are skipped.

Memory: CSV and JSON lines are read line by line, whatever the file's size.
python-calamine reads a sheet's cells into its own (Rust) memory when the
sheet is opened, and its `iter_rows` converts one row at a time to Python
values, so only the compact cell store grows with the sheet, not a Python
object per cell (dimastbk/python-calamine#42, #43: calamine has no lazy
sheet reader to stream from).
"""

from __future__ import annotations

import codecs
import csv
import io
import sys
from dataclasses import dataclass
from typing import Any, Iterator

import orjson

from riskwatch.errors import InputError
from riskwatch.ingest.mapping import CHANGE_FORMATS, SPREADSHEET_FORMATS, Source
from riskwatch.lines import read_lines

# A field a CSV file may hold; the csv module's default (128 KiB) is kept
# and a longer one is a bad row, not a crash.
_CSV_FIELD_LIMIT = 131072


@dataclass(frozen=True, slots=True)
class BadRow:
    """A row that cannot be read: `column` when one cell is the cause, and the reason."""

    reason: str
    column: str | None = None


@dataclass
class Rows:
    """An opened source: `header` (None for JSON lines), `header_row` (its row
    number), and `rows`, an iterator of (row number, list | dict | BadRow)."""

    header: list[str] | None
    header_row: int
    rows: Iterator[tuple[int, Any]]


def not_text(encoding: str) -> str:
    """The reason given for a row `encoding` cannot decode ("not gbk text")."""
    return f"not {encoding.removesuffix('-sig')} text"


def open_rows(source: Source, path: str) -> Rows:
    """Open `path` as `source` says and read up to its header.

    Raises InputError with the reason when the file cannot be opened or is
    not what the source says (not a spreadsheet, no such sheet, no header
    row); the caller prefixes the file's name.
    """
    if source.format == "csv":
        return _csv_rows(source, path)
    if source.format in SPREADSHEET_FORMATS:
        return _sheet_rows(source, path)
    if source.format in CHANGE_FORMATS:
        return _change_rows(source, path)
    return _json_rows(path)


def _text_encoding(name: str | None) -> str:
    # A UTF-8 export may start with a byte-order mark (Excel writes one);
    # utf-8-sig reads both.
    if name is None or codecs.lookup(name).name == "utf-8":
        return "utf-8-sig"
    return name


# Longest first: a UTF-32 LE mark begins with the UTF-16 LE one.
_BYTE_ORDER_MARKS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8"),
                     (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def _byte_order_mark_problem(start: bytes, encoding: str) -> str | None:
    """The refusal of a file whose first bytes (`start`) are the byte-order
    mark of another encoding than `encoding` (a codec name), else None.

    A byte-order mark says what the file is: Excel's "CSV UTF-8" and
    "Unicode text" (UTF-16) write one. Read as GBK the UTF-8 mark becomes
    two Chinese characters glued to the first column's name, and the file
    is refused for a missing column that is plainly there; this names the
    encoding to set instead."""
    declared = codecs.lookup(encoding).name
    for mark, family in _BYTE_ORDER_MARKS:
        if start.startswith(mark):
            if declared.removesuffix("-sig") == family:
                return None
            return (f"the file starts with a {family.upper()} byte-order mark: it is {family.upper()} text, "
                    f"not {declared.removesuffix('-sig')} (set source.encoding: {family})")
    return None


def _csv_rows(source: Source, path: str) -> Rows:
    encoding = _text_encoding(source.encoding)
    try:
        stream = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115 - closed by the generator
    except OSError as error:
        raise InputError(f"cannot read: {error.strerror or error}") from None
    try:
        problem = _byte_order_mark_problem(stream.peek(4)[:4], encoding)
    except OSError as error:
        stream.close()
        raise InputError(f"cannot read: {error.strerror or error}") from None
    if problem is not None:
        stream.close()
        raise InputError(problem)
    # Undecodable bytes become U+FFFD and the row that holds them is refused
    # by name: a strict decoder would stop the whole file at the first one.
    text = io.TextIOWrapper(stream, encoding=encoding, errors="replace", newline="")
    csv.field_size_limit(_CSV_FIELD_LIMIT)
    reader = csv.reader(text, delimiter=source.delimiter or ",", quotechar=source.quotechar or '"', strict=False)
    header_row = source.header_row or 1
    header: list[str] | None = None
    last_line = 0
    try:
        for values in reader:
            first_line = last_line + 1
            last_line = reader.line_num
            if first_line >= header_row and values:
                if first_line > header_row:
                    # The header row is blank or inside a quoted field.
                    raise InputError(f"no header at row {header_row} (row {header_row} is blank)")
                header = [name.strip() for name in values]
                break
    except (csv.Error, OSError) as error:
        text.close()
        raise InputError(f"cannot read the header: {error}") from None
    if header is None:
        text.close()
        raise InputError(f"no header: the file has fewer than {header_row} rows")
    if "\ufffd" in "".join(header):
        text.close()
        raise InputError(f"the header is not {encoding.removesuffix('-sig')} text (set source.encoding, e.g. gbk)")

    def rows() -> Iterator[tuple[int, Any]]:
        nonlocal last_line
        try:
            while True:
                try:
                    values = next(reader)
                except StopIteration:
                    return
                except csv.Error as error:
                    first = last_line + 1
                    last_line = reader.line_num
                    yield first, BadRow(f"not a CSV record: {error}")
                    continue
                first = last_line + 1
                last_line = reader.line_num
                if not values or not any(values):
                    continue
                if "\ufffd" in "".join(values):
                    column = next((header[i] if i < len(header) else None)
                                  for i, value in enumerate(values) if "\ufffd" in value)
                    yield first, BadRow(not_text(encoding), column)
                    continue
                yield first, values
        finally:
            if stream is not sys.stdin.buffer:
                text.close()

    return Rows(header, header_row, rows())


def _sheet_rows(source: Source, path: str) -> Rows:
    from python_calamine import CalamineError, load_workbook

    try:
        workbook = load_workbook(path)
    except (OSError, CalamineError) as error:
        reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
        raise InputError(f"cannot read as {source.format}: {reason}") from None
    except Exception as error:  # calamine reports some damaged files with other types
        raise InputError(f"cannot read as {source.format}: {error}") from None
    names = workbook.sheet_names
    wanted = source.sheet
    try:
        if wanted is None:
            sheet = workbook.get_sheet_by_index(0)
        elif isinstance(wanted, int):
            if wanted > len(names):
                raise InputError(f"no sheet {wanted}: the workbook has {len(names)} ({', '.join(names)})")
            sheet = workbook.get_sheet_by_index(wanted - 1)
        else:
            if wanted not in names:
                raise InputError(f"no sheet {wanted!r} (its sheets: {', '.join(names)})")
            sheet = workbook.get_sheet_by_name(wanted)
    except CalamineError as error:
        workbook.close()
        raise InputError(f"cannot read the sheet: {error}") from None
    header_row = source.header_row or 1
    # iter_rows starts at the sheet's first row, blank leading rows included
    # (python-calamine 0.9), so the n-th row it gives is spreadsheet row n.
    iterator = iter(sheet.iter_rows())
    header = None
    for number, values in enumerate(iterator, start=1):
        if number == header_row:
            header = [("" if value is None else str(value)).strip() for value in values]
            break
    if header is None or not any(header):
        workbook.close()
        raise InputError(f"no header at row {header_row} of sheet {sheet.name!r}")

    def rows() -> Iterator[tuple[int, Any]]:
        try:
            for number, values in enumerate(iterator, start=header_row + 1):
                if any(value != "" for value in values):
                    yield number, values
        finally:
            workbook.close()

    return Rows(header, header_row, rows())


def _numbered_lines(path: str) -> Iterator[tuple[int, bytes | BadRow]]:
    """(line number, line) of a JSON-lines file (- for stdin), a line over
    the record limit as a BadRow in its place, never read whole; raises
    InputError when the file cannot be opened."""
    try:
        stream = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115 - read_lines closes it
    except OSError as error:
        raise InputError(f"cannot read: {error.strerror or error}") from None

    def lines() -> Iterator[tuple[int, bytes | BadRow]]:
        oversize: list[tuple[int, int]] = []
        for number, line in read_lines(stream, too_large=lambda n, size: oversize.append((n, size))):
            while oversize:
                at, size = oversize.pop(0)
                yield at, BadRow(f"record is {size} bytes; the limit is 1000000")
            yield number, line
        for at, size in oversize:
            yield at, BadRow(f"record is {size} bytes; the limit is 1000000")

    return lines()


def _json_rows(path: str) -> Rows:
    lines = _numbered_lines(path)

    def rows() -> Iterator[tuple[int, Any]]:
        for number, line in lines:
            if isinstance(line, BadRow):
                yield number, line
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError as error:
                yield number, BadRow(f"not valid JSON: {error}")
                continue
            if not isinstance(record, dict):
                yield number, BadRow("not a JSON object")
                continue
            yield number, _json_row(record)

    return Rows(None, 0, rows())


class JsonRow(dict):
    """A JSON line's object as a row (column -> value). A key the line does
    not have reads as None, i.e. empty: JSON exporters commonly leave null
    fields out (an unpaid invoice has no `payment`), so a missing key is not
    a problem by itself; a field the event requires is still refused when
    it is empty."""

    __slots__ = ()

    def __missing__(self, key: str) -> None:
        return None


def _json_row(record: dict) -> JsonRow:
    """`record` with each nested object's fields as columns named by their
    path: {"customer": {"code": "C1"}} gives the column `customer.code`, at
    any depth. A key written with dots at a shallower level wins over a
    nested path of the same name (breadth first). Arrays stay one value,
    which a mapping cannot read as a field (values.single_value)."""
    row = JsonRow()
    objects: list[tuple[str, dict]] = []
    for key, value in record.items():
        if value.__class__ is dict:
            objects.append((key + ".", value))
        else:
            row[key] = value
    for prefix, fields in objects:      # grows while it is walked: breadth first
        for key, value in fields.items():
            name = prefix + key
            if value.__class__ is dict:
                objects.append((name + ".", value))
            elif name not in row:
                row[name] = value
    return row


class ChangeValues(dict):
    """A change event's row (column -> value, the change's own values
    included) and `op`, the operation in the mapping files' words (read,
    insert, update, delete)."""

    __slots__ = ("op",)

    def __init__(self, row: dict, op: str):
        super().__init__(row)
        self.op = op


def _change_rows(source: Source, path: str) -> Rows:
    """One Debezium change event per line (the record's value, with or
    without embedded schema): each gives its row as a ChangeValues; a line
    that is not a change event, or a change of another table than the
    mapping's, is a BadRow; null lines (tombstones) are skipped. Without the
    record's key a delete that carried only the primary key is not told
    from a full one: its placeholders read as values."""
    from riskwatch.ingest.debezium import MAPPING_OPS, ChangeError, change_row, decode_change

    lines = _numbered_lines(path)

    def rows() -> Iterator[tuple[int, Any]]:
        for number, line in lines:
            if isinstance(line, BadRow):
                yield number, line
                continue
            try:
                change = decode_change(line, None)
            except ChangeError as error:
                yield number, BadRow(error.reason)
                continue
            if change is None:
                continue
            if change.table != source.table:
                yield number, BadRow(f"a change of {change.table}, not of {source.table}")
                continue
            yield number, ChangeValues(change_row(change), MAPPING_OPS[change.op])

    return Rows(None, 0, rows())
