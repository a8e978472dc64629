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
from riskwatch.engine.aggregates import TICK, SegmentEngine
from riskwatch.contracts import AlertChange
from riskwatch.engine.alertbook import AlertBook, Finding
from riskwatch.engine.clock import Watermark
from riskwatch.engine.deadlines import DeadlineIndex
from riskwatch.units import span
from riskwatch.engine.entities import (
    DAY,
    EMPTY,
    NEW_CUSTOMER,
    START,
    Customer,
    Invoice,
    Observation,
    PriceHistory,
    Shipment,
    balance_as_of,
    decided,
    doc_micro,
    exact_rates,
    fen_of,
    intern,
    invoice_finding,
    micro_units,
    minor_units,
    newer_revision,
    open_micro,
    payments_in_fen,
    price_finding,
    shipment_finding,
    walk_prices,
)
from riskwatch.rules.loader import RuleSet

SHIPMENT, INVOICE, PRICE, CUSTOMER = "s:", "i:", "p:", "c:"
# order -> (cancellation (occurred_at, event_id),): written only when an
# order is cancelled; a shipment reads it whenever it is evaluated, so the
# cancellation counts whichever came first.
ORDER = "o:"
# event id -> fingerprint of its content: a redelivery changes nothing, the
# same id with other content is a conflict (DOMAIN §4).
SEEN = "e:"
UNCLASSIFIED = "unclassified"


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
        # customer -> invoices changed since its last credit check, and
        # customer -> (as of, receivables then, invoices kept): the check adds
        # the changes instead of summing every open invoice every hour.
        self._credit_dirty: dict[str, set[str]] = {}
        self._credit_base: dict[str, tuple[float, int, int]] = {}
        self._key_accounts: set[str] = set()
        self._open_delays: dict[str, set[str]] = {}
        self._key_classes = set(rules.indicators["key_account_decline"].params["classes"])
        self._order_window = 2 * rules.indicators["key_account_decline"].params["window"] + DAY
        if segment_sink is None:
            self.segments: SegmentEngine | None = SegmentEngine(rules, self.state, clock=self.clock)
            self._send_fact = self.segments.apply
        else:
            self.segments = None
            self._send_fact = segment_sink
        self._next_tick = float("-inf")
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
        if self.state:
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
        seen_key = SEEN + event.event_id
        content = fingerprint(event)
        seen = self.state.get(seen_key)
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
        self.state[seen_key] = content
        duplicates_before = stats["duplicate"]
        changes.extend(self._handlers[event.type](event, ts))
        stats[event.type] += 1
        return Outcome(changes, stats["duplicate"] > duplicates_before, late)

    def _currency_rejection(self, event: models.Event) -> models.Rejection | None:
        # Every money field of an event is in its one `currency` field
        # (our_price included); a payment without one is in its invoice's.
        currency = getattr(event, "currency", None)
        if currency is not None and currency not in self._rates:
            return models.Rejection(
                "unknown_currency",
                f"currency: no rate for {currency!r} in the rules (indicators.yaml currency_rates_to_cny); "
                "an amount is never taken as CNY",
            )
        return None

    def advance_to(self, instant: datetime | float) -> list[dict]:
        """Move the clock to an instant (idle advance, `--until`, a shared clock)."""
        ts = instant.timestamp() if isinstance(instant, datetime) else float(instant)
        self.clock.advance_to(ts)
        return self._advance()

    def observe_time(self, event_ts: float) -> list[dict]:
        """Another partition's (or worker's) event time: moves the shared clock."""
        self.clock.observe(event_ts)
        return self._advance()

    def rebuild_deadlines(self) -> None:
        """Re-derive deadlines and indexes from state recovered elsewhere."""
        self.deadlines.clear()
        self._credit_dirty.clear()
        self._credit_base.clear()
        self._key_accounts.clear()
        # Every shipment is evaluated again at the next clock move, which
        # rebuilds the open delays by order too.
        self._open_delays.clear()
        for key, value in list(self.state.items()):
            if key.startswith(SHIPMENT) or key.startswith(INVOICE) or key.startswith(PRICE):
                self.deadlines.schedule(float("-inf"), key)
            elif key.startswith(CUSTOMER):
                if value.invoices if isinstance(value, Customer) else value[7]:
                    self._credit_dirty.setdefault(key[2:], set())
                if (value[0] if not isinstance(value, Customer) else value.customer_class) in self._key_classes:
                    self._key_accounts.add(key[2:])
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
        cancelled = set(customer.cancelled)
        # An order in the window is (ts, fen, order_id, region, event_id[, cancelled_ts]).
        orders = [{"order_id": order[2], "placed_at": order[0], "amount_cny": order[1] / 100,
                   "cancelled": order[2] in cancelled or (len(order) > 5 and order[5] is not None)}
                  for order in reversed(customer.orders)][:limit]
        invoices, receivable_fen = [], 0
        for invoice_id in customer.invoices:
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
            if not key.startswith(SHIPMENT) or held[0] != customer_id:
                continue
            rec = _as(Shipment, held)
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

    def _advance(self) -> list[dict]:
        now = self.clock.now
        if now is None:
            return []
        changes: list[dict] = []
        next_deadline = self.deadlines.next_deadline()
        if next_deadline is not None and next_deadline < now:
            for key in self.deadlines.due(now):
                changes.extend(self._reevaluate(key, now))
        if now > self._next_tick:
            changes.extend(self._customer_ticks(now))
            if self.segments is not None:
                changes.extend(self.segments.advance_to())
            self._next_tick = self._earliest_tick()
        return changes

    def _earliest_tick(self) -> float:
        """The next scheduled evaluation instant of any group indicator."""
        earliest = float("inf")
        for indicator in self.rules.indicators.values():
            every = indicator.evaluate_every
            if not every or not indicator.enabled:
                continue
            last = self.state.get(TICK + indicator.id)
            if last is None:
                return float("-inf")
            earliest = min(earliest, last + every)
        return earliest

    def _reevaluate(self, key: str, now: float) -> list[dict]:
        if key.startswith(SHIPMENT):
            rec = self.state.get(key)
            return self._evaluate_shipment(key, rec, now) if rec is not None else []
        if key.startswith(INVOICE):
            rec = self.state.get(key)
            return self._evaluate_invoice(key, rec, now) if rec is not None else []
        if key.startswith(PRICE):
            rec = self.state.get(key)
            return self._evaluate_price(key, rec, now) if rec is not None else []
        return []

    def _record(self, finding: Finding | None, now: float | None) -> list[dict]:
        if finding is None:
            return []
        exposure.attach_reference(self.state, self.rules, finding, now, self.book)
        record = self.book.record(finding, now if now is not None else (finding.onset_ts or 0.0))
        return [record] if record is not None else []

    # --- customers ---------------------------------------------------------------

    def _customer(self, customer_id: str) -> Customer:
        rec = self.state.get(CUSTOMER + customer_id)
        if rec is None:
            return NEW_CUSTOMER
        return _as(Customer, rec)

    def _segment_of(self, customer: Customer) -> str:
        return customer.customer_class or UNCLASSIFIED

    def _order_placed(self, event: models.OrderPlaced, ts: float) -> list[dict]:
        customer_id = intern(event.customer_id)
        customer = self._customer(customer_id)
        if any(order[2] == event.order_id for order in customer.orders):
            self.stats["duplicate"] += 1
            return []
        fen = minor_units(event.amount, event.currency, self._rates)
        region = intern(event.region) or customer.region
        cancelled = self._cancellation(event.order_id)
        order = (ts, fen, event.order_id, region, event.event_id, None if cancelled is None else cancelled[0])
        newest = max(ts, customer.orders[-1][0]) if customer.orders else ts
        orders = tuple(o for o in customer.orders if o[0] >= newest - self._order_window)
        index = bisect.bisect(orders, order)
        orders = orders[:index] + (order,) + orders[index:]
        updated = customer._replace(orders=orders)
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

    def _order_cancelled(self, event: models.OrderCancelled, ts: float) -> list[dict]:
        key = ORDER + event.order_id
        cancelled = self._cancellation(event.order_id)
        revision = (ts, event.event_id)
        if cancelled is not None and cancelled <= revision:
            self.stats["duplicate"] += 1    # the earliest cancellation ends the obligation
            return []
        self.state[key] = (revision,)
        customer_id = intern(event.customer_id)
        customer = self._customer(customer_id)
        region = None
        for index, order in enumerate(customer.orders):
            if order[2] == event.order_id:
                # The order window carries the cancellation, so the key-account
                # check reads it without a lookup per order.
                region = order[3]
                if order[5] is None:
                    exposure.order_cancelled(self.state, customer, customer_id, event.order_id)
                orders = customer.orders[:index] + (order[:5] + (ts,),) + customer.orders[index + 1:]
                self.state[CUSTOMER + customer_id] = tuple(customer._replace(orders=orders))
                break
        targets = ["all"] + ([region] if region in self.rules.targets and region != "all" else [])
        for target in targets:
            if target in self.rules.targets:
                self._send_fact({"kind": "sale", "segment": "target:" + target, "order_id": event.order_id,
                                 "cancelled": True, "event_id": event.event_id})
        # Only a shipment with an open delay alert needs a word now; any other
        # reads the cancellation when its deadline comes.
        changes: list[dict] = []
        for shipment_key in sorted(self._open_delays.get(event.order_id, ())):
            rec = self.state.get(shipment_key)
            if rec is not None:
                changes.extend(self._evaluate_shipment(shipment_key, rec, self.clock.now))
        return changes

    def _cancellation(self, order_id: str | None) -> tuple | None:
        """(occurred_at, event_id) of the order's cancellation, if one was seen."""
        if order_id is None:
            return None
        rec = self.state.get(ORDER + order_id)
        return None if rec is None else rec[0]

    def _profile(self, event: models.CustomerProfile, ts: float) -> list[dict]:
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
        self._credit_dirty.setdefault(customer_id, set())
        return []

    def _after_customer_change(self, customer_id: str, before: Customer, after: Customer) -> None:
        if after.customer_class in self._key_classes:
            self._key_accounts.add(customer_id)
        else:
            self._key_accounts.discard(customer_id)
        if before.customer_class != after.customer_class:
            old, new = self._segment_of(before), self._segment_of(after)
            if before.orders:
                self._send_fact({"kind": "left", "segment": old, "customer_id": customer_id})
                last = before.orders[-1]
                self._send_fact({"kind": "activity", "segment": new, "customer_id": customer_id,
                                 "ts": last[0], "event_id": last[4],
                                 "purchases_fen": exposure.purchases_fact(self.state, self.rules, customer_id, after.customer_class,
                                                                          last[0] - self.clock.lateness)})
            # Receivables follow the customer into its segment, whatever arrived first.
            for invoice_id in after.invoices:
                rec = self.state.get(INVOICE + invoice_id)
                if rec is not None:
                    self._send_receivable(invoice_id, _as(Invoice, rec), after)

    # --- shipments ----------------------------------------------------------------

    def _shipment_event(self, event, ts: float) -> list[dict]:
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
        rec = Shipment(customer_id, order_id, promised, eta, eta_rev, delivered, evidence + (event.event_id,),
                       order_fen, promised_rev)
        self.state[key] = tuple(rec)
        return self._evaluate_shipment(key, rec, self.clock.now)

    def _evaluate_shipment(self, key: str, rec, now: float | None) -> list[dict]:
        rec = _as(Shipment, rec)
        customer = self._customer(rec.customer_id)
        amount = None if rec.order_fen is None else rec.order_fen / 100
        if amount is None and rec.order_id is not None:
            for order in customer.orders:
                if order[2] == rec.order_id:
                    amount = order[1] / 100
                    rec = rec._replace(order_fen=order[1])
                    self.state[key] = tuple(rec)
                    break
        finding, deadline = shipment_finding(
            key[2:], rec, self.rules.indicators["delivery_delay"], now,
            customer.customer_class, customer.region, amount, self._cancellation(rec.order_id),
        )
        if deadline is not None:
            self.deadlines.schedule(deadline, key)
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

    def _invoice_event(self, event, ts: float) -> list[dict]:
        key = INVOICE + event.invoice_id
        raw = self.state.get(key)
        rec = _as(Invoice, raw) if raw is not None else Invoice(intern(event.customer_id), None, None, None, EMPTY, None, EMPTY)
        if event.event_id in rec.evidence:
            self.stats["duplicate"] += 1
            return []
        customer_id, amount, issued_ts, due_ts, payments, written_off_ts, evidence, currency, terms_rev = rec
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
        self.state[key] = tuple(rec)
        customer_id = rec.customer_id
        customer = self._customer(customer_id)
        if event.invoice_id not in customer.invoices:
            customer = customer._replace(invoices=customer.invoices + (event.invoice_id,))
            self.state[CUSTOMER + customer_id] = tuple(customer)
        self._credit_dirty.setdefault(customer_id, set()).add(event.invoice_id)
        self._send_receivable(event.invoice_id, rec, customer)
        return self._evaluate_invoice(key, rec, self.clock.now)

    def _send_receivable(self, invoice_id: str, rec: Invoice, customer: Customer) -> None:
        if rec.amount is None or rec.due_ts is None:
            return
        # Written off is never collected: it simply adds nothing.
        self._send_fact({"kind": "receivable", "segment": self._segment_of(customer), "invoice_id": invoice_id,
                         "due_ts": rec.due_ts, "fen": fen_of(rec.amount, rec.currency or "CNY", self._rates),
                         "payments": payments_in_fen(rec, self._rates),
                         "written_off_ts": rec.written_off_ts, "event_id": rec.evidence[0]})

    def _evaluate_invoice(self, key: str, rec, now: float | None) -> list[dict]:
        rec = _as(Invoice, rec)
        customer = self._customer(rec.customer_id)
        finding, deadline = invoice_finding(
            key[2:], rec, self.rules.indicators["payment_overdue"], now, customer.customer_class, customer.region,
            self._rates,
        )
        if deadline is not None:
            self.deadlines.schedule(deadline, key)
        return self._record(finding, now)

    # --- competitor prices ------------------------------------------------------------

    def _price_observed(self, event: models.CompetitorPriceObserved, ts: float) -> list[dict]:
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

    def _evaluate_price(self, key: str, raw, now: float | None) -> list[dict]:
        history = _as(PriceHistory, raw)
        indicator = self.rules.indicators["competitor_price_cut"]
        keep = indicator.params["keep_observations"]
        observations = history.observations
        if len(observations) > keep:
            # Only decided observations fold into the carry: one still waiting
            # for the watermark may yet be preceded by a late one.
            prune = min(len(observations) - keep, len(decided(observations, now)))
            if prune > 0:
                carry = walk_prices(history.carry, observations[:prune], indicator.threshold,
                                    indicator.params.get("reference") == "our_price")
                history = PriceHistory(carry, observations[prune:])
                self.state[key] = history
        competitor, sku = key[len(PRICE):].split("\x1f", 1)
        finding, deadline = price_finding(competitor, sku, history, indicator, now)
        if deadline is not None:
            self.deadlines.schedule(deadline, key)
        return self._record(finding, now)

    # --- customer-level schedules ------------------------------------------------------------

    def _customer_ticks(self, now: float) -> list[dict]:
        changes: list[dict] = []
        for indicator_id, evaluate in (("credit_limit_breach", self._credit_tick),
                                       ("key_account_decline", self._key_account_tick)):
            indicator = self.rules.indicators[indicator_id]
            every = indicator.evaluate_every
            if not indicator.enabled or not every:
                continue
            last = self.state.get(TICK + indicator_id)
            if last is None:
                last = (now // every) * every - every
            tick = last + every
            if not tick < now:
                continue
            while tick < now:
                changes.extend(evaluate(tick))
                last = tick
                tick += every
            self.state[TICK + indicator_id] = last
        return changes

    def _credit_tick(self, as_of: float) -> list[dict]:
        indicator = self.rules.indicators["credit_limit_breach"]
        changes: list[dict] = []
        still_dirty: dict[str, set[str]] = {}
        for customer_id in sorted(self._credit_dirty):
            changed = self._credit_dirty[customer_id]
            customer = self._customer(customer_id)
            base = self._credit_base.get(customer_id)
            pending: set[str] = set()
            if base is None or len(customer.invoices) > 2 * base[2] + 16:
                receivable, kept = self._receivables_in_full(customer_id, customer, as_of, pending)
            else:
                receivable, kept = base[1], base[2]
                for invoice_id in changed:
                    raw = self.state.get(INVOICE + invoice_id)
                    if raw is None:
                        continue
                    rec = _as(Invoice, raw)
                    receivable += balance_as_of(rec, as_of, self._rates) - balance_as_of(rec, base[0], self._rates)
                    if _facts_after(rec, as_of):
                        pending.add(invoice_id)
            self._credit_base[customer_id] = (as_of, receivable, kept)
            if pending:
                still_dirty[customer_id] = pending
            limit = customer.credit_limit
            if limit is None:
                continue    # no limit known: nothing to check (DOMAIN §3 "Credit limit")
            # A limit of 0 is a credit hold: any open receivable breaches it.
            ratio = receivable / limit if limit else (float("inf") if receivable > 0 else 0.0)
            breached = indicator.breached(ratio)
            alerted = self.book.has_alert("credit_limit_breach", "customer", customer_id)
            if breached or alerted:
                evidence = []
                for invoice_id in customer.invoices:
                    raw = self.state.get(INVOICE + invoice_id)
                    if raw is not None and balance_as_of(_as(Invoice, raw), as_of, self._rates) > 0:
                        evidence.append(raw[6][0])
                        if len(evidence) == 20:
                            break
                changes.extend(self._record(Finding(
                    indicator, {"kind": "customer", "id": customer_id, "customer_id": customer_id},
                    open=breached, observed=ratio, onset_ts=None, resolved_ts=None if breached else as_of,
                    amount_cny=max(0, receivable - limit) / 100, customer_class=customer.customer_class,
                    region=customer.region, evidence=tuple(evidence) + customer.evidence,
                    detail=(f"customer {customer_id}: receivables {receivable / 100:,.2f} CNY against a limit of {limit / 100:,.2f} CNY;"
                            if limit else f"customer {customer_id} on credit hold (limit 0): receivables {receivable / 100:,.2f} CNY open;"),
                    resolution=None if breached else "receivables back under the limit",
                ), as_of))
        self._credit_dirty = still_dirty
        return changes

    def _receivables_in_full(self, customer_id: str, customer: Customer, as_of: float, pending: set[str]) -> tuple[int, int]:
        """Sum every invoice of a customer as of an instant, and forget the settled ones."""
        receivable = 0
        keep: list[str] = []
        for invoice_id in customer.invoices:
            raw = self.state.get(INVOICE + invoice_id)
            if raw is None:
                continue
            rec = _as(Invoice, raw)
            balance = balance_as_of(rec, as_of, self._rates)
            receivable += balance
            later = _facts_after(rec, as_of)
            if later:
                pending.add(invoice_id)
            if balance > 0 or later or rec.amount is None:
                keep.append(invoice_id)
        if tuple(keep) != customer.invoices:
            self.state[CUSTOMER + customer_id] = tuple(customer._replace(invoices=tuple(keep)))
        return receivable, len(keep)

    def _key_account_tick(self, as_of: float) -> list[dict]:
        indicator = self.rules.indicators["key_account_decline"]
        window = indicator.params["window"]
        changes: list[dict] = []
        for customer_id in sorted(self._key_accounts):
            customer = self._customer(customer_id)
            recent = prior = 0
            recent_events: list[str] = []
            for ts, fen, _, _, event_id, cancelled_ts in customer.orders:
                if ts > as_of or (cancelled_ts is not None and cancelled_ts <= as_of):
                    continue
                if ts > as_of - window:
                    recent += fen
                    recent_events.append(event_id)
                elif ts > as_of - 2 * window:
                    prior += fen
            alerted = self.book.has_alert("key_account_decline", "customer", customer_id)
            if prior <= 0:
                continue
            decline = 1.0 - recent / prior
            breached = indicator.breached(decline)
            if breached or alerted:
                changes.extend(self._record(Finding(
                    indicator, {"kind": "customer", "id": customer_id, "customer_id": customer_id},
                    open=breached, observed=max(decline, 0.0), onset_ts=None, resolved_ts=None if breached else as_of,
                    amount_cny=max(0, prior - recent) / 100, customer_class=customer.customer_class,
                    region=customer.region, evidence=tuple(recent_events[-20:]),
                    detail=f"key account {customer_id}: {recent / 100:,.0f} CNY ordered in {span(window)} against {prior / 100:,.0f} CNY before; decline",
                    resolution=None if breached else "orders recovered",
                ), as_of))
        return changes



def _as(kind, value):
    """State holds plain tuples (the garbage collector stops tracking a tuple of
    atoms, not a named tuple: millions of entities would lengthen every full
    collection); the code reads them through the named tuple."""
    return value if type(value) is kind else kind(*value)


def _facts_after(rec: Invoice, instant: float) -> bool:
    return ((rec.issued_ts or 0) > instant or (rec.written_off_ts or 0) > instant
            or any(p[1] > instant for p in rec.payments))
