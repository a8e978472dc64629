"""Kafka record shapes shared by the worker, `riskwatch produce` and `riskwatch tail`.

Pure functions over bytes and dicts (no faust, no client imports at module
level), so the faust worker and the kafka-python commands build the same
records:

- which source topic and key an input event goes to (DOMAIN.md §3),
- the alert record for `riskwatch.alerts`, keyed by `alert_id` (§7),
- the dead-letter record: original bytes unchanged, Kafka Connect style
  headers, cut (keeping the start) when too large for the broker (§7).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import orjson

from riskwatch.contracts import AlertChange
from riskwatch.models import STREAM_OF_TYPE

SOURCE_STREAMS = ("orders", "deliveries", "payments", "competitor-prices", "customers")
ALERTS = "alerts"
# People's and the clock's actions on alerts, plans and reviews (docs/contracts-internal.md).
ACTIONS = "actions"
DEAD_LETTER = "dead-letter"

# The producers' default max.request.size is 1 MiB (Kafka and aiokafka) and
# a record also carries its headers and batch overhead; a dead letter larger
# than this keeps its first bytes only.
DEAD_LETTER_MAX_VALUE_BYTES = 960_000

HEADER_REASON = "riskwatch.reason"
HEADER_KIND = "riskwatch.reason.kind"
HEADER_TOPIC = "riskwatch.source.topic"
HEADER_PARTITION = "riskwatch.source.partition"
HEADER_OFFSET = "riskwatch.source.offset"
HEADER_TRUNCATED = "riskwatch.truncated"


def topic_name(prefix: str, stream: str) -> str:
    """`riskwatch.` + `orders` -> `riskwatch.orders`."""
    return f"{prefix}{stream}"


def source_topics(prefix: str) -> list[str]:
    return [topic_name(prefix, stream) for stream in SOURCE_STREAMS]


def route_line(raw: bytes) -> tuple[str, bytes | None] | None:
    """The stream and partition key of one JSON-lines input record.

    Only the routing fields are read: validating the event is the worker's
    job, so a record that routes but is otherwise bad still reaches the
    worker and its dead-letter topic. None when the record names no known
    `type` (the caller decides where such a record goes).
    """
    try:
        record = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(record, dict):
        return None
    return route_event(record)


def route_event(event: dict) -> tuple[str, bytes | None] | None:
    """The stream ("payments") and partition key (customer_id, or sku for
    competitor prices, as bytes; None when absent) of one event as a dict;
    None when its `type` is not a known event type."""
    stream = STREAM_OF_TYPE.get(event.get("type"))  # type: ignore[arg-type]
    if stream is None:
        return None
    key_field = "sku" if stream == "competitor-prices" else "customer_id"
    key = event.get(key_field)
    return stream, (str(key).encode() if key is not None else None)


def alert_record(change: AlertChange) -> tuple[bytes, bytes]:
    """Key and value of one alert change on the alerts topic (the published record)."""
    return change.alert_id.encode(), orjson.dumps(change.to_json())


@dataclass(frozen=True)
class DeadLetter:
    value: bytes
    headers: list[tuple[str, bytes]]


def dead_letter(
    original: bytes | None,
    *,
    reason: str,
    kind: str,
    topic: str,
    partition: int,
    offset: int,
    max_bytes: int = DEAD_LETTER_MAX_VALUE_BYTES,
) -> DeadLetter:
    """The dead-letter record for a refused input record (DOMAIN.md §7)."""
    value = original if original is not None else b""
    headers = [
        (HEADER_REASON, reason.encode("utf-8", "replace")[:1000]),
        (HEADER_KIND, kind.encode()),
        (HEADER_TOPIC, topic.encode()),
        (HEADER_PARTITION, str(partition).encode()),
        (HEADER_OFFSET, str(offset).encode()),
    ]
    if len(value) > max_bytes:
        headers.append((HEADER_TRUNCATED, f"{len(value)} bytes cut to the first {max_bytes}".encode()))
        value = value[:max_bytes]
    return DeadLetter(value=value, headers=headers)


def describe_headers(headers: Iterable[tuple[str, bytes]] | None) -> dict[str, str]:
    return {name: (value or b"").decode("utf-8", "replace") for name, value in headers or ()}
