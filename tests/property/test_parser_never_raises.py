"""The parser's promise: whatever arrives on a topic, parse_event returns an
event or a rejection; it never raises and never stops the stream."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from riskwatch.models import EVENT_MODELS, Rejection, parse_event

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
field_names = st.sampled_from([
    "event_id", "type", "occurred_at", "order_id", "customer_id", "amount", "currency", "shipment_id",
    "promised_at", "eta", "delivered_at", "invoice_id", "due_at", "competitor", "sku", "price", "our_price",
    "tier", "region", "credit_limit", "customer_tier",
]) | st.text(max_size=10)
plausible_values = st.one_of(
    json_values,
    st.sampled_from(sorted(EVENT_MODELS)),
    st.sampled_from(["2026-01-01T00:00:00Z", "2026-01-01T00:00:00", "2026-13-01T00:00:00Z", "-1", "1e9", "NaN"]),
)
json_objects = st.dictionaries(field_names, plausible_values, max_size=12)


def _outcome_is_valid(result) -> None:
    assert isinstance(result, (Rejection, *EVENT_MODELS.values())), result
    if isinstance(result, Rejection):
        assert result.kind and result.reason


@FAST
@given(st.binary(max_size=300))
def test_parse_event_never_raises_on_arbitrary_bytes(raw):
    _outcome_is_valid(parse_event(raw))


@FAST
@given(st.text(max_size=200))
def test_parse_event_never_raises_on_arbitrary_text(raw):
    _outcome_is_valid(parse_event(raw))


@FAST
@given(json_values)
def test_parse_event_never_raises_on_arbitrary_json(value):
    result = parse_event(json.dumps(value))
    _outcome_is_valid(result)
    if not isinstance(value, dict):
        assert isinstance(result, Rejection) and result.kind == "not_object"


@FAST
@given(json_objects, st.sampled_from(sorted(EVENT_MODELS)))
def test_parse_event_never_raises_on_arbitrary_objects_with_a_known_type(fields, event_type):
    record = {**fields, "type": event_type}
    result = parse_event(json.dumps(record))
    _outcome_is_valid(result)
    if not isinstance(result, Rejection):
        assert result.type == event_type


@FAST
@given(json_objects)
def test_a_rejection_names_a_field_or_the_record(fields):
    result = parse_event(json.dumps(fields))
    if isinstance(result, Rejection) and result.kind in ("missing_field", "invalid_field", "unknown_type"):
        field = result.reason.split(":", 1)[0]
        assert field and " " not in field, result.reason
