"""`riskwatch api` (serve the HTTP API) and the terminal client of that API:
`riskwatch alerts list|show|ack|step|snooze|resolve` and `riskwatch plan trigger`.

The client commands only call the HTTP API (httpx), with --api-url /
RISKWATCH_API_URL and --token / RISKWATCH_API_TOKEN, so what a person does
in the terminal is recorded exactly like what they do in the web console.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
import httpx
import orjson

from riskwatch.cli import main
from riskwatch.cli.exitcodes import EXIT_REFUSED, EXIT_STORE, EXIT_UNREACHABLE
from riskwatch.cli.options import settings_or_usage


@main.command("api")
@click.option("--host", default=None, help="Address to listen on (RISKWATCH_API_HOST, default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (RISKWATCH_API_PORT, default 8080).")
@click.option("--store-dir", type=click.Path(path_type=Path), default=None,
              help="Directory of the workflow log (RISKWATCH_STORE_DIR, default var/store).")
@click.option("--rules", "rules_dir", type=click.Path(path_type=Path), default=None, help="Rule directory.")
@click.option("--workflow-log", type=click.Choice(["store", "kafka"]), default=None,
              help="Where actions are recorded: 'store' (SQLite under --store-dir, with `riskwatch run`) or "
                   "'kafka' (the alerts and actions topics the workers read) (RISKWATCH_WORKFLOW_LOG, default store).")
@click.option("--broker", default=None, help="Kafka bootstrap HOST:PORT[,...] with --workflow-log kafka (RISKWATCH_BROKER).")
@click.option("--topic-prefix", default=None, help="Topic prefix with --workflow-log kafka (RISKWATCH_TOPIC_PREFIX).")
@click.option("--tokens-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="YAML file of tokens with their person, team and region limits (RISKWATCH_API_TOKENS_FILE; "
                   "docs/console.md).")
@click.option("--max-body-bytes", type=int, default=None,
              help="413 above this request body size (RISKWATCH_API_MAX_BODY_BYTES, default 65536).")
@click.option("--header-timeout", type=float, default=None,
              help="Seconds to receive a request's headers, else 408 (RISKWATCH_API_HEADER_TIMEOUT_SECONDS, default 5).")
@click.option("--body-timeout", type=float, default=None,
              help="Seconds to receive a request's body, else 408 (RISKWATCH_API_BODY_TIMEOUT_SECONDS, default 10).")
def api_command(host: str | None, port: int | None, store_dir: Path | None, rules_dir: Path | None,
                workflow_log: str | None, broker: str | None, topic_prefix: str | None,
                tokens_file: Path | None, max_body_bytes: int | None, header_timeout: float | None,
                body_timeout: float | None) -> None:
    """Serve the HTTP API (OpenAPI at /openapi.json); tokens from RISKWATCH_API_TOKENS."""
    from riskwatch.alerts import StoreError
    from riskwatch.api.auth import TokenConfigError
    from riskwatch.api.server import ApiConfigError, app_from_settings, run_server

    settings = settings_or_usage(api_host=host, api_port=port, store_dir=store_dir, rules_dir=rules_dir,
                                 workflow_log=workflow_log, broker=broker, topic_prefix=topic_prefix,
                                 api_tokens_file=tokens_file,
                                 api_max_body_bytes=max_body_bytes, api_header_timeout_seconds=header_timeout,
                                 api_body_timeout_seconds=body_timeout)
    try:
        app = app_from_settings(settings)
    except (ApiConfigError, TokenConfigError) as error:
        click.echo(f"riskwatch api: {error}", err=True)
        sys.exit(EXIT_REFUSED)
    except StoreError as error:
        # One line and its own status, not a traceback: a supervisor
        # restarting the API in a loop shows the operator what to fix.
        click.echo(f"riskwatch api: {error}", err=True)
        sys.exit(EXIT_STORE)
    where = (f"topics {settings.topic_prefix}alerts and {settings.topic_prefix}actions on {settings.broker}"
             if settings.workflow_log == "kafka" else f"store {settings.store_dir}")
    click.echo(f"riskwatch api on http://{settings.api_host}:{settings.api_port} "
               f"(OpenAPI at /openapi.json, {where})", err=True)
    run_server(app, settings)


# --------------------------------------------------------------------------- client

class Client:
    def __init__(self, url: str, token: str | None, actor: str | None):
        if not token:
            raise click.UsageError("no token: pass --token or set RISKWATCH_API_TOKEN")
        headers = {"Authorization": f"Bearer {token}"}
        if actor:
            headers["X-Riskwatch-Actor"] = actor
        self.http = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=15)

    def call(self, method: str, path: str, **kw):
        try:
            response = self.http.request(method, path, **kw)
        except httpx.HTTPError as error:
            click.echo(f"cannot reach the riskwatch API at {self.http.base_url}: {error}", err=True)
            sys.exit(EXIT_UNREACHABLE)
        if response.status_code >= 400:
            detail = _detail(response)
            click.echo(f"refused ({response.status_code}): {_shown(detail)}", err=True)
            sys.exit(EXIT_REFUSED)
        return response.json()


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text
    detail = body.get("detail", body) if isinstance(body, dict) else body
    if isinstance(detail, list):
        return "; ".join(f"{'.'.join(str(p) for p in e.get('loc', [])[1:]) or 'body'}: {e.get('msg')}"
                         if isinstance(e, dict) else str(e) for e in detail)
    problems = body.get("problems") if isinstance(body, dict) else None
    return f"{detail}" + (": " + "; ".join(problems) if problems else "")


def client_options(command):
    command = click.option("--api-url", default=None, help="riskwatch API base URL (RISKWATCH_API_URL).")(command)
    command = click.option("--token", default=None, help="API token (RISKWATCH_API_TOKEN).")(command)
    command = click.option("--as", "actor", default=None, help="Your name, recorded in the audit trail.")(command)
    command = click.option("--json", "as_json", is_flag=True, help="Print the API's JSON.")(command)
    return command


def _client(api_url: str | None, token: str | None, actor: str | None) -> Client:
    settings = settings_or_usage(api_url=api_url, api_token=token)
    return Client(settings.api_url, settings.api_token, actor)


def _print_json(value) -> None:
    click.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())


def _shown(value) -> str:
    """A value as the terminal may print it: control characters (newline
    included: one field, one line), bidirectional controls and lone
    surrogates escaped (\\n, \\x1b, \\u202e), so text from the API can
    neither forge a line of the trail nor drive the terminal."""
    text = "" if value is None else str(value)
    return "".join(c if c.isprintable() else _escaped(c) for c in text)


def _escaped(char: str) -> str:
    code = ord(char)
    named = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}.get(char)
    return named or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")


def _alert_line(alert: dict) -> str:
    overdue = " RESPONSE OVERDUE" if alert.get("response_overdue") else ""
    # The API prints the value against its threshold (riskwatch.units), so
    # the terminal shows what the API shows.
    shown = f"{_shown(alert['reading']['text'])}  " if alert.get("reading") else ""
    respond_by = alert["alert"].get("respond_by") if "alert" in alert else alert.get("respond_by")
    return (f"{_shown(alert['alert_id'])}  {_shown(alert['tier']):<6} {_shown(alert['status']):<12} "
            f"{_shown(alert.get('indicator')):<22} {shown}owner {_shown(alert['owner'])}  "
            f"respond by {_shown(respond_by)}{overdue}\n    {_shown(alert.get('summary'))}")


def _show_alert(alert: dict, as_json: bool) -> None:
    if as_json:
        _print_json(alert)
        return
    click.echo(_alert_line(alert))
    for step in alert.get("steps", []):
        mark = {"done": "x", "skipped": "-"}.get(step["status"], " ")
        late = "  OVERDUE" if step.get("overdue") else ""
        done = f"  done by {_shown(step['done_by'])} {_shown(step['done_at'])}" if step.get("done_by") else ""
        click.echo(f"  [{mark}] {_shown(step['step'])}. {_shown(step['action'])} ({_shown(step['owner'])}, "
                   f"due {_shown(step['due_at'])}){late}{done}")
    for escalation in alert.get("escalations", []):
        click.echo(f"  escalated {_shown(escalation['at'])}: {_shown(escalation['from'])} -> "
                   f"{_shown(escalation['to'])} ({_shown(escalation['reason'])})")
    for action in alert.get("audit", []):
        click.echo(f"  {_shown(action['at'])}  {_shown(action['kind']):<14} {_shown(action['actor'])} "
                   f"({_shown(action['role'])}){': ' + _shown(action['reason']) if action.get('reason') else ''}")


@main.group("alerts", invoke_without_command=False)
def alerts_group() -> None:
    """Work alerts through the riskwatch API."""


@alerts_group.command("list")
@client_options
@click.option("--status", type=click.Choice(["open", "acknowledged", "in_progress", "snoozed", "resolved"]))
@click.option("--tier", type=click.Choice(["red", "orange", "yellow", "blue"]))
@click.option("--indicator")
@click.option("--owner")
@click.option("--customer-class", type=click.Choice(["A", "B", "C", "D"]))
def alerts_list(api_url, token, actor, as_json, status, tier, indicator, owner, customer_class) -> None:
    """Alerts, newest first."""
    params = {k: v for k, v in dict(status=status, tier=tier, indicator=indicator, owner=owner,
                                    customer_class=customer_class).items() if v}
    alerts = _client(api_url, token, actor).call("GET", "/v1/alerts", params=params)
    if as_json:
        _print_json(alerts)
        return
    for alert in alerts:
        click.echo(_alert_line(alert))
    click.echo(f"{len(alerts)} alert(s)", err=True)


@alerts_group.command("show")
@client_options
@click.argument("alert_id")
def alerts_show(api_url, token, actor, as_json, alert_id) -> None:
    """One alert: playbook steps, escalations, audit trail."""
    _show_alert(_client(api_url, token, actor).call("GET", f"/v1/alerts/{alert_id}"), as_json)


@alerts_group.command("ack")
@client_options
@click.argument("alert_id")
@click.option("--reason", default=None)
def alerts_ack(api_url, token, actor, as_json, alert_id, reason) -> None:
    """Acknowledge an alert."""
    body = {"reason": reason} if reason else {}
    _show_alert(_client(api_url, token, actor).call("POST", f"/v1/alerts/{alert_id}/ack", json=body), as_json)


@alerts_group.command("step")
@client_options
@click.argument("alert_id")
@click.argument("step", type=int)
@click.option("--note", default=None, help="What was done.")
@click.option("--skipped", is_flag=True, help="Record the step as skipped instead of done.")
def alerts_step(api_url, token, actor, as_json, alert_id, step, note, skipped) -> None:
    """Record a playbook step as done."""
    body = {"skipped": skipped} | ({"note": note} if note else {})
    _show_alert(_client(api_url, token, actor).call("POST", f"/v1/alerts/{alert_id}/steps/{step}", json=body), as_json)


@alerts_group.command("snooze")
@client_options
@click.argument("alert_id")
@click.option("--reason", required=True)
@click.option("--until", default=None, help="RFC 3339 instant, e.g. 2026-04-02T09:00:00+08:00.")
@click.option("--until-recovery", is_flag=True, help="Until the condition clears.")
def alerts_snooze(api_url, token, actor, as_json, alert_id, reason, until, until_recovery) -> None:
    """Snooze an alert until a time or until it recovers."""
    if not until and not until_recovery:
        raise click.UsageError("give --until TIME or --until-recovery")
    body = {"reason": reason, "until_recovery": until_recovery} | ({"until": until} if until else {})
    _show_alert(_client(api_url, token, actor).call("POST", f"/v1/alerts/{alert_id}/snooze", json=body), as_json)


@alerts_group.command("resolve")
@client_options
@click.argument("alert_id")
@click.option("--reason", required=True)
def alerts_resolve(api_url, token, actor, as_json, alert_id, reason) -> None:
    """Resolve an alert, with the reason."""
    _show_alert(_client(api_url, token, actor).call("POST", f"/v1/alerts/{alert_id}/resolve",
                                                    json={"reason": reason}), as_json)


@main.group("plan")
def plan_group() -> None:
    """Contingency plans, through the riskwatch API."""


@plan_group.command("trigger")
@client_options
@click.argument("plan")
@click.option("--alert", "alert_id", required=True, help="The alert the plan answers.")
@click.option("--reason", required=True)
@click.option("--amount", "committed_amount", type=float, default=None, help="Amount committed from the plan's fund.")
@click.option("--currency", default="CNY", show_default=True)
@click.option("--budget", "annual_sales_budget", type=float, default=None,
              help="Annual sales budget, to check the commitment against the fund's share.")
@click.option("--another", is_flag=True, help="Trigger it although the same plan is already active on the alert.")
@click.option("--budget-override", default=None, metavar="REASON",
              help="Commit beyond what the fund has left for the period, recording why.")
def plan_trigger(api_url, token, actor, as_json, plan, alert_id, reason, committed_amount, currency,
                 annual_sales_budget, another, budget_override) -> None:
    """Trigger a contingency plan (rules/contingency_plans.yaml) from an alert (directors)."""
    body = {"plan": plan, "alert_id": alert_id, "reason": reason, "currency": currency, "another": another}
    if budget_override:
        body["budget_override"] = budget_override
    if committed_amount is not None:
        body["committed_amount"] = committed_amount
    if annual_sales_budget is not None:
        body["annual_sales_budget"] = annual_sales_budget
    result = _client(api_url, token, actor).call("POST", "/v1/plans", json=body)
    if as_json:
        _print_json(result)
        return
    click.echo(f"{_shown(result['plan_id'])}  {_shown(result['title'])}  ({_shown(result['status'])}, "
               f"from {_shown(result['alert_id'])})")
    for step in result["steps"]:
        click.echo(f"  {_shown(step['step'])}. {_shown(step['action'])} ({_shown(step['owner'])}, due {_shown(step['due_at'])})")
