"""Absence deadlines: "undelivered 72 h after the promise", "unpaid 30 days
after due". They fire when the clock passes them, so the engine never scans
all state. An entry is only a hint to re-evaluate its entity; a stale entry
re-evaluates to "nothing changed". The engine cancels the entry a fact made
needless (an invoice paid, a shipment delivered before its deadline), since
one such visit per document ever issued is work that grows with the
business; any other stale entry (a step of a growing delay after the alert
closed, a deadline moved by a revision) is skipped when it fires.

Deadlines are kept in one-minute buckets: per entry one 8-byte float in an
array and one reference to the (shared) state key, instead of a heap tuple
per entry (~90 bytes) — this index holds one entry per open shipment and
invoice, millions of them.
"""

from __future__ import annotations

import heapq
from array import array

BUCKET_SECONDS = 60.0


class DeadlineIndex:
    __slots__ = ("_buckets", "_order", "_size", "_earliest")

    def __init__(self) -> None:
        self._buckets: dict[int, tuple[array, list[str]]] = {}
        self._order: list[int] = []  # heap of bucket numbers
        self._size = 0
        self._earliest: dict[int, float] = {}  # bucket -> its earliest deadline

    def schedule(self, deadline_ts: float, key: str) -> None:
        number = int(deadline_ts // BUCKET_SECONDS) if deadline_ts != float("-inf") else -(2**62)
        bucket = self._buckets.get(number)
        if bucket is None:
            bucket = self._buckets[number] = (array("d"), [])
            heapq.heappush(self._order, number)
        if deadline_ts < self._earliest.get(number, float("inf")):
            self._earliest[number] = deadline_ts
        bucket[0].append(deadline_ts)
        bucket[1].append(key)
        self._size += 1

    def due(self, now_ts: float) -> list[str]:
        """Keys whose deadline the clock has strictly passed, oldest first, each once."""
        keys: list[str] = []
        seen: set[str] = set()
        order, buckets = self._order, self._buckets
        while order and order[0] * BUCKET_SECONDS < now_ts:
            number = order[0]
            deadlines, bucket_keys = buckets[number]
            if (number + 1) * BUCKET_SECONDS <= now_ts or number == -(2**62):
                heapq.heappop(order)
                del buckets[number]
                self._earliest.pop(number, None)
                ready = sorted(zip(deadlines, bucket_keys))
                self._size -= len(ready)
                for _, key in ready:
                    if key not in seen:
                        seen.add(key)
                        keys.append(key)
                continue
            # The bucket the clock is in: fire what is due, keep the rest.
            remaining_deadlines, remaining_keys = array("d"), []
            for deadline, key in sorted(zip(deadlines, bucket_keys)):
                if deadline < now_ts:
                    self._size -= 1
                    if key not in seen:
                        seen.add(key)
                        keys.append(key)
                else:
                    remaining_deadlines.append(deadline)
                    remaining_keys.append(key)
            if remaining_keys:
                buckets[number] = (remaining_deadlines, remaining_keys)
                self._earliest[number] = remaining_deadlines[0]  # sorted above
            else:
                heapq.heappop(order)
                del buckets[number]
                self._earliest.pop(number, None)
            break
        return keys

    def cancel(self, deadline_ts: float, key: str) -> None:
        """Drop the entries of `key` at exactly `deadline_ts` (Unix seconds), if any.

        For a deadline its entity no longer has (an invoice paid, a shipment
        delivered before it): left in place it would re-evaluate the entity to
        "nothing changed" once the clock passes it, and those visits, one per
        invoice and shipment ever scheduled, are work a growing business adds
        to every later stretch of events. Costs a scan of one minute's bucket."""
        number = int(deadline_ts // BUCKET_SECONDS)
        bucket = self._buckets.get(number)
        if bucket is None:
            return
        deadlines, keys = bucket
        if key not in keys:
            return
        # In place: the heap still names the bucket, and `due` drops it once
        # the clock reaches it, empty or not.
        for index in range(len(keys) - 1, -1, -1):
            if keys[index] == key and deadlines[index] == deadline_ts:
                del keys[index]
                del deadlines[index]
                self._size -= 1
        if deadlines:
            self._earliest[number] = min(deadlines)

    def next_deadline(self) -> float | None:
        if not self._order:
            return None
        return self._earliest[self._order[0]]

    def clear(self) -> None:
        self._buckets.clear()
        self._order.clear()
        self._earliest.clear()
        self._size = 0

    def __len__(self) -> int:
        return self._size
