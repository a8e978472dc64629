"""The event ids an engine has applied, each with a fingerprint of its
content: a redelivery changes nothing, the same id with other content is a
conflict (DOMAIN §4 "Duplicates").

Two stores behind one interface (`get`, `add`):

- `SeenInState`: chunks of the engine's state mapping, `e#<n>` -> up to
  `CHUNK_ENTRIES` packed entries. The Kafka worker's choice: its state is a
  changelogged table, so the index is recovered with the partition like
  every other record; a chunk is one changelog record for a whole batch's
  events, where an `e:<event_id>` entry per event (record schema 5 and
  before) was a third of the worker's produce requests.
- `PackedSeen`: the in-process engine's (`replay`, `run`), whose state lives
  as long as the process. About 20 bytes an event in bytearrays the
  garbage collector never walks, against about 130 for a state entry (the
  id string as a key, a boxed fingerprint, a dict slot): at a million open
  entities that is most of what issue 15's memory target asks for.
"""

from __future__ import annotations

import hashlib
from typing import MutableMapping, Protocol

SEEN = "e:"

# PackedSeen identifies an event id by 96 bits of its BLAKE2b digest: the
# first 16 choose the bucket, the other 80 are stored. Two ids collide with
# probability n² / 2^97 (10^-13 at 10^8 events); a collision would report the
# second as a conflict, never apply it twice.
_DIGEST_BYTES = 12
_BUCKET_BYTES = 2
_ID_BYTES = _DIGEST_BYTES - _BUCKET_BYTES
_FINGERPRINT_BYTES = 8
_ENTRY = _ID_BYTES + _FINGERPRINT_BYTES
_CHUNK_ENTRY = _BUCKET_BYTES + _ENTRY


class SeenEvents(Protocol):
    """event id -> 64-bit content fingerprint (`riskwatch.engine.core.fingerprint`)."""

    def get(self, event_id: str) -> int | None:
        """The fingerprint stored for `event_id`, None for an id never added."""

    def add(self, event_id: str, fingerprint: int) -> None:
        """Remember `event_id` with its fingerprint (an unsigned 64-bit int)."""


CHUNK = "e#"
# 32 entries of 20 bytes: a chunk record stays near 700 bytes, under any
# changelog's message size, and a batch of 500 events writes 16 of them.
CHUNK_ENTRIES = 32


class SeenInState:
    """The index kept in a state mapping (the worker's partition table) as
    chunks of packed entries, and in memory as a `PackedSeen`.

    `e#<n>` -> bytes: up to `CHUNK_ENTRIES` entries as `PackedSeen` packs
    them (bucket digest, id digest, fingerprint: 20 bytes). The newest chunk
    is rewritten with each id added, so a batch's ids cost the changelog
    one record per chunk they touch, not one per event. Built from the
    mapping as it is (a worker's recovered table, its schema checked: the
    `e:<event_id>` entries of schema 5 and before are migrated into chunks
    by `chunk_legacy_entries`); a mapping changed behind this object's back
    is not seen."""

    __slots__ = ("_state", "_index", "_chunk", "_current")

    def __init__(self, state: MutableMapping[str, object]):
        self._state = state
        self._index = PackedSeen()
        self._chunk = -1
        self._current = bytearray()
        for key, value in list(state.items()):
            if key.startswith(CHUNK):
                number = int(key[len(CHUNK):])
                for at in range(0, len(value), _CHUNK_ENTRY):
                    self._index.add_entry(value[at:at + _CHUNK_ENTRY])
                if number > self._chunk:
                    self._chunk, self._current = number, bytearray(value)
        if self._chunk < 0 or len(self._current) >= CHUNK_ENTRIES * _CHUNK_ENTRY:
            self._chunk, self._current = self._chunk + 1, bytearray()

    def __len__(self) -> int:
        return len(self._index)

    def get(self, event_id: str) -> int | None:
        return self._index.get(event_id)

    def add(self, event_id: str, fingerprint: int) -> None:
        self._current += self._index.add(event_id, fingerprint)
        self._state[CHUNK + str(self._chunk)] = bytes(self._current)
        if len(self._current) >= CHUNK_ENTRIES * _CHUNK_ENTRY:
            self._chunk, self._current = self._chunk + 1, bytearray()


class PackedSeen:
    """The index packed into 65,536 bytearrays of 18-byte entries (80 bits of
    the id's digest, then the 64-bit fingerprint, big-endian). A lookup
    searches one bucket (about n / 65,536 entries); an insertion appends.
    Memory: 18 bytes an event plus a bytearray's slack, and 57 bytes a bucket
    in use. Nothing here is tracked by the garbage collector."""

    __slots__ = ("_buckets", "_count", "_last_id", "_last_digest")

    def __init__(self) -> None:
        self._buckets: list[bytearray | None] = [None] * (1 << (8 * _BUCKET_BYTES))
        self._count = 0
        # `Engine.process` asks `get` then `add` for the same id: one digest.
        self._last_id: str | None = None
        self._last_digest = b""

    def __len__(self) -> int:
        return self._count

    def _digest(self, event_id: str) -> bytes:
        if event_id != self._last_id:
            self._last_digest = hashlib.blake2b(event_id.encode(), digest_size=_DIGEST_BYTES).digest()
            self._last_id = event_id
        return self._last_digest

    def get(self, event_id: str) -> int | None:
        digest = self._digest(event_id)
        bucket = self._buckets[int.from_bytes(digest[:_BUCKET_BYTES], "big")]
        if bucket is None:
            return None
        key = digest[_BUCKET_BYTES:]
        at = bucket.find(key)
        while at >= 0:
            # A match straddling two entries is not one.
            if at % _ENTRY == 0:
                return int.from_bytes(bucket[at + _ID_BYTES:at + _ENTRY], "big")
            at = bucket.find(key, at + 1)
        return None

    def add(self, event_id: str, fingerprint: int) -> bytes:
        """Remember `event_id`; the entry as `add_entry` takes it back (20 bytes)."""
        entry = self._digest(event_id) + fingerprint.to_bytes(_FINGERPRINT_BYTES, "big")
        self.add_entry(entry)
        return entry

    def add_entry(self, entry: bytes | bytearray) -> None:
        """One entry as `add` returned it: bucket digest, id digest, fingerprint."""
        index = int.from_bytes(entry[:_BUCKET_BYTES], "big")
        bucket = self._buckets[index]
        if bucket is None:
            bucket = self._buckets[index] = bytearray()
        bucket += entry[_BUCKET_BYTES:]
        self._count += 1


def chunk_legacy_entries(state: MutableMapping[str, object]) -> None:
    """Move `e:<event_id>` -> fingerprint entries (record schema 5 and before)
    into `e#<n>` chunks after any already there, deleting the entries."""
    legacy = [(key, value) for key, value in list(state.items()) if key.startswith(SEEN)]
    if not legacy:
        return
    seen = SeenInState(state)
    for key, fingerprint in legacy:
        del state[key]
        seen.add(key[len(SEEN):], fingerprint)
