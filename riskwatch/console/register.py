"""The console's risk register and customer pages, mounted through `PageKit`.

- `/console/register`: alerts, plans and reviews with the register's filters
  (tier, indicator, owner, status, customer class, region, period), counts,
  and `/console/register/export.csv` / `.xlsx`: exactly the filtered rows.
- `/console/customers?q=PREFIX`: customers found by id prefix;
  `/console/customers/{customer_id}`: everything the desk knows about one
  customer (its alerts of every indicator, the plans and reviews on them).

Filters mean what `GET /v1/register` means (`AlertDesk.alerts/plans/reviews`
with the same keywords), plus `region`; `since` and `until` are dates
(YYYY-MM-DD) in the console's time zone, both days included: `since` is
that day's 00:00 there, `until` the next day's 00:00 (exclusive), so the
API asked with those two instants answers the same rows.

Region limits: every alert, plan and review shown, counted or exported has
passed `kit.visible` / `kit.visible_linked`, called inside
`kit.backend.consistent` (the functions `register_view`, `customer_view`
and `customer_index` below are where a region-limited session is applied).

Money: amounts are CNY in major units (yuan), as the alert records carry
them (`amount_at_stake_cny`); exports write them as numbers (two decimals
in the sheet's format), never as "¥1,234.00" text.
"""

from __future__ import annotations

import asyncio
import codecs
import csv
import io
import math
import tempfile
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Callable, Iterator
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, StreamingResponse

from riskwatch.console import words
from riskwatch.console.i18n import LANGUAGE_COOKIE, Formatter, choose_language, parse as parse_instant
from riskwatch.console.routes import TIERS, PageKit, Refused, _choices, _urgency
from riskwatch.console.words import N_

REGISTER_PAGE_SIZE = 100
LINKED_SHOWN = 200  # plans and reviews shown on the page; the exports hold all of them
CUSTOMERS_SHOWN = 100
FILTER_KEYS = ("tier", "indicator", "owner", "status", "customer_class", "region")
PLAN_STATUSES = ("active", "completed", "closed", "cancelled")
REVIEW_STATUSES = ("submitted", "signed_off")  # "open" is an alert status too
ALERT_STATUSES = ("open", "acknowledged", "in_progress", "snoozed", "resolved")
EXPORT_CHUNK_ROWS = 500
XLSX_MEDIA = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# Characters that make a spreadsheet read a text cell as a formula (CSV/formula
# injection): a reason typed by a person could otherwise run in Excel.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def customer_of(record: dict) -> str | None:
    """The customer an alert record is about: its `customer_id`, its
    subject's `customer_id`, or the subject's id when the subject is a
    customer (credit-limit alerts); None for segment and price alerts."""
    subject = record.get("subject") or {}
    return (record.get("customer_id") or subject.get("customer_id")
            or (subject.get("id") if subject.get("kind") == "customer" else None))


class _Fresh(list):
    """Rows built under the lock from immutable values (str, int, float,
    None, tuples of str): they share nothing with the desk's ledger, so
    `consistent`'s deep copy may hand them over as they are. Copying 10,000
    export rows value by value would cost more than building them."""

    def __deepcopy__(self, memo):
        return self


# ---------------------------------------------------------------- filters

def register_filters(params, zone: str) -> dict[str, Any]:
    """The register's filters from a query string: {"tier", "indicator",
    "owner", "status", "customer_class", "region": str (absent when not
    given), "since_date", "until_date": date, "since", "until": aware
    datetimes (the days' bounds in `zone`)}. Raises Refused(422) naming a
    date that is not YYYY-MM-DD, or a period that ends before it starts."""
    found: dict[str, Any] = {k: params[k][:64] for k in FILTER_KEYS if params.get(k)}
    tz = ZoneInfo(zone)
    for key in ("since", "until"):
        raw = (params.get(key) or "").strip()
        if not raw:
            continue
        try:
            day = date.fromisoformat(raw)
        except ValueError:
            raise Refused(422, f"{key}: {raw[:40]!r} is not a date (YYYY-MM-DD)") from None
        if not 2000 <= day.year <= 2100:
            raise Refused(422, f"{key}: give a date between 2000 and 2100")
        found[f"{key}_date"] = day
        start = datetime.combine(day + timedelta(days=1 if key == "until" else 0), time(0), tz)
        found[key] = start.astimezone(timezone.utc)
    if found.get("since") and found.get("until") and found["until"] <= found["since"]:
        raise Refused(422, "until: the period ends before it starts")
    return found


