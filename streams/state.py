"""Engine state for one partition, kept in a faust Table.

The engine wants a plain `MutableMapping`. One table holds the state of every
partition; a key is prefixed with the partition's name so the engines of two
partitions on one worker never share a key. Writes are buffered while the
engine runs and written out in `flush()`, which sends each change to the
table's changelog partition explicitly: that works from a timer too (faust's
`Table.__setitem__` needs a current stream event to pick the partition, and
goes through faust's one-message-at-a-time producer buffer), and
lets alert records (`a:` keys) go to the changelog before the bookkeeping
that says an event was applied, so a crash between the two can only leave
an alert re-sent, never lost.

Values are pickled here and the table is declared with `value_type=bytes`
(faust's "raw" codec): a faust Table picks its changelog codec from
`value_type` only and falls back to JSON, which would turn the engine's
named tuples into lists on recovery.
"""

from __future__ import annotations

import pickle

import orjson
from typing import Any, Iterator, MutableMapping

from riskwatch.contracts import AlertChange
from riskwatch.engine.alertbook import stored_state

_DELETED = object()
ALERT_PREFIX = "a:"


class PartitionState(MutableMapping[str, Any]):
    def __init__(self, table: Any, name: str, partition: int):
        self._table = table
        self._partition = partition
        self._prefix = f"{name}|"
        self._data: dict[str, Any] = {}
        self._pending: dict[str, Any] = {}
        self._unapplied: list[tuple[str, bytes | None]] = []
        cut = len(self._prefix)
        for key in list(table.data.keys()):
            if isinstance(key, str) and key.startswith(self._prefix):
                value = table.data[key]
                self._data[key[cut:]] = pickle.loads(value) if isinstance(value, (bytes, bytearray)) else value

    # MutableMapping over the local copy; values are replaced, never mutated
    # in place by the engine (faust only persists an assignment).
    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._data[key] = value
        self._pending[key] = value

    def __delitem__(self, key: str) -> None:
        del self._data[key]
        self._pending[key] = _DELETED

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def get(self, key: str, default: Any = None) -> Any:
        return self._data.get(key, default)

    def alert_records(self) -> list[AlertChange]:
        """The last change of every alert held in this partition."""
        return [stored_state(value).change for key, value in self._data.items() if key.startswith(ALERT_PREFIX)]

    def flush(self) -> list[tuple[bytes, bytes | None]]:
        """The changelog records of the buffered changes, alerts first: [(key, value)].

        Keys are encoded as faust's JSON key codec does, so faust's recovery
        reads them back; values are pickled bytes (None deletes). The table
        itself takes them only in `commit()`, once the broker has
        acknowledged them: a batch whose output failed leaves the table as
        it was, and the engine rebuilt from it has not seen the batch.
        """
        if not self._pending:
            return []
        pending = self._pending
        self._pending = {}
        ordered = sorted(pending.items(), key=lambda item: not item[0].startswith(ALERT_PREFIX))
        records: list[tuple[bytes, bytes | None]] = []
        for key, value in ordered:
            full = self._prefix + key
            if value is _DELETED:
                self._unapplied.append((full, None))
                records.append((orjson.dumps(full), None))
            else:
                blob = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
                self._unapplied.append((full, blob))
                records.append((orjson.dumps(full), blob))
        return records

    def commit(self) -> None:
        """Apply to the table what `flush` returned (after the broker acknowledged it)."""
        data = self._table.data
        for full, blob in self._unapplied:
            if blob is None:
                data.pop(full, None)
            else:
                data[full] = blob
        self._unapplied = []
