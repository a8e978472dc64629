"""classify, rules check, replay, simulate, run: the commands that need no broker."""

from __future__ import annotations

import signal
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO, Callable

import click
import orjson

from riskwatch.cli import main
from riskwatch.cli.exitcodes import EXIT_REFUSED, EXIT_STORE, EXIT_UNREADABLE
from riskwatch.cli.options import alertmanager_delivery_options, rules_or_exit, settings_or_usage
from riskwatch.errors import RulesError
from riskwatch.lines import open_input, read_lines
from riskwatch.metrics import RiskwatchMetrics
from riskwatch.models import MAX_EVENT_BYTES, Rejection
from riskwatch.render import alert_line, summary_lines
from riskwatch.rules import load_rules
from riskwatch.runner import RunLoop
from riskwatch.service import EmbeddedService
from riskwatch.settings import Settings
from riskwatch.simulate import SimulationSettings, simulate
from riskwatch.timeutil import parse_business_instant


def _alertmanager_sink(settings: Settings, metrics: RiskwatchMetrics | None):
    """The Alertmanager sink, if asked for; it posts on its own thread, so
    evaluation never waits for Alertmanager (riskwatch.sinks.delivery)."""
    if not settings.alertmanager_url:
        return None
    from riskwatch.sinks.alertmanager import make_sink  # imported only when used

    try:
        return make_sink(settings.alertmanager_url, metrics=metrics, settings=settings)
    except ValueError as error:
        raise click.UsageError(str(error)) from None


