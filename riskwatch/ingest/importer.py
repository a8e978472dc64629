"""A source file read through a mapping: events as JSON lines, and every row
that cannot be mapped with its row number, column and reason.

Shared by `riskwatch import`, `replay --mapping` and `run --input --mapping`.
A file-level problem (unreadable, wrong sheet, a column the mapping names
missing from the header) refuses the file before any row; a row-level one
refuses that row only, and the good rows go on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from riskwatch.errors import InputError
from riskwatch.ingest.mapper import RowMapper, RowProblem
from riskwatch.ingest.mapping import Mapping
from riskwatch.ingest.readers import BadRow, ChangeValues, open_rows


class SourceRefused(InputError):
    """A source file the mapping cannot read at all; `problems` are the lines
    to print, each `file: where: reason`."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass
class ImportCounts:
    """What one or more imported files gave: rows read (blank rows not
    counted), rows mapped to at least one event, rows no event's condition
    held for, rows refused, events."""

    rows: int = 0
    mapped: int = 0
    no_event: int = 0
    refused: int = 0
    events: int = 0
    files_refused: int = 0

    def summary(self) -> str:
        return (f"rows: {self.rows} read, {self.mapped} mapped, {self.no_event} gave no event, "
                f"{self.refused} not mapped; {self.events} events")


def row_problem_line(path: str, number: int, column: str | None, reason: str) -> str:
    """`FILE: row N: column X: reason` (without the column part when none)."""
    where = f"{path}: row {number}: "
    return where + (f"column {column}: {reason}" if column else reason)


def read_events(mapping: Mapping, path: str, counts: ImportCounts | None = None
                ) -> Iterator[tuple[int, list[bytes], list[RowProblem]]]:
    """(row number, events as JSON lines, problems) for every non-blank row of `path`.

    A row with problems gives no events. Raises SourceRefused before the
    first row when the file cannot be read as the mapping's source says,
    or its header lacks a column the mapping names (or holds it twice).
    `counts`, when given, is updated as rows are read.
    """
    try:
        opened = open_rows(mapping.spec.source, path)
    except InputError as error:
        raise SourceRefused([f"{path}: {error}"]) from None
    counts = counts if counts is not None else ImportCounts()
    header = opened.header
    if header is None:
        mapper = RowMapper(mapping)
        width = None
    else:
        problems = _header_problems(mapping, path, header, opened.header_row)
        if problems:
            close = getattr(opened.rows, "close", None)
            if close is not None:
                close()
            raise SourceRefused(problems)
        mapper = RowMapper(mapping, header)
        width = len(header)
    return _rows(mapper, opened.rows, counts, width)


def _rows(mapper: RowMapper, rows, counts: ImportCounts, width: int | None):
    map_json = mapper.map_json
    for number, values in rows:
        counts.rows += 1
        if values.__class__ is BadRow:
            counts.refused += 1
            yield number, [], [(values.column, values.reason)]
            continue
        if width is not None and len(values) != width:
            counts.refused += 1
            yield number, [], [(None, _width_problem(values, width))]
            continue
        # A change event's row says what happened to it; a file's row is a "row".
        lines, problems = map_json(values) if values.__class__ is not ChangeValues else map_json(values, values.op)
        if problems:
            counts.refused += 1
        elif lines:
            counts.mapped += 1
            counts.events += len(lines)
        else:
            counts.no_event += 1
        yield number, lines, problems


def _width_problem(values: list, width: int) -> str:
    # A value holding an unquoted delimiter moves every later value one
    # column on, and a row cut short loses its last ones: either way the
    # values no longer sit under their headers, so the row is refused.
    hint = "a delimiter inside an unquoted value?" if len(values) > width else "a row cut short?"
    return f"{len(values)} values, but the header has {width} columns ({hint})"


def _header_problems(mapping: Mapping, path: str, header: list[str], header_row: int) -> list[str]:
    where = f"{path}: row {header_row} (header)"
    problems = []
    listed = ", ".join(name for name in header if name) or "none"
    missing = [use for use in mapping.column_uses() if use.column not in header]
    seen = set()
    for use in missing:
        if use.column in seen:
            continue
        seen.add(use.column)
        problems.append(f"{where}: no column {use.column!r} (named by {mapping.label} {use.where}); "
                        f"its columns: {listed}")
    for column in mapping.columns():
        places = [index + 1 for index, name in enumerate(header) if name == column]
        if len(places) > 1:
            problems.append(f"{where}: column {column!r} appears {len(places)} times (columns "
                            f"{', '.join(map(str, places))}); the mapping cannot tell which to read")
    return problems
