"""Build the API from Settings and serve it with uvicorn (`riskwatch api`)."""

from __future__ import annotations

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from riskwatch.alerts import AlertDesk, WorkflowStore
from riskwatch.api.app import create_app
from riskwatch.api.auth import parse_tokens
from riskwatch.metrics import RiskwatchMetrics
from riskwatch.rules.loader import load_workflow_rules
from riskwatch.settings import Settings


class ApiConfigError(RuntimeError):
    pass


def app_from_settings(settings: Settings, *, metrics: RiskwatchMetrics | None = None) -> FastAPI:
    tokens = parse_tokens(settings.api_tokens)
    if not tokens:
        raise ApiConfigError("RISKWATCH_API_TOKENS is empty: configure at least one token:role")
    rules, problems = load_workflow_rules(settings.rules_dir)
    if rules is None:
        raise ApiConfigError(f"rules in {settings.rules_dir} cannot be used:\n  " + "\n  ".join(problems))
    metrics = metrics or RiskwatchMetrics.create(CollectorRegistry())
    on_kafka = settings.workflow_log == "kafka"
    store = workflow_log_on_kafka(settings) if on_kafka else WorkflowStore(settings.store_dir)
    desk = AlertDesk(rules, store, metrics=metrics)
    # Store mode: deadlines on the watermark `riskwatch run` records in the
    # store, never on this process's wall clock (a replayed history is not
    # overdue because it is old).
    return create_app(desk, tokens, rules_dir=settings.rules_dir, metrics=metrics, keeps_clock=not on_kafka,
                      service_clock=None if on_kafka else desk.service_clock,
                      tick_seconds=1.0 if on_kafka else 30.0)


def workflow_log_on_kafka(settings: Settings):
    """The alerts and actions topics as the desk's log (created if the worker has not yet)."""
    from riskwatch.alerts.kafkalog import KafkaWorkflowLog, WorkflowLogUnavailable
    from streams.topics import ensure_topics  # kafka-python only: no faust

    try:
        ensure_topics(settings.broker, settings.topic_prefix, settings.partitions)
        return KafkaWorkflowLog(settings.broker, settings.topic_prefix, client_id="riskwatch-api")
    except WorkflowLogUnavailable as error:
        raise ApiConfigError(str(error)) from None
    except Exception as error:
        raise ApiConfigError(f"broker {settings.broker}: {error}") from None


def serve(settings: Settings) -> None:
    import uvicorn

    app = app_from_settings(settings)
    uvicorn.run(app, host=settings.api_host, port=settings.api_port, log_level=settings.log_level.lower(),
                log_config=None)  # riskwatch.logconfig's handler, not uvicorn's own
