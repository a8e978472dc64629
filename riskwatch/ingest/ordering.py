"""Events of one or more exports put in event-time order, in bounded memory.

An export is sorted by invoice or order number, not by time: fed row by row,
one row's payment dated March moves the service clock to March before the
next row's January invoice arrives, and that invoice, paid in time, is
raised as overdue and resolved a moment later (DOMAIN §4: a raise in-order
processing would never make is a wrong alert). `replay` and `run` therefore
feed exported events by `occurred_at`. Up to `chunk` events are sorted in
memory; beyond, sorted runs are spilled to temporary files and merged
(heapq.merge), so memory stays bounded whatever the exports' size. Events
at the same instant keep their export order (an order's cancellation stays
before its shipment's schedule).
"""

from __future__ import annotations

import heapq
import os
import tempfile
from datetime import datetime
from typing import Iterable, Iterator

import orjson

# (sort key, source, row number, event line): the item sorted and given back.
Item = tuple[tuple[float, int], str, int, bytes]

CHUNK_EVENTS = 100_000


def occurred_instant(line: bytes) -> float:
    """The event's occurred_at in Unix seconds (the mapper wrote it as RFC 3339)."""
    return datetime.fromisoformat(orjson.loads(line)["occurred_at"]).timestamp()


def in_event_time_order(events: Iterable[tuple[str, int, bytes]], chunk: int = CHUNK_EVENTS
                        ) -> Iterator[tuple[str, int, bytes]]:
    """(source, row number, event line) items in order of occurred_at, ties
    in input order. Lines without a readable occurred_at (there are none
    from the mapper) sort first rather than failing the whole replay."""
    runs: list[str] = []
    buffer: list[Item] = []
    sequence = 0
    try:
        for source, number, line in events:
            try:
                instant = occurred_instant(line)
            except (ValueError, KeyError, TypeError):
                instant = float("-inf")
            buffer.append(((instant, sequence), source, number, line))
            sequence += 1
            if len(buffer) >= chunk:
                runs.append(_spill(buffer))
                buffer = []
        buffer.sort(key=_key)
        if not runs:
            for _, source, number, line in buffer:
                yield source, number, line
            return
        merged = heapq.merge(*(_read_run(path) for path in runs), iter(buffer), key=_key)
        for _, source, number, line in merged:
            yield source, number, line
    finally:
        for path in runs:
            try:
                os.unlink(path)
            except OSError:
                pass


def _key(item: Item) -> tuple[float, int]:
    return item[0]


def _spill(buffer: list[Item]) -> str:
    buffer.sort(key=_key)
    handle, path = tempfile.mkstemp(prefix="riskwatch-sort-", suffix=".jsonl")
    with os.fdopen(handle, "wb") as stream:
        for (instant, sequence), source, number, line in buffer:
            stream.write(orjson.dumps([instant if instant != float("-inf") else None, sequence, source, number,
                                       line.decode()]) + b"\n")
    return path


def _read_run(path: str) -> Iterator[Item]:
    with open(path, "rb") as stream:
        for text in stream:
            instant, sequence, source, number, line = orjson.loads(text)
            yield (float("-inf") if instant is None else instant, sequence), source, number, line.encode()
