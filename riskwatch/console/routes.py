"""The console's pages and forms, mounted on the API's FastAPI app.

Every page reads the desk through `ConsoleBackend.consistent` (one state,
under the API's lock) and every form acts through the API's own functions
(`act_as`, `trigger_plan_as`, `reload_rules_as`), so a click in the console
and a call to the API record the same action with the same checks. Order of
checks on a form: no session → the sign-in page (303) or 401; the role may
not do this → 403; the CSRF token or the Origin does not match → 403; then
the desk's own answers (404 unknown, 409 refused, 422 invalid field), shown
on the page the form came from.
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import FastAPI, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response, StreamingResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from riskwatch.alerts import ActionRefused, InvalidField
from riskwatch.alerts.desk import FundExceeded, describe_alert, describe_plan, describe_review
from riskwatch.console.i18n import parse as parse_instant_text
from riskwatch.contracts import TIER_NAMES, Tier
from riskwatch.units import reading, span
from riskwatch.api.auth import DIRECTORS, OPERATORS, READERS, WORKERS, actor_name
from riskwatch.console import words
from riskwatch.console.i18n import LANGUAGE_COOKIE, LANGUAGES, Formatter, choose_language
from riskwatch.console.sessions import SESSION_COOKIE, Session, Sessions
from riskwatch.engine.indicators import spec_of
from riskwatch.errors import RiskwatchError

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
VENDOR = {
    "htmx.min.js": HERE / "node_modules" / "htmx.org" / "dist" / "htmx.min.js",
    "sse.js": HERE / "node_modules" / "htmx-ext-sse" / "dist" / "sse.min.js",
}
TIERS = TIER_NAMES
# What "needs a person" means in the inbox: not resolved, not snoozed.
NEEDS_A_PERSON = ("open", "acknowledged", "in_progress")
STATUSES = ("open", "acknowledged", "in_progress", "snoozed", "resolved")
PAGE_SIZE = 50
REVIEWS_PAGE = 20
# Live updates: how often the desk is looked at, and how long one stream
# lasts before the browser reconnects (so a server stop never waits on it).
LIVE_POLL_SECONDS = 1.0
LIVE_STREAM_SECONDS = 300.0


def is_console_path(path: str) -> bool:
    """Paths the console answers (session cookie, not bearer token)."""
    return path == "/" or path == "/console" or path.startswith("/console/")


@dataclass
class ConsoleBackend:
    """What the console needs from the API app: the desk, its lock-holding
    readers and the API's own action functions.

    `consistent(read)` runs `read()` under the API's lock and returns a deep
    copy; `act_as(actor, role, kind, **kw)`, `trigger_plan_as(actor, role,
    PlanTrigger)` and `reload_rules_as(actor, role) -> (status, body)` are the
    API's; `deadlines_clock()` is the clock deadlines are measured on (the
    service clock, `datetime.min` before one was recorded); `service_clock()`
    that clock or None; `sync()` folds what other processes recorded.
    `time_zone` (IANA) is where the console shows times; `customer_facts`
    the engine's view of a customer when the engine runs beside the console."""

    desk: Any
    grants: Any
    consistent: Callable[[Callable[[], Any]], Any]
    act_as: Callable[..., dict]
    trigger_plan_as: Callable[..., dict]
    reload_rules_as: Callable[[str, str], tuple[int, dict]]
    deadlines_clock: Callable[[], datetime]
    service_clock: Callable[[], datetime | None]
    sync: Callable[[], None]
    clock: Callable[[], datetime]
    rules_dir: Path | None
    plan_trigger: type
    time_zone: str = "Asia/Shanghai"
    sessions: Sessions = field(default_factory=Sessions)
    # The engine's view of one customer (`EmbeddedService.customer_view`) where
    # the engine runs in this process (`riskwatch run`); None elsewhere.
    customer_facts: Callable[[str], dict | None] | None = None


@dataclass
class PageKit:
    """What a page module gets to add its routes the way these are written:
    `render(request, template, status=200, session=None, **context)`,
    `reader(request) -> Session` (sign-in page otherwise),
    `await form_of(request, roles) -> (Session, fields)` (401/403/CSRF checked),
    `await sync()`, `now_or_none()` (the service clock or None) and
    `desk_call(fn)` (the desk's refusals as 404/409/422 pages);
    `visible(session, work_item)` and `visible_linked(session, plan_or_review)`
    say whether the session's region limit lets it see a thing: every
    listing, export and detail goes through them (call inside `consistent`)."""

    backend: ConsoleBackend
    render: Callable[..., HTMLResponse]
    visible: Callable[[Session, dict], bool]
    visible_linked: Callable[[Session, dict], bool]
    reader: Callable[[Request], Session]
    form_of: Callable[..., Any]
    sync: Callable[[], Any]
    now_or_none: Callable[[], datetime | None]
    desk_call: Callable[[Callable[[], Any]], Any]


