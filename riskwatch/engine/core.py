"""The engine: events in, alert change records out.

Plain Python over a state mapping (a dict in-process, a faust Table in the
worker). The clock is passed in through events and `advance_to`; nothing
here reads the wall clock.
"""

from __future__ import annotations

import bisect
import hashlib
from collections import Counter
from datetime import datetime
from typing import Callable, MutableMapping

from riskwatch import models
from riskwatch.engine import exposure
from riskwatch.engine.aggregates import SegmentEngine
from riskwatch.contracts import AlertChange
from riskwatch.engine.alertbook import AlertBook, Finding
from riskwatch.engine.clock import Watermark
from riskwatch.engine.deadlines import DeadlineIndex
from riskwatch.engine.entities import (
    DAY,
    doc_micro,
    exact_rates,
    fen_of,
    intern,
    micro_units,
    minor_units,
    newer_revision,
    open_micro,
    receivable_in_fen,
)
from riskwatch.engine.indicators.base import Context, create, takes_segment_facts
from riskwatch.engine.records import (
    EMPTY,
    NEW_CUSTOMER,
    START,
    Customer,
    Invoice,
    Observation,
    Order,
    PriceHistory,
    RecentOrder,
    Shipment,
    check_schema,
    decode,
    encode,
    followed_invoices,
    pack_invoices,
    with_invoice,
)
from riskwatch.engine.indicators.competitor_price_cut import decided
from riskwatch.engine.indicators.scheduler import Scheduler
from riskwatch.engine.orders import OrderWindow
from riskwatch.engine.seen import PackedSeen, SeenEvents, SeenInState
from riskwatch.rules.loader import RuleSet

SHIPMENT, INVOICE, PRICE, CUSTOMER = "s:", "i:", "p:", "c:"
# order -> (cancellation (occurred_at, event_id),): written only when an
# order is cancelled; a shipment reads it whenever it is evaluated, so the
# cancellation counts whichever came first.
ORDER = "o:"     # order (or its cancellation) -> records.Order
UNCLASSIFIED = "unclassified"
# Evaluated by the engine's own fact handlers; any other indicator is fed the
# events its spec consumes (docs/indicators.md).
_BUILT_IN_ENTITY_INDICATORS = frozenset({
    "delivery_delay", "payment_overdue", "competitor_price_cut", "credit_limit_breach", "key_account_decline"})



class Outcome:
    """What one event did (`Engine.process`): `changes`, the alert changes
    it caused (`riskwatch.contracts.AlertChange`, DOMAIN §5);
    `duplicate`, an event (or fact) seen before, which changed nothing of its
    own; `late`, dated before the clock; `rejection`, the `models.Rejection`
    that refused it (an unknown currency, an event id reused with different
    content: DOMAIN §3, §4), None when it was applied.

    The shells count and report from this instead of diffing engine counters."""

    __slots__ = ("changes", "duplicate", "late", "rejection")

    def __init__(self, changes: list[AlertChange], duplicate: bool = False, late: bool = False,
                 rejection: models.Rejection | None = None):
        self.changes = changes
        self.duplicate = duplicate
        self.late = late
        self.rejection = rejection

    @classmethod
    def refused(cls, rejection: models.Rejection) -> "Outcome":
        return cls([], rejection=rejection)

    def __repr__(self) -> str:
        return (f"Outcome(changes={len(self.changes)}, duplicate={self.duplicate}, late={self.late}, "
                f"rejection={self.rejection!r})")


def fingerprint(event: models.Event) -> int:
    """A 64-bit digest of an event's content as the contract reads it, stable
    across processes (the worker's state outlives it): field order,
    whitespace and unknown extra fields do not count; a value spelt
    differently (`12000` and `"12000.00"`) does."""
    digest = hashlib.blake2b(event.__pydantic_serializer__.to_json(event), digest_size=8).digest()
    return int.from_bytes(digest, "big")