def query_of(filters: dict[str, Any], **more) -> str:
    """The filters as a query string (dates as YYYY-MM-DD), for links."""
    shown = {k: filters[k] for k in FILTER_KEYS if filters.get(k)}
    for key in ("since", "until"):
        if filters.get(f"{key}_date"):
            shown[key] = filters[f"{key}_date"].isoformat()
    return urlencode({**shown, **{k: v for k, v in more.items() if v not in (None, "")}})


# ---------------------------------------------------------------- rows

def alert_row(a: dict) -> dict:
    """One register row from a described alert (`describe_alert`): flat,
    immutable values. Money in CNY (yuan) as a float or None; instants as
    RFC 3339 strings; plan and review ids as tuples."""
    r = a["alert"]
    subject = r.get("subject") or {}
    return {
        "alert_id": a["alert_id"], "indicator": r.get("indicator"), "title": r.get("title") or r.get("indicator"),
        "tier": a["tier"], "status": a["status"], "subject_kind": subject.get("kind"),
        "subject_id": subject.get("id"), "customer_id": customer_of(r), "customer_class": r.get("customer_class"),
        "region": r.get("region"), "observed": _float(r.get("observed")), "threshold": _float(r.get("threshold")),
        "unit": r.get("unit"), "reading": (a.get("reading") or {}).get("text"),
        "amount_at_stake_cny": _float(r.get("amount_at_stake_cny")), "owner": a["owner"], "level": a["level"],
        "raised_at": r.get("raised_at"), "respond_by": r.get("respond_by"),
        "resolved_at": a.get("resolved_at") or r.get("resolved_at"),
        "plan_ids": tuple(a.get("plan_ids") or ()), "review_ids": tuple(a.get("review_ids") or ()),
        "response_overdue": bool(a.get("response_overdue")),
    }


def plan_row(p: dict, customer_id: str | None, region: str | None) -> dict:
    """One register row from a described plan; the fund's committed amount
    in the fund's currency (major units) as a float or None."""
    fund = p.get("fund") or {}
    steps = p.get("steps") or []
    return {
        "plan_id": p["plan_id"], "plan": p.get("plan"), "title": p.get("title"), "alert_id": p.get("alert_id"),
        "indicator": p.get("indicator"), "tier": p.get("tier"), "status": p.get("status"), "owner": p.get("owner"),
        "customer_id": customer_id, "customer_class": p.get("customer_class"), "region": region,
        "triggered_at": p.get("triggered_at"), "triggered_by": p.get("triggered_by"), "reason": p.get("reason"),
        "fund": fund.get("name"), "committed_amount": _float(fund.get("committed_amount")),
        "currency": fund.get("currency") if fund else None,
        "steps_done": sum(1 for s in steps if s.get("status") != "pending"), "steps": len(steps),
        "overdue": bool(p.get("overdue")), "closed_at": p.get("closed_at"),
    }


def review_row(r: dict, customer_id: str | None, region: str | None) -> dict:
    """One register row from a described review."""
    return {
        "review_id": r["review_id"], "alert_id": r.get("alert_id"), "indicator": r.get("indicator"),
        "tier": r.get("tier"), "status": r.get("status"), "owner": r.get("owner"), "customer_id": customer_id,
        "customer_class": r.get("customer_class"), "region": region, "opened_at": r.get("opened_at"),
        "due_at": r.get("due_at"), "overdue": bool(r.get("overdue")), "submitted_at": r.get("submitted_at"),
        "signed_off_at": r.get("signed_off_at"), "root_cause": r.get("root_cause"),
    }


