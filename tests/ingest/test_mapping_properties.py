"""Invariants of mapped events, over generated rows (hypothesis):
- every event a row gives passes the contract's parser;
- mapping any subset of rows again, in any order, gives the same ids and
  the same content (a re-import is all duplicates, DOMAIN §4);
- a row whose mapped content changes gets new ids (a revision, not a conflict)."""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from riskwatch.ingest import load_mapping, map_row
from riskwatch.models import Rejection, parse_event

REPO = __import__("pathlib").Path(__file__).resolve().parents[2]
RECEIVABLES = load_mapping(REPO / "mappings" / "receivables.yaml")

dates = st.dates(min_value=__import__("datetime").date(2000, 1, 1), max_value=__import__("datetime").date(2099, 12, 31))
amounts = st.decimals(min_value=0, max_value=10**12, places=2, allow_nan=False, allow_infinity=False)


def _grouped(amount) -> str:
    return f"{amount:,.2f}"


rows = st.fixed_dictionaries({
    "InvoiceNumber": st.from_regex(r"INV-[0-9]{1,6}", fullmatch=True),
    "CustomerCode": st.from_regex(r" ?[a-zA-Z][0-9]{1,4} ?", fullmatch=True),
    "CustomerName": st.text(max_size=20),
    "Amount": amounts.map(_grouped),
    "Currency": st.sampled_from(["CNY", "usd", " EUR ", ""]),
    "IssueDate": dates.map(lambda d: d.strftime("%d/%m/%Y")),
    "DueDate": dates.map(lambda d: d.strftime("%d/%m/%Y")),
    "PaidDate": st.one_of(st.just(""), dates.map(lambda d: d.strftime("%d/%m/%Y"))),
    "PaidAmount": amounts.map(_grouped),
    "LastModified": st.one_of(st.just(""), dates.map(lambda d: d.strftime("%d/%m/%Y 10:30"))),
})


@settings(max_examples=150, deadline=None)
@given(rows)
def test_every_mapped_event_passes_the_contract(row):
    events, problems = map_row(RECEIVABLES, row)
    assert problems == []
    assert [e["type"] for e in events] == ["invoice.issued"] + (["payment.received"] if row["PaidDate"] else [])
    for event in events:
        parsed = parse_event(orjson.dumps(event))
        assert not isinstance(parsed, Rejection), (event, parsed)


@settings(max_examples=60, deadline=None)
@given(st.lists(rows, min_size=1, max_size=8), st.data())
def test_reimporting_any_subset_in_any_order_gives_the_same_events(export, data):
    first = {orjson.dumps(e) for row in export for e in map_row(RECEIVABLES, row)[0]}
    subset = data.draw(st.lists(st.sampled_from(export), max_size=len(export)))
    again = {orjson.dumps(e) for row in reversed(subset) for e in map_row(RECEIVABLES, dict(row))[0]}
    assert again <= first


@settings(max_examples=60, deadline=None)
@given(rows, dates)
def test_a_revised_due_date_is_a_new_event(row, due):
    revised = {**row, "DueDate": due.strftime("%d/%m/%Y")}
    [before, *_], _ = map_row(RECEIVABLES, row)
    [after, *_], _ = map_row(RECEIVABLES, revised)
    assert (before["event_id"] == after["event_id"]) == (before["due_at"] == after["due_at"])
