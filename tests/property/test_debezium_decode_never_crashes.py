"""decode_change's promise to the worker: whatever arrives on a CDC topic, it
returns a change or a tombstone's None, or raises ChangeError with a reason
(which the worker dead-letters) — never another exception."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from riskwatch.ingest.debezium import Change, ChangeError, decode_change

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DATA = Path(__file__).resolve().parents[1] / "data" / "debezium"
REAL = [json.loads(line) for name in sorted(DATA.glob("*.jsonl"))
        for line in name.read_text(encoding="utf-8").splitlines()]
REAL = [record for record in REAL if record["value"] is not None]

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=16,
)


def _decoded_or_refused(value: bytes | None, key: bytes | None) -> None:
    try:
        result = decode_change(value, key)
    except ChangeError as error:
        assert error.reason
        return
    assert result is None or isinstance(result, Change)


@FAST
@given(st.binary(max_size=300), st.none() | st.binary(max_size=60))
def test_arbitrary_bytes_are_decoded_or_refused(value, key):
    _decoded_or_refused(value, key)


def _paths(document, prefix=()):
    """Every (path) to a value inside a JSON document."""
    yield prefix
    if isinstance(document, dict):
        for name, inner in document.items():
            yield from _paths(inner, (*prefix, name))
    elif isinstance(document, list):
        for index, inner in enumerate(document):
            yield from _paths(inner, (*prefix, index))


def _replaced(document, path, value):
    if not path:
        return value
    copy = dict(document) if isinstance(document, dict) else list(document)
    copy[path[0]] = _replaced(document[path[0]], path[1:], value)
    return copy


@FAST
@given(st.data(), json_values)
def test_a_real_change_event_with_any_part_replaced_is_decoded_or_refused(data, replacement):
    record = data.draw(st.sampled_from(REAL))
    document = json.loads(record["value"])
    path = data.draw(st.sampled_from(list(_paths(document))))
    mutated = _replaced(document, path, replacement)
    _decoded_or_refused(json.dumps(mutated).encode(), record["key"].encode() if record["key"] else None)
