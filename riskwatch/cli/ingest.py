"""mapping check, import: exports read through a mapping file (docs/ingest.md).

Also the helpers `replay --mapping` and `run --input --mapping` read their
inputs with, so all three report a row that cannot be mapped alike:
`FILE: row N: column X: reason`.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Iterator

import click
import orjson

from riskwatch.cli import main
from riskwatch.cli.exitcodes import EXIT_REFUSED, EXIT_UNREADABLE
from riskwatch.cli.options import rules_or_exit, settings_or_usage, unusable
from riskwatch.errors import MappingError
from riskwatch.ingest import ImportCounts, Mapping, SourceRefused, load_mapping, read_events
from riskwatch.ingest.importer import row_problem_line
from riskwatch.ingest.ordering import in_event_time_order
from riskwatch.ingest.readers import not_text, open_rows
from riskwatch.models import YUAN_CODES, Rejection

# Rows reported one by one; past this only counted (a wrong mapping on a
# million-row export must not print a million lines).
MAX_REPORTED_ROWS = 10_000
UNMAPPABLE = "unmappable"


def mapping_or_exit(path: Path) -> Mapping:
    """The checked mapping, or every problem on stderr and exit EXIT_UNREADABLE."""
    try:
        return load_mapping(path)
    except MappingError as error:
        unusable(error.problems, f"mapping {path}")


def row_reason(problems: list) -> str:
    """A row's problems as one report line's reason: `column X: reason; ...`."""
    return "; ".join(f"column {column}: {reason}" if column else reason for column, reason in problems)


def export_option(function):
    """`--export MAPPING SOURCE`, repeatable: exports of several mappings in one command."""
    return click.option(
        "--export", "exports", type=(click.Path(path_type=Path), str), multiple=True, metavar="MAPPING SOURCE",
        help="Also read SOURCE through MAPPING (repeat it to combine exports of several mappings, e.g. "
             "customers and receivables); their events are merged in event-time order.",
    )(function)


def export_pairs(mapping: Mapping | None, files: tuple[str, ...], exports: tuple) -> list[tuple[Mapping, str]]:
    """(mapping, source) for every export: the files read through `mapping`,
    then each `--export` pair (its mapping checked, or exit as mapping_or_exit)."""
    pairs = [(mapping, path) for path in files] if mapping is not None else []
    loaded: dict[Path, Mapping] = {}
    for mapping_path, source in exports:
        if mapping_path not in loaded:
            loaded[mapping_path] = mapping_or_exit(mapping_path)
        pairs.append((loaded[mapping_path], source))
    return pairs


def exported_events(pairs: list[tuple[Mapping, str]], refuse) -> Iterator[tuple[str, int, bytes]]:
    """(source, row number, event line) for every event of every export, in
    row order; a row that cannot be mapped goes to `refuse(source, row
    number, Rejection)` instead. Raises SourceRefused when a source cannot
    be read as its mapping says (before its first row)."""
    for mapping, path in pairs:
        for number, lines, problems in read_events(mapping, path):
            if problems:
                refuse(path, number, Rejection(UNMAPPABLE, row_reason(problems)))
                continue
            for line in lines:
                yield path, number, line


@main.group("mapping")
def mapping_group() -> None:
    """Work with mapping files (how an export's rows become events)."""


@mapping_group.command("check")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--sample", type=click.Path(dir_okay=False), default=None,
              help="An export to check the mapping against: every column it names must be in the header; "
                   "its rows are mapped and the ones that cannot be are listed. For a debezium mapping: "
                   "JSON lines of the table's change events (record values, as a console consumer prints them).")
@click.option("--rules", "rules_dir", type=click.Path(path_type=Path), default=None,
              help="With --sample: the rule directory whose currency rates the sample's currencies are checked "
                   "against (default: RISKWATCH_RULES, else the shipped rules).")