def _probability(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise click.BadParameter("must be between 0 and 1 (a 70% probability is 0.7)")
    return value


@main.command()
@click.option("--probability", "-p", required=True, help="Probability in [0, 1].")
@click.option("--impact", "-i", required=True, help="Impact in [0, 1].")
@click.option("--controllability", "-c", required=True, help="Controllability in [0, 1].")
@click.option("--rules", "rules_dir", type=click.Path(path_type=Path), default=None, help="Rule directory.")
def classify(probability: str, impact: str, controllability: str, rules_dir: Path | None) -> None:
    """Print the tier of a (probability, impact, controllability) triple."""
    values = []
    for name, text in (("--probability", probability), ("--impact", impact), ("--controllability", controllability)):
        try:
            values.append(_probability(text))
        except (ValueError, click.BadParameter) as error:
            raise click.BadParameter(str(error) if isinstance(error, click.BadParameter) else f"{text!r} is not a number",
                                     param_hint=name) from None
    rules = rules_or_exit(rules_dir or settings_or_usage().rules_dir)
    click.echo(rules.classify(*values))


@main.group()
def rules() -> None:
    """Work with the rule files."""


@rules.command("check")
@click.argument("directory", required=False, type=click.Path(path_type=Path))
def rules_check(directory: Path | None) -> None:
    """Validate the rule files; on error list every problem as file: field: reason."""
    directory = directory or settings_or_usage().rules_dir
    try:
        ruleset = load_rules(directory)
    except RulesError as error:
        for problem in error.problems:
            click.echo(problem)
        click.echo(f"{len(error.problems)} problem(s) in {directory}", err=True)
        sys.exit(EXIT_REFUSED)
    enabled = sum(1 for i in ruleset.indicators.values() if i.enabled)
    click.echo(f"{directory}: ok ({enabled} indicators enabled, {len(ruleset.playbooks)} playbooks, "
               f"tiers {', '.join(r.tier for r in ruleset.matrix.rules)})")


def _mapping_option(function):
    return click.option(
        "--mapping", "mapping_path", type=click.Path(path_type=Path), default=None,
        help="Read the input files as exports (CSV, XLSX, ...) through this mapping file (docs/ingest.md); "
             "rows that cannot be mapped are reported as FILE: row N: column X: reason.",
    )(function)


def _mapping_or_exit(path: Path | None):
    if path is None:
        return None
    from riskwatch.cli.ingest import mapping_or_exit

    return mapping_or_exit(path)


def _export_option(function):
    from riskwatch.cli.ingest import export_option

    return export_option(function)


def _export_pairs(mapping, files, exports):
    if mapping is None and not exports:
        return []
    from riskwatch.cli.ingest import export_pairs

    return export_pairs(mapping, files, exports)


def _future_tolerance_option(function):
    return click.option(
        "--future-tolerance", "future_tolerance", type=float, default=None,
        help="Reject events whose occurred_at is more than this many seconds beyond the wall clock "
             "(default 3600; negative turns the check off) (RISKWATCH_FUTURE_TOLERANCE_SECONDS).",
    )(function)


@main.command()
@click.argument("files", nargs=-1)
@click.option("--until", "until", default=None, help="Move the clock to this RFC 3339 instant (with an offset, years 2000-2100) at the end.")
@click.option("--rules", "rules_dir", type=click.Path(path_type=Path), default=None, help="Rule directory.")
@click.option("--lateness", type=float, default=None, help="Allowed lateness in seconds (default 600).")
@click.option("--alertmanager", default=None, help="Also push alerts to this Alertmanager URL.")
@_mapping_option
@_export_option
@_future_tolerance_option
@alertmanager_delivery_options
def replay(files: tuple[str, ...], until: str | None, rules_dir: Path | None, lateness: float | None,
           alertmanager: str | None, mapping_path: Path | None, exports: tuple, future_tolerance: float | None,
           **delivery: object) -> None:
    """Replay JSON-lines event files (or exports, with --mapping): alert changes on stdout, summary and
    rejected lines on stderr."""
    settings = settings_or_usage(rules_dir=rules_dir, lateness_seconds=lateness, alertmanager_url=alertmanager,
                                 future_tolerance_seconds=future_tolerance, **delivery)
    until_instant = None
    if until is not None:
        try:
            until_instant = parse_business_instant(until)
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--until") from None
    if not files and not exports:
        raise click.UsageError("give FILE... (or --export MAPPING SOURCE)")
    if exports and files and mapping_path is None:
        raise click.UsageError("with --export, give --mapping for the FILE arguments too (or read them in "
                               "a replay of their own)")
    ruleset = rules_or_exit(settings.rules_dir)
    pairs = _export_pairs(_mapping_or_exit(mapping_path), files, exports)
    streams = _open_inputs(files) if not pairs else [("the exports", None)]
    out = sys.stdout.buffer

    def to_stdout(record: dict) -> None:
        out.write(orjson.dumps(record) + b"\n")

    service = EmbeddedService(ruleset, settings.lateness_seconds, sinks=[to_stdout], manage_gc=True,
                              future_tolerance_seconds=settings.future_tolerance_seconds,
                              alertmanager=_alertmanager_sink(settings, None))
    unreadable = None
    for path, stream in streams:
        if unreadable is not None:
            if stream is not None and stream is not sys.stdin.buffer:
                stream.close()
            continue
        try:
            if pairs:
                _feed_exports(service, pairs)
                continue
            for number, line in read_lines(stream, too_large=_refuse_too_large(service, path)):
                service.feed(line, path, number)
        except OSError as error:
            # What was read so far is evaluated and reported; the run still fails.
            unreadable = f"{path}: cannot read further: {error.strerror or error}"
    if unreadable is not None:
        out.flush()
        _print_summary(service, err=True)
        click.echo(unreadable, err=True)
        sys.exit(EXIT_UNREADABLE)
    if until_instant is not None:
        service.advance_to(until_instant)
    service.close()  # a bounded drain: an absent Alertmanager does not hold up the summary
    out.flush()
    _print_summary(service, err=True)


def _feed_exports(service: EmbeddedService, pairs) -> None:
    """Feed the exports' events in event-time order (riskwatch.ingest.ordering),
    rejections reported by row. A source its mapping cannot read at all
    (wrong format, a column missing from its header) is reported before any
    event is fed and raised as OSError, as an unreadable input is."""
    from riskwatch.cli.ingest import exported_events
    from riskwatch.ingest import SourceRefused
    from riskwatch.ingest.ordering import in_event_time_order

    def refuse(source: str, number: int, rejection: Rejection) -> None:
        service.refuse(source, number, rejection, unit="row")

    try:
        for source, number, line in in_event_time_order(exported_events(pairs, refuse)):
            service.feed(line, source, number, unit="row")
    except SourceRefused as refused:
        for problem in refused.problems:
            click.echo(problem, err=True)
        raise OSError("a source cannot be read through its mapping (above); nothing was replayed") from None


def _open_inputs(paths) -> list[tuple[str, BinaryIO]]:
    """Every input opened before any is read, so a missing one is refused
    before output starts; exits with EXIT_UNREADABLE naming the first."""
    opened: list[tuple[str, BinaryIO]] = []
    for path in paths:
        try:
            opened.append((path, open_input(path)))
        except OSError as error:
            for _, stream in opened:
                if stream is not sys.stdin.buffer:
                    stream.close()
            click.echo(f"{path}: cannot read: {error.strerror or error}", err=True)
            sys.exit(EXIT_UNREADABLE)
    return opened


def _refuse_too_large(service: EmbeddedService, source: str) -> Callable[[int, int], None]:
    def refuse(number: int, size: int) -> None:
        service.refuse(source, number, Rejection("too_large", f"record is {size} bytes; the limit is {MAX_EVENT_BYTES}"))
    return refuse


def _open_export(mapping, path: str):
    """`run --input --mapping`: a function of the service giving (row number,
    event line) in event-time order, as replay feeds exports; unmappable rows
    are refused into the service. A source the mapping cannot read at all
    exits EXIT_UNREADABLE naming what is wrong, before anything is served."""
    from riskwatch.cli.ingest import UNMAPPABLE, row_reason
    from riskwatch.ingest import SourceRefused, read_events
    from riskwatch.ingest.ordering import in_event_time_order

    try:
        rows = read_events(mapping, path)
    except SourceRefused as refused:
        for problem in refused.problems:
            click.echo(problem, err=True)
        sys.exit(EXIT_UNREADABLE)

    def lines(service: EmbeddedService):
        def events():
            for number, found, problems in rows:
                if problems:
                    service.refuse(path, number, Rejection(UNMAPPABLE, row_reason(problems)), unit="row")
                for line in found:
                    yield path, number, line
        for _source, number, line in in_event_time_order(events()):
            yield number, line
    return lines


def _stop_run(metrics: RiskwatchMetrics, server, service: EmbeddedService, reason: str, status: int,
              view=None) -> None:
    """End `run` early: not up any more, the summary so far, the reason, the exit status."""
    if view is not None:
        view.stop()  # its last frame stays; the summary follows below it
    metrics.up.labels(component="run").set(0)
    server.shutdown()
    click.echo("", err=True)
    _print_summary(service, err=True)
    click.echo(reason, err=True)
    sys.exit(status)


def _print_summary(service: EmbeddedService, err: bool) -> None:
    summary = service.summary
    for rejected in summary.rejected:
        click.echo(f"{rejected.source}: {rejected.unit} {rejected.line}: {rejected.reason}", err=err)
    hidden = sum(summary.rejected_by_kind.values()) - len(summary.rejected)
    if hidden > 0:
        click.echo(f"... and {hidden} more rejected lines", err=err)
    stats = service.engine.stats
    for line in summary_lines(summary.records, summary.accepted, summary.rejected_by_kind, summary.raised,
                              summary.resolved, summary.open_by_tier, stats["duplicate"], stats["late"]):
        click.echo(line, err=err)
    watermark = service.engine.watermark
    click.echo(f"clock: {watermark.isoformat() if watermark else 'not started'}", err=err)


@main.command("simulate")
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--customers", type=int, default=400, show_default=True)
@click.option("--days", type=int, default=200, show_default=True)
@click.option("--events", type=int, default=None, help="Stop after this many events.")
@click.option("--bad-rate", type=float, default=0.0, help="Share of records to spoil (to exercise rejections).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None, help="File (default stdout).")
@click.option("--to-kafka", is_flag=True, help="Send the events to their Kafka source topics instead (as `riskwatch produce`).")
@click.option("--broker", default=None, help="With --to-kafka: bootstrap HOST:PORT[,...] (RISKWATCH_BROKER).")
@click.option("--topic-prefix", default=None, help="With --to-kafka: topic prefix (RISKWATCH_TOPIC_PREFIX).")
def simulate_command(seed: int, customers: int, days: int, events: int | None, bad_rate: float, output: Path | None,
                     to_kafka: bool, broker: str | None, topic_prefix: str | None) -> None:
    """Write a seeded simulation of a sales business as JSON-lines events."""
    settings = SimulationSettings(seed=seed, customers=customers, days=days, events=events, bad_record_rate=bad_rate)
    if to_kafka:
        from riskwatch.cli.worker import send_lines  # kafka-python, loaded only when asked for

        if output:
            raise click.UsageError("--to-kafka and --output exclude each other")
        kafka = settings_or_usage(broker=broker, topic_prefix=topic_prefix)
        started = time.monotonic()
        sent, skipped = send_lines(kafka, ((f"simulated event {n}", line) for n, line in enumerate(simulate(settings), 1)))
        click.echo(f"sent {sent} events to {kafka.topic_prefix}* on {kafka.broker} in {time.monotonic() - started:.1f} s; "
                   f"{skipped} not sent", err=True)
        if skipped:
            sys.exit(1)
        return
    stream = open(output, "wb") if output else sys.stdout.buffer  # noqa: SIM115
    try:
        for line in simulate(settings):
            stream.write(line + b"\n")
    finally:
        if output:
            stream.close()
        else:
            stream.flush()


# Two simulated years from the simulation's fixed start: every event lies in
# the past, so none is refused as in the future (DOMAIN §3).
RUN_DAYS = 730


def _refuse_a_simulation_into_the_future(days: int, tolerance_seconds: float) -> None:
    """A usage error if `days` of simulation from its start would reach past the wall clock.

    Such events would be rejected as in the future (DOMAIN §3) from that day
    on: better to say so before starting than to run into a wall of rejections.
    """
    if tolerance_seconds < 0:
        return
    end = SimulationSettings().start + timedelta(days=days)
    if end.timestamp() > time.time() + tolerance_seconds:
        raise click.BadParameter(
            f"{days} simulated days from {SimulationSettings().start:%Y-%m-%d} reach {end:%Y-%m-%d}, past today: "
            f"those events would be rejected as in the future (give fewer days, or --future-tolerance -1 "
            f"to turn the check off)", param_hint="--days")


def _fresh_store_for_a_simulation(settings) -> None:
    """A simulation starts its business over each time: a store an earlier run left
    (it holds a service clock) is set aside, not fed again. Fed again, the
    same alert ids would arrive behind the states already recorded and the
    console would keep showing the earlier run. The earlier store is kept
    beside it, renamed; `--input` runs keep theirs (re-feeding the same
    events records nothing twice)."""
    from riskwatch.alerts import StoreError, WorkflowStore

    store_dir = Path(settings.store_dir)
    if not store_dir.is_dir() or not any(store_dir.iterdir()):
        return
    try:
        store = WorkflowStore(store_dir)
        try:
            clock = store.service_clock()
        finally:
            store.close()
    except StoreError:
        return  # opening the desk reports what is wrong with it
    if clock is None:
        return
    kept = store_dir.with_name(f"{store_dir.name}.{time.strftime('%Y%m%dT%H%M%S')}")
    store_dir.rename(kept)
    click.echo(f"riskwatch run: {store_dir} holds an earlier run (service clock {clock:%Y-%m-%d}); this simulation "
               f"starts in a fresh store, the earlier one is kept as {kept}", err=True)


def _serve_console_beside(settings, host: str, port: int | None, customer_facts=None):
    """The console beside `run` (riskwatch.console.beside), its address and
    sign-in tokens printed on stderr; None, with the reason, when it cannot
    be served: the run itself goes on."""
    from riskwatch.console.beside import ConsoleNotServed, serve_console

    try:
        console = serve_console(settings, host, settings.api_port if port is None else port,
                                customer_facts=customer_facts)
    except ConsoleNotServed as error:
        click.echo(f"riskwatch run: console not served: {error}", err=True)
        return None
    click.echo(f"riskwatch run: console at {console.url}", err=True)
    if console.tokens_file is not None:
        by_role = {role: token for token, role in console.tokens.items()}
        click.echo(f"  sign in with a token made for this run (also in {console.tokens_file}):", err=True)
        for role in ("officer", "director", "operator", "readonly"):
            click.echo(f"    {role:<9} {by_role[role]}", err=True)
    else:
        click.echo("  sign in with a token of RISKWATCH_API_TOKENS", err=True)
    return console


@main.command()
@click.option("--seed", type=int, default=7, show_default=True, help="Seed of the simulated business.")
@click.option("--input", "input_path", type=click.Path(path_type=Path), default=None,
              help="Read events from this JSON-lines file (or export, with --mapping) instead of simulating.")
@_mapping_option
@click.option("--customers", type=int, default=400, show_default=True)
@click.option("--days", type=int, default=RUN_DAYS, show_default=True,
              help="Simulated days from the simulation's start (2024-01-01): two years, all of them in the past.")
@click.option("--rate", type=float, default=2000.0, show_default=True, help="Events per second (0: as fast as possible).")
@click.option("--metrics-port", type=int, default=None, help="Port for /metrics (default 9464; 0 picks a free one).")
@click.option("--metrics-host", default="127.0.0.1", show_default=True)
@click.option("--rules", "rules_dir", type=click.Path(path_type=Path), default=None)
@click.option("--alertmanager", default=None, help="Also push alerts to this Alertmanager URL.")
@click.option("--store-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the alert desk keeps acknowledgements, plans and reviews (default var/store).")
@click.option("--exit-when-done/--serve-when-done", default=False,
              help="With --input or --days: exit at the end instead of serving metrics until Ctrl-C.")
@click.option("--live/--lines", "live", default=None,
              help="A live summary of open alerts, the most urgent first (default when stdout is a terminal), "
                   "or one line per alert change (default otherwise).")
@click.option("--quiet", is_flag=True, help="Only the summary: no live view, no alert lines.")
@click.option("--color/--no-color", default=None, help="Colour tiers (default: when stdout is a terminal).")
@click.option("--console-port", type=int, default=None,
              help="Port of the console and API (default RISKWATCH_API_PORT, 8080; 0 picks a free one).")
@click.option("--console/--no-console", "with_console", default=True, show_default=True,
              help="Serve the console (and the API) beside the run, on --metrics-host.")
@_future_tolerance_option
@alertmanager_delivery_options
def run(seed: int, input_path: Path | None, customers: int, days: int, rate: float, metrics_port: int | None,
        metrics_host: str, rules_dir: Path | None, alertmanager: str | None, store_dir: Path | None,
        exit_when_done: bool, live: bool | None, quiet: bool, color: bool | None, console_port: int | None,
        with_console: bool, mapping_path: Path | None, future_tolerance: float | None, **delivery: object) -> None:
    """The main job, embedded: simulate (or read) events, evaluate, show alerts live (a summary of what
    needs attention on a terminal, one line per alert change otherwise), serve /metrics."""
    from prometheus_client import CollectorRegistry

    from riskwatch.metrics_server import serve_metrics

    settings = settings_or_usage(rules_dir=rules_dir, metrics_port=metrics_port, alertmanager_url=alertmanager,
                                 store_dir=store_dir, future_tolerance_seconds=future_tolerance, **delivery)
    if input_path is None:
        _refuse_a_simulation_into_the_future(days, settings.future_tolerance_seconds)
    ruleset = rules_or_exit(settings.rules_dir)
    if mapping_path is not None and input_path is None:
        raise click.UsageError("--mapping reads the --input file: give --input too")
    mapping = _mapping_or_exit(mapping_path)
    inputs = _open_inputs([str(input_path)]) if input_path is not None and mapping is None else None
    export = _open_export(mapping, str(input_path)) if mapping is not None else None
    registry = CollectorRegistry()
    metrics = RiskwatchMetrics.create(registry)
    metrics.up.labels(component="run").set(1)
    metrics.rules_loaded_timestamp_seconds.set(time.time())
    try:
        server = serve_metrics(registry, metrics_host, settings.metrics_port)
    except OSError as error:
        click.echo(f"cannot serve metrics on {metrics_host}:{settings.metrics_port}: {error.strerror or error}", err=True)
        sys.exit(EXIT_UNREADABLE)
    host, port = server.server_address[:2]
    click.echo(f"riskwatch run: metrics at http://{host}:{port}/metrics (rules: {settings.rules_dir})", err=True)
    colour = sys.stdout.isatty() if color is None else color
    view = None
    if not quiet and (sys.stdout.isatty() if live is None else live):
        from riskwatch.cli.live import LiveView

        # (label, URL) pairs the live view shows; whatever else run serves is added here.
        view = LiveView([("metrics", f"http://{host}:{port}/metrics")], colour=colour)

    def show(record: dict) -> None:
        if not quiet:
            click.echo(alert_line(record, colour=colour))

    from riskwatch.alerts import StoreError, open_desk

    am_sink = _alertmanager_sink(settings, metrics)
    if input_path is None:
        _fresh_store_for_a_simulation(settings)
    # The desk tracks acknowledgement, escalation and reviews; Alertmanager
    # gets the desk's view (escalated owner, snoozes), not the raw engine record.
    try:
        desk = open_desk(settings, metrics=metrics, notify=am_sink.send if am_sink is not None else None)
    except StoreError as error:
        server.shutdown()
        click.echo(f"riskwatch run: {error}", err=True)
        sys.exit(EXIT_STORE)
    service = EmbeddedService(ruleset, settings.lateness_seconds, metrics=metrics, manage_gc=True,
                              future_tolerance_seconds=settings.future_tolerance_seconds,
                              desk=desk, alertmanager=am_sink, sinks=[view.record if view is not None else show])
    console = (_serve_console_beside(settings, metrics_host, console_port, customer_facts=service.customer_view)
               if with_console else None)
    if console is not None and view is not None:
        view.served.append(("console", console.url))

    loop = RunLoop(service, rate=rate, view=view, say=lambda text: click.echo(text, err=True),
                   report=lambda: _print_summary(service, err=True))
    signal.signal(signal.SIGTERM, loop.stop)
    signal.signal(signal.SIGINT, loop.stop)
    if view is not None:
        view.start(service, desk)

    unit = "line"
    if inputs is not None:
        (label, stream), = inputs
        source = read_lines(stream, too_large=_refuse_too_large(service, label))
    elif export is not None:
        label, unit = str(input_path), "row"
        source = export(service)
    else:
        source = enumerate(simulate(SimulationSettings(seed=seed, customers=customers, days=days)), start=1)
        label = "simulation"
    serving = None if exit_when_done else (
        f"input done; still serving http://{host}:{port}/metrics"
        + (f" and the console at {console.url}" if console is not None else "") + "; Ctrl-C to stop")
    try:
        loop.run(source, label, serving, unit=unit)
    except OSError as error:
        _stop_run(metrics, server, service,
                  f"{label}: cannot read further after {unit} {loop.line}: {error.strerror or error}",
                  EXIT_UNREADABLE, view)
    except StoreError as error:
        # Going on would evaluate alerts the desk cannot record. What was
        # recorded stays; feeding the same input again stores each alert
        # change once, so a rerun after the fix loses nothing.
        _stop_run(metrics, server, service, f"riskwatch run: stopped at {label} {unit} {loop.line}: {error}",
                  EXIT_STORE, view)
    metrics.up.labels(component="run").set(0)
    service.close()
    if console is not None:
        console.stop()
    server.shutdown()
