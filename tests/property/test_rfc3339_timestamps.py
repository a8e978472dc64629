"""DOMAIN §3 "Timestamps": every timestamp field accepts exactly RFC 3339
date-time text with an offset, read as the instant it names; anything else
(a number, a compact date, a date alone, a time without an offset, an
offset beyond ±23:59) is a rejection naming the field."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from riskwatch import testing as t
from riskwatch.models import TIMESTAMP_FIELDS, Rejection, parse_event

FAST = settings(max_examples=150, deadline=None)

# One event per timestamp field that carries it.
CARRIERS = {
    "occurred_at": t.payment_received("INV-1", "C1", 10, event_id="e-1"),
    "promised_delivery_at": t.order_placed("ORD-1", "C1", 10, promised_delivery_at="2026-03-01T00:00:00Z",
                                           event_id="e-2"),
    "promised_at": t.delivery_scheduled("SHP-1", "C1", promised_at="2026-03-01T00:00:00Z", event_id="e-3"),
    "eta": t.eta_updated("SHP-1", "C1", eta="2026-03-01T00:00:00Z", event_id="e-4"),
    "delivered_at": t.delivered("SHP-1", "C1", delivered_at="2026-03-01T00:00:00Z", at=t.DEFAULT_AT, event_id="e-5"),
    "due_at": t.invoice_issued("INV-1", "C1", 10, due_at="2026-03-01T00:00:00Z", event_id="e-6"),
}
fields = st.sampled_from(sorted(TIMESTAMP_FIELDS))

offsets = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))
instants = st.builds(
    lambda naive, zone: naive.replace(tzinfo=zone),
    st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(9998, 12, 31, 23, 59, 59)),
    offsets,
)


def test_every_timestamp_field_has_a_carrier():
    assert set(CARRIERS) == TIMESTAMP_FIELDS


def _with(field: str, value: object):
    return parse_event(json.dumps({**CARRIERS[field], field: value}))


@st.composite
def rfc3339_texts(draw):
    """(text, instant): one RFC 3339 spelling of an aware datetime."""
    moment = draw(instants)
    separator = draw(st.sampled_from(["T", "t", " "]))
    text = moment.strftime("%Y-%m-%d") + separator + moment.strftime("%H:%M:%S")
    if moment.microsecond or draw(st.booleans()):
        text += f".{moment.microsecond:06d}" + draw(st.sampled_from(["", "000", "999"]))
    minutes = int(moment.utcoffset().total_seconds() // 60)
    if minutes == 0 and draw(st.booleans()):
        text += draw(st.sampled_from(["Z", "z"]))
    else:
        sign = "-" if minutes < 0 else "+"
        text += f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    return text, moment


@FAST
@given(fields, rfc3339_texts())
def test_rfc_3339_with_an_offset_is_accepted_as_the_instant_it_names(field, spelled):
    text, moment = spelled
    parsed = _with(field, text)
    assert not isinstance(parsed, Rejection), (text, parsed)
    value = getattr(parsed, field)
    assert value == moment                       # the same instant
    assert value.utcoffset() == moment.utcoffset()


def _naive(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


not_rfc3339 = st.one_of(
    st.integers(min_value=-(10**12), max_value=10**12),                      # Unix time, any unit
    st.floats(allow_nan=False, allow_infinity=False),
    instants.map(lambda m: m.strftime("%Y%m%d")),                             # 20240131
    instants.map(lambda m: m.strftime("%Y")),                                 # 2024
    instants.map(lambda m: m.strftime("%Y-%m-%d")),                           # a date alone
    instants.map(_naive),                                                     # no offset
    instants.map(lambda m: _naive(m) + m.strftime("%z")),                     # +0800: no colon
    instants.map(lambda m: m.strftime("%Y-%m-%dT%H:%MZ")),                    # no seconds
    st.tuples(instants, st.integers(24, 99), st.integers(0, 59), st.sampled_from("+-")).map(
        lambda x: f"{_naive(x[0])}{x[3]}{x[1]:02d}:{x[2]:02d}"),             # offset beyond ±23:59
    st.tuples(instants, st.integers(0, 23), st.integers(60, 99)).map(
        lambda x: f"{_naive(x[0])}+{x[1]:02d}:{x[2]:02d}"),
    st.booleans(), st.lists(st.integers(), max_size=2),
)


@FAST
@given(fields, not_rfc3339)
def test_anything_else_is_a_rejection_naming_the_field(field, value):
    rejection = _with(field, value)
    assert isinstance(rejection, Rejection), (value, rejection)
    assert rejection.kind == "invalid_field"
    assert rejection.reason.startswith(
        f"{field}: must be an RFC 3339 timestamp with a date, a time and an offset (got "), rejection.reason