def mapping_check(file: Path, sample: str | None, rules_dir: Path | None) -> None:
    """Validate a mapping file; on error list every problem as file: field.path: reason.

    With --sample, also map the sample's rows: rows that cannot be mapped are
    listed (`FILE: row N: ...`), and so are the currencies of mapped rows the
    rules have no rate for, which replay would refuse (DOMAIN §3: an amount
    is never taken as CNY)."""
    try:
        mapping = load_mapping(file)
        header = None
        if sample is not None:
            try:
                opened = open_rows(mapping.spec.source, sample)
            except Exception as error:  # noqa: BLE001 - InputError and the readers' own, reported alike
                click.echo(f"{sample}: {error}")
                click.echo(f"the sample {sample} cannot be read as {mapping.spec.source.format}", err=True)
                sys.exit(EXIT_UNREADABLE)
            header = opened.header
            if mapping.spec.source.format == "jsonl":
                absent_json_columns(mapping, opened.rows, sample)
            close = getattr(opened.rows, "close", None)
            if close is not None:
                close()
            if header is not None:
                mapping = load_mapping(file, header=header, sample=sample)
    except MappingError as error:
        for problem in error.problems:
            click.echo(problem)
        click.echo(f"{len(error.problems)} problem(s) in {file}", err=True)
        sys.exit(EXIT_REFUSED)
    types = list(dict.fromkeys(event.type for event in mapping.spec.events))
    if mapping.reads_changes:
        source = f"{mapping.spec.source.format} changes of {mapping.table}"
    else:
        source = f"{mapping.spec.source.format} rows"
    click.echo(f"{file}: ok ({mapping.name}: {source} give {', '.join(types)})")
    if sample is None:
        return
    rules_dir = rules_dir or settings_or_usage().rules_dir
    rates = rules_or_exit(rules_dir).currency_rates
    unrated: dict[str, tuple[tuple[int, ...], int]] = {}    # currency -> (first row numbers, rows)
    unratable = 0
    counts = ImportCounts()
    reported = 0
    undecodable = 0
    encoding = getattr(mapping.spec.source, "encoding", None)
    undecodable_reason = not_text(encoding) if encoding else None
    try:
        for number, lines, problems in read_events(mapping, sample, counts):
            if problems:
                reason = row_reason(problems)
                undecodable += any(problem == undecodable_reason for _column, problem in problems)
                if reported < MAX_REPORTED_ROWS:
                    reported += 1
                    click.echo(row_problem_line(sample, number, None, reason))
                continue
            currencies = unrated_currencies(lines, rates)
            unratable += bool(currencies)
            for currency in currencies:
                # The first rows by number and how many: a sample of a
                # million rows in one unknown currency stays a few bytes.
                first, count = unrated.get(currency, ((), 0))
                unrated[currency] = (first if len(first) == 3 else first + (number,), count + 1)
    except SourceRefused as refused:
        for problem in refused.problems:
            click.echo(problem)
        sys.exit(EXIT_REFUSED)
    except OSError as error:
        click.echo(f"{sample}: cannot read further: {error.strerror or error}")
        sys.exit(EXIT_UNREADABLE)
    click.echo(f"{sample}: {counts.summary()}")
    rates_file = rules_dir / "indicators.yaml"
    for currency, (numbers, count) in sorted(unrated.items()):
        click.echo(f"{sample}: {rows_named(numbers, count)}: currency {currency!r}: no rate in {rates_file} "
                   f"currency_rates_to_cny, so replay refuses these rows' events (an amount is never taken as CNY); "
                   + unrated_currency_fix(currency))
    if counts.mapped and unratable == counts.mapped:
        click.echo(f"no mapped row of {sample} can be replayed: no rate for "
                   f"{', '.join(repr(currency) for currency in sorted(unrated))} in {rates_file}", err=True)
        sys.exit(EXIT_REFUSED)
    if counts.rows and not counts.mapped and not counts.no_event:
        # Rows with problems are the export's; a sample none of whose rows
        # fits is the mapping's (a wrong encoding, date format or delimiter).
        hint = (f"; every refused row is {undecodable_reason}: set source.encoding to the export's "
                "(utf-8, gbk, gb18030, ...)" if encoding and undecodable == counts.refused else "")
        click.echo(f"no row of {sample} could be mapped: {file} does not fit this export{hint}", err=True)
        sys.exit(EXIT_REFUSED)


def unrated_currencies(lines: list[bytes], rates: dict[str, float]) -> set[str]:
    """The currencies of one row's events (JSON lines) that `rates` (CNY per
    unit, the rules' currency_rates_to_cny) lacks. A payment without a
    currency is in its invoice's and names none."""
    found = set()
    for line in lines:
        currency = orjson.loads(line).get("currency")
        if isinstance(currency, str) and currency not in rates:
            found.add(currency)
    return found


def unrated_currency_fix(currency: str) -> str:
    """What to do about a currency code the rules have no rate for."""
    if currency in YUAN_CODES:
        return (f"{currency} is the yuan: map it to CNY in the mapping "
                f"(a transform {{map: {{{currency}: CNY}}, unmapped: keep}})")
    return (f"add its rate to the rules, or, if the export's {currency} stands for another currency, map it to "
            "that ISO 4217 code in the mapping (a transform {map: {WORD: CODE}, unmapped: keep})")


def rows_named(first: tuple[int, ...], count: int) -> str:
    """`row 4`, `rows 4, 9 and 12`, or `rows 4, 9, 12 and 40 more`: the
    first row numbers (at most three, in file order) of `count` rows."""
    if count == 1:
        return f"row {first[0]}"
    if count <= 3:
        return f"rows {', '.join(map(str, first[:-1]))} and {first[-1]}"
    return f"rows {', '.join(map(str, first))} and {count - 3} more"


