"""Absence deadlines: "undelivered 72 h after the promise", "unpaid 30 days
after due". Deadlines wait in a heap and fire when the clock passes them, so
the engine never scans all state. An entry is only a hint to re-evaluate its
entity; a stale entry re-evaluates to "nothing changed", so entries are never
removed, only skipped.
"""

from __future__ import annotations

import heapq


class DeadlineIndex:
    __slots__ = ("_heap",)

    def __init__(self) -> None:
        self._heap: list[tuple[float, str]] = []

    def schedule(self, deadline_ts: float, key: str) -> None:
        heapq.heappush(self._heap, (deadline_ts, key))

    def due(self, now_ts: float) -> list[str]:
        """Keys whose deadline the clock has strictly passed, oldest first, each once."""
        heap = self._heap
        keys: list[str] = []
        seen: set[str] = set()
        while heap and heap[0][0] < now_ts:
            _, key = heapq.heappop(heap)
            if key not in seen:
                seen.add(key)
                keys.append(key)
        return keys

    def next_deadline(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def clear(self) -> None:
        self._heap.clear()

    def __len__(self) -> int:
        return len(self._heap)