def _float(value) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _newest_first(rows: list[dict], key: str, id_key: str) -> None:
    rows.sort(key=lambda row: (row.get(key) or "", row[id_key]), reverse=True)


def register_view(kit: PageKit, session, filters: dict[str, Any]) -> dict[str, Any]:
    """Everything the register shows for `filters`, in one state of the desk:
    {"alerts", "plans", "reviews": [row] newest first, "counts": {"alerts",
    "plans", "reviews", "plans_overdue", "reviews_overdue", "tiers":
    {tier: n}}, "choices": the filters' options}. Only what `session` may
    see (kit.visible / kit.visible_linked)."""
    backend = kit.backend
    desk = backend.desk
    keywords = {k: filters.get(k) for k in ("tier", "indicator", "owner", "status", "customer_class", "region",
                                           "since", "until")}

    def read():
        now = backend.deadlines_clock()
        alerts = _Fresh(alert_row(a) for a in desk.alerts(now, **keywords)
                        if kit.visible(session, desk.ledger.alerts[a["alert_id"]]))
        linked = []
        for kind, found in (("plans", desk.plans(now, **keywords)), ("reviews", desk.reviews(now, **keywords))):
            rows = _Fresh()
            for thing in found:
                if not kit.visible_linked(session, thing):
                    continue
                item = desk.ledger.alerts.get(thing.get("alert_id") or "")
                record = item["alert"] if item else {}
                make = plan_row if kind == "plans" else review_row
                rows.append(make(thing, customer_of(record), record.get("region")))
            linked.append(rows)
        choices = _choices(i for i in desk.ledger.alerts.values() if kit.visible(session, i))
        return {"alerts": alerts, "plans": linked[0], "reviews": linked[1], "choices": choices}

    found = backend.consistent(read)
    _newest_first(found["alerts"], "raised_at", "alert_id")
    _newest_first(found["plans"], "triggered_at", "plan_id")
    _newest_first(found["reviews"], "opened_at", "review_id")
    tiers = {tier: 0 for tier in TIERS}
    for row in found["alerts"]:
        tiers[row["tier"]] = tiers.get(row["tier"], 0) + 1
    found["counts"] = {"alerts": len(found["alerts"]), "plans": len(found["plans"]),
                       "reviews": len(found["reviews"]),
                       "plans_overdue": sum(p["overdue"] for p in found["plans"]),
                       "reviews_overdue": sum(r["overdue"] for r in found["reviews"]), "tiers": tiers}
    return found


# ---------------------------------------------------------------- customers