class Engine:
    def __init__(
        self,
        rules: RuleSet,
        state: MutableMapping[str, object] | None = None,
        lateness_seconds: float = 600.0,
        segment_sink: Callable[[dict], None] | None = None,
    ):
        self.rules = rules
        self.state: MutableMapping[str, object] = {} if state is None else state
        self.clock = Watermark(lateness_seconds)
        self.book = AlertBook(rules, self.state)
        self.deadlines = DeadlineIndex()
        self.stats: Counter[str] = Counter()
        self._rates = exact_rates(rules.currency_rates_exact)
        self._open_delays: dict[str, set[str]] = {}
        key_account = rules.indicators["key_account_decline"]
        self._order_window = 2 * key_account.params["window"] + DAY
        self.order_window = OrderWindow.for_schedule(key_account.evaluate_every, key_account.params["window"],
                                                     self._order_window)
        # UTC day -> ids of the orders placed that day: an order record leaves
        # the state once the clock is past the order window.
        self._orders_by_day: dict[int, list[str]] = {}
        self._pruned_before_day = None
        context = Context(rules, self.state, self.book, schedule=self.deadlines.schedule,
                          lateness=self.clock.lateness, facts=self)
        # The indicators over this engine's facts; the group ones are the segment engine's.
        self.indicators = create(rules, context, only=lambda spec: not takes_segment_facts(spec))
        self._delivery = self.indicators["delivery_delay"]
        self._overdue = self.indicators["payment_overdue"]
        self._price_cut = self.indicators["competitor_price_cut"]
        self._credit = self.indicators["credit_limit_breach"]
        self._key_account = self.indicators["key_account_decline"]
        # Indicators beyond the built-in ones, by the event types they consume
        # (docs/indicators.md), and by the prefix of the deadlines they set.
        self._on_event: dict[str, list] = {}
        self._deadline_owners: dict[str, object] = {}
        for indicator in self.indicators.values():
            if indicator.id in _BUILT_IN_ENTITY_INDICATORS:
                continue
            for event_type in indicator.spec.consumes:
                self._on_event.setdefault(event_type, []).append(indicator)
            self._deadline_owners[indicator.id + ":"] = indicator
        self.scheduler = Scheduler(self.state, self.indicators.values(), self._record_all)
        if segment_sink is None:
            self.segments: SegmentEngine | None = SegmentEngine(rules, self.state, clock=self.clock, facts=self)
            self._send_fact = self.segments.apply
        else:
            self.segments = None
            self._send_fact = segment_sink
        self._handlers = {
            "order.placed": self._order_placed,
            "order.cancelled": self._order_cancelled,
            "delivery.scheduled": self._shipment_event,
            "delivery.eta_updated": self._shipment_event,
            "delivery.delivered": self._shipment_event,
            "invoice.issued": self._invoice_event,
            "payment.received": self._invoice_event,
            "invoice.written_off": self._invoice_event,
            "competitor.price_observed": self._price_observed,
            "customer.profile": self._profile,
        }
        check_schema(self.state, self.order_window)
        # A state handed in outlives this engine (the worker's table): the
        # seen event ids go with it. One made here lives as long as the
        # engine, and the packed index costs a sixth of the memory.
        self.seen: SeenEvents = PackedSeen() if state is None else SeenInState(self.state)
        if len(self.state) > 1:
            self.rebuild_deadlines()

    # --- public ----------------------------------------------------------------

    @property
    def watermark(self) -> datetime | None:
        from riskwatch.timeutil import from_epoch
        now = self.clock.now
        return None if now is None else from_epoch(now)

    def process(self, event: models.Event) -> "Outcome":
        """Apply one event; its `Outcome`: every alert change it caused
        (including deadlines its event time carried the clock past), whether it
        was a duplicate or late, or the rejection that refused it.

        A refused event (a currency without a rate, an event id reused with
        different content: DOMAIN §3, §4) changes nothing, not even the clock."""
        content = fingerprint(event)
        seen = self.seen.get(event.event_id)
        if seen is not None and seen != content:
            return Outcome.refused(models.Rejection(
                "conflict", f"event_id {event.event_id!r} reused with different content; not applied"))
        if seen is None:
            rejection = self._currency_rejection(event)
            if rejection is not None:
                return Outcome.refused(rejection)
        stats = self.stats
        ts = event.occurred_at.timestamp()
        now = self.clock.now
        late = now is not None and ts < now
        if late:
            stats["late"] += 1
        self.clock.observe(ts)
        changes = self._advance()
        if seen is not None:
            stats["duplicate"] += 1
            return Outcome(changes, True, late)
        self.seen.add(event.event_id, content)
        duplicates_before = stats["duplicate"]
        changes.extend(self._handlers[event.type](event, ts))
        consumers = self._on_event.get(event.type)
        if consumers:
            for indicator in consumers:
                changes.extend(self._record_all(indicator.on_event(event, ts, self.clock.now), self.clock.now))
        stats[event.type] += 1
        return Outcome(changes, stats["duplicate"] > duplicates_before, late)

    def _currency_rejection(self, event: models.Event) -> models.Rejection | None:
        # Every money field of an event is in its one `currency` field
        # (our_price included); a payment without one is in its invoice's.
        # Read from the fields, not getattr: a type without the field would
        # go through pydantic's __getattr__ and its AttributeError.
        currency = event.__dict__.get("currency")
        if currency is not None and currency not in self._rates:
            yuan = f" ({currency} is the yuan: its ISO 4217 code is CNY)" if currency in models.YUAN_CODES else ""
            return models.Rejection(
                "unknown_currency",
                f"currency: no rate for {currency!r} in the rules (indicators.yaml currency_rates_to_cny); "
                f"an amount is never taken as CNY{yuan}",
            )
        return None

    def advance_to(self, instant: datetime | float) -> list[AlertChange]:
        """Move the clock to an instant (idle advance, `--until`, a shared clock)."""
        ts = instant.timestamp() if isinstance(instant, datetime) else float(instant)
        self.clock.advance_to(ts)
        return self._advance()

    def rebuild_deadlines(self) -> None:
        """Re-derive deadlines and indexes from state recovered elsewhere."""
        self.deadlines.clear()
        self._orders_by_day.clear()
        for indicator in self.indicators.values():
            indicator.rebuild()
        self.scheduler.reset()
        # Every shipment is evaluated again at the next clock move, which
        # rebuilds the open delays by order too.
        self._open_delays.clear()
        for key, value in list(self.state.items()):
            if key.startswith(SHIPMENT) or key.startswith(INVOICE) or key.startswith(PRICE):
                self.deadlines.schedule(float("-inf"), key)
            elif key.startswith(ORDER):
                order = _as(Order, value)
                if order.placed_ts is not None and order.cancelled is None:
                    self._orders_by_day.setdefault(int(order.placed_ts // DAY), []).append(key[len(ORDER):])
            elif key.startswith(CUSTOMER):
                customer = _as(Customer, value)
                if customer.invoices:
                    self._credit.watch(key[2:])
                self._key_account.customer_changed(key[2:], customer.customer_class)
        if self.segments is not None:
            self.segments.rebuild()

    def open_alerts(self) -> list[AlertChange]:
        return [change for change in self.book.changes() if change.is_open]

    def alerts(self) -> list[AlertChange]:
        return self.book.changes()

    # --- the clock ------------------------------------------------------------

    def customer_view(self, customer_id: str, limit: int = 20) -> dict | None:
        """What the engine holds about one customer, read at the watermark, for
        the console's customer page (docs/console.md): None for a customer it
        holds nothing about.

        {"customer_class", "region", "sales_rep", "credit_limit_cny" (None: no
        limit; 0: credit hold), "receivables_cny" (open invoices, converted at
        the rules' rates), "orders": newest first, [{"order_id", "placed_at"
        (Unix s), "amount_cny", "cancelled"}] of the recent window the
        key-account check keeps, "open_invoices": [{"invoice_id", "currency",
        "amount", "open" (in the invoice's currency), "open_cny", "due_at",
        "days_past_due" (0 before the due date)}], "late_shipments":
        [{"shipment_id", "order_id", "promised_at", "eta_at", "hours_late"}]
        (undelivered past their promise), each list at most `limit` long}.
        Shipments are not indexed by customer: this walks the open ones."""
        raw = self.state.get(CUSTOMER + customer_id)
        now = self.clock.now
        if raw is None or now is None:
            return None
        customer = _as(Customer, raw)
        orders = [{"order_id": order.order_id, "placed_at": order.ts, "amount_cny": order.fen / 100,
                   "cancelled": order.cancelled_ts is not None}
                  for order in (decode(RecentOrder, held) for held in reversed(customer.recent))][:limit]
        invoices, receivable_fen = [], 0
        for invoice_id in followed_invoices(customer):
            held = self.state.get(INVOICE + invoice_id)
            if held is None:
                continue
            rec = _as(Invoice, held)
            open_micro_units = open_micro(rec, now, self._rates)
            if open_micro_units <= 0:
                continue
            currency = rec.currency or "CNY"
            open_fen = fen_of(open_micro_units, currency, self._rates)
            receivable_fen += open_fen
            invoices.append({
                "invoice_id": invoice_id, "currency": currency,
                "amount": rec.amount / 1_000_000 if rec.amount is not None else None,
                "open": open_micro_units / 1_000_000, "open_cny": open_fen / 100, "due_at": rec.due_ts,
                "days_past_due": max(0, int((now - rec.due_ts) // DAY)) if rec.due_ts is not None else 0})
        invoices.sort(key=lambda i: -i["days_past_due"])
        late = []
        for key, held in list(self.state.items()):  # a snapshot: list() copies the items in one step
            if not key.startswith(SHIPMENT):
                continue
            rec = _as(Shipment, held)
            if rec.customer_id != customer_id:
                continue
            if rec.delivered_ts is None and rec.promised_ts is not None and rec.promised_ts < now:
                late.append({"shipment_id": key[len(SHIPMENT):], "order_id": rec.order_id,
                             "promised_at": rec.promised_ts, "eta_at": rec.eta_ts,
                             "hours_late": (now - rec.promised_ts) / 3600})
        late.sort(key=lambda s: -s["hours_late"])
        limit_fen = customer.credit_limit
        return {"customer_class": customer.customer_class, "region": customer.region, "sales_rep": customer.sales_rep,
                "credit_limit_cny": None if limit_fen is None else limit_fen / 100,
                "receivables_cny": receivable_fen / 100, "orders": orders, "open_invoices": invoices[:limit],
                "late_shipments": late[:limit], "as_of": now}

    def _advance(self) -> list[AlertChange]:
        now = self.clock.now
        if now is None:
            return []
        changes: list[AlertChange] = []
        next_deadline = self.deadlines.next_deadline()
        if next_deadline is not None and next_deadline < now:
            for key in self.deadlines.due(now):
                changes.extend(self._reevaluate(key, now))
        changes.extend(self.scheduler.run(now))
        if self._orders_by_day:
            self._prune_orders(now)
        if self.segments is not None:
            changes.extend(self.segments.advance_to())
        return changes

    def _reevaluate(self, key: str, now: float) -> list[AlertChange]:
        if key.startswith(SHIPMENT):
            rec = self.state.get(key)
            return self._evaluate_shipment(key, rec, now) if rec is not None else []
        if key.startswith(INVOICE):
            rec = self.state.get(key)
            return self._evaluate_invoice(key, rec, now) if rec is not None else []
        if key.startswith(PRICE):
            rec = self.state.get(key)
            return self._evaluate_price(key, rec, now) if rec is not None else []
        owner = self._deadline_owners.get(key[:key.find(":") + 1])
        if owner is not None:
            return self._record_all(owner.on_deadline(key, now), now)
        return []

    def _record(self, finding: Finding | None, now: float | None) -> list[AlertChange]:
        if finding is None:
            return []
        exposure.attach_reference(self.state, self.rules, finding, now, self.book)
        record = self.book.record(finding, now if now is not None else (finding.onset_ts or 0.0))
        return [record] if record is not None else []

    def _record_all(self, findings, now: float | None) -> list[AlertChange]:
        changes: list[AlertChange] = []
        for finding in findings:
            changes.extend(self._record(finding, now))
        return changes

    # --- facts, for the indicators (Context.facts) ------------------------------------

    @property
    def rates(self):
        """The rules' exact rates to CNY (ISO 4217 code -> Fraction)."""
        return self._rates

    def customer(self, customer_id: str) -> Customer:
        """What is known of a customer (an empty record for one never seen)."""
        return self._customer(customer_id)

    def invoice(self, invoice_id: str) -> Invoice | None:
        raw = self.state.get(INVOICE + invoice_id)
        return None if raw is None else _as(Invoice, raw)

    def follow_invoices(self, customer_id: str, customer: Customer, invoice_ids: tuple[str, ...]) -> None:
        """Keep only these invoices on the customer's list of receivables to follow."""
        self.state[CUSTOMER + customer_id] = tuple(customer._replace(invoices=pack_invoices(invoice_ids)))

    # --- customers ---------------------------------------------------------------

    def _customer(self, customer_id: str) -> Customer:
        rec = self.state.get(CUSTOMER + customer_id)
        if rec is None:
            return NEW_CUSTOMER
        return _as(Customer, rec)

    def _prune_orders(self, now: float) -> None:
        """Forget orders placed before the order window (a cancelled one stays:
        its shipments read the cancellation whenever they are evaluated)."""
        before = int((now - self._order_window) // DAY) - 1
        if self._pruned_before_day is not None and before <= self._pruned_before_day:
            return
        self._pruned_before_day = before
        for day in [day for day in self._orders_by_day if day < before]:
            for order_id in self._orders_by_day.pop(day):
                held = self.state.get(ORDER + order_id)
                if held is not None and _as(Order, held).cancelled is None:
                    del self.state[ORDER + order_id]

    def _order(self, order_id: str | None) -> Order | None:
        if order_id is None:
            return None
        held = self.state.get(ORDER + order_id)
        return None if held is None else _as(Order, held)

    def _segment_of(self, customer: Customer) -> str:
        return customer.customer_class or UNCLASSIFIED

    def _order_placed(self, event: models.OrderPlaced, ts: float) -> list[AlertChange]:
        customer_id = intern(event.customer_id)
        known = self._order(event.order_id)
        if known is not None and known.placed_ts is not None:
            self.stats["duplicate"] += 1
            return []
        customer = self._customer(customer_id)
        fen = minor_units(event.amount, event.currency, self._rates)
        region = intern(event.region) or customer.region
        cancelled = None if known is None else known.cancelled
        self.state[ORDER + event.order_id] = encode(Order(customer_id, ts, fen, region, event.event_id, cancelled))
        if cancelled is None:
            self._orders_by_day.setdefault(int(ts // DAY), []).append(event.order_id)
        order = (ts, fen, event.order_id, region, event.event_id, None if cancelled is None else cancelled[0])
        updated = self.order_window.placed(customer, order)
        if customer.profile_ts is None:
            updated = updated._replace(
                customer_class=event.customer_tier or customer.customer_class,
                region=customer.region or region,
                sales_rep=customer.sales_rep or intern(event.sales_rep),
            )
        self.state[CUSTOMER + customer_id] = tuple(updated)
        exposure.order_placed(self.state, customer, customer_id, ts, fen, self._order_window, cancelled is not None)
        self._after_customer_change(customer_id, customer, updated)
        self._send_fact({"kind": "activity", "segment": self._segment_of(updated), "customer_id": customer_id,
                         "ts": ts, "event_id": event.event_id,
                         "purchases_fen": exposure.purchases_fact(self.state, self.rules, customer_id, updated.customer_class,
                                                           ts - self.clock.lateness)})
        targets = ["all"] if "all" in self.rules.targets else []
        if region in self.rules.targets and region != "all":
            targets.append(region)
        if targets:
            for target in targets:
                self._send_fact({"kind": "sale", "segment": "target:" + target, "order_id": event.order_id,
                                 "targets": [target], "ts": ts, "fen": fen, "event_id": event.event_id})
        return []

    def _order_cancelled(self, event: models.OrderCancelled, ts: float) -> list[AlertChange]:
        key = ORDER + event.order_id
        known = self._order(event.order_id)
        cancelled = None if known is None else known.cancelled
        revision = (ts, event.event_id)
        if cancelled is not None and cancelled <= revision:
            self.stats["duplicate"] += 1    # the earliest cancellation ends the obligation
            return []
        if known is None:
            known = Order(intern(event.customer_id), None, None, None, None, revision)
        else:
            known = known._replace(cancelled=revision)
        self.state[key] = encode(known)
        customer_id = intern(event.customer_id)
        region = None
        if known.placed_ts is not None and known.customer_id == customer_id:
            # The order window carries the cancellation, so the key-account
            # check reads it without a lookup per order.
            region = known.region
            customer = self._customer(customer_id)
            if cancelled is None:
                exposure.order_cancelled(self.state, customer_id, known.placed_ts, known.fen)
            self.state[CUSTOMER + customer_id] = tuple(self.order_window.cancelled(
                customer, event.order_id, known.placed_ts, known.fen, ts, None if cancelled is None else cancelled[0]))
        targets = ["all"] + ([region] if region in self.rules.targets and region != "all" else [])
        for target in targets:
            if target in self.rules.targets:
                self._send_fact({"kind": "sale", "segment": "target:" + target, "order_id": event.order_id,
                                 "cancelled": True, "event_id": event.event_id})
        # Only a shipment with an open delay alert needs a word now; any other
        # reads the cancellation when its deadline comes.
        changes: list[AlertChange] = []
        for shipment_key in sorted(self._open_delays.get(event.order_id, ())):
            rec = self.state.get(shipment_key)
            if rec is not None:
                changes.extend(self._evaluate_shipment(shipment_key, rec, self.clock.now))
        return changes

    def _cancellation(self, order_id: str | None) -> tuple | None:
        """(occurred_at, event_id) of the order's cancellation, if one was seen."""
        if order_id is None:
            return None
        order = self._order(order_id)
        return None if order is None else order.cancelled

    def _profile(self, event: models.CustomerProfile, ts: float) -> list[AlertChange]:
        customer_id = intern(event.customer_id)
        customer = self._customer(customer_id)
        holding = None if customer.profile_ts is None else (customer.profile_ts, customer.evidence[0] if customer.evidence else "")
        if event.event_id in customer.evidence or not newer_revision((ts, event.event_id), holding):
            self.stats["duplicate" if event.event_id in customer.evidence else "stale_profile"] += 1
            return []
        limit = None if event.credit_limit is None else minor_units(event.credit_limit, "CNY", self._rates)
        updated = customer._replace(
            customer_class=event.tier, region=intern(event.region), sales_rep=intern(event.sales_rep),
            credit_limit=limit, profile_ts=ts, evidence=(event.event_id,),
        )
        self.state[CUSTOMER + customer_id] = tuple(updated)
        self._after_customer_change(customer_id, customer, updated)
        self._credit.customer_changed(customer_id)
        return []

    def _after_customer_change(self, customer_id: str, before: Customer, after: Customer) -> None:
        self._key_account.customer_changed(customer_id, after.customer_class)
        if before.customer_class != after.customer_class:
            old, new = self._segment_of(before), self._segment_of(after)
            if before.recent:
                self._send_fact({"kind": "left", "segment": old, "customer_id": customer_id})
                last = decode(RecentOrder, before.recent[-1])
                self._send_fact({"kind": "activity", "segment": new, "customer_id": customer_id,
                                 "ts": last.ts, "event_id": last.event_id,
                                 "purchases_fen": exposure.purchases_fact(self.state, self.rules, customer_id, after.customer_class,
                                                                          last.ts - self.clock.lateness)})
            # Receivables follow the customer into its segment, whatever arrived
            # first. The old segment's engine (on another partition of the
            # worker's segment facts, perhaps) is told first that they left it:
            # otherwise it keeps counting them, unpaid, until its window passes.
            for invoice_id in followed_invoices(after):
                rec = self.state.get(INVOICE + invoice_id)
                if rec is not None:
                    self._send_fact({"kind": "receivable_left", "segment": old, "invoice_id": invoice_id})
                    self._send_receivable(invoice_id, _as(Invoice, rec), after)

    # --- shipments ----------------------------------------------------------------

    def _shipment_event(self, event, ts: float) -> list[AlertChange]:
        key = SHIPMENT + event.shipment_id
        raw = self.state.get(key)
        rec = _as(Shipment, raw) if raw is not None else Shipment(intern(event.customer_id), None, None, None, None, None, EMPTY, None)
        if event.event_id in rec.evidence:
            self.stats["duplicate"] += 1
            return []
        # Built field by field: NamedTuple._replace costs several times a plain constructor.
        customer_id, order_id, promised, eta, eta_rev, delivered, evidence, order_fen, promised_rev = rec
        revision = (ts, event.event_id)
        if event.type == "delivery.scheduled":
            if newer_revision(revision, promised_rev):
                if event.order_id != order_id:
                    order_fen = None
                order_id, promised, promised_rev = event.order_id, event.promised_at.timestamp(), revision
        elif event.type == "delivery.eta_updated":
            if newer_revision(revision, eta_rev):
                eta, eta_rev = event.eta.timestamp(), revision
        else:
            delivered_at = event.delivered_at.timestamp()
            if delivered is None or delivered_at < delivered:
                delivered = delivered_at
        superseded = self._delivery.first_deadline(rec)
        rec = Shipment(customer_id, order_id, promised, eta, eta_rev, delivered, evidence + (event.event_id,),
                       order_fen, promised_rev)
        self.state[key] = encode(rec)
        return self._evaluate_shipment(key, rec, self.clock.now, superseded)

    def _evaluate_shipment(self, key: str, rec, now: float | None, superseded: float | None = None) -> list[AlertChange]:
        """The alert changes of one shipment evaluated as of `now`. `superseded`:
        the deadline (Unix s) the shipment's record before this fact asked
        for; dropped from the index when the shipment no longer has one."""
        rec = _as(Shipment, rec)
        customer = self._customer(rec.customer_id)
        amount = None if rec.order_fen is None else rec.order_fen / 100
        if amount is None and rec.order_id is not None:
            order = self._order(rec.order_id)
            if order is not None and order.fen is not None and order.customer_id == rec.customer_id:
                amount = order.fen / 100
                rec = rec._replace(order_fen=order.fen)
                self.state[key] = encode(rec)
        finding, deadline = self._delivery.assess(
            key[2:], rec, now, customer.customer_class, customer.region, amount, self._cancellation(rec.order_id),
        )
        if deadline is not None:
            self.deadlines.schedule(deadline, key)
        elif superseded is not None:
            self.deadlines.cancel(superseded, key)
        if rec.order_id is not None:
            self._track_open_delay(rec.order_id, key, finding is not None and finding.open)
        return self._record(finding, now)

    def _track_open_delay(self, order_id: str, shipment_key: str, is_open: bool) -> None:
        """order -> shipments with an open delay alert: what a cancellation resolves at once."""
        if is_open:
            self._open_delays.setdefault(order_id, set()).add(shipment_key)
        elif order_id in self._open_delays:
            keys = self._open_delays[order_id]
            keys.discard(shipment_key)
            if not keys:
                del self._open_delays[order_id]

    # --- invoices -------------------------------------------------------------------

    def _invoice_event(self, event, ts: float) -> list[AlertChange]:
        key = INVOICE + event.invoice_id
        raw = self.state.get(key)
        rec = _as(Invoice, raw) if raw is not None else Invoice(intern(event.customer_id), None, None, None, EMPTY, None, EMPTY)
        if event.event_id in rec.evidence:
            self.stats["duplicate"] += 1
            return []
        customer_id, amount, issued_ts, due_ts, payments, written_off_ts, evidence, currency, terms_rev = rec
        superseded = self._overdue.first_deadline(rec)
        if event.type == "invoice.issued":
            revision = (ts, event.event_id)
            if newer_revision(revision, terms_rev):
                # A re-issue with new terms holds by event time (DOMAIN §3
                # "Revisions"); the receivable exists from the first issue.
                amount, currency, due_ts, terms_rev = doc_micro(event.amount), intern(event.currency), event.due_at.timestamp(), revision
            issued_ts = ts if issued_ts is None else min(issued_ts, ts)
        elif event.type == "payment.received":
            # Without a currency the payment is in its invoice's (DOMAIN §3).
            payments = payments + ((event.event_id, ts, doc_micro(event.amount), intern(event.currency)),)
        elif written_off_ts is None or ts < written_off_ts:
            written_off_ts = ts
        rec = Invoice(customer_id, amount, issued_ts, due_ts, payments, written_off_ts, evidence + (event.event_id,),
                      currency, terms_rev)
        self.state[key] = encode(rec)
        customer_id = rec.customer_id
        customer = self._customer(customer_id)
        # A new invoice is followed by no one yet; a known one may have been
        # let go once settled (credit_limit_breach) and is followed again.
        if raw is None or event.invoice_id not in followed_invoices(customer):
            customer = customer._replace(invoices=with_invoice(customer.invoices, event.invoice_id))
            self.state[CUSTOMER + customer_id] = tuple(customer)
        self._credit.invoice_changed(customer_id, event.invoice_id)
        self._send_receivable(event.invoice_id, rec, customer)
        return self._evaluate_invoice(key, rec, self.clock.now, superseded, customer)

    def _send_receivable(self, invoice_id: str, rec: Invoice, customer: Customer) -> None:
        if rec.amount is None or rec.due_ts is None:
            return
        # Written off is never collected: it simply adds nothing.
        fen, payments = receivable_in_fen(rec, self._rates)
        self._send_fact({"kind": "receivable", "segment": self._segment_of(customer), "invoice_id": invoice_id,
                         "due_ts": rec.due_ts, "fen": fen, "payments": payments,
                         "written_off_ts": rec.written_off_ts, "event_id": rec.evidence[0]})

    def _evaluate_invoice(self, key: str, rec, now: float | None, superseded: float | None = None,
                          customer: Customer | None = None) -> list[AlertChange]:
        """The alert changes of one invoice evaluated as of `now`; `superseded`
        as for `_evaluate_shipment`; `customer`: its customer's record when the
        caller holds it already (only class and region are read)."""
        rec = _as(Invoice, rec)
        if customer is None:
            customer = self._customer(rec.customer_id)
        finding, deadline = self._overdue.assess(
            key[2:], rec, now, customer.customer_class, customer.region, self._rates,
        )
        if deadline is not None:
            self.deadlines.schedule(deadline, key)
        elif superseded is not None:
            self.deadlines.cancel(superseded, key)
        return self._record(finding, now)

    # --- competitor prices ------------------------------------------------------------

    def _price_observed(self, event: models.CompetitorPriceObserved, ts: float) -> list[AlertChange]:
        key = PRICE + event.competitor + "\x1f" + event.sku
        raw = self.state.get(key)
        history = _as(PriceHistory, raw) if raw is not None else PriceHistory(START, EMPTY)
        if any(obs[1] == event.event_id for obs in history.observations) or event.event_id in history.carry.evidence:
            self.stats["duplicate"] += 1
            return []
        observation = Observation(
            ts, event.event_id, micro_units(event.price, event.currency, self._rates),
            None if event.our_price is None else micro_units(event.our_price, event.currency, self._rates),
        )
        observations = list(history.observations)
        bisect.insort(observations, observation)
        self.state[key] = PriceHistory(history.carry, tuple(Observation(*o) for o in observations))
        now = self.clock.now
        if now is None or not ts < now:
            # Decided once the watermark passes it (docs/decisions.md).
            self.deadlines.schedule(ts, key)
            return []
        return self._evaluate_price(key, self.state[key], now)

    def _evaluate_price(self, key: str, raw, now: float | None) -> list[AlertChange]:
        history = _as(PriceHistory, raw)
        keep = self._price_cut.indicator.params["keep_observations"]
        observations = history.observations
        if len(observations) > keep:
            # Only decided observations fold into the carry: one still waiting
            # for the watermark may yet be preceded by a late one.
            prune = min(len(observations) - keep, len(decided(observations, now)))
            if prune > 0:
                carry = self._price_cut.fold(history.carry, observations[:prune])
                history = PriceHistory(carry, observations[prune:])
                self.state[key] = history
        competitor, sku = key[len(PRICE):].split("\x1f", 1)
        finding, deadline = self._price_cut.assess(competitor, sku, history, now)
        if deadline is not None:
            self.deadlines.schedule(deadline, key)
        return self._record(finding, now)


_as = decode