def absent_json_columns(mapping: Mapping, rows, sample: str) -> None:
    """Raise MappingError naming each column the mapping reads that no line
    of a JSON-lines `sample` has (nested fields by their path). A key a line
    lacks reads as empty (docs/ingest.md), so a misspelt name would pass
    every row unnoticed: the sample is the only place to catch it, as a CSV
    sample's header catches it."""
    seen: set[str] = set()
    for _number, values in rows:
        if isinstance(values, dict):
            seen.update(values)
    listed = ", ".join(sorted(seen)) or "none"
    problems = [f"{mapping.label}: {use.where}: column {use.column!r} is in no line of {sample} (its keys: {listed})"
                for use in mapping.column_uses() if use.column not in seen]
    problems += [f"{mapping.label}: columns.{column}: in no line of {sample} (its keys: {listed})"
                 for column in mapping.spec.columns if column not in seen]
    if problems:
        raise MappingError(problems)


@main.command("import")
@click.argument("sources", nargs=-1)
@click.option("--mapping", "mapping_path", type=click.Path(path_type=Path),
              help="The mapping file that says how the sources' rows become events.")
@export_option
@click.option("--row-order", is_flag=True,
              help="Write the events in row order, source by source, instead of in event-time order with all "
                   "sources merged (as replay feeds exports: fed in row order, a later row's payment can move "
                   "the clock past an earlier row's deadline and raise a wrong alert).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the events here (default stdout).")
@click.option("--to-kafka", is_flag=True, help="Send the events to their Kafka source topics instead (as `riskwatch produce`).")
@click.option("--broker", default=None, help="With --to-kafka: bootstrap HOST:PORT[,...] (RISKWATCH_BROKER).")
@click.option("--topic-prefix", default=None, help="With --to-kafka: topic prefix (RISKWATCH_TOPIC_PREFIX).")
def import_command(sources: tuple[str, ...], mapping_path: Path | None, exports: tuple, row_order: bool,
                   output: Path | None, to_kafka: bool, broker: str | None, topic_prefix: str | None) -> None:
    """Read exports (CSV, XLSX, XLS, ODS, JSON lines; - for stdin) through a mapping: events as JSON lines.

    Rows that cannot be mapped are listed on stderr as FILE: row N: column X:
    reason and counted in the summary; the other rows go on. Exits 2 when
    the mapping or a source cannot be used at all (the other sources are
    still read).
    """
    if to_kafka and output:
        raise click.UsageError("--to-kafka and --output exclude each other")
    if sources and mapping_path is None:
        raise click.UsageError("give --mapping for the sources")
    if not sources and not exports:
        raise click.UsageError("give SOURCE files with --mapping, or --export MAPPING SOURCE")
    pairs = export_pairs(mapping_or_exit(mapping_path) if mapping_path is not None else None, sources, exports)
    counts = ImportCounts()
    refused_files = 0
    reported = 0
    started = time.monotonic()

    def in_row_order() -> Iterator[tuple[str, int, bytes]]:
        nonlocal refused_files, reported
        for mapping, path in pairs:
            try:
                rows = read_events(mapping, path, counts)
                for number, lines, problems in rows:
                    if problems:
                        if reported < MAX_REPORTED_ROWS:
                            reported += 1
                            click.echo(row_problem_line(path, number, None, row_reason(problems)), err=True)
                        continue
                    for line in lines:
                        yield path, number, line
            except SourceRefused as refused:
                refused_files += 1
                for problem in refused.problems:
                    click.echo(problem, err=True)
            except OSError as error:
                refused_files += 1
                click.echo(f"{path}: cannot read further: {error.strerror or error}", err=True)

    def events() -> Iterator[tuple[str, bytes]]:
        ordered = in_row_order() if row_order else in_event_time_order(in_row_order())
        for path, number, line in ordered:
            yield f"{path}: row {number}", line

    if to_kafka:
        from riskwatch.cli.worker import send_lines  # kafka-python, loaded only when asked for

        kafka = settings_or_usage(broker=broker, topic_prefix=topic_prefix)
        sent, skipped = send_lines(kafka, events())
        click.echo(f"sent {sent} events to {kafka.topic_prefix}* on {kafka.broker} in {time.monotonic() - started:.1f} s; "
                   f"{skipped} not sent", err=True)
    else:
        stream = open(output, "wb") if output else sys.stdout.buffer  # noqa: SIM115
        try:
            write = stream.write
            for _origin, line in events():
                write(line + b"\n")
        finally:
            if output:
                stream.close()
            else:
                stream.flush()
        skipped = 0
    if counts.refused > reported:
        click.echo(f"... and {counts.refused - reported} more rows not mapped", err=True)
    click.echo(counts.summary(), err=True)
    if refused_files:
        click.echo(f"{refused_files} source(s) not read", err=True)
        sys.exit(EXIT_UNREADABLE)
    if skipped:
        sys.exit(1)