def customer_view(kit: PageKit, session, customer_id: str) -> dict[str, Any] | None:
    """What the desk knows about one customer, in one state of the desk, as
    far as `session` may see: None when no visible alert is about it.
    {"customer_id", "customer_class", "region" (from its latest alert),
    "open", "past": [row] (open ones most urgent first, past ones newest
    first), "plans", "reviews": [row], "credit": the latest credit-limit
    alert's row or None, "exposure": [{"indicator", "title", "count",
    "amount_cny"}] of the open alerts}. Amounts in CNY (yuan)."""
    backend = kit.backend
    desk = backend.desk

    def read():
        now = backend.deadlines_clock()
        items = [i for i in desk.ledger.alerts.values()
                 if customer_of(i["alert"]) == customer_id and kit.visible(session, i)]
        if not items:
            return None
        items.sort(key=_urgency)
        ids = {i["alert_id"] for i in items}
        plans = _Fresh(plan_row(desk_plan, customer_id, None) for desk_plan in desk.plans(now)
                       if desk_plan["alert_id"] in ids and kit.visible_linked(session, desk_plan))
        reviews = _Fresh(review_row(r, customer_id, None) for r in desk.reviews(now)
                         if r["alert_id"] in ids and kit.visible_linked(session, r))
        rows = _Fresh(alert_row(desk.alert(i["alert_id"], now)) for i in items)
        return {"rows": rows, "plans": plans, "reviews": reviews}

    found = backend.consistent(read)
    if found is None:
        return None
    rows = found.pop("rows")
    latest = max(rows, key=lambda row: (row["raised_at"] or "", row["alert_id"]))
    credit = [row for row in rows if row["indicator"] == "credit_limit_breach"]
    past = [row for row in rows if row["status"] == "resolved"]
    _newest_first(past, "raised_at", "alert_id")
    _newest_first(found["plans"], "triggered_at", "plan_id")
    _newest_first(found["reviews"], "opened_at", "review_id")
    opened = [row for row in rows if row["status"] != "resolved"]
    exposure: dict[str, dict] = {}
    for row in opened:
        entry = exposure.setdefault(row["indicator"], {"indicator": row["indicator"], "title": row["title"],
                                                       "count": 0, "amount_cny": 0.0})
        entry["count"] += 1
        entry["amount_cny"] += row["amount_at_stake_cny"] or 0.0
    return {"customer_id": customer_id, "customer_class": latest["customer_class"], "region": latest["region"],
            "open": opened, "past": past, "plans": found["plans"], "reviews": found["reviews"],
            "credit": max(credit, key=lambda row: row["raised_at"] or "") if credit else None,
            "exposure": sorted(exposure.values(), key=lambda e: -e["amount_cny"]),
            "at_stake_cny": sum(e["amount_cny"] for e in exposure.values())}


def engine_view(kit: PageKit, session, customer_id: str) -> dict | None:
    """The engine's view of the customer (`Engine.customer_view`: recent
    orders, open invoices with days past due, late shipments, credit limit
    and receivables) where the engine runs beside the console (`riskwatch
    run`), if the session's regions include the customer's; None otherwise."""
    facts = kit.backend.customer_facts
    if facts is None:
        return None
    view = facts(customer_id)
    if view is None or (session.regions is not None and view.get("region") not in session.regions):
        return None
    return view


def customer_index(kit: PageKit, session, prefix: str) -> list[dict]:
    """Customers whose id starts with `prefix` (case ignored), as far as
    `session` may see their alerts: [{"customer_id", "customer_class",
    "region", "alerts", "open", "at_stake_cny"}], most open amount at stake
    first, at most CUSTOMERS_SHOWN + 1 (so the page can say there are more)."""
    wanted = prefix.casefold()

    def read():
        found: dict[str, dict] = {}
        for item in kit.backend.desk.ledger.alerts.values():
            record = item["alert"]
            customer = customer_of(record)
            if not customer or not customer.casefold().startswith(wanted) or not kit.visible(session, item):
                continue
            entry = found.setdefault(customer, {"customer_id": customer, "customer_class": None, "region": None,
                                                "alerts": 0, "open": 0, "at_stake_cny": 0.0, "_latest": ""})
            entry["alerts"] += 1
            if (record.get("raised_at") or "") >= entry["_latest"]:
                entry.update(_latest=record.get("raised_at") or "", customer_class=record.get("customer_class"),
                             region=record.get("region"))
            if item["status"] != "resolved":
                entry["open"] += 1
                entry["at_stake_cny"] += _float(record.get("amount_at_stake_cny")) or 0.0
        return list(found.values())

    found = kit.backend.consistent(read)
    found.sort(key=lambda e: (-e["at_stake_cny"], -e["open"], e["customer_id"]))
    return found[:CUSTOMERS_SHOWN + 1]


# ---------------------------------------------------------------- exports

