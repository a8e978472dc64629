"""Kafka commands: `worker` (the faust stream processors), `produce` (JSON-lines
events to their source topics) and `tail`, also `alerts tail` (alert changes
from the alerts topic).

Parses flags, builds settings, wires; the stream logic lives in `streams/`
and the record shapes in `riskwatch.sinks.kafka`.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Iterable

import click
import orjson

from riskwatch.cli import main
from riskwatch.lines import read_lines
from riskwatch.cli.options import alertmanager_delivery_options, settings_or_usage
from riskwatch.models import MAX_EVENT_BYTES
from riskwatch.settings import Settings
from riskwatch.sinks.kafka import (
    ALERTS,
    route_line,
    topic_name,
)


_broker_option = click.option("--broker", help="Kafka bootstrap HOST:PORT[,...] (RISKWATCH_BROKER).")
_prefix_option = click.option("--topic-prefix", help="Prefix of every topic name, default 'riskwatch.' (RISKWATCH_TOPIC_PREFIX).")


@main.command()
@_broker_option
@click.option("--web-port", type=int, help="Port of /metrics, /livez and /readyz (RISKWATCH_WEB_PORT).")
@click.option("--state-dir", type=click.Path(path_type=Path), help="Local faust data (RISKWATCH_STATE_DIR).")
@click.option("--rules", "rules_dir", type=click.Path(path_type=Path, file_okay=False), help="Rule directory (RISKWATCH_RULES).")
@click.option("--idle-advance", "idle_advance_seconds", type=float,
              help="Advance the clock by wall-clock time after this many idle seconds; 0 turns it off (RISKWATCH_IDLE_ADVANCE_SECONDS).")
@click.option("--lateness", "lateness_seconds", type=float, help="Allowed lateness in seconds (RISKWATCH_LATENESS_SECONDS).")
@click.option("--future-tolerance", "future_tolerance_seconds", type=float,
              help="Dead-letter events whose occurred_at is more than this many seconds beyond the wall clock; "
                   "default 3600, negative turns the check off (RISKWATCH_FUTURE_TOLERANCE_SECONDS).")
@_prefix_option
@click.option("--alertmanager", "alertmanager_url", help="Alertmanager base URL to push alerts to (RISKWATCH_ALERTMANAGER).")
@click.option("--partitions", type=int, default=None,
              help="Partitions of the topics the worker creates, all co-partitioned; default 4 (RISKWATCH_PARTITIONS).")
@click.option("--tick", "tick_seconds", type=float, default=None,
              help="Seconds between clock ticks that fire absence deadlines; default 0.25 (RISKWATCH_TICK_SECONDS).")
@click.option("--log-level", help="Log level (RISKWATCH_LOG_LEVEL).")
@click.option("--cdc-mapping", "cdc_mappings", type=click.Path(path_type=Path), multiple=True,
              help="Follow a database table's Debezium change events through this mapping file "
                   "(source.format: debezium), or through every mapping in this directory; repeatable "
                   "(RISKWATCH_CDC_MAPPINGS, comma-separated).")
@click.option("--cdc-topic-prefix", help="The Debezium connector's topic.prefix: a mapped table's changes are read "
                                         "from <prefix>.<schema>.<table> unless its mapping names source.topic "
                                         "(RISKWATCH_CDC_TOPIC_PREFIX).")
@alertmanager_delivery_options
def worker(partitions: int | None, tick_seconds: float | None, cdc_mappings: tuple[Path, ...],
           **flags: object) -> None:
    """Run the Kafka stream processors (faust) until stopped.

    With change mappings it also reads the Debezium change topics of their
    tables, maps each change to events, sends them to the source topics
    and dead-letters what cannot be mapped (docs/ingest.md).
    """
    from riskwatch.errors import RulesError
    from streams.app import WorkerOptions, create_app, run_worker
    from riskwatch.topics import copartition_problem, copartitioned_topics, ensure_topics, partition_counts

    settings = settings_or_usage(partitions=partitions, tick_seconds=tick_seconds, cdc_mappings=cdc_mappings or None, **flags)
    partitions, tick_seconds = settings.partitions, settings.tick_seconds
    cdc = _cdc_plan(settings)
    if settings.alertmanager_url:
        from riskwatch.sinks.delivery import DeliveryPolicy

        # Refused before any broker is contacted, as `run` and `replay` do,
        # rather than as a traceback from the desk once the topics exist.
        try:
            DeliveryPolicy.from_settings(settings)
        except ValueError as error:
            raise click.UsageError(str(error)) from None
    created = ensure_topics(settings.broker, settings.topic_prefix, partitions)
    if created:
        click.echo(f"riskwatch worker: created topics {', '.join(created)}", err=True)
    problem = copartition_problem(partition_counts(settings.broker, copartitioned_topics(settings.topic_prefix)))
    if problem:
        # A distinct status: restarting does not help, the operator must repartition.
        click.echo(f"riskwatch worker: {problem}", err=True)
        sys.exit(3)
    try:
        app, _ = create_app(WorkerOptions(settings=settings, partitions=partitions, tick_seconds=tick_seconds, cdc=cdc))
    except RulesError as error:
        for problem in error.problems:
            click.echo(problem, err=True)
        sys.exit(1)
    click.echo(
        f"riskwatch worker: broker {settings.broker}, topics {settings.topic_prefix}*, "
        f"metrics and health on http://0.0.0.0:{settings.web_port}/metrics",
        err=True,
    )
    if cdc is not None:
        click.echo(f"riskwatch worker: following changes of {cdc.describe()}", err=True)
    run_worker(app, settings.log_level)


def _cdc_plan(settings: Settings):
    """The change mappings the worker follows (riskwatch.ingest.cdc.CdcPlan), None without any;
    on a problem, every one on stderr and exit 1, before any broker is contacted."""
    if not settings.cdc_mappings:
        return None
    from riskwatch.errors import MappingError
    from riskwatch.ingest.cdc import load_cdc
    from riskwatch.topics import changelog_topic, worker_topics

    own = [*worker_topics(settings.topic_prefix, settings.partitions), changelog_topic(settings.topic_prefix)]
    try:
        return load_cdc(settings.cdc_mappings, settings.cdc_topic_prefix, reserved=own)
    except MappingError as error:
        for problem in error.problems:
            click.echo(problem, err=True)
        click.echo(f"riskwatch worker: {len(error.problems)} problem(s) in the change mappings; not started", err=True)
        sys.exit(1)


@main.command()
@click.argument("files", nargs=-1, required=True)
@_broker_option
@_prefix_option
@click.option("--topic", help="Send every line to this topic unchanged instead of routing by event type.")
def produce(files: tuple[str, ...], topic: str | None, **flags: object) -> None:
    """Send JSON-lines events (FILE... or - for stdin) to their source topics.

    Each event goes to the topic of its `type`, keyed by customer_id (sku
    for competitor prices), as DOMAIN §3 says. Lines that name no known type,
    lines over the record limit and lines the broker did not acknowledge are
    listed on stderr with their line number and reason, and the command then
    exits with status 1; `--topic` sends everything, as is, to one topic.
    """
    settings = settings_or_usage(**flags)
    started = time.monotonic()

    def lines():
        for path in files:
            # The reader stops reading a line at the record limit; the line is
            # reported in its place with its true size.
            oversize: list[tuple[int, int]] = []
            for number, line in read_lines(path, too_large=lambda n, size: oversize.append((n, size))):
                while oversize:
                    at, size = oversize.pop(0)
                    yield f"{path}:{at}", OversizeLine(size)
                yield f"{path}:{number}", line
            for at, size in oversize:
                yield f"{path}:{at}", OversizeLine(size)

    sent, skipped = send_lines(settings, lines(), topic=topic)
    elapsed = time.monotonic() - started
    click.echo(f"sent {sent} events in {elapsed:.1f} s; {skipped} lines not sent", err=True)
    if skipped:
        sys.exit(1)


class OversizeLine(bytes):
    """A line over the record limit that the reader did not read whole:
    `size` is its length in bytes (the value itself is empty)."""

    def __new__(cls, size: int) -> "OversizeLine":
        line = super().__new__(cls, b"")
        line.size = size
        return line


def send_lines(settings: Settings, lines: Iterable[tuple[str, bytes]], *, topic: str | None = None) -> tuple[int, int]:
    """Send (origin, JSON line) pairs to their source topics (DOMAIN §3); returns (sent, not sent).

    Shared by `produce` and `simulate --to-kafka`. "Sent" counts lines the
    broker acknowledged (acks=all), nothing else. Every line not sent is
    listed on stderr as "<origin>: not sent: <reason>":

    - a line naming no known event type (the worker would dead-letter it);
    - a line longer than the event contract's record limit
      (`MAX_EVENT_BYTES`, DOMAIN §3 "Sizes"), refused before sending (the
      worker would only dead-letter it);
    - a line the broker refused or that could not be delivered (the
      delivery result of every send is checked after the final flush).

    Lines are reported in input order once everything is flushed.
    """
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    producer = KafkaProducer(
        bootstrap_servers=settings.broker.split(","),
        acks="all",
        linger_ms=20,
        batch_size=256 * 1024,
        max_request_size=2 * 1024 * 1024,
        # The broker refuses a whole per-partition batch when one record in
        # it is too large for the topic; kafka-python then splits the batch
        # and sends the halves again, so only that record fails. With the
        # idempotent producer the split halves are refused as well, and so
        # is everything sent to that partition afterwards; one request in
        # flight keeps each partition's order across retries instead.
        enable_idempotence=False,
        max_in_flight_requests_per_connection=1,
    )
    acknowledged = 0
    pending: dict[int, str] = {}      # input position -> origin, until the send has its result
    # (input position, origin, reason): reported in input order.
    not_sent: list[tuple[int, str, str]] = []
    failed: list[tuple[int, str, BaseException]] = []

    def delivered(seq: int, _metadata: object) -> None:
        nonlocal acknowledged
        acknowledged += 1
        pending.pop(seq, None)

    def refused(seq: int, origin: str, error: BaseException) -> None:
        failed.append((seq, origin, error))
        pending.pop(seq, None)

    def send(seq: int, origin: str, name: str, key: bytes | None, line: bytes) -> None:
        # The producer's I/O thread runs the callbacks; each appends or adds once.
        try:
            future = producer.send(name, key=key, value=line)
        except KafkaError as error:
            failed.append((seq, origin, error))
            return
        pending[seq] = origin
        future.add_callback(delivered, seq)
        future.add_errback(refused, seq, origin)

    try:
        for seq, (origin, line) in enumerate(lines):
            size = line.size if isinstance(line, OversizeLine) else len(line)
            if size > MAX_EVENT_BYTES:
                not_sent.append((seq, origin, f"line is {size} bytes; the limit is {MAX_EVENT_BYTES} (DOMAIN §3 Sizes)"))
                continue
            if topic is not None:
                send(seq, origin, topic, None, line)
                continue
            route = route_line(line)
            if route is None:
                not_sent.append((seq, origin, "no known event type"))
                continue
            stream, key = route
            send(seq, origin, topic_name(settings.topic_prefix, stream), key, line)
        _settle(producer, pending)
    finally:
        producer.close()
    not_sent.extend((seq, origin, "no delivery result from the broker") for seq, origin in list(pending.items()))
    not_sent.extend((seq, origin, _delivery_error(error)) for seq, origin, error in failed)
    not_sent.sort()
    for _, origin, reason in not_sent:
        click.echo(f"{origin}: not sent: {reason}", err=True)
    return acknowledged, len(not_sent)


def _settle(producer: object, pending: dict, timeout: float = 180.0) -> None:
    """Flush until every send has its result (or `timeout` seconds pass).

    kafka-python may split a batch the broker refuses as too large and send
    the halves again; its `flush` can then raise "Future not done" for the
    batch it split while the halves are still on their way, hence the loop
    over `pending`, which the delivery callbacks empty.
    """
    from kafka.errors import KafkaError

    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        try:
            producer.flush(timeout=max(1.0, deadline - time.monotonic()))  # type: ignore[attr-defined]
        except KafkaError:
            time.sleep(0.05)


def _refused_as_too_large(error: BaseException) -> bool:
    name = type(error).__name__
    return "MessageSizeTooLarge" in name or "RecordListTooLarge" in name


def _delivery_error(error: BaseException) -> str:
    name = type(error).__name__
    text = str(error)
    if _refused_as_too_large(error):
        return f"the broker refused it as too large ({name}): check the topic's max.message.bytes"
    return f"{name}: {text}" if text and text != name else name


@main.command()
@_broker_option
@_prefix_option
@click.option("--json", "as_json", is_flag=True, help="Print each change as one JSON line.")
@click.option("--follow/--no-follow", default=True, show_default=True,
              help="Keep waiting for new changes, or stop once caught up.")
@click.option("--from-beginning/--from-now", default=True, show_default=True)
@click.option("--colour/--no-colour", default=None, help="Colour by tier (default: when stdout is a terminal).")
def tail(as_json: bool, follow: bool, from_beginning: bool, colour: bool | None, **flags: object) -> None:
    """Print alert changes from the alerts topic as they arrive."""
    from kafka import KafkaConsumer

    from riskwatch.render import alert_line

    settings = settings_or_usage(**flags)
    colour = sys.stdout.isatty() if colour is None else colour
    consumer = KafkaConsumer(
        topic_name(settings.topic_prefix, ALERTS),
        bootstrap_servers=settings.broker.split(","),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest" if from_beginning else "latest",
        consumer_timeout_ms=-1 if follow else 3000,
    )
    try:
        for record in consumer:
            try:
                change = orjson.loads(record.value)
            except orjson.JSONDecodeError:
                click.echo(f"(unreadable record at offset {record.offset})", err=True)
                continue
            if as_json:
                click.echo(record.value.decode())
            else:
                click.echo(alert_line(change, colour=colour))
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()


def _register_alerts_tail() -> None:
    # `riskwatch alerts tail`: the same command in the group people use to work alerts.
    from riskwatch.cli.api import alerts_group

    alerts_group.add_command(tail, "tail")


_register_alerts_tail()
