"""State written by one release is read by the next only through versioned
record layouts: migrated when a migration is known, refused by name when not,
never misread (riskwatch/engine/records.py)."""

from __future__ import annotations

import marshal

import pytest

from riskwatch.engine import Engine
from riskwatch.engine.records import SCHEMA_KEY, SCHEMA_VERSION, Customer, StateSchemaError, followed_invoices
from riskwatch.testing import Scenario, default_rules, invoice_issued


def _business_state() -> dict:
    scenario = Scenario()
    scenario.feed(invoice_issued("INV-1", "C-1", "120000", "2024-01-31T18:00:00+08:00",
                                 at="2024-01-01T09:00:00+08:00"))
    return dict(scenario.engine.state)


def test_a_new_state_is_marked_with_the_layouts_it_is_written_with():
    state = _business_state()
    assert state[SCHEMA_KEY] == SCHEMA_VERSION


def test_state_from_before_versioning_is_migrated_and_keeps_its_deadlines():
    state = _business_state()
    del state[SCHEMA_KEY]
    engine = Engine(default_rules(), state=state)
    assert state[SCHEMA_KEY] == SCHEMA_VERSION
    changes = engine.advance_to(1_710_000_000.0)    # 2024-03-09: 38 days past due
    assert [c.indicator for c in changes if c.change == "raised"] == ["payment_overdue"]


@pytest.mark.parametrize("found", [SCHEMA_VERSION + 1, 0])
def test_state_with_layouts_no_migration_reaches_is_refused_by_version(found):
    state = _business_state()
    state[SCHEMA_KEY] = found
    with pytest.raises(StateSchemaError) as refused:
        Engine(default_rules(), state=state)
    assert f"written with record schema {found}; this release reads schema {SCHEMA_VERSION}" in str(refused.value)


def _with_invoice_ids_as_a_tuple(state: dict) -> None:
    """What schemas 2 and 3 wrote for a customer: its followed invoice ids as a tuple."""
    index = Customer._fields.index("invoices")
    for key, value in state.items():
        if key.startswith("c:"):
            state[key] = value[:index] + (followed_invoices(Customer(*value)),) + value[index + 1:]


def test_state_of_schema_2_with_plain_tuples_is_packed_and_reads_the_same():
    from riskwatch.engine.records import PACKED_PREFIXES

    state = _business_state()
    packed = {key for key, value in state.items() if isinstance(value, bytes)}
    # In one process a segment receivable is only where it counts (ReceivablePlace).
    assert "i:INV-1" in packed and "gi:INV-1" in state
    for key in packed:  # what schema 2 wrote: the same fields as a plain tuple
        state[key] = marshal.loads(state[key])
    _with_invoice_ids_as_a_tuple(state)
    state[SCHEMA_KEY] = 2
    engine = Engine(default_rules(), state=state)
    assert state[SCHEMA_KEY] == SCHEMA_VERSION
    assert {key for key, value in state.items() if isinstance(value, bytes)} == packed
    assert all(key[:key.find(":") + 1] in PACKED_PREFIXES for key in packed)
    assert engine.invoice("INV-1").due_ts == 1_706_695_200.0
    changes = engine.advance_to(1_710_000_000.0)
    assert [c.indicator for c in changes if c.change == "raised"] == ["payment_overdue"]


def _customer_over_its_limit_state() -> dict:
    """A customer with a 100,000 limit and one 120,000 invoice (credit check due at the next hour)."""
    from riskwatch.testing import customer_profile

    scenario = Scenario()
    scenario.feed(customer_profile("C-1", credit_limit="100000", at="2024-01-01T08:00:00+08:00"))
    scenario.feed(invoice_issued("INV-1", "C-1", "120000", "2024-01-31T18:00:00+08:00",
                                 at="2024-01-01T09:00:00+08:00"))
    return dict(scenario.engine.state)


def _invoice_ids_as_schema_4_wrote_them(state: dict) -> None:
    """Schema 4: a customer's followed invoice ids packed as one bytes value."""
    from riskwatch.engine.records import pack_invoices

    index = Customer._fields.index("invoices")
    value = state["c:C-1"]
    state["c:C-1"] = value[:index] + (pack_invoices(followed_invoices(Customer(*value))),) + value[index + 1:]


@pytest.mark.parametrize("schema, written_as", [(3, _with_invoice_ids_as_a_tuple), (4, _invoice_ids_as_schema_4_wrote_them)])
def test_state_of_an_earlier_schema_keeps_following_a_customers_invoices(schema, written_as):
    state = _customer_over_its_limit_state()
    written_as(state)
    state[SCHEMA_KEY] = schema
    engine = Engine(default_rules(), state=state)
    assert state[SCHEMA_KEY] == SCHEMA_VERSION
    assert followed_invoices(engine.customer("C-1")) == ("INV-1",)
    # The credit check still finds the receivable through the migrated customer.
    changes = engine.advance_to(1_704_078_000.0)     # 2024-01-01 11:00 +08:00
    assert [c.indicator for c in changes if c.change == "raised"] == ["credit_limit_breach"]


def test_a_customers_invoices_stay_in_order_with_at_most_a_short_tail_unpacked():
    from riskwatch.engine.records import INVOICE_TAIL

    scenario = Scenario()
    ids = [f"INV-{number:03d}" for number in range(3 * INVOICE_TAIL + 5)]
    for number, invoice_id in enumerate(ids):
        scenario.feed(invoice_issued(invoice_id, "C-1", "1000", "2024-03-31T18:00:00+08:00",
                                     at=f"2024-01-01T09:{number:02d}:00+08:00"))
    held = scenario.engine.state["c:C-1"][Customer._fields.index("invoices")]
    assert type(held[0]) is bytes and len(held) - 1 <= INVOICE_TAIL
    assert followed_invoices(scenario.engine.customer("C-1")) == tuple(ids)


def test_state_of_schema_5_with_an_entry_per_seen_event_is_chunked_and_still_knows_every_event():
    import json

    from riskwatch.engine.seen import CHUNK, SEEN
    from riskwatch.models import parse_event

    events = [invoice_issued(f"INV-{n}", "C-1", "1000", "2024-03-31T18:00:00+08:00",
                             at=f"2024-01-01T09:{n:02d}:00+08:00") for n in range(40)]
    writer = Engine(default_rules(), state={})
    for event in events:
        writer.process(parse_event(json.dumps(event)))
    # What schema 5 wrote: one `e:<event_id>` -> fingerprint entry per event.
    state = {key: value for key, value in writer.state.items() if not key.startswith(CHUNK)}
    state.update({SEEN + event["event_id"]: writer.seen.get(event["event_id"]) for event in events})
    state[SCHEMA_KEY] = 5
    engine = Engine(default_rules(), state=state)
    assert state[SCHEMA_KEY] == SCHEMA_VERSION
    assert not any(key.startswith(SEEN) for key in state) and sum(key.startswith(CHUNK) for key in state) == 2
    redelivered = engine.process(parse_event(json.dumps(events[7])))
    reused = engine.process(parse_event(json.dumps({**events[8], "amount": "999"})))
    assert redelivered.duplicate and redelivered.rejection is None
    assert reused.rejection is not None and reused.rejection.kind == "conflict"