def _columns(fmt: Formatter, zone: str) -> dict[str, list[tuple[str, str, str]]]:
    """Each export table's columns: (row key, header in the reader's
    language, kind): text, word (translated), role, number, money, instant,
    ids, flag."""
    at = {"zone": zone}
    t = fmt.gettext
    return {
        "alerts": [
            ("alert_id", t(N_("Alert id")), "text"), ("indicator", t(N_("Indicator id")), "text"),
            ("title", t(N_("Indicator")), "known"), ("tier", t(N_("Tier")), "tier"),
            ("status", t(N_("Status")), "status"), ("subject_kind", t(N_("Subject kind")), "known"),
            ("subject_id", t(N_("Subject")), "text"), ("customer_id", t(N_("Customer")), "text"),
            ("customer_class", t(N_("Customer class")), "text"), ("region", t(N_("Region")), "text"),
            ("observed", t(N_("Observed")), "number"), ("threshold", t(N_("Threshold")), "number"),
            ("unit", t(N_("Unit")), "known"), ("reading", t(N_("Observed / threshold")), "reading"),
            ("amount_at_stake_cny", t(N_("Amount at stake (CNY)")), "money"), ("owner", t(N_("Owner")), "role"),
            ("level", t(N_("Level")), "number"),
            ("raised_at", t(N_("Raised (%(zone)s)")) % at, "instant"),
            ("respond_by", t(N_("Respond by (%(zone)s)")) % at, "instant"),
            ("resolved_at", t(N_("Resolved (%(zone)s)")) % at, "instant"),
            ("plan_ids", t(N_("Plans")), "ids"), ("review_ids", t(N_("Reviews")), "ids"),
        ],
        "plans": [
            ("plan_id", t(N_("Plan id")), "text"), ("title", t(N_("Plan")), "known"),
            ("alert_id", t(N_("Alert id")), "text"), ("indicator", t(N_("Indicator id")), "text"),
            ("tier", t(N_("Tier")), "tier"), ("status", t(N_("Status")), "plan_status"),
            ("owner", t(N_("Owner")), "role"), ("customer_id", t(N_("Customer")), "text"),
            ("customer_class", t(N_("Customer class")), "text"), ("region", t(N_("Region")), "text"),
            ("triggered_at", t(N_("Triggered (%(zone)s)")) % at, "instant"),
            ("triggered_by", t(N_("Triggered by")), "text"), ("reason", t(N_("Reason")), "text"),
            ("fund", t(N_("Fund")), "known"), ("committed_amount", t(N_("Committed")), "money"),
            ("currency", t(N_("Currency")), "text"), ("steps_done", t(N_("Steps done")), "number"),
            ("steps", t(N_("Steps")), "number"), ("overdue", t(N_("Overdue")), "flag"),
            ("closed_at", t(N_("Closed (%(zone)s)")) % at, "instant"),
        ],
        "reviews": [
            ("review_id", t(N_("Review id")), "text"), ("alert_id", t(N_("Alert id")), "text"),
            ("indicator", t(N_("Indicator id")), "text"), ("tier", t(N_("Tier")), "tier"),
            ("status", t(N_("Status")), "review_status"), ("owner", t(N_("Owner")), "role"),
            ("customer_id", t(N_("Customer")), "text"), ("customer_class", t(N_("Customer class")), "text"),
            ("region", t(N_("Region")), "text"), ("opened_at", t(N_("Opened (%(zone)s)")) % at, "instant"),
            ("due_at", t(N_("Due (%(zone)s)")) % at, "instant"), ("overdue", t(N_("Overdue")), "flag"),
            ("submitted_at", t(N_("Submitted (%(zone)s)")) % at, "instant"),
            ("signed_off_at", t(N_("Signed off (%(zone)s)")) % at, "instant"),
            ("root_cause", t(N_("Root cause")), "text"),
        ],
    }


