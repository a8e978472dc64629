"""Every record kind the engine keeps in its state mapping: its key prefix,
its name, its layout, and the schema version of the whole layout.

The state is the worker's changelog: what one release writes, the next one
reads. The per-entity kinds, the millions (shipments, invoices, orders, segment
receivables, memberships, sales: `PACKED`), are stored as one `bytes` value
each, the record's fields packed with `marshal` (a ninth of the objects a
tuple of atoms costs: a 9-field invoice is 109 bytes packed against ~480
as a tuple with its floats, ints, strings and inner tuples, and bytes are
never tracked by the garbage collector); a customer, rewritten by every
order and few in number, stays a plain tuple of atoms, but for its followed
invoice ids, packed (`followed_invoices`). Either form is read
through the named layouts below with `decode` and written with `encode`;
nothing else indexes a stored record by position. A state mapping carries the version of the layouts it was written
with under the key `SCHEMA_KEY`; an engine starting over state written with
other layouts migrates it when a migration is known and otherwise refuses it
with `StateSchemaError`, naming both versions: never misread.

| prefix | kind | layout |
|---|---|---|
| `s:` | shipment | `Shipment` |
| `i:` | invoice | `Invoice` |
| `p:` | competitor price | `PriceHistory` (`PriceWalk` carry, `Observation`s) |
| `c:` | customer | `Customer` |
| `o:` | order (or its cancellation) | `Order` |
| `e#` | events seen, a chunk (the worker; an in-process engine keeps them in memory): `e#<n>` | bytes: up to 32 entries packed as riskwatch/engine/seen.py says (schema 5 and before: `e:<event_id>` -> int fingerprint, one entry per event) |

Packed (bytes): `s:`, `i:`, `o:`, `gm:`, `gi:`, `gs:`. Plain tuples: `c:`,
`x:`; `p:` a `PriceHistory`; `a:` an `AlertState`.
| `x:` | customer purchases by month | (first month, newest month, fen, ...), riskwatch/engine/exposure.py |
| `gm:` | churn membership | `Member` |
| `gi:` | receivable of a segment | `Receivable` (in process: `ReceivablePlace`) |
| `gs:` | sale towards a target | `Sale` |
| `gt:` | last scheduled evaluation | float, Unix seconds |
| `gt:^start` | where the first scheduled evaluation starts (until it ran; `Scheduler.note_start`) | float, Unix seconds |
| `a:` | alert | `AlertState` (the latest `AlertChange` and the book's bookkeeping), riskwatch/engine/alertbook.py |
"""

from __future__ import annotations

import marshal
from typing import Callable, MutableMapping, NamedTuple, TypeVar

from riskwatch.errors import RiskwatchError

EMPTY: tuple = ()
SCHEMA_KEY = "schema"
# Bumped whenever a layout below changes; a migration from the previous
# version goes into MIGRATIONS when one is possible.
SCHEMA_VERSION = 6


class StateSchemaError(RiskwatchError, RuntimeError):
    """State written with record layouts this release cannot read: `found`
    (None: written before layouts were versioned) and `expected` versions."""

    def __init__(self, found: int | None, expected: int):
        self.found, self.expected = found, expected
        written = "before record layouts were versioned" if found is None else f"with record schema {found}"
        super().__init__(
            f"engine state was written {written}; this release reads schema {expected} and knows no migration "
            "from it: rebuild the state from the source topics (reset the worker's changelog topics and state "
            "directory) or run the release that wrote it")


def _from_unversioned(state: MutableMapping[str, object], order_window) -> None:
    # The release before kept a customer's orders of the window as one tuple,
    # an order cancellation as (revision,) and an alert as its published dict
    # plus bookkeeping keys.
    from riskwatch.engine.alertbook import ALERT_PREFIX, stored_state
    for key, value in list(state.items()):
        if key.startswith(ALERT_PREFIX) and isinstance(value, dict):
            state[key] = stored_state(value)
        elif key.startswith("o:") and len(value) == 1:
            state[key] = encode(Order(None, None, None, None, None, value[0]))  # the former (revision,)
    for key, value in list(state.items()):
        if not key.startswith("c:") or len(value) != 9:
            continue
        if order_window is None:
            raise StateSchemaError(None, SCHEMA_VERSION)
        customer_class, region, sales_rep, credit_limit, profile_ts, orders, _, invoices, evidence = value
        customer = Customer(customer_class, region, sales_rep, credit_limit, profile_ts, EMPTY, EMPTY, EMPTY,
                            invoices, evidence)
        customer_id = key[2:]
        for order in orders:
            ts, fen, order_id, order_region, event_id = order[:5]
            held = state.get("o:" + order_id)
            cancelled = None if held is None else decode(Order, held).cancelled
            state["o:" + order_id] = encode(Order(customer_id, ts, fen, order_region, event_id, cancelled))
            customer = order_window.placed(
                customer, (ts, fen, order_id, order_region, event_id, None if cancelled is None else cancelled[0]))
        state[key] = tuple(customer)


