"""A customer's order window, bounded whatever its history.

The key-account check (riskwatch/engine/indicators/key_account_decline.py)
sums a customer's orders over two windows ending at a scheduled instant,
leaving out those cancelled by then. Instead of every order of the last
2 × 90 days (tens of thousands for a key account ordering every few
minutes, each order rebuilding the tuple), the customer record keeps:

- the sum placed per bucket of time, for the buckets of the order window;
- per cancelled order, (its bucket, the cancellation's bucket, its amount);
- the RECENT_ORDERS newest orders, for evidence and the console.

A bucket is `size` seconds, right-closed: bucket b holds (b·size, (b+1)·size].
`size` divides both the schedule and the window (their greatest common
divisor), and scheduled instants are multiples of the schedule, so every
window edge is a bucket edge: the sums are exact, as summing the orders was.
"""

from __future__ import annotations

import bisect
import math
from operator import itemgetter

from riskwatch.engine.records import RECENT_ORDERS, Customer


class OrderWindow:
    """Bucket arithmetic over `Customer` records: `size` and `keep` in seconds
    (`keep`: how far before a customer's newest order its buckets are kept)."""

    __slots__ = ("size", "keep")

    def __init__(self, size: float, keep: float):
        if size <= 0:
            raise ValueError("bucket size must be positive")
        self.size = float(size)
        self.keep = float(keep)

    @classmethod
    def for_schedule(cls, every: float | None, window: float, keep: float, default: float = 86400.0) -> "OrderWindow":
        """Buckets that every edge of a window of `window` seconds evaluated every `every` seconds falls on."""
        size = math.gcd(int(every or default), int(window)) or 1
        return cls(size, keep)

    def bucket(self, ts: float) -> int:
        return math.ceil(ts / self.size) - 1

    def placed(self, customer: Customer, order: tuple) -> Customer:
        """The customer with one more order: (ts, fen, order_id, region,
        event_id, cancelled_ts or None)."""
        ts, fen, cancelled_ts = order[0], order[1], order[5]
        recent = customer.recent
        newest = max(ts, recent[-1][0]) if recent else ts
        floor = self.bucket(newest - self.keep)
        bucket = self.bucket(ts)
        buckets = _add(customer.order_buckets, bucket, fen, floor)
        cancelled = customer.cancelled_buckets
        if cancelled_ts is not None:
            cancelled = _pruned(cancelled + ((bucket, self.bucket(cancelled_ts), fen),), floor)
        elif cancelled and cancelled[0][0] <= floor:
            cancelled = _pruned(cancelled, floor)
        index = bisect.bisect(recent, order)
        recent = (recent[:index] + (order,) + recent[index:])[-RECENT_ORDERS:]
        return customer._replace(recent=recent, order_buckets=buckets, cancelled_buckets=cancelled)

    def cancelled(self, customer: Customer, order_id: str, placed_ts: float, fen: int, cancelled_ts: float,
                  previous_ts: float | None) -> Customer:
        """The customer with an order cancelled at `cancelled_ts` (earlier than
        `previous_ts`, the cancellation it replaces, if any)."""
        bucket = self.bucket(placed_ts)
        entry = (bucket, self.bucket(cancelled_ts), fen)
        cancelled = customer.cancelled_buckets
        if previous_ts is not None:
            old = (bucket, self.bucket(previous_ts), fen)
            if old in cancelled:
                index = cancelled.index(old)
                cancelled = cancelled[:index] + cancelled[index + 1:]
        cancelled = tuple(sorted(cancelled + (entry,)))
        recent = tuple(o[:5] + (cancelled_ts,) if o[2] == order_id else o for o in customer.recent)
        return customer._replace(cancelled_buckets=cancelled, recent=recent)

    def placed_between(self, customer: Customer, after_ts: float, up_to_ts: float, as_of: float) -> int:
        """CNY fen of the orders placed in (after_ts, up_to_ts] not cancelled by `as_of`."""
        low, high, now = self.bucket(after_ts), self.bucket(up_to_ts), self.bucket(as_of)
        # Buckets are sorted: the window is one slice, found by bisection and
        # summed in C, instead of a Python step per bucket the record keeps
        # (a window's worth of days for every key account, every day).
        buckets = customer.order_buckets
        total = sum(map(_FEN, buckets[bisect.bisect_right(buckets, low, key=_BUCKET):
                                      bisect.bisect_right(buckets, high, key=_BUCKET)]))
        for bucket, cancelled_bucket, fen in customer.cancelled_buckets:
            if low < bucket <= high and cancelled_bucket <= now:
                total -= fen
        return total


def _add(buckets: tuple, bucket: int, fen: int, floor: int) -> tuple:
    if buckets and buckets[-1][0] == bucket and buckets[0][0] > floor:
        # The common case: another order in the newest bucket, nothing to drop.
        return buckets[:-1] + ((bucket, buckets[-1][1] + fen),)
    if buckets and bucket > buckets[-1][0]:
        # An order in a new newest bucket (a customer's first order of the
        # day): slicing off what fell below the floor keeps this independent
        # of how many buckets the record holds, where a Python step per
        # bucket grew with the window.
        if bucket <= floor:
            return buckets[bisect.bisect_right(buckets, floor, key=_BUCKET):]
        return buckets[bisect.bisect_right(buckets, floor, key=_BUCKET):] + ((bucket, fen),)
    kept = [pair for pair in buckets if pair[0] > floor]
    for index, (held, total) in enumerate(kept):
        if held == bucket:
            kept[index] = (bucket, total + fen)
            return tuple(kept)
    if bucket > floor:
        bisect.insort(kept, (bucket, fen))
    return tuple(kept)


_BUCKET, _FEN = itemgetter(0), itemgetter(1)


def _pruned(cancelled: tuple, floor: int) -> tuple:
    return tuple(sorted(entry for entry in cancelled if entry[0] > floor))