def _converters(columns: list[tuple[str, str, str]], fmt: Formatter, tz: ZoneInfo) -> list[tuple[str, Callable]]:
    """Per column, (row key, value -> cell): float for numbers and money, a
    naive datetime in the console's zone for instants (spreadsheets have no
    zones; the header names it), text otherwise, None for nothing. Words
    (tiers, statuses, titles, roles, readings) come from small vocabularies,
    so each is translated once per export, not once per row."""
    names = {"tier": words.TIER_NAMES, "status": words.STATUS_NAMES, "plan_status": words.PLAN_NAMES,
             "review_status": words.REVIEW_NAMES}
    yes, no = fmt.gettext(N_("yes")), fmt.gettext(N_("no"))

    def memo(translate: Callable[[Any], str]) -> Callable[[Any], str | None]:
        cache: dict[Any, str | None] = {None: None, "": None}

        def convert(value):
            try:
                return cache[value]
            except KeyError:
                cache[value] = found = translate(value)
                return found
        return convert

    def instant(value):
        moment = parse_instant(value)
        # Whole seconds: a person's action carries microseconds, an alert's
        # instants none, and one column should read alike.
        return None if moment is None else moment.astimezone(tz).replace(tzinfo=None, microsecond=0)

    def text(value):
        return None if value is None or value == "" else str(value)

    made = []
    for key, _, kind in columns:
        if kind in names:
            table = names[kind]
            convert = memo(lambda v, table=table: fmt.gettext(table.get(v, v)))
        elif kind == "known":
            convert = memo(fmt.known)
        elif kind == "role":
            convert = memo(fmt.role)
        elif kind == "reading":
            convert = memo(fmt.reading)
        elif kind in ("number", "money"):
            convert = _float
        elif kind == "instant":
            convert = instant
        elif kind == "ids":
            convert = lambda v: " ".join(v) if v else None  # noqa: E731
        elif kind == "flag":
            convert = lambda v: yes if v else no  # noqa: E731
        else:
            convert = text
        made.append((key, convert))
    return made


def _safe_text(text: str) -> str:
    # A leading apostrophe keeps a spreadsheet from evaluating person-typed text.
    return "'" + text if text.startswith(_FORMULA_START) else text


def csv_chunks(rows: list[dict], columns: list[tuple[str, str, str]], fmt: Formatter, zone: str) -> Iterator[bytes]:
    """The rows as CSV, UTF-8 with a byte-order mark, in chunks of
    EXPORT_CHUNK_ROWS rows. The BOM is what makes Excel (which otherwise
    reads a CSV in the machine's ANSI code page, GBK on a Chinese Windows)
    open the file as UTF-8, so Chinese titles and words survive a double
    click; LibreOffice and csv readers skip it. Numbers plain ("155809.0",
    no currency sign or grouping), instants "YYYY-MM-DD HH:MM:SS" in `zone`."""
    converters = _converters(columns, fmt, ZoneInfo(zone))
    money = {key for key, _, kind in columns if kind == "money"}
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([header for _, header, _ in columns])
    yield codecs.BOM_UTF8 + buffer.getvalue().encode("utf-8")
    for start in range(0, len(rows), EXPORT_CHUNK_ROWS):
        buffer.seek(0)
        buffer.truncate()
        for row in rows[start:start + EXPORT_CHUNK_ROWS]:
            out = []
            for key, convert in converters:
                value = convert(row.get(key))
                if value is None:
                    out.append("")
                elif isinstance(value, str):
                    out.append(_safe_text(value))
                elif isinstance(value, datetime):
                    out.append(value.isoformat(" "))
                elif key in money:
                    out.append(f"{value:.2f}")
                else:
                    out.append(str(int(value)) if value.is_integer() else repr(value))
            writer.writerow(out)
        yield buffer.getvalue().encode("utf-8")


