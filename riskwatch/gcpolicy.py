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
            # The two young generations, not a full collection: only a full one
            # untracks dicts holding no tracked value (CPython's untrack_dicts),
            # and the engine's state dict is such a dict between writes of a
            # tuple. Untracked, it was tracked again by the next tuple written,
            # young again, and walked whole at every interval (a million keys:
            # 40-90 ms each time); kept tracked, it is frozen once and never
            # walked again. Everything older is frozen already.
            gc.collect(1)
            gc.freeze()
            self.longest_pause = max(self.longest_pause, time.perf_counter() - started)