def _packed(state: MutableMapping[str, object], order_window) -> None:
    # Schema 2 stored every kind as a plain tuple; 3 packs the per-entity kinds.
    for key, value in list(state.items()):
        if type(value) is tuple and key[:key.find(":") + 1] in PACKED_PREFIXES:
            state[key] = _pack(value)


def _customer_invoices_packed(state: MutableMapping[str, object], order_window) -> None:
    # Schema 3 kept a customer's followed invoice ids as a tuple; 4 packs them.
    index = Customer._fields.index("invoices")
    for key, value in list(state.items()):
        ids = value[index] if key.startswith("c:") and type(value) is tuple else None
        # (bytes, ids...) is schema 5's form, already packed.
        if type(ids) is tuple and not (ids and type(ids[0]) is bytes):
            state[key] = value[:index] + (pack_invoices(ids),) + value[index + 1:]


def _invoices_with_tail(state: MutableMapping[str, object], order_window) -> None:
    # Schema 5 also reads `Customer.invoices` as (packed body, newest ids...);
    # every schema 4 value is already a valid schema 5 one.
    return None


def _seen_in_chunks(state: MutableMapping[str, object], order_window) -> None:
    # Schema 6 keeps the seen event ids in chunks, one changelog record per
    # batch rather than one per event.
    from riskwatch.engine.seen import chunk_legacy_entries
    chunk_legacy_entries(state)


# version found (None: unversioned) -> (function rewriting the state, the version it gives).
MIGRATIONS: dict[int | None, tuple[Callable[..., None], int]] = {
    None: (_from_unversioned, 2),
    2: (_packed, 3),
    3: (_customer_invoices_packed, 4),
    4: (_invoices_with_tail, 5),
    5: (_seen_in_chunks, 6),
}


def check_schema(state: MutableMapping[str, object], order_window=None) -> None:
    """Mark an empty state with SCHEMA_VERSION; migrate state written with an
    earlier schema; raise StateSchemaError for one no migration reaches.
    `order_window` (riskwatch.engine.orders.OrderWindow) is the entity
    engine's, to rebuild customers' order buckets; None where the state holds
    no customers (the segment engine's)."""
    found = state.get(SCHEMA_KEY)
    if found == SCHEMA_VERSION:
        return
    if found is None and not len(state):
        state[SCHEMA_KEY] = SCHEMA_VERSION
        return
    version = found
    while version != SCHEMA_VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            raise StateSchemaError(found, SCHEMA_VERSION)
        migrate, version = step
        migrate(state, order_window)
    state[SCHEMA_KEY] = SCHEMA_VERSION


Layout = TypeVar("Layout")


_pack = marshal.dumps
_unpack = marshal.loads


def decode(layout: type[Layout], value: tuple | bytes) -> Layout:
    """A stored record (packed bytes or a plain tuple) read through its layout;
    a value already of the layout is returned as it is."""
    kind = type(value)
    if kind is bytes:
        return layout(*_unpack(value))
    return value if kind is layout else layout(*value)


def encode(record: tuple) -> tuple | bytes:
    """A record as it is stored: packed bytes for the per-entity kinds
    (`PACKED`), a plain tuple of its fields for the others. Fields are
    atoms (str, int, float, bool, None) and tuples of atoms."""
    return _pack(tuple(record)) if type(record) in PACKED else tuple(record)


class Shipment(NamedTuple):
    customer_id: str
    order_id: str | None
    promised_ts: float | None
    eta_ts: float | None
    eta_rev: tuple | None           # (occurred_at, event_id) of the ETA that holds
    delivered_ts: float | None
    evidence: tuple
    order_fen: int | None = None    # the order's amount, once known
    promised_rev: tuple | None = None  # (occurred_at, event_id) of the schedule that holds


class Invoice(NamedTuple):
    customer_id: str
    amount: int | None              # millionths of the invoice's own currency
    issued_ts: float | None         # the first issue: the receivable exists from then on
    due_ts: float | None
    payments: tuple                 # ((event_id, ts, micro, currency or None), ...); None: the invoice's currency
    written_off_ts: float | None
    evidence: tuple
    currency: str | None = None     # ISO 4217 of the invoice (DOMAIN §3: settled in its own currency)
    terms_rev: tuple | None = None  # (occurred_at, event_id) of the issue whose terms hold


class Observation(NamedTuple):
    ts: float
    event_id: str
    price: int              # millionths of a CNY: exact, so a cut of exactly 10% is exactly 10%
    our_price: int | None


class PriceWalk(NamedTuple):
    """Where the walk over observations stands (also the carry for pruned history)."""
    previous: Observation | None
    open: bool
    anchor: float | None
    onset_ts: float | None
    observed: float
    resolved_ts: float | None
    evidence: tuple
    ever: bool
    assessed: float          # the cut the alert was last assessed on while open


START = PriceWalk(None, False, None, None, 0.0, None, (), False, 0.0)


class PriceHistory(NamedTuple):
    carry: PriceWalk
    observations: tuple  # sorted (ts, event_id)


