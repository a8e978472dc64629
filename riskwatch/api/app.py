"""The HTTP API: alerts, actions, contingency plans, reviews, the risk register.

A thin shell over `riskwatch.alerts.AlertDesk`. Order of checks: a body
above the size limit is 413 and one not received in time 408 (on every
path, before anything reads it: `riskwatch.api.guards`); then, for every
path except the OpenAPI document and the probes, a missing or unknown token
is 401, a role not allowed on the route is 403 (both in one middleware, so
they come before routing, body parsing or anything else), a bad body is 422
naming the field, an unknown alert/plan/review 404, a transition the state
does not allow 409. Every state change is an action record with who, when
and why; the audit trail is read-only here. State-changing requests take an
`Idempotency-Key`; every read sees one state of the desk (one lock).
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import logging
import re
import threading
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Callable, Literal

from fastapi import Body, Depends, FastAPI, HTTPException, Path as PathParam, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.security import HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.routing import Match

from riskwatch import contracts
from riskwatch.alerts import ActionRefused, AlertDesk, InvalidField, StoreError
from riskwatch.alerts.lifecycle import STATUSES
from riskwatch.alerts.idempotency import IdempotencyKeys
from riskwatch.alerts.kafkalog import WorkflowLogUnavailable
from riskwatch.api.guards import RequestGuard, SecurityHeaders
from riskwatch.api.inputs import Identifier, Instant, Text, surrogate_paths, validation_errors
from riskwatch.api.auth import DIRECTORS, OPERATORS, READERS, WORKERS, Grants, actor_name
from riskwatch.pipeline import build_pipeline
from riskwatch.rules.loader import load_workflow_rules

log = logging.getLogger(__name__)

# Probes and scrapes carry no token (kubelet, Prometheus); they reveal no business data.
PUBLIC_PATHS = frozenset({"/openapi.json", "/healthz", "/livez", "/readyz", "/metrics", "/favicon.ico"})
Tier = contracts.TierName
Status = Literal[STATUSES]  # type: ignore[valid-type]  # a work item's status
# The engine's status of the condition, as an alert change states it.
ChangeStatus = Literal[tuple(status.value for status in contracts.Status)]  # type: ignore[valid-type]
CustomerClass = Literal["A", "B", "C", "D"]
Id = Annotated[str, PathParam(min_length=1, max_length=128)]

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,128}$")

_bearer = HTTPBearer(auto_error=False, description="A token from RISKWATCH_API_TOKENS")
_ERRORS = {
    401: {"description": "No token, or a token that is not configured"},
    403: {"description": "The token's role may not do this"},
}


# Measuring against it, nothing is overdue: the view before any service clock was recorded.
_BEFORE_ANY_CLOCK = datetime.min.replace(tzinfo=timezone.utc)


def wall_clock() -> datetime:
    return datetime.now(timezone.utc)


def roles(*allowed: str):
    """Mark an endpoint with the roles allowed on it (checked by the auth middleware)."""
    def mark(endpoint):
        endpoint.__riskwatch_roles__ = frozenset(allowed)
        return endpoint
    return mark


class _Storable(BaseModel):
    @model_validator(mode="after")
    def _storable(self):
        # Text fields refuse surrogates themselves, naming the field; this
        # catches every other string (and key) of the body, which a UTF-8
        # store could not keep.
        paths = surrogate_paths(self.model_dump(mode="python"))
        if paths:
            raise ValueError(f"{'.'.join(str(p) for p in paths[0]) or 'body'}: holds a lone UTF-16 surrogate, not text")
        return self


class _Body(_Storable):
    model_config = ConfigDict(extra="forbid")


class ReasonBody(_Body):
    reason: Text | None = None


class ReasonRequired(_Body):
    reason: Text


class StepBody(_Body):
    note: Text | None = None
    skipped: bool = False


class AssignBody(_Body):
    assignee: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[\w .@-]+$")] | None = Field(
        description="The person who works the alert (as tokens name people); null to unassign")
    reason: Text | None = None


class SnoozeBody(_Body):
    reason: Text
    until: Instant | None = Field(None, description="Snooze until this instant (2000 to 2100)")
    until_recovery: bool = Field(False, description="Snooze until the engine resolves the alert")


class PlanTrigger(_Body):
    plan: Annotated[Identifier, Field(max_length=64, description="A plan id from rules/contingency_plans.yaml")]
    alert_id: Identifier
    reason: Text
    committed_amount: Annotated[float, Field(ge=0, le=1e15)] | None = None
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "CNY"
    annual_sales_budget: Annotated[float, Field(gt=0, le=1e16)] | None = None
    another: bool = Field(False, description="Trigger this plan although one is already active on the alert "
                                             "(recorded on the plan)")
    budget_override: Text | None = Field(None, description="Why the fund's budget for the period may be exceeded "
                                                         "(recorded on the plan and in the audit trail)")


class PlanClose(_Body):
    reason: Text
    outcome: Literal["closed", "cancelled"] = "closed"


class ReviewSubmit(_Body):
    whys: Annotated[list[Text], Field(min_length=1, max_length=5, description="The 5-Why chain, first why first")]
    root_cause: Text
    corrective_actions: Annotated[list[Text], Field(max_length=50)] = []


class SignOff(_Body):
    note: Text | None = None


class AlertChange(_Storable):
    """An engine alert change record (`riskwatch.contracts.AlertChange`,
    docs/contracts-internal.md) as the HTTP body states it: what the desk
    needs is required here, every other field of the contract may come too,
    and fields beyond it are kept. A body must also read as the contract
    (a `subject` or `playbook` of another shape is refused, 422)."""
    model_config = ConfigDict(extra="allow")
    alert_id: Identifier
    indicator: Annotated[str, Field(min_length=1, max_length=64)]
    tier: Tier
    status: ChangeStatus
    owner: Annotated[str, Field(min_length=1, max_length=64)]
    raised_at: Instant
    updated_at: Instant | None = None
    respond_by: Instant | None = None
    sequence: Annotated[int, Field(ge=0, le=2**62)] | None = None

    @model_validator(mode="after")
    def _fits_the_contract(self):
        self.contract()
        return self

    def contract(self) -> contracts.AlertChange:
        """The change this body describes; RecordInvalid (a ValueError: 422) if it does not fit."""
        return contracts.AlertChange.from_json(self.model_dump(mode="json"))


def header_error(header: str, message: str) -> JSONResponse:
    """422 naming a request header, in the shape of the body errors."""
    return JSONResponse({"detail": [{"loc": ["header", header], "msg": message, "type": "value_error"}]},
                        status_code=422)


def field_error(field: str, message: str) -> RequestValidationError:
    return RequestValidationError([{"loc": ("body", field), "msg": message, "type": "value_error", "input": None}])


def create_app(
    desk: AlertDesk,
    tokens: dict[str, str] | Grants,
    *,
    clock: Callable[[], datetime] = wall_clock,
    rules_dir: Path | None = None,
    on_rules_reload: Callable[[], list[str]] | None = None,
    tick_seconds: float = 30.0,
    metrics=None,
    keeps_clock: bool = True,
    service_clock: Callable[[], datetime | None] | None = None,
    idempotency_keys: IdempotencyKeys | None = None,
    max_body_bytes: int = 64 * 1024,
    body_timeout_seconds: float = 10.0,
    console: dict[str, Any] | None = None,
) -> FastAPI:
    """The API over one desk. `on_rules_reload` (e.g. `riskwatch run` reloading
    its engine) returns the problems found, [] when the new rules are in force.

    Two clocks: `clock` stamps people's actions (when they acted);
    `service_clock` is what deadlines are measured on (escalation, snooze
    ends, overdue flags), in store mode the watermark `riskwatch run`
    records in the store (`AlertDesk.service_clock`, DOMAIN §4). While it
    returns None (nothing has fed the store a clock yet) the API records
    nothing the clock makes due and shows nothing overdue. Without
    `service_clock`, deadlines are measured on `clock`.
    `keeps_clock=False` (the Kafka deployment): the worker records escalations
    against its event-time clock; the API only folds what the log brings.

    `idempotency_keys`: where `Idempotency-Key`s are kept (default: beside
    the desk's store, in memory without one; 24 h). `max_body_bytes` and
    `body_timeout_seconds`: 413 / 408 past them (`riskwatch.api.guards`).
    No /docs or /redoc page: the Swagger UI loads its scripts from a CDN,
    which the Content-Security-Policy refuses; /openapi.json stays.

    The console (`riskwatch.console`) is served at `/console/` (and `/`
    leads to it) over the same desk, lock and audit trail; `console` gives
    its options (`ConsoleBackend` fields such as `time_zone`)."""
    # Imported here: the console uses riskwatch.api.auth, whose package imports this module.
    from riskwatch.console import ConsoleBackend, is_console_path, mount_console

    guard = threading.Lock()
    # Alert change records fed over HTTP take the pipeline's path to the desk
    # (riskwatch.pipeline) to the desk. The API does
    # not make the service clock, so the desk stage keeps none.
    alert_changes = build_pipeline(desk=desk, desk_keeps_clock=False)
    grants = tokens if isinstance(tokens, Grants) else Grants.from_roles(tokens)
    if idempotency_keys is None:
        idempotency_keys = IdempotencyKeys(getattr(desk.store, "path", None))

    def measured() -> datetime | None:
        return clock() if service_clock is None else service_clock()

    def deadlines_clock() -> datetime:
        now = measured()
        return _BEFORE_ANY_CLOCK if now is None else now

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        async def ticker():
            while True:
                await asyncio.sleep(tick_seconds)
                try:
                    await asyncio.to_thread(_tick)
                except Exception:  # the next tick tries again
                    log.exception("escalation tick failed")
        task = asyncio.create_task(ticker()) if tick_seconds > 0 else None
        if metrics is not None:
            metrics.up.labels(component="api").set(1)
        yield
        if task is not None:
            task.cancel()

    def _tick() -> None:
        with guard:
            now = measured() if keeps_clock else None
            try:
                if now is not None:
                    desk.tick(now)
                else:
                    desk.sync()
            except StoreError as error:
                # What falls due is recorded by a later tick; reads go on, and
                # a person's action meets the store itself (503, not 500).
                log.warning("escalation tick not recorded: %s", error)

    app = FastAPI(
        title="riskwatch API",
        version="1",
        description="Work sales-risk alerts: acknowledge, playbook steps, snooze, resolve; "
                    "contingency plans, 48 h reviews, the risk register and the audit trail. "
                    "Bearer tokens from RISKWATCH_API_TOKENS; roles officer, director, operator, readonly.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        dependencies=[Depends(_bearer)],
        responses=_ERRORS,
    )

    @app.middleware("http")
    async def authorise(request: Request, call_next):
        if request.url.path in PUBLIC_PATHS or is_console_path(request.url.path):
            # The console signs people in with the same tokens, into a
            # session cookie, and checks roles and CSRF on every form itself.
            return await call_next(request)
        header = request.headers.get("authorization", "")
        scheme, _, presented = header.partition(" ")
        grant = grants.grant_for(presented.strip()) if scheme.lower() == "bearer" else None
        role = grant.role if grant is not None else None
        if role is None:
            return JSONResponse({"detail": "missing or invalid bearer token"}, status_code=401,
                                headers={"WWW-Authenticate": "Bearer"})
        for route in app.router.routes:
            match, _ = route.matches(request.scope)
            if match == Match.FULL:
                allowed = getattr(getattr(route, "endpoint", None), "__riskwatch_roles__", None)
                if allowed is not None and role not in allowed:
                    return JSONResponse({"detail": f"role {role} may not do this (allowed: {', '.join(sorted(allowed))})"},
                                        status_code=403)
                break
        request.state.role = role
        request.state.regions = grant.regions
        # A token that names its person is that person; the header names
        # the person behind a shared token (a tool, a team account).
        request.state.actor = actor_name(presented.strip(), grant.person or request.headers.get("x-riskwatch-actor"))
        await asyncio.to_thread(_tick)
        key = request.headers.get("idempotency-key")
        if key is not None and request.method in STATE_CHANGING:
            return await idempotent(request, call_next, presented.strip(), key)
        return await call_next(request)

    async def idempotent(request: Request, call_next, token: str, key: str) -> Response:
        # The first answer to (token, key) is kept and given again to a retry of
        # the same request, which records nothing; a key reused for another
        # request is 422 (the request is wrong, not the state), one whose first
        # request is still running (or was interrupted) 409.
        if not _IDEMPOTENCY_KEY.match(key):
            return header_error("Idempotency-Key", "give 1 to 128 visible ASCII characters")
        body = await request.body()
        digest = hashlib.sha256(b"\0".join([request.method.encode(), request.url.path.encode(),
                                            request.url.query.encode(), body])).hexdigest()
        scope = hashlib.sha256(token.encode()).hexdigest()
        try:
            claim = await asyncio.to_thread(idempotency_keys.claim, scope, key, digest)
        except WorkflowLogUnavailable as error:
            # Kafka deployment: the key could not be claimed on the log; nothing ran.
            return JSONResponse({"detail": f"not recorded: {error}"}, status_code=503, headers={"Retry-After": "5"})
        if claim.outcome == "mismatch":
            return header_error("Idempotency-Key", "this key was already used for another request (other path or "
                                                   "body); use a new key for a new request")
        if claim.outcome == "pending":
            return JSONResponse({"detail": "the first request with this Idempotency-Key has not finished (or was "
                                           "interrupted): look at the audit trail before trying with a new key"},
                                status_code=409)
        if claim.outcome == "replay":
            return Response(claim.body, status_code=claim.status, media_type=claim.media_type,
                            headers={"Idempotent-Replayed": "true"})
        try:
            response = await call_next(request)
            content = b"".join([chunk async for chunk in response.body_iterator])
        except BaseException:
            await asyncio.to_thread(idempotency_keys.release, scope, key)
            raise
        if response.status_code >= 500:
            # Nothing was recorded (a fault, or the broker unavailable): a retry may run.
            await asyncio.to_thread(idempotency_keys.release, scope, key)
        else:
            await asyncio.to_thread(idempotency_keys.complete, scope, key, response.status_code,
                                    response.headers.get("content-type"), content)
        return Response(content, status_code=response.status_code, headers=dict(response.headers))

    # Outermost last: security headers on every answer, then the body guard
    # (413/408 before anything reads the body), then the token check.
    app.add_middleware(RequestGuard, max_body_bytes=max_body_bytes, body_timeout_seconds=body_timeout_seconds)
    app.add_middleware(SecurityHeaders)

    @app.exception_handler(RequestValidationError)
    async def unprocessable(request: Request, exc: RequestValidationError):
        # Never the input itself: a short escaped excerpt (a 10 MB body, a lone surrogate).
        return JSONResponse({"detail": validation_errors(list(exc.errors()))}, status_code=422)

    @app.exception_handler(ActionRefused)
    async def refused(request: Request, exc: ActionRefused):
        return JSONResponse({"detail": exc.reason, **getattr(exc, "facts", {})},
                            status_code=404 if exc.not_found else 409)

    @app.exception_handler(WorkflowLogUnavailable)
    async def unavailable(request: Request, exc: WorkflowLogUnavailable):
        # Nothing was recorded: the person can try again once the broker is back.
        return JSONResponse({"detail": f"not recorded: {exc}"}, status_code=503, headers={"Retry-After": "5"})

    @app.exception_handler(StoreError)
    async def store_unavailable(request: Request, exc: StoreError):
        # The transaction was rolled back: nothing was recorded, the person
        # can try again. The file's path stays in the log, not in the answer.
        log.error("%s", exc)
        return JSONResponse({"detail": f"not recorded: workflow store: {exc.reason}"}, status_code=503,
                            headers={"Retry-After": str(exc.retry_after or 30)})

    @app.exception_handler(InvalidField)
    async def invalid(request: Request, exc: InvalidField):
        return JSONResponse({"detail": [{"loc": ["body", exc.field], "msg": exc.reason, "type": "value_error"}]},
                            status_code=422)

    def act_as(actor: str, role: str, kind: str, regions: frozenset[str] | None = None, **kw) -> dict:
        with guard:
            out_of_scope(regions, alert_id=kw.get("alert_id"), plan_id=kw.get("plan_id"), review_id=kw.get("review_id"))
            return copy.deepcopy(desk.act(kind, now=clock(), clock=deadlines_clock(), actor=actor, role=role, **kw).to_json())

    def act(request: Request, kind: str, **kw) -> dict:
        return act_as(request.state.actor, request.state.role, kind, regions=request.state.regions, **kw)

    def out_of_scope(regions: frozenset[str] | None, **subject: str | None) -> None:
        """404, as for an unknown one, for an alert, plan or review outside a
        region-limited token's regions (the token learns nothing of it).
        Call under `guard`."""
        if not desk.visible(regions, **subject):
            kind, name = next((k, v) for k, v in subject.items() if v)
            raise ActionRefused(f"{kind.removesuffix('_id')} {name} not found", not_found=True)

    def scoped_audit(regions: frozenset[str] | None, subject: str | None, after: int, limit: int) -> list[dict]:
        """The audit trail a region-limited token may read: records about
        alerts, plans and reviews in its regions, and the rule reloads.
        Call under `guard`."""
        if regions is None:
            return desk.audit(subject=subject, after=after, limit=limit)
        shown: list[dict] = []
        while len(shown) < limit:
            batch = desk.audit(subject=subject, after=after, limit=1000)
            if not batch:
                break
            after = batch[-1]["seq"]
            shown.extend(r for r in batch if r.get("subject_key") == "rules" or desk.visible(
                regions, alert_id=r.get("alert_id") if not (r.get("plan_id") or r.get("review_id")) else None,
                plan_id=r.get("plan_id"), review_id=r.get("review_id")))
        return shown[:limit]

    def consistent(read: Callable[[], Any]) -> Any:
        """Run `read` against the desk while no change is folded, and return
        a deep copy: the answer is one state of the desk, and serialising it
        after the lock is released cannot see a later fold (a fold mutates
        work items, their step lists and escalation lists in place)."""
        with guard:
            return copy.deepcopy(read())

    def _show_alert(alert_id: str, regions: frozenset[str] | None) -> dict:
        item = desk.alert(alert_id, deadlines_clock())
        if item is None or not desk.visible(regions, alert_id=alert_id):
            raise HTTPException(404, f"alert {alert_id} not found")
        return {**item, "audit": desk.audit(subject=alert_id)}

    def show_alert(alert_id: str, regions: frozenset[str] | None = None) -> dict:
        return consistent(lambda: _show_alert(alert_id, regions))

    # ---------------------------------------------------------------- alerts

    @app.get("/v1/alerts", tags=["alerts"], summary="Alerts, filtered")
    @roles(*READERS)
    def list_alerts(
        request: Request, tier: Tier | None = None, indicator: Annotated[str | None, Query(max_length=64)] = None,
        owner: Annotated[str | None, Query(max_length=64)] = None, status: Status | None = None,
        customer_class: CustomerClass | None = None, region: Annotated[str | None, Query(max_length=64)] = None,
        since: Instant | None = None, until: Instant | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> list[dict[str, Any]]:
        return consistent(lambda: desk.latest_alerts(deadlines_clock(), limit, tier=tier, indicator=indicator,
                                                     owner=owner, status=status, customer_class=customer_class,
                                                     region=region, since=since, until=until,
                                                     regions=request.state.regions))

    @app.get("/v1/alerts/{alert_id}", tags=["alerts"], summary="One alert with its steps and audit trail",
             responses={404: {"description": "No such alert"}})
    @roles(*READERS)
    def get_alert(request: Request, alert_id: Id) -> dict[str, Any]:
        return show_alert(alert_id, request.state.regions)

    @app.post("/v1/alerts/{alert_id}/ack", tags=["alerts"], summary="Acknowledge", responses={404: {}, 409: {}})
    @roles(*WORKERS)
    def acknowledge(request: Request, alert_id: Id, body: ReasonBody = Body(default_factory=ReasonBody)) -> dict[str, Any]:
        act(request, "acknowledge", alert_id=alert_id, reason=body.reason)
        return show_alert(alert_id, request.state.regions)

    @app.post("/v1/alerts/{alert_id}/start", tags=["alerts"], summary="Mark in progress", responses={404: {}, 409: {}})
    @roles(*WORKERS)
    def start(request: Request, alert_id: Id, body: ReasonBody = Body(default_factory=ReasonBody)) -> dict[str, Any]:
        act(request, "start", alert_id=alert_id, reason=body.reason)
        return show_alert(alert_id, request.state.regions)

    @app.post("/v1/alerts/{alert_id}/steps/{step}", tags=["alerts"], summary="Record a playbook step done (or skipped)",
              responses={404: {}, 409: {}})
    @roles(*WORKERS)
    def step_done(request: Request, alert_id: Id, step: Annotated[int, PathParam(ge=1, le=100)],
                  body: StepBody = Body(default_factory=StepBody)) -> dict[str, Any]:
        act(request, "step_skipped" if body.skipped else "step_done", alert_id=alert_id, reason=body.note,
            data={"step": step, "note": body.note})
        return show_alert(alert_id, request.state.regions)

    @app.post("/v1/alerts/{alert_id}/snooze", tags=["alerts"], summary="Snooze until a time or until recovery",
              responses={404: {}, 409: {}})
    @roles(*WORKERS)
    def snooze(request: Request, alert_id: Id, body: SnoozeBody) -> dict[str, Any]:
        if body.until is None and not body.until_recovery:
            raise field_error("until", "give `until` (a time) or `until_recovery: true`")
        if body.until is not None and body.until <= (now := deadlines_clock()):
            raise field_error("until", f"must be in the future (the service clock is at {now.isoformat()})")
        act(request, "snooze", alert_id=alert_id, reason=body.reason,
            data={"until": body.until.astimezone(timezone.utc).isoformat() if body.until else None,
                  "until_recovery": body.until_recovery})
        return show_alert(alert_id, request.state.regions)

    @app.post("/v1/alerts/{alert_id}/unsnooze", tags=["alerts"], summary="End a snooze", responses={404: {}, 409: {}})
    @roles(*WORKERS)
    def unsnooze(request: Request, alert_id: Id, body: ReasonBody = Body(default_factory=ReasonBody)) -> dict[str, Any]:
        act(request, "unsnooze", alert_id=alert_id, reason=body.reason)
        return show_alert(alert_id, request.state.regions)

    @app.post("/v1/alerts/{alert_id}/resolve", tags=["alerts"], summary="Resolve, with a reason", responses={404: {}, 409: {}})
    @roles(*WORKERS)
    def resolve(request: Request, alert_id: Id, body: ReasonRequired) -> dict[str, Any]:
        act(request, "resolve", alert_id=alert_id, reason=body.reason)
        return show_alert(alert_id, request.state.regions)

    @app.post("/v1/alerts/{alert_id}/assign", tags=["alerts"], summary="Assign to a person (or unassign)",
              responses={404: {}, 409: {}})
    @roles(*WORKERS)
    def assign(request: Request, alert_id: Id, body: AssignBody) -> dict[str, Any]:
        act(request, "assign", alert_id=alert_id, reason=body.reason, data={"assignee": body.assignee})
        return show_alert(alert_id, request.state.regions)

    @app.post("/v1/alerts/{alert_id}/comments", tags=["alerts"], summary="Add a note to the alert's trail",
              responses={404: {}})
    @roles(*WORKERS)
    def comment(request: Request, alert_id: Id, body: ReasonRequired) -> dict[str, Any]:
        return act(request, "comment", alert_id=alert_id, reason=body.reason)

    @app.post("/v1/alert-changes", tags=["alerts"], summary="Feed one engine alert change record",
              status_code=202)
    @roles(*OPERATORS)
    def ingest(change: AlertChange) -> dict[str, Any]:
        with guard:
            alert_changes.publish([change.contract()])
        return {"accepted": change.alert_id}

    # ---------------------------------------------------------------- audit

    @app.get("/v1/actions", tags=["audit"], summary="The audit trail (read-only)")
    @roles(*READERS)
    def actions(
        request: Request, subject: Annotated[str | None, Query(max_length=128, description="alert_id, plan_id or review_id")] = None,
        after: Annotated[int, Query(ge=0, le=2**62, description="Only records after this sequence number")] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 500,
    ) -> list[dict[str, Any]]:
        return consistent(lambda: scoped_audit(request.state.regions, subject, after, limit))

    # ---------------------------------------------------------------- plans

    @app.post("/v1/plans", tags=["plans"], summary="Trigger a contingency plan from an alert", status_code=201,
              responses={404: {}, 409: {}})
    @roles(*DIRECTORS)
    def trigger_plan(request: Request, body: PlanTrigger) -> dict[str, Any]:
        return trigger_plan_as(request.state.actor, request.state.role, body, request.state.regions)

    def trigger_plan_as(actor: str, role: str, body: PlanTrigger, regions: frozenset[str] | None = None) -> dict[str, Any]:
        with guard:
            out_of_scope(regions, alert_id=body.alert_id)
            return copy.deepcopy(desk.trigger_plan(body.plan, alert_id=body.alert_id, now=clock(), reason=body.reason,
                                     committed_amount=body.committed_amount, currency=body.currency,
                                     annual_sales_budget=body.annual_sales_budget, another=body.another,
                                     budget_override=body.budget_override, actor=actor, role=role))

    @app.get("/v1/plans", tags=["plans"], summary="Triggered plans")
    @roles(*READERS)
    def list_plans(request: Request, status: Literal["active", "completed", "closed", "cancelled"] | None = None,
                   alert_id: Annotated[str | None, Query(max_length=128)] = None) -> list[dict[str, Any]]:
        plans = consistent(lambda: desk.plans(deadlines_clock(), status=status, regions=request.state.regions))
        return [p for p in plans if alert_id is None or p["alert_id"] == alert_id]

    @app.get("/v1/plans/{plan_id}", tags=["plans"], summary="One plan", responses={404: {}})
    @roles(*READERS)
    def get_plan(request: Request, plan_id: Id) -> dict[str, Any]:
        def read():
            for plan in desk.plans(deadlines_clock(), regions=request.state.regions):
                if plan["plan_id"] == plan_id:
                    return {**plan, "audit": desk.audit(subject=plan_id)}
            raise HTTPException(404, f"plan {plan_id} not found")
        return consistent(read)

    @app.post("/v1/plans/{plan_id}/steps/{step}", tags=["plans"], summary="Record a plan step done",
              responses={404: {}, 409: {}})
    @roles(*WORKERS)
    def plan_step(request: Request, plan_id: Id, step: Annotated[int, PathParam(ge=1, le=100)],
                  body: StepBody = Body(default_factory=StepBody)) -> dict[str, Any]:
        act(request, "plan_step_done", plan_id=plan_id, reason=body.note, data={"step": step, "note": body.note})
        return get_plan(request, plan_id)

    @app.post("/v1/plans/{plan_id}/close", tags=["plans"], summary="Close or cancel a plan", responses={404: {}, 409: {}})
    @roles(*DIRECTORS)
    def close_plan(request: Request, plan_id: Id, body: PlanClose) -> dict[str, Any]:
        act(request, "plan_closed", plan_id=plan_id, reason=body.reason, data={"outcome": body.outcome})
        return get_plan(request, plan_id)

    # ---------------------------------------------------------------- reviews

    @app.get("/v1/reviews", tags=["reviews"], summary="Post-incident reviews")
    @roles(*READERS)
    def list_reviews(request: Request, status: Literal["open", "submitted", "signed_off"] | None = None,
                     overdue: bool | None = None) -> list[dict[str, Any]]:
        found = consistent(lambda: desk.reviews(deadlines_clock(), status=status, regions=request.state.regions))
        return [r for r in found if overdue is None or r["overdue"] == overdue]

    @app.get("/v1/reviews/{review_id}", tags=["reviews"], summary="One review", responses={404: {}})
    @roles(*READERS)
    def get_review(request: Request, review_id: Id) -> dict[str, Any]:
        def read():
            for review in desk.reviews(deadlines_clock(), regions=request.state.regions):
                if review["review_id"] == review_id:
                    return {**review, "audit": desk.audit(subject=review_id)}
            raise HTTPException(404, f"review {review_id} not found")
        return consistent(read)

    @app.post("/v1/reviews/{review_id}", tags=["reviews"], summary="Submit the 5-Why review", responses={404: {}, 409: {}})
    @roles(*WORKERS)
    def submit_review(request: Request, review_id: Id, body: ReviewSubmit) -> dict[str, Any]:
        act(request, "review_submitted", review_id=review_id, reason=body.root_cause, data=body.model_dump())
        return get_review(request, review_id)

    @app.post("/v1/reviews/{review_id}/signoff", tags=["reviews"], summary="Director sign-off", responses={404: {}, 409: {}})
    @roles(*DIRECTORS)
    def sign_off(request: Request, review_id: Id, body: SignOff = Body(default_factory=SignOff)) -> dict[str, Any]:
        act(request, "review_signed_off", review_id=review_id, reason=body.note)
        return get_review(request, review_id)

    # ---------------------------------------------------------------- register

    @app.get("/v1/register", tags=["register"], summary="The risk register: alerts, plans and reviews, filtered")
    @roles(*READERS)
    def register(
        request: Request, tier: Tier | None = None, indicator: Annotated[str | None, Query(max_length=64)] = None,
        owner: Annotated[str | None, Query(max_length=64)] = None,
        status: Annotated[str | None, Query(max_length=32)] = None,
        customer_class: CustomerClass | None = None,
        since: Instant | None = None, until: Instant | None = None,
    ) -> dict[str, Any]:
        filters = dict(tier=tier, indicator=indicator, owner=owner, customer_class=customer_class,
                       since=since, until=until, regions=request.state.regions)

        def read():
            # One state for all three lists and the counts.
            now = deadlines_clock()
            return (desk.alerts(now, status=status, **filters), desk.plans(now, status=status, **filters),
                    desk.reviews(now, status=status, **filters))
        alerts, plans, reviews = consistent(read)
        return {
            "alerts": [{k: a[k] for k in ("alert_id", "indicator", "tier", "status", "owner", "customer_class",
                                          "region", "summary", "reading", "cycle", "plan_ids", "review_ids",
                                          "response_overdue")}
                       | {"raised_at": a["alert"].get("raised_at"), "respond_by": a["alert"].get("respond_by")}
                       for a in alerts],
            "plans": plans,
            "reviews": reviews,
            "counts": {"alerts": len(alerts), "plans": len(plans), "reviews": len(reviews),
                       "reviews_overdue": sum(r["overdue"] for r in reviews),
                       "plans_overdue": sum(p["overdue"] for p in plans)},
        }

    # ---------------------------------------------------------------- operations

    @app.post("/v1/rules/reload", tags=["operations"], summary="Reload the rule files",
              responses={409: {"description": "The files are invalid; the running rules stay"}})
    @roles(*OPERATORS)
    def reload_rules(request: Request) -> dict[str, Any]:
        status, answer = reload_rules_as(request.state.actor, request.state.role)
        return answer if status == 200 else JSONResponse(answer, status_code=status)

    def reload_rules_as(actor: str, role: str) -> tuple[int, dict[str, Any]]:
        problems: list[str] = []
        new_rules = None
        if rules_dir is not None:
            new_rules, problems = load_workflow_rules(rules_dir)
        if on_rules_reload is not None and not problems:
            problems = list(on_rules_reload())
        if problems:
            if metrics is not None:
                metrics.rules_reload_failures.inc()
            return 409, {"detail": "rules not reloaded", "problems": problems}
        with guard:
            action = desk.reload_rules(new_rules or desk.rules, now=clock(), actor=actor, role=role)
            plans = sorted(desk.rules.plans)
        if metrics is not None:
            metrics.rules_loaded_timestamp_seconds.set(clock().timestamp())
        return 200, {"reloaded": True, "action_id": action.action_id, "plans": plans}

    async def probe(request: Request):
        return PlainTextResponse("ok\n")

    async def scrape(request: Request):
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
        body = generate_latest(metrics.registry) if metrics is not None else b""
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    async def ready(request: Request):
        # Ready only while the store takes a write: a full, read-only or
        # damaged store takes the API out of rotation instead of failing
        # every person's action.
        check = getattr(desk.store, "check_writable", None)
        if check is not None:
            try:
                await asyncio.to_thread(check)
            except StoreError as error:
                return PlainTextResponse(f"not ready: workflow store: {error.reason}\n", status_code=503)
        return PlainTextResponse("ok\n")

    # Plain routes: outside the OpenAPI document and the token dependency.
    for path in ("/healthz", "/livez"):
        app.add_route(path, probe, methods=["GET"], include_in_schema=False)
    app.add_route("/readyz", ready, methods=["GET"], include_in_schema=False)
    app.add_route("/metrics", scrape, methods=["GET"], include_in_schema=False)

    async def no_icon(request: Request):
        return Response(status_code=204)  # browsers ask on every page; no 401 in their consoles
    app.add_route("/favicon.ico", no_icon, methods=["GET"], include_in_schema=False)

    @app.get("/v1/health", tags=["operations"], summary="Health of the API and its store")
    @roles("operator", "readonly")
    def health() -> dict[str, Any]:
        now = clock()
        service_now = measured()

        def read():
            return {
                "status": "ok",
                "now": now.isoformat(),
                "service_clock": None if service_now is None else service_now.isoformat(),
                "store": desk.store.describe() if desk.store is not None else None,
                "alerts_open": sum(1 for i in desk.ledger.alerts.values() if i["status"] != "resolved"),
                "reviews_overdue": sum(1 for r in desk.reviews(deadlines_clock()) if r["overdue"]),
            }
        return consistent(read)

    mount_console(app, ConsoleBackend(
        desk=desk, grants=grants, consistent=consistent, act_as=act_as, trigger_plan_as=trigger_plan_as,
        reload_rules_as=reload_rules_as, deadlines_clock=deadlines_clock, service_clock=measured,
        sync=lambda: _tick(), clock=clock, rules_dir=rules_dir, plan_trigger=PlanTrigger, **(console or {})))
    return app
