"""Build the API from Settings and serve it with uvicorn (`riskwatch api`)."""

from __future__ import annotations

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from riskwatch.alerts import AlertDesk, WorkflowStore
from riskwatch.api.app import create_app
from riskwatch.api.auth import parse_tokens
from riskwatch.metrics import RiskwatchMetrics
from riskwatch.rules.response import load_response_rules
from riskwatch.settings import Settings


class ApiConfigError(RuntimeError):
    pass


def app_from_settings(settings: Settings, *, metrics: RiskwatchMetrics | None = None) -> FastAPI:
    tokens = parse_tokens(settings.api_tokens)
    if not tokens:
        raise ApiConfigError("RISKWATCH_API_TOKENS is empty: configure at least one token:role")
    rules, problems = load_response_rules(settings.rules_dir)
    if rules is None:
        raise ApiConfigError("response rules invalid:\n  " + "\n  ".join(problems))
    metrics = metrics or RiskwatchMetrics.create(CollectorRegistry())
    desk = AlertDesk(rules, WorkflowStore(settings.store_dir), metrics=metrics)
    return create_app(desk, tokens, rules_dir=settings.rules_dir, metrics=metrics)


def serve(settings: Settings) -> None:
    import uvicorn

    app = app_from_settings(settings)
    uvicorn.run(app, host=settings.api_host, port=settings.api_port, log_level=settings.log_level.lower())