def _register_pages(app: FastAPI, kit: PageKit) -> None:
    # Imported when mounted, not at the top: the page module imports PageKit from here.
    from riskwatch.console.register import mount_register
    mount_register(app, kit)


# Page modules mounted after the core pages: each a function (app, PageKit) -> None.
PAGES: list[Callable[[FastAPI, PageKit], None]] = [_register_pages]


class Refused(RiskwatchError):
    """A form the console answers with a status and a message on the page.
    `kind` names a refusal the page explains in the reader's language
    ("fund_exceeded", "plan_active"), with `facts` for its figures."""

    def __init__(self, status: int, message: str, kind: str | None = None, facts: dict | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind
        self.facts = facts or {}


def mount_console(app: FastAPI, backend: ConsoleBackend) -> None:
    """Add the console's routes to `app` (see the module docstring).
    Raises ValueError for a `time_zone` that is not an IANA zone."""
    try:
        ZoneInfo(backend.time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"console time zone {backend.time_zone!r} is not an IANA time zone "
                         "(e.g. Asia/Shanghai, Europe/Berlin, UTC)") from None
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html", "svg"]),
                      trim_blocks=True, lstrip_blocks=True)
    env.globals.update(
        TIERS=TIERS, STATUSES=STATUSES, LANGUAGES=LANGUAGES, TIER_NAMES=words.TIER_NAMES,
        STATUS_NAMES=words.STATUS_NAMES, ROLE_NAMES=words.ROLE_NAMES, STEP_NAMES=words.STEP_NAMES,
        PLAN_NAMES=words.PLAN_NAMES, REVIEW_NAMES=words.REVIEW_NAMES, ACTION_NAMES=words.ACTION_NAMES,
        seconds_between=_seconds_between, cell_of=_cell_key, cell_label=_cell_label,
        threshold_text=_threshold_text, matrix_grids=_matrix_grids, shown_params=_shown_params)
    sessions = backend.sessions
    missing_vendor = [name for name, path in VENDOR.items() if not path.exists()]
    if missing_vendor:
        log.warning("console: %s not installed (run scripts/bootstrap.sh); pages work, live updates do not",
                    ", ".join(missing_vendor))

    # ------------------------------------------------------------ plumbing

    def language(request: Request) -> str:
        return choose_language(request.cookies.get(LANGUAGE_COOKIE), request.headers.get("accept-language"))

    def session_of(request: Request) -> Session | None:
        return sessions.get(request.cookies.get(SESSION_COOKIE))

    def render(request: Request, template: str, status: int = 200, session: Session | None = None,
               **context) -> HTMLResponse:
        lang = language(request)
        fmt = Formatter(lang, backend.time_zone)
        role = session.role if session else None
        body = env.get_template(template).render(
            request=request, lang=lang, fmt=fmt, _=fmt.gettext, ngettext=fmt.ngettext, session=session,
            role=role, csrf=session.csrf if session else "", vendor_ready=not missing_vendor,
            can_work=role in WORKERS, can_direct=role in DIRECTORS, can_operate=role in OPERATORS,
            path=request.url.path, query=str(request.url.query), status_code=status, **context)
        return HTMLResponse(body, status_code=status, headers={"Vary": "Cookie, Accept-Language"})

    def reader(request: Request) -> Session:
        session = session_of(request)
        if session is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise _SignIn(target)
        if session.role not in READERS:
            raise Refused(403, "this role may not read the console")
        return session

    async def form_of(request: Request, allowed: tuple[str, ...]) -> tuple[Session, dict[str, str]]:
        """The session and fields of a state-changing form, after the checks
        every form gets: signed in (401), role (403), same origin and CSRF (403)."""
        session = session_of(request)
        if session is None:
            raise Refused(401, "sign in first")
        if session.role not in allowed:
            raise Refused(403, f"role {session.role} may not do this (allowed: {', '.join(sorted(allowed))})")
        if not _same_origin(request):
            raise Refused(403, "the form came from another site")
        fields = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
        if not session.csrf_matches(fields.get("csrf")):
            raise Refused(403, "the form's CSRF token does not match this session: reload the page and try again")
        return session, fields

    def problem_page(request: Request, error: Refused) -> HTMLResponse:
        # Back to the page the form was on (this site's own pages only).
        referer = urlsplit(request.headers.get("referer") or "")
        back = referer.path if referer.netloc == request.headers.get("host") and referer.path.startswith("/console") else None
        return render(request, "problem.html", status=error.status, session=session_of(request),
                      message=error.message, kind=error.kind, facts=error.facts, back=back, lang_back=back)

    class _SignIn(Exception):
        def __init__(self, target: str):
            self.target = target

    @app.exception_handler(_SignIn)
    async def to_sign_in(request: Request, exc: _SignIn):
        return RedirectResponse("/console/login?" + urlencode({"next": exc.target}), status_code=303)

    @app.exception_handler(Refused)
    async def refused(request: Request, exc: Refused):
        return problem_page(request, exc)

    @app.exception_handler(StarletteHTTPException)
    async def console_http_error(request: Request, exc: StarletteHTTPException):
        # A mistyped console address is a page in the person's language,
        # not the API's JSON; everything else keeps FastAPI's answer.
        if is_console_path(request.url.path) and exc.status_code in (404, 405):
            return problem_page(request, Refused(exc.status_code, str(exc.detail)))
        return await http_exception_handler(request, exc)

    def desk_call(action: Callable[[], Any]) -> Any:
        try:
            return action()
        except FundExceeded as error:
            raise Refused(409, error.reason, kind="fund_exceeded", facts=dict(error.facts)) from None
        except ActionRefused as error:
            kind = "plan_active" if "already active" in error.reason else None
            raise Refused(404 if error.not_found else 409, error.reason, kind=kind) from None
        except InvalidField as error:
            raise Refused(422, f"{error.field}: {error.reason}") from None

    def visible(session: Session, item: dict) -> bool:
        return session.regions is None or item["alert"].get("region") in session.regions

    def visible_linked(session: Session, thing: dict) -> bool:
        if session.regions is None:
            return True
        item = backend.desk.ledger.alerts.get(thing.get("alert_id") or "")
        return item is not None and visible(session, item)

    async def act(session: Session, kind: str, **kw) -> dict:
        """The API's own action function, as this session's person, role and region limit."""
        return await asyncio.to_thread(lambda: desk_call(lambda: backend.act_as(
            session.actor, session.role, kind, regions=session.regions, **kw)))

    async def sync() -> None:
        await asyncio.to_thread(backend.sync)

    def now_or_none() -> datetime | None:
        now = backend.deadlines_clock()
        return None if now == datetime.min.replace(tzinfo=timezone.utc) else now

    # ------------------------------------------------------------ sign-in

    @app.get("/", include_in_schema=False)
    async def root():
        return RedirectResponse("/console/", status_code=307)

    @app.get("/console", include_in_schema=False)
    async def console_root():
        return RedirectResponse("/console/", status_code=307)

    @app.get("/console/login", include_in_schema=False)
    async def login_page(request: Request, next: str = "/console/"):
        return render(request, "login.html", next=_local(next), error=None)

    @app.post("/console/login", include_in_schema=False)
    async def login(request: Request):
        if not _same_origin(request):
            return render(request, "login.html", status=403, next="/console/", error="other_site")
        fields = await request.form()
        token = str(fields.get("token") or "").strip()
        target = _local(str(fields.get("next") or "/console/"))
        grant = backend.grants.grant_for(token)
        if grant is None:
            return render(request, "login.html", status=401, next=target, error="unknown_token")
        # A token that names its person is that person; otherwise the name
        # typed at sign-in goes into the audit trail beside the token's fingerprint.
        name = grant.person or str(fields.get("name") or "").strip() or None
        session = sessions.open(grant.role, actor_name(token, name), grant.regions, grant.person, grant.team)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(SESSION_COOKIE, session.session_id, httponly=True, samesite="strict",
                            secure=request.url.scheme == "https", path="/")
        return response

    @app.post("/console/logout", include_in_schema=False)
    async def logout(request: Request):
        session = session_of(request)
        fields = await request.form()
        if session is not None and session.csrf_matches(str(fields.get("csrf") or "")) and _same_origin(request):
            sessions.close(session.session_id)
        response = RedirectResponse("/console/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    @app.get("/console/language/{tag}", include_in_schema=False)
    async def switch_language(request: Request, tag: str, back: str = "/console/"):
        if tag not in LANGUAGES:
            raise HTTPException(404, f"no console in {tag!r} (languages: {', '.join(LANGUAGES)})")
        response = RedirectResponse(_local(back), status_code=303)
        response.set_cookie(LANGUAGE_COOKIE, tag, max_age=365 * 86400, samesite="lax", path="/")
        return response

    # ------------------------------------------------------------ assets

    @app.get("/console/static/{name}", include_in_schema=False)
    async def static(name: str):
        if name == "console.css":
            return Response((HERE / "static" / "console.css").read_bytes(), media_type="text/css")
        path = VENDOR.get(name)
        if path is None or not path.exists():
            raise HTTPException(404, f"no asset {name!r}")
        return Response(path.read_bytes(), media_type="text/javascript")

    # ------------------------------------------------------------ inbox

    def inbox_filters(request: Request) -> dict[str, str]:
        keys = ("tier", "indicator", "owner", "customer_class", "region", "status", "cell", "view")
        return {k: request.query_params[k] for k in keys if request.query_params.get(k)}

    def assignees_for(session: Session, view: str | None) -> frozenset[str] | None:
        """Whose alerts the inbox's view shows: "mine" the session's person,
        "team" everyone of the person's team (the person alone without one)."""
        me = person_of(session)
        if view == "mine":
            return frozenset({me})
        if view == "team":
            return backend.grants.team_of(session.team) | {me}
        return None

    ordered: dict[str, Any] = {"key": None}

    def by_urgency(regions: frozenset[str] | None) -> tuple[list[dict], dict[str, list]]:
        """Unresolved work items the regions may see, most urgent first, and
        the filters' choices; computed once per desk position and region
        limit (call under the lock), so a page or a live refresh filters a
        ready list instead of sorting 10,000 alerts again."""
        key = (backend.desk.position, regions)
        if ordered["key"] != key:
            items = [i for i in backend.desk.ledger.alerts.values() if i["status"] != "resolved"
                     and (regions is None or i["alert"].get("region") in regions)]
            items.sort(key=_urgency)
            visible_all = (i for i in backend.desk.ledger.alerts.values()
                           if regions is None or i["alert"].get("region") in regions)
            ordered.update(key=key, items=items, choices=_choices(visible_all))
        return ordered["items"], ordered["choices"]

    def inbox_page(session: Session, filters: dict[str, str], page: int) -> dict[str, Any]:
        assignees = assignees_for(session, filters.get("view"))
        wanted = (filters["status"],) if filters.get("status") in STATUSES else NEEDS_A_PERSON
        cell = _cell_of(filters.get("cell"))
        narrowing = {k: v for k, v in filters.items() if k in _FILTERED and v}

        def read():
            now = backend.deadlines_clock()
            if wanted == ("resolved",):
                pool = [i for i in backend.desk.ledger.alerts.values() if i["status"] == "resolved"
                        and visible(session, i)]
                pool.sort(key=_urgency)
                choices = by_urgency(session.regions)[1]
            else:
                pool, choices = by_urgency(session.regions)
            found = [i for i in pool
                     if i["status"] in wanted and (not narrowing or _item_matches(i, narrowing))
                     and (cell is None or _in_cell(i, cell))
                     and (assignees is None or i.get("assignee") in assignees)]
            start = (page - 1) * PAGE_SIZE
            rows = [describe_alert(i, now) for i in found[start:start + PAGE_SIZE]]
            return {"total": len(found), "rows": rows, "choices": choices}
        found = backend.consistent(read)
        found["pages"] = max(1, math.ceil(found["total"] / PAGE_SIZE))
        found["page"] = page
        found["now"] = now_or_none()
        return found

    async def inbox_view(request: Request, page: int, template: str) -> HTMLResponse:
        session = reader(request)
        await sync()
        filters = inbox_filters(request)
        data = inbox_page(session, filters, max(1, min(page, 10_000)))
        return render(request, template, session=session, filters=filters, **data,
                      rows_url="/console/inbox/rows?" + urlencode({**filters, "page": max(1, page)}))

    @app.get("/console/", include_in_schema=False)
    async def inbox(request: Request, page: int = 1):
        return await inbox_view(request, page, "inbox.html")

    @app.get("/console/inbox/rows", include_in_schema=False)
    async def inbox_rows(request: Request, page: int = 1):
        # The live part of the inbox (count, service clock, rows, pages), swapped in on a change.
        return await inbox_view(request, page, "_inbox_live.html")

    # ------------------------------------------------------------ one alert

    def alert_view(session: Session, alert_id: str) -> dict[str, Any]:
        def read():
            item = backend.desk.alert(alert_id, backend.deadlines_clock())
            if item is None or not backend.desk.visible(session.regions, alert_id=alert_id):
                return None
            indicator = item["indicator"]
            plans = [{"id": key, "title": plan.title, "fund": plan.fund.name if plan.fund else None}
                     for key, plan in sorted(backend.desk.rules.plans.items())
                     if not plan.indicators or indicator in plan.indicators]
            linked = [describe_plan(p, backend.deadlines_clock()) for p in backend.desk.ledger.plans.values()
                      if p["alert_id"] == alert_id]
            return {"item": item, "audit": backend.desk.audit(subject=alert_id), "plans": plans,
                    "linked_plans": linked, "people": sorted(backend.grants.people())}
        found = backend.consistent(read)
        if found is None:
            raise Refused(404, f"alert {alert_id} not found")
        found["now"] = now_or_none()
        return found

    @app.get("/console/alerts/{alert_id}", include_in_schema=False)
    async def alert_page(request: Request, alert_id: str):
        session = reader(request)
        await sync()
        return render(request, "alert.html", session=session, **alert_view(session, alert_id), error=None)

    @app.get("/console/alerts/{alert_id}/status", include_in_schema=False)
    async def alert_status(request: Request, alert_id: str):
        session = reader(request)
        await sync()
        view = alert_view(session, alert_id)
        response = render(request, "_alert_status.html", session=session, **view)
        shown = request.query_params.get("shown")
        if shown is not None and shown != view["item"]["status"]:
            # The page's controls were drawn for the status it was loaded in
            # (an alert resolved meanwhile offers nothing to acknowledge):
            # htmx reloads the whole page instead of the status line alone.
            response.headers["HX-Refresh"] = "true"
        return response

    ALERT_ACTIONS = {"assign": "assign", "ack": "acknowledge", "start": "start", "unsnooze": "unsnooze", "resolve": "resolve",
                     "comment": "comment", "snooze": "snooze"}

    @app.post("/console/alerts/{alert_id}/{action}", include_in_schema=False)
    async def alert_action(request: Request, alert_id: str, action: str):
        if action not in ALERT_ACTIONS:
            raise Refused(404, f"no action {action!r}")
        session, fields = await form_of(request, WORKERS)
        reason = _text(fields.get("reason"))
        kind = ALERT_ACTIONS[action]
        kw: dict[str, Any] = {"alert_id": alert_id, "reason": reason}
        if action in ("resolve", "comment", "snooze") and not reason:
            raise Refused(422, "reason: give a reason (it goes into the audit trail)")
        if action == "snooze":
            kw["data"] = snooze_data(fields)
        if action == "assign":
            # "Assign to me" names the session's person; a reassignment names
            # one of the people the tokens name (or nobody, to unassign).
            chosen = (fields.get("assignee") or "").strip()
            if chosen == "me":
                chosen = person_of(session)
            if chosen and chosen not in backend.grants.people() and chosen != person_of(session):
                raise Refused(422, f"assignee: {chosen[:64]!r} is not a person the tokens name")
            kw["data"] = {"assignee": chosen or None}
        await act(session, kind, **kw)
        return RedirectResponse(f"/console/alerts/{alert_id}", status_code=303)

    def snooze_data(fields: dict[str, str]) -> dict[str, Any]:
        if fields.get("until_recovery"):
            return {"until": None, "until_recovery": True}
        raw = (fields.get("until") or "").strip()
        if not raw:
            raise Refused(422, "until: give a time, or snooze until recovery")
        try:
            local = datetime.fromisoformat(raw)
        except ValueError:
            raise Refused(422, f"until: {raw[:40]!r} is not a date and time") from None
        if local.tzinfo is None:
            local = local.replace(tzinfo=ZoneInfo(backend.time_zone))
        if not 2000 <= local.year <= 2100:
            raise Refused(422, "until: give a time between 2000 and 2100")
        now = backend.deadlines_clock()
        if local <= now:
            raise Refused(422, f"until: must be after the service clock ({now.isoformat()})")
        return {"until": local.astimezone(timezone.utc).isoformat(), "until_recovery": False}

    @app.post("/console/alerts/{alert_id}/steps/{step}", include_in_schema=False)
    async def alert_step(request: Request, alert_id: str, step: int):
        session, fields = await form_of(request, WORKERS)
        if not 1 <= step <= 100:
            raise Refused(404, f"no step {step}")
        skipped = fields.get("outcome") == "skipped"
        note = _text(fields.get("note"))
        if skipped and not note:
            raise Refused(422, "note: say why the step is skipped")
        await act(
            session, "step_skipped" if skipped else "step_done", alert_id=alert_id,
            reason=note, data={"step": step, "note": note})
        return RedirectResponse(f"/console/alerts/{alert_id}", status_code=303)

    # ------------------------------------------------------------ plans

    @app.post("/console/plans", include_in_schema=False)
    async def trigger_plan(request: Request):
        session, fields = await form_of(request, DIRECTORS)
        alert_id = fields.get("alert_id", "")
        try:
            body = backend.plan_trigger(
                plan=fields.get("plan", ""), alert_id=alert_id, reason=_text(fields.get("reason")) or "",
                committed_amount=_number(fields.get("committed_amount")), currency=fields.get("currency") or "CNY",
                annual_sales_budget=_number(fields.get("annual_sales_budget")),
                another=bool(fields.get("another")), budget_override=_text(fields.get("budget_override")))
        except (ValidationError, ValueError) as error:
            raise Refused(422, _validation_text(error)) from None
        try:
            plan = await asyncio.to_thread(lambda: desk_call(lambda: backend.trigger_plan_as(
                session.actor, session.role, body, session.regions)))
        except Refused as refusal:
            if refusal.kind == "fund_exceeded":
                refusal.facts["asked"] = body.committed_amount
            raise
        return RedirectResponse(f"/console/plans#{plan['plan_id']}", status_code=303)

    @app.get("/console/plans", include_in_schema=False)
    async def plans_page(request: Request):
        session = reader(request)
        await sync()

        def read():
            now = backend.deadlines_clock()
            alerts = backend.desk.ledger.alerts
            plans = []
            for plan in backend.desk.ledger.plans.values():
                if not visible_linked(session, plan):
                    continue
                record = (alerts.get(plan.get("alert_id") or "") or {}).get("alert") or {}
                # What the plan answers, so a director knows it without opening the alert.
                plans.append({**describe_plan(plan, now), "alert_title": record.get("title"),
                              "subject_id": (record.get("subject") or {}).get("id")})
            return sorted(plans, key=lambda p: p["triggered_at"], reverse=True)
        plans = backend.consistent(read)
        return render(request, "plans.html", session=session, plans=plans, funds=_funds(plans))

    @app.post("/console/plans/{plan_id}/steps/{step}", include_in_schema=False)
    async def plan_step(request: Request, plan_id: str, step: int):
        session, fields = await form_of(request, WORKERS)
        note = _text(fields.get("note"))
        await act(
            session, "plan_step_done", plan_id=plan_id, reason=note,
            data={"step": step, "note": note})
        return RedirectResponse(f"/console/plans#{plan_id}", status_code=303)

    # ------------------------------------------------------------ reviews

    @app.get("/console/reviews", include_in_schema=False)
    async def reviews_page(request: Request):
        session = reader(request)
        await sync()

        show = request.query_params.get("show") or "to_do"
        page = max(1, min(int(request.query_params.get("page") or 1) if (request.query_params.get("page") or "1").isdigit() else 1, 10_000))
        wanted = {"to_do": ("open", "submitted"), "open": ("open",), "submitted": ("submitted",),
                  "signed_off": ("signed_off",), "all": ("open", "submitted", "signed_off")}.get(show, ("open", "submitted"))

        def read():
            now = backend.deadlines_clock()
            alerts = backend.desk.ledger.alerts
            reviews = []
            for review in backend.desk.ledger.reviews.values():
                if review["status"] not in wanted or not visible_linked(session, review):
                    continue
                item = alerts.get(review.get("alert_id") or "")
                record = item["alert"] if item else {}
                # What the incident was, so a reviewer knows it without opening the alert.
                reviews.append({**describe_review(review, now), "title": record.get("title"),
                                "subject_id": (record.get("subject") or {}).get("id"),
                                "customer_id": record.get("customer_id") or (record.get("subject") or {}).get("customer_id"),
                                "summary": record.get("summary")})
            # A director's to-do is signing off submitted reviews; everyone else's is writing open ones.
            first = "submitted" if session.role in DIRECTORS else "open"
            reviews.sort(key=lambda r: (r["status"] != first, r["status"] == "signed_off", not r["overdue"],
                                        r.get("due_at") or ""))
            return reviews
        reviews = backend.consistent(read)
        # The review just submitted or signed off comes first, with a word that it was recorded.
        done_id = request.query_params.get("done")
        done = next((r for r in reviews if r["review_id"] == done_id), None)
        if done is not None:
            reviews = [done] + [r for r in reviews if r is not done]
        pages = max(1, math.ceil(len(reviews) / REVIEWS_PAGE))
        shown = reviews[(page - 1) * REVIEWS_PAGE:page * REVIEWS_PAGE]
        return render(request, "reviews.html", session=session, reviews=shown, total=len(reviews), show=show,
                      page=page, pages=pages, now=now_or_none(), done=done)

    @app.post("/console/reviews/{review_id}", include_in_schema=False)
    async def review_submit(request: Request, review_id: str):
        session, fields = await form_of(request, WORKERS)
        whys = [w for w in (_text(fields.get(f"why{n}")) for n in range(1, 6)) if w]
        root = _text(fields.get("root_cause"))
        actions = [line.strip() for line in (fields.get("corrective_actions") or "").splitlines() if line.strip()]
        if not whys or not root:
            raise Refused(422, "whys: give at least the first why, and the root cause")
        data = {"whys": whys, "root_cause": root, "corrective_actions": actions[:50]}
        await act(
            session, "review_submitted", review_id=review_id, reason=root, data=data)
        return RedirectResponse(f"/console/reviews?show=submitted&done={review_id}#{review_id}", status_code=303)

    @app.post("/console/reviews/{review_id}/signoff", include_in_schema=False)
    async def review_signoff(request: Request, review_id: str):
        session, fields = await form_of(request, DIRECTORS)
        await act(
            session, "review_signed_off", review_id=review_id,
            reason=_text(fields.get("note")))
        return RedirectResponse(f"/console/reviews?show=signed_off&done={review_id}#{review_id}", status_code=303)

    # ------------------------------------------------------------ heat map

    @app.get("/console/heatmap", include_in_schema=False)
    async def heatmap(request: Request):
        session = reader(request)
        await sync()

        def read():
            # The cells, not 10,000 tuples, leave the lock (and its deep copy).
            return heat_cells([(i["tier"], i["alert"].get("probability"), i["alert"].get("impact"),
                                i["alert"].get("controllability")) for i in by_urgency(session.regions)[0]])
        cells = backend.consistent(read)
        return render(request, "heatmap.html", session=session, cells=cells,
                      total=sum(c["count"] for c in cells.values()))

    # ------------------------------------------------------------ rules

    @app.get("/console/rules", include_in_schema=False)
    async def rules_page(request: Request):
        session = reader(request)
        return render(request, "rules.html", session=session, **rules_view(backend.rules_dir), problems=None)

    @app.post("/console/rules/reload", include_in_schema=False)
    async def rules_reload(request: Request):
        session, _fields = await form_of(request, OPERATORS)
        status, answer = await asyncio.to_thread(backend.reload_rules_as, session.actor, session.role)
        return render(request, "rules.html", status=status, session=session, **rules_view(backend.rules_dir),
                      problems=answer.get("problems") if status != 200 else [], reloaded=status == 200)

    # ------------------------------------------------------------ live

    @app.get("/console/events", include_in_schema=False)
    async def live(request: Request):
        reader(request)

        async def stream():
            started = asyncio.get_running_loop().time()
            await sync()
            last = backend.desk.position
            quiet = 0.0
            yield "retry: 2000\n\n"
            while asyncio.get_running_loop().time() - started < LIVE_STREAM_SECONDS:
                if await request.is_disconnected():
                    return
                await asyncio.sleep(LIVE_POLL_SECONDS)
                await sync()
                position = backend.desk.position
                if position != last:
                    last = position
                    quiet = 0.0
                    yield f"event: change\ndata: {position}\n\n"
                else:
                    quiet += LIVE_POLL_SECONDS
                    if quiet >= 15:
                        quiet = 0.0
                        yield ": still here\n\n"  # keeps proxies from closing an idle stream
        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    @app.get("/console/healthz", include_in_schema=False)
    async def console_health():
        return PlainTextResponse("ok\n")

    kit = PageKit(backend=backend, render=render, visible=visible, visible_linked=visible_linked, reader=reader, form_of=form_of, sync=sync,
                  now_or_none=now_or_none, desk_call=desk_call)
    for mount in PAGES:
        mount(app, kit)


# ---------------------------------------------------------------- helpers

def person_of(session: Session) -> str:
    """Who the session is, as assignments name people: the token's person,
    else the name given at sign-in, else the token's fingerprint."""
    return session.person or session.actor.split(" (token ")[0]


def _local(target: str) -> str:
    """A redirect target kept on this site (no scheme, host or `//`)."""
    parts = urlsplit(target or "")
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/console/"
    return target


def _same_origin(request: Request) -> bool:
    """A form is posted from this site: its Origin (or, without one, its
    Referer) names this host. A browser sends Origin on every cross-site
    POST, so a forged form from elsewhere is refused even before its CSRF
    token is looked at; a request with neither (curl) falls to the token."""
    host = request.headers.get("host", "")
    origin = request.headers.get("origin") or request.headers.get("referer")
    if not origin or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == host


def _text(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if any(0xD800 <= ord(c) <= 0xDFFF for c in value):
        raise Refused(422, "text holds a lone UTF-16 surrogate")
    return value[:4000]


def _number(value: str | None) -> float | None:
    if value is None or not value.strip():
        return None
    try:
        number = float(value.replace(",", "").replace("_", "").strip())
    except ValueError:
        raise Refused(422, f"{value[:40]!r} is not a number") from None
    if not math.isfinite(number):
        raise Refused(422, f"{value[:40]!r} is not a number")
    return number


def _validation_text(error: Exception) -> str:
    if isinstance(error, ValidationError):
        return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors())
    return str(error)


def _urgency(item: dict) -> tuple:
    """Inbox order: tier (red first), then the earliest respond-by, then the
    longest waiting; an alert without a respond-by comes after those with one."""
    record = item["alert"]
    return (-Tier.rank_of(item["tier"]), record.get("respond_by") or "9999",
            record.get("raised_at") or "", item["alert_id"])


_FILTERED = ("tier", "indicator", "owner", "customer_class", "region")


def _item_matches(item: dict, filters: dict[str, str]) -> bool:
    record = item["alert"]
    actual = {"tier": item["tier"], "indicator": record.get("indicator"), "owner": item["owner"],
              "customer_class": record.get("customer_class"), "region": record.get("region")}
    return all(filters.get(key) in (None, "", value) for key, value in actual.items())


def _choices(items) -> dict[str, list]:
    """The inbox filters' options, from the alerts the desk holds:
    indicators as (id, title), the others as sorted values."""
    found: dict[str, set] = {"owner": set(), "customer_class": set(), "region": set()}
    titles: dict[str, str] = {}
    for item in items:
        record = item["alert"]
        indicator = record.get("indicator")
        if indicator:
            titles.setdefault(indicator, record.get("title") or indicator)
        for key, value in (("owner", item["owner"]), ("customer_class", record.get("customer_class")),
                           ("region", record.get("region"))):
            if value:
                found[key].add(value)
    return {"indicator": sorted(titles.items()), **{key: sorted(values) for key, values in found.items()}}


def _seconds_between(start: datetime, end) -> float:
    moment = parse_instant_text(end)
    return 0.0 if moment is None else (moment - start).total_seconds()


def _cell_key(record: dict) -> str:
    p, i = _bucket(record.get("probability")), _bucket(record.get("impact"))
    return "" if p is None or i is None else f"{p}-{i}"


def _cell_label(value) -> str:
    tenth = _bucket(value)
    return "" if tenth is None else f"{tenth / GRID:.1f}–{(tenth + 1) / GRID:.1f}"


def _shown_params(indicator_id: str, params: dict) -> list[tuple[str, str]]:
    """An indicator's parameters as the rule file states them ("churn_after",
    "90 days"), without the loader's derived ones (names starting with _)."""
    shown = []
    for key, value in params.items():
        if key.startswith("_"):
            continue
        if key in spec_of(indicator_id).duration_params and isinstance(value, (int, float)):
            text = span(value)
        elif isinstance(value, (list, tuple)):
            text = ", ".join(str(v) for v in value)
        else:
            text = str(value)
        shown.append((key, text))
    return shown


def _threshold_text(indicator) -> str:
    return reading(indicator.threshold, indicator.threshold, indicator.unit, indicator.direction).threshold


def _matrix_grids(matrix, controllabilities=(0.3, 0.6, 0.9)) -> list[tuple[float, list[list[str]]]]:
    """The tier matrix drawn as grids: for each controllability, the tier of
    every probability x impact cell's centre, [p_tenth][i_tenth]."""
    return [(c, [[matrix.classify((p + 0.5) / GRID, (i + 0.5) / GRID, c) for i in range(GRID)]
                 for p in range(GRID)]) for c in controllabilities]


GRID = 10  # the heat map's cells: tenths of probability and impact


def _bucket(value) -> int | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if not 0 <= number <= 1:
        return None
    return min(int(number * GRID), GRID - 1)


def _cell_of(text: str | None) -> tuple[int, int] | None:
    """'7-3' (probability tenth 7, impact tenth 3) → (7, 3); None for anything else."""
    if not text:
        return None
    p, _, i = text.partition("-")
    if p.isdigit() and i.isdigit() and int(p) < GRID and int(i) < GRID:
        return int(p), int(i)
    return None


def _in_cell(item: dict, cell: tuple[int, int]) -> bool:
    record = item["alert"]
    return (_bucket(record.get("probability")), _bucket(record.get("impact"))) == cell


def heat_cells(alerts: list[tuple]) -> dict[tuple[int, int], dict]:
    """Open alerts [(tier, probability, impact, controllability)] on the
    probability x impact grid: {(p_tenth, i_tenth): {"count", "tiers":
    {tier: n}, "top": the highest tier, "controllability": the mean (0-1) or
    None}}; alerts without a probability or impact in [0, 1] are left out."""
    cells: dict[tuple[int, int], dict] = {}
    for tier, probability, impact, controllability in alerts:
        key = (_bucket(probability), _bucket(impact))
        if None in key:
            continue
        cell = cells.setdefault(key, {"count": 0, "tiers": {}, "top": None, "c_sum": 0.0, "c_n": 0})
        cell["count"] += 1
        cell["tiers"][tier] = cell["tiers"].get(tier, 0) + 1
        if cell["top"] is None or Tier.rank_of(tier) > Tier.rank_of(cell["top"]):
            cell["top"] = tier
        if isinstance(controllability, (int, float)) and 0 <= controllability <= 1:
            cell["c_sum"] += controllability
            cell["c_n"] += 1
    for cell in cells.values():
        cell["controllability"] = cell["c_sum"] / cell["c_n"] if cell["c_n"] else None
    return cells


def _funds(plans: list[dict]) -> list[dict]:
    """Commitments per fund and budget period, from the plans' fund records:
    [{"name", "period", "currency", "committed", "cap", "left", "plans"}],
    cancelled plans left out (as the desk's budget check does)."""
    funds: dict[tuple, dict] = {}
    for plan in plans:
        fund = plan.get("fund") or {}
        if not fund.get("name") or plan["status"] == "cancelled":
            continue
        key = (fund["name"], fund.get("budget_period"), fund.get("currency"))
        entry = funds.setdefault(key, {"name": fund["name"], "period": fund.get("budget_period"),
                                       "currency": fund.get("currency") or "CNY", "committed": 0.0,
                                       "cap": None, "plans": 0})
        entry["committed"] += float(fund.get("committed_amount") or 0)
        entry["plans"] += 1
        if fund.get("cap") is not None:
            entry["cap"] = float(fund["cap"])
    for entry in funds.values():
        entry["left"] = None if entry["cap"] is None else entry["cap"] - entry["committed"]
        entry["share"] = None if not entry["cap"] else min(entry["committed"] / entry["cap"], 1.0)
    return sorted(funds.values(), key=lambda e: (e["name"], e["period"] or ""))


def rules_view(rules_dir: Path | None) -> dict[str, Any]:
    """The rule files as the Rules page shows them (read-only): indicators
    with thresholds, the tier matrix, playbooks, plans; `rules_error` when
    the directory cannot be read."""
    from riskwatch.rules.loader import load_rules

    if rules_dir is None:
        return {"rules": None, "rules_error": "no rule directory configured", "rules_dir": None}
    try:
        rules = load_rules(rules_dir)
    except (RiskwatchError, OSError, ValueError) as error:
        return {"rules": None, "rules_error": str(error), "rules_dir": str(rules_dir)}
    return {"rules": rules, "rules_error": None, "rules_dir": str(rules_dir)}


__all__ = ["ConsoleBackend", "heat_cells", "is_console_path", "mount_console"]

