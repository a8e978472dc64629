"""The seen-event index (DOMAIN §4 "Duplicates"): the in-process engine keeps
it packed, the worker in chunks of its state; both must answer alike, or a
replay and the worker would disagree on what is a duplicate or a conflict,
and a worker that recovers the chunks must answer as the one that wrote them."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from riskwatch import testing as t
from riskwatch.engine import Engine
from riskwatch.engine.seen import CHUNK, CHUNK_ENTRIES, PackedSeen, SeenInState
from riskwatch.models import parse_event
from riskwatch.testing import default_rules

ids = st.text(min_size=1, max_size=40)
fingerprints = st.integers(min_value=0, max_value=2**64 - 1)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(ids, fingerprints, max_size=300), st.lists(ids, max_size=50))
def test_the_packed_index_answers_as_the_state_chunks_do_also_once_recovered(added, asked):
    state: dict = {}
    packed, in_state = PackedSeen(), SeenInState(state)
    for event_id, fingerprint in added.items():
        packed.add(event_id, fingerprint)
        in_state.add(event_id, fingerprint)
    recovered = SeenInState(dict(state))   # a worker taking the partition over
    for event_id in [*added, *asked]:
        assert packed.get(event_id) == in_state.get(event_id) == recovered.get(event_id)
    assert len(packed) == len(added) == len(recovered)
    # One state record per chunk of ids, not one per event.
    assert len(state) == -(-len(added) // CHUNK_ENTRIES) and all(key.startswith(CHUNK) for key in state)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.dictionaries(ids, fingerprints, max_size=40), max_size=6))
def test_ids_added_after_a_recovery_keep_the_chunks_that_were_there(batches):
    # Each batch is added by a worker that recovered the state the one before left.
    state: dict = {}
    expected: dict = {}
    for batch in batches:
        state = dict(state)
        seen = SeenInState(state)
        for event_id, fingerprint in batch.items():
            if seen.get(event_id) is None:
                seen.add(event_id, fingerprint)
                expected[event_id] = fingerprint
    recovered = SeenInState(state)
    assert {event_id: recovered.get(event_id) for event_id in expected} == expected
    assert len(recovered) == len(expected)


def test_ids_sharing_a_bucket_keep_their_own_fingerprints():
    # 200,000 ids over 65,536 buckets: every bucket holds several, and the
    # search of a bucket must not match across two entries.
    packed = PackedSeen()
    for number in range(200_000):
        packed.add(f"PAY-{number}", number * 7919)
    assert all(packed.get(f"PAY-{number}") == number * 7919 for number in range(0, 200_000, 997))
    assert packed.get("PAY-200000") is None


def _payment_reused_on_another_invoice() -> list:
    return [parse_event(json.dumps(event)) for event in (
        t.invoice_issued("INV-1", "C-1", "5000", "2024-02-01T18:00:00+08:00", at="2024-01-02T09:00:00+08:00"),
        t.invoice_issued("INV-2", "C-2", "7000", "2024-02-01T18:00:00+08:00", at="2024-01-02T09:05:00+08:00"),
        t.payment_received("INV-1", "C-1", "5000", at="2024-01-20T10:00:00+08:00", event_id="BANK-REF-1"),
        t.payment_received("INV-2", "C-2", "7000", at="2024-01-21T10:00:00+08:00", event_id="BANK-REF-1"),
        t.payment_received("INV-1", "C-1", "5000", at="2024-01-20T10:00:00+08:00", event_id="BANK-REF-1"),
    )]


def test_an_engine_on_a_state_of_its_own_and_one_on_a_given_state_agree_on_conflicts_and_duplicates():
    own = Engine(default_rules())
    given_state = Engine(default_rules(), state={})
    outcomes = []
    for engine in (own, given_state):
        outcomes.append([(o.rejection.kind if o.rejection else None, o.duplicate)
                         for o in map(engine.process, _payment_reused_on_another_invoice())])
    assert outcomes[0] == outcomes[1] == [(None, False), (None, False), (None, False), ("conflict", False),
                                          (None, True)]
    assert not any(key.startswith(CHUNK) for key in own.state)
    # The worker's state carries them: an engine recovered from it knows the id and its content.
    recovered = Engine(default_rules(), state=dict(given_state.state))
    again = [recovered.process(event) for event in _payment_reused_on_another_invoice()[3:]]
    assert [(o.rejection.kind if o.rejection else None, o.duplicate) for o in again] == [("conflict", False),
                                                                                        (None, True)]
