"""Keep the cyclic garbage collector's full passes short as state grows.

Engine state is millions of long-lived objects; a full collection walks every
tracked one, so its pause grows with the state (half a second at a million
open entities). Every `every` events the policy collects the young objects
and then freezes the survivors (`gc.freeze`): later full collections skip
them. Frozen objects are still freed by reference counting, and the state
holds no cycles, so nothing leaks in practice; only cyclic garbage among
frozen objects would outlive its use.
"""

from __future__ import annotations

import gc
import time


class FreezeLongLived:
    __slots__ = ("every", "_seen", "longest_pause")

    def __init__(self, every: int = 20_000):
        self.every = every
        self._seen = 0
        self.longest_pause = 0.0  # seconds, of the policy's own collections while running
        # Start-up: what the imports built (pydantic schemas, FastAPI, faust) lives
        # as long as the process; set it aside once, before the first event.
        gc.collect()
        gc.freeze()

    def tick(self, events: int = 1) -> None:
        self._seen += events
        if self._seen >= self.every:
            self._seen = 0
            started = time.perf_counter()
            gc.collect()
            gc.freeze()
            self.longest_pause = max(self.longest_pause, time.perf_counter() - started)