def write_xlsx(target, tables: list[tuple[str, list[dict], list[tuple[str, str, str]]]], fmt: Formatter,
               zone: str) -> None:
    """Write one sheet per (sheet name, rows, columns) to `target` (a file
    object): XlsxWriter in constant_memory mode, so each row goes to a
    temporary file as it is written and memory stays flat however many
    rows there are. Money cells are numbers with a "#,##0.00" format,
    instants dates with "yyyy-mm-dd hh:mm", the header row frozen and
    filterable. Raises xlsxwriter's exceptions on a write failure."""
    import xlsxwriter

    book = xlsxwriter.Workbook(target, {"constant_memory": True, "strings_to_formulas": False,
                                        "strings_to_numbers": False, "strings_to_urls": False})
    bold = book.add_format({"bold": True})
    styles = {"money": book.add_format({"num_format": "#,##0.00"}),
              "instant": book.add_format({"num_format": "yyyy-mm-dd hh:mm"})}
    widths = {"money": 16, "instant": 17, "number": 10, "reading": 24, "known": 28}
    for name, rows, columns in tables:
        sheet = book.add_worksheet(name)
        for index, (_, header, kind) in enumerate(columns):
            sheet.set_column(index, index, widths.get(kind, 14))
        for index, (_, header, _) in enumerate(columns):
            sheet.write_string(0, index, header, bold)
        sheet.freeze_panes(1, 0)
        sheet.autofilter(0, 0, max(len(rows), 1), len(columns) - 1)
        converters = [(index, key, convert, styles.get(kind)) for index, ((key, convert), (_, _, kind))
                      in enumerate(zip(_converters(columns, fmt, ZoneInfo(zone)), columns))]
        for line, row in enumerate(rows, start=1):
            for index, key, convert, style in converters:
                value = convert(row.get(key))
                if value is None:
                    continue
                if isinstance(value, datetime):
                    sheet.write_datetime(line, index, value, style)
                elif isinstance(value, float):
                    sheet.write_number(line, index, value, style)
                else:
                    # write_string, never write(): text stays text (no formula, number or link guessing).
                    sheet.write_string(line, index, value)
    book.close()


# ---------------------------------------------------------------- routes