class Customer(NamedTuple):
    """`c:<customer_id>`: what is known of a customer. Bounded whatever its
    history: the order window is kept as sums per bucket of time, the newest
    orders as a short tail (evidence, the console's customer page)."""
    customer_class: str | None
    region: str | None
    sales_rep: str | None
    credit_limit: int | None        # CNY fen; 0 is a credit hold, None no limit known
    profile_ts: float | None
    recent: tuple                   # the RECENT_ORDERS newest orders by time: ((ts, fen, order_id, region, event_id, cancelled_ts), ...)
    order_buckets: tuple            # ((bucket, fen placed), ...) by bucket, within the order window
    cancelled_buckets: tuple        # ((order's bucket, cancellation's bucket, fen), ...) of cancelled orders in the window
    invoices: bytes | tuple         # invoice ids with receivables to follow: `followed_invoices`, `pack_invoices`, `with_invoice`
    evidence: tuple                 # profile event id(s)


def followed_invoices(customer: Customer) -> tuple[str, ...]:
    """The invoice ids a customer's receivables are followed by (`Customer.invoices`), in the order first seen."""
    packed = customer.invoices
    if not packed:
        return EMPTY
    if type(packed) is bytes:
        return _unpack(packed)
    body = packed[0]
    return (_unpack(body) if body else EMPTY) + packed[1:]


def pack_invoices(invoice_ids: tuple[str, ...]) -> bytes:
    """`Customer.invoices` for these ids: b"" for none.

    Packed because it is the one part of a customer that grows with its open
    receivables (a key account: thousands). As a tuple, every customer
    rewritten between two collections put it before the cyclic collector
    again, which visited each id: at a million open invoices over 5,000
    customers a full collection took 71 ms instead of 7 (benchmarks/
    memory_per_entity.py, schema 3); bytes are never visited."""
    return _pack(tuple(invoice_ids)) if invoice_ids else b""


# Ids added since the body was last packed stay a short tail: repacking the
# whole body for each new invoice allocated one bytes object a size larger
# every time, and the allocator's holes cost ~70 bytes an open entity at a
# million (benchmarks/memory_per_entity.py, schema 4). A tail of at most 16
# ids is what the collector visits of a customer.
INVOICE_TAIL = 16


def with_invoice(invoices: bytes | tuple, invoice_id: str) -> bytes | tuple:
    """`Customer.invoices` with one more id at the end: (packed body, newest
    ids...), the tail folded into the body once it holds `INVOICE_TAIL`."""
    if type(invoices) is bytes:
        return (invoices, invoice_id)
    if len(invoices) <= INVOICE_TAIL:
        return invoices + (invoice_id,)
    body = invoices[0]
    return pack_invoices((_unpack(body) if body else EMPTY) + invoices[1:] + (invoice_id,))


RECENT_ORDERS = 32


class RecentOrder(NamedTuple):
    """An entry of `Customer.recent` (stored as a plain tuple)."""
    ts: float
    fen: int
    order_id: str
    region: str | None
    event_id: str
    cancelled_ts: float | None


class Order(NamedTuple):
    """`o:<order_id>`: an order within the order window (or only its
    cancellation, when that came first): duplicate orders, shipments' amounts
    and cancellations read it by id."""
    customer_id: str | None
    placed_ts: float | None         # None: only the cancellation was seen
    fen: int | None
    region: str | None
    event_id: str | None
    cancelled: tuple | None         # (occurred_at, event_id) of the earliest cancellation


NEW_CUSTOMER = Customer(None, None, None, None, None, EMPTY, EMPTY, EMPTY, b"", EMPTY)


class Member(NamedTuple):
    """`gm:<customer_id>`: a customer's membership of a churn segment."""
    segment: str
    last_ts: float                  # its last order
    previous_ts: float | None       # the order before (read when the last is after the evaluation instant)
    events: tuple                   # event ids of those orders, last first
    last_fen: int = 0               # the customer's annual purchases as of the last order, CNY fen
    previous_fen: int = 0           # the same as of the previous order


class Receivable(NamedTuple):
    """`gi:<invoice_id>`: an invoice as the collection rate of its segment counts it."""
    segment: str
    due_ts: float
    fen: int                        # amount in CNY fen
    payments: tuple                 # ((ts, fen), ...)
    written_off_ts: float | None
    event_id: str


class ReceivablePlace(NamedTuple):
    """`gi:<invoice_id>` in an in-process engine (`SegmentEngine` given the
    entity engine's facts): where the invoice is counted, its amounts read
    from the invoice record itself (the worker's segment engine, on another
    partition, keeps the whole `Receivable`). One shared tuple per (segment,
    due day): a pointer a receivable instead of a ~77-byte copy."""
    segment: str
    due_day: int                    # UTC day of the due date, Unix seconds // 86,400


class Sale(NamedTuple):
    """`gs:<order_id>`: an order counted towards its sales targets."""
    targets: tuple                  # target names ("all", regions)
    ts: float
    fen: int
    cancelled: bool
    event_id: str


# The kinds there are one of per shipment, invoice or order, stored packed.
PACKED = frozenset({Shipment, Invoice, Order, Member, Receivable, Sale})
PACKED_PREFIXES = frozenset({"s:", "i:", "o:", "gm:", "gi:", "gs:"})