def mount_register(app: FastAPI, kit: PageKit) -> None:
    """Add the register and customer pages and the exports to `app`."""
    backend = kit.backend

    def formatter(request: Request) -> Formatter:
        language = choose_language(request.cookies.get(LANGUAGE_COOKIE), request.headers.get("accept-language"))
        return Formatter(language, backend.time_zone)

    def today() -> str:
        return backend.clock().astimezone(ZoneInfo(backend.time_zone)).strftime("%Y%m%d")

    def attachment(name: str) -> dict[str, str]:
        return {"Content-Disposition": f"attachment; filename=\"{name}\"; filename*=UTF-8''{quote(name)}",
                "Cache-Control": "no-store"}

    @app.get("/console/register", include_in_schema=False)
    async def register_page(request: Request, page: int = 1):
        session = kit.reader(request)
        await kit.sync()
        filters = register_filters(request.query_params, backend.time_zone)
        found = await asyncio.to_thread(register_view, kit, session, filters)
        pages = max(1, math.ceil(len(found["alerts"]) / REGISTER_PAGE_SIZE))
        page = max(1, min(page, pages))
        start = (page - 1) * REGISTER_PAGE_SIZE
        return kit.render(
            request, "register.html", session=session, filters=filters, counts=found["counts"],
            choices=found["choices"], rows=found["alerts"][start:start + REGISTER_PAGE_SIZE],
            plans=found["plans"][:LINKED_SHOWN], reviews=found["reviews"][:LINKED_SHOWN], page=page, pages=pages,
            filter_query=query_of(filters), page_query=lambda n: query_of(filters, page=n),
            status_choices=_status_choices(), linked_shown=LINKED_SHOWN, now=kit.now_or_none(),
            zone=backend.time_zone)

    @app.get("/console/register/export.csv", include_in_schema=False)
    async def register_csv(request: Request, table: str = "alerts"):
        session = kit.reader(request)
        if table not in ("alerts", "plans", "reviews"):
            raise Refused(404, f"no register table {table[:40]!r} (alerts, plans, reviews)")
        await kit.sync()
        filters = register_filters(request.query_params, backend.time_zone)
        found = await asyncio.to_thread(register_view, kit, session, filters)
        fmt = formatter(request)
        columns = _columns(fmt, backend.time_zone)[table]
        suffix = "" if table == "alerts" else f"-{table}"
        return StreamingResponse(csv_chunks(found[table], columns, fmt, backend.time_zone),
                                 media_type="text/csv; charset=utf-8",
                                 headers=attachment(f"riskwatch-register{suffix}-{today()}.csv"))

    @app.get("/console/register/export.xlsx", include_in_schema=False)
    async def register_xlsx(request: Request):
        session = kit.reader(request)
        await kit.sync()
        filters = register_filters(request.query_params, backend.time_zone)
        fmt = formatter(request)

        def build():
            found = register_view(kit, session, filters)
            columns = _columns(fmt, backend.time_zone)
            # A zip cannot be sent before its central directory is written: the
            # workbook goes to a temporary file, which is then streamed and gone.
            spool = tempfile.TemporaryFile()
            try:
                write_xlsx(spool, [(fmt.gettext(N_("Alerts")), found["alerts"], columns["alerts"]),
                                   (fmt.gettext(N_("Plans")), found["plans"], columns["plans"]),
                                   (fmt.gettext(N_("Reviews")), found["reviews"], columns["reviews"])],
                           fmt, backend.time_zone)
                spool.seek(0)
            except BaseException:
                spool.close()
                raise
            return spool
        spool = await asyncio.to_thread(build)

        def chunks() -> Iterator[bytes]:
            with spool:
                while block := spool.read(256 * 1024):
                    yield block
        return StreamingResponse(chunks(), media_type=XLSX_MEDIA,
                                 headers=attachment(f"riskwatch-register-{today()}.xlsx"))

    @app.get("/console/customers", include_in_schema=False)
    async def customers_page(request: Request, q: str = ""):
        session = kit.reader(request)
        await kit.sync()
        prefix = q.strip()[:128]
        found = await asyncio.to_thread(customer_index, kit, session, prefix)
        exact = [c for c in found if c["customer_id"].casefold() == prefix.casefold()]
        if prefix and len(exact) == 1 and len(found) == 1:
            return RedirectResponse(f"/console/customers/{quote(exact[0]['customer_id'], safe='')}", status_code=303)
        return kit.render(request, "customers.html", session=session, q=prefix,
                          customers=found[:CUSTOMERS_SHOWN], more=len(found) > CUSTOMERS_SHOWN)

    @app.get("/console/customers/{customer_id}", include_in_schema=False)
    async def customer_page(request: Request, customer_id: str):
        session = kit.reader(request)
        await kit.sync()
        if not 1 <= len(customer_id) <= 128:
            raise Refused(404, "no such customer")
        found = await asyncio.to_thread(customer_view, kit, session, customer_id)
        engine = await asyncio.to_thread(engine_view, kit, session, customer_id)
        if found is None and engine is not None:
            found = {"customer_id": customer_id, "customer_class": engine["customer_class"], "region": engine["region"],
                     "open": [], "past": [], "plans": [], "reviews": [], "credit": None, "exposure": [],
                     "at_stake_cny": 0.0}
        if found is None:
            # The same answer for an unknown customer and one outside the session's regions.
            raise Refused(404, f"no alert about customer {customer_id} is visible to you")
        return kit.render(request, "customer.html", session=session, c=found, engine=engine,
                          engine_runs_here=kit.backend.customer_facts is not None, now=kit.now_or_none())


def _status_choices() -> list[tuple[str, str]]:
    """The register's status filter: alert statuses, then plan and review
    ones (the API's `status` applies to all three lists alike)."""
    names = {**words.PLAN_NAMES, **words.REVIEW_NAMES, **words.STATUS_NAMES}
    return [(s, names[s]) for s in (*ALERT_STATUSES, *PLAN_STATUSES, *REVIEW_STATUSES)]


__all__ = ["customer_index", "customer_of", "customer_view", "mount_register", "register_filters", "register_view"]
