"""Every Prometheus series riskwatch exposes, declared once.

`riskwatch run`, `riskwatch worker` and `riskwatch api` all build a
`RiskwatchMetrics` on a registry they pass in, so one Grafana dashboard serves
all of them and tests use a fresh registry. Label values are bounded sets
(tier, indicator, event type, reason) and are pre-created so a panel shows 0
instead of "no data". Never a customer id as a label.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from riskwatch.rules.schema import INDICATOR_IDS as INDICATORS  # noqa: E402 - one list for rules and metrics
from riskwatch.contracts import TIER_NAMES as TIERS, AlertChange, Tier  # noqa: E402

EVENT_TYPES = (
    "order.placed",
    "order.cancelled",
    "delivery.scheduled",
    "delivery.eta_updated",
    "delivery.delivered",
    "invoice.issued",
    "payment.received",
    "invoice.written_off",
    "competitor.price_observed",
    "customer.profile",
    "sales.target_set",
)
REJECTION_REASONS = (
    "not_json",
    "not_object",
    "unknown_type",
    "missing_field",
    "invalid_field",
    "too_large",
)
# Dead letters of the worker's change data capture (riskwatch.ingest.debezium).
CDC_REJECTION_REASONS = ("cdc_not_a_change", "cdc_no_mapping", "cdc_unmappable")
# What became of one change record: events sent on, none (no event of the
# table's mapping applies to it), a tombstone ignored, a dead letter.
CDC_OUTCOMES = ("mapped", "no_event", "tombstone", "dead_letter")
SOURCES = ("orders", "deliveries", "payments", "competitor-prices", "customers", "file", "simulator")

# Evaluation is microseconds per event; the buckets reach down there.
EVALUATION_BUCKETS = (
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1,
)


@dataclass(frozen=True)
class RiskwatchMetrics:
    registry: CollectorRegistry
    events_processed: Counter
    events_rejected: Counter
    events_duplicate: Counter
    events_late: Counter
    dead_letters: Counter
    alerts_raised: Counter
    alerts_escalated: Counter
    alerts_resolved: Counter
    alert_changes: Counter
    alerts_open: Gauge
    playbook_steps_overdue: Gauge
    reviews_overdue: Gauge
    watermark_seconds: Gauge
    watermark_lag_seconds: Gauge
    segment_watermark_seconds: Gauge
    idle_clock_advances: Counter
    deadlines_pending: Gauge
    tracked_entities: Gauge
    evaluation_seconds: Histogram
    rules_loaded_timestamp_seconds: Gauge
    rules_reload_failures: Counter
    alertmanager_pushes: Counter
    alertmanager_push_failures: Counter
    alertmanager_notifications_queued: Gauge
    alertmanager_notifications_dropped: Counter
    alertmanager_circuit_open: Gauge
    worker_partitions_assigned: Gauge
    source_topic_partitions: Gauge
    worker_keeps_alert_desk: Gauge
    cdc_changes: Counter
    risk_matrix_alerts_open: Gauge
    alert_responses: Counter
    up: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None) -> "RiskwatchMetrics":
        registry = registry if registry is not None else CollectorRegistry()
        p = "riskwatch_"
        metrics = cls(
            registry=registry,
            events_processed=Counter(p + "events_processed_total", "Events accepted and evaluated, by event type.", ["type"], registry=registry),
            events_rejected=Counter(p + "events_rejected_total", "Input records refused by the parser, by reason.", ["reason"], registry=registry),
            events_duplicate=Counter(p + "events_duplicate_total", "Events ignored because their event_id was already seen.", registry=registry),
            events_late=Counter(p + "events_late_total", "Events older than the watermark (beyond the allowed lateness); still applied.", registry=registry),
            dead_letters=Counter(p + "dead_letters_total", "Records sent to the dead-letter topic, by reason.", ["reason"], registry=registry),
            alerts_raised=Counter(p + "alerts_raised_total", "Alerts opened, by indicator and tier.", ["indicator", "tier"], registry=registry),
            alerts_escalated=Counter(p + "alerts_escalated_total", "Alerts escalated (tier rise or missed respond_by), by indicator and tier.", ["indicator", "tier"], registry=registry),
            alerts_resolved=Counter(p + "alerts_resolved_total", "Alerts resolved, by indicator and tier.", ["indicator", "tier"], registry=registry),
            alert_changes=Counter(p + "alert_changes_total", "Alert change records emitted, by indicator.", ["indicator"], registry=registry),
            alerts_open=Gauge(p + "alerts_open", "Alerts currently open, by tier.", ["tier"], registry=registry),
            playbook_steps_overdue=Gauge(p + "playbook_steps_overdue", "Playbook steps past their due time and not done.", registry=registry),
            reviews_overdue=Gauge(p + "reviews_overdue", "Post-incident reviews past their 48 h due time.", registry=registry),
            watermark_seconds=Gauge(p + "watermark_seconds", "The service clock (event-time watermark) as a Unix time.", registry=registry),
            watermark_lag_seconds=Gauge(p + "watermark_lag_seconds", "Wall-clock time minus the watermark.", registry=registry),
            segment_watermark_seconds=Gauge(p + "segment_watermark_seconds", "How far the group indicators (churn, collection rate, sales-target lag) have been evaluated, as a Unix time: the slowest segment engine this process owns (the service clock in one process; NaN on a worker that owns none).", registry=registry),
            idle_clock_advances=Counter(p + "idle_clock_advances_total", "Times the clock was advanced by wall-clock time because no event arrived.", registry=registry),
            deadlines_pending=Gauge(p + "deadlines_pending", "Absence deadlines waiting for the clock.", registry=registry),
            tracked_entities=Gauge(p + "tracked_entities", "Entities (shipments, invoices, customers, prices) held in state.", registry=registry),
            evaluation_seconds=Histogram(p + "evaluation_seconds", "Time to parse and evaluate one event.", buckets=EVALUATION_BUCKETS, registry=registry),
            rules_loaded_timestamp_seconds=Gauge(p + "rules_loaded_timestamp_seconds", "When the running rules were loaded.", registry=registry),
            rules_reload_failures=Counter(p + "rules_reload_failures_total", "Rule reloads refused because the files were invalid.", registry=registry),
            alertmanager_pushes=Counter(p + "alertmanager_pushes_total", "Batches of alerts posted to Alertmanager.", registry=registry),
            alertmanager_push_failures=Counter(p + "alertmanager_push_failures_total", "Failed posts to Alertmanager.", registry=registry),
            alertmanager_notifications_queued=Gauge(p + "alertmanager_notifications_queued", "Alerts waiting to be posted to Alertmanager (by label set; a newer state replaces the queued one).", registry=registry),
            alertmanager_notifications_dropped=Counter(p + "alertmanager_notifications_dropped_total", "Alert notifications dropped unposted, by reason: age (waited longer than the limit) or overflow (queue full).", ["reason"], registry=registry),
            alertmanager_circuit_open=Gauge(p + "alertmanager_circuit_open", "1 while posts to Alertmanager are paused after repeated failures (only back-off probes go out).", registry=registry),
            worker_partitions_assigned=Gauge(p + "worker_partitions_assigned", "Source partitions this worker actively owns.", registry=registry),
            source_topic_partitions=Gauge(p + "source_topic_partitions", "Partitions of each source topic in the worker's consumer metadata; 0 while a topic is missing (deleted or being recreated: the consumer ignores it until it exists again, within the metadata refresh).", ["topic"], registry=registry),
            cdc_changes=Counter(p + "cdc_changes_total", "Database change records (Debezium) the worker read, by outcome: mapped (events sent to the source topics), no_event, tombstone, dead_letter.", ["outcome"], registry=registry),
            worker_keeps_alert_desk=Gauge(p + "worker_keeps_alert_desk", "1 on the worker whose alert desk records escalations and pushes to Alertmanager.", registry=registry),
            risk_matrix_alerts_open=Gauge(p + "risk_matrix_alerts_open", "Open alerts by probability band and impact band (the heat map).", ["probability_band", "impact_band"], registry=registry),
            alert_responses=Counter(p + "alert_responses_total", "Alerts acknowledged by respond_by (in_time) or not (late), by tier.", ["tier", "outcome"], registry=registry),
            up=Gauge(p + "up", "1 while the process is serving.", ["component"], registry=registry),
        )
        metrics._precreate()
        return metrics

    def _precreate(self) -> None:
        for event_type in EVENT_TYPES:
            self.events_processed.labels(type=event_type)
        for reason in REJECTION_REASONS + CDC_REJECTION_REASONS:
            self.events_rejected.labels(reason=reason)
            self.dead_letters.labels(reason=reason)
        for outcome in CDC_OUTCOMES:
            self.cdc_changes.labels(outcome=outcome)
        for reason in ("age", "overflow"):  # riskwatch.sinks.delivery.DROP_REASONS
            self.alertmanager_notifications_dropped.labels(reason=reason)
        for indicator in INDICATORS:
            self.alert_changes.labels(indicator=indicator)
            for tier in TIERS:
                self.alerts_raised.labels(indicator=indicator, tier=tier)
                self.alerts_escalated.labels(indicator=indicator, tier=tier)
                self.alerts_resolved.labels(indicator=indicator, tier=tier)
        for tier in TIERS:
            self.alerts_open.labels(tier=tier)
            for outcome in ("in_time", "late"):
                self.alert_responses.labels(tier=tier, outcome=outcome)
        for probability_band in PROBABILITY_BANDS:
            for impact_band in IMPACT_BANDS:
                self.risk_matrix_alerts_open.labels(probability_band=probability_band[0], impact_band=impact_band[0])

    def set_risk_matrix(self, open_alerts) -> None:
        """Open alerts as (probability, impact) pairs into the heat-map gauge."""
        counts = {(p[0], i[0]): 0 for p in PROBABILITY_BANDS for i in IMPACT_BANDS}
        for probability, impact in open_alerts:
            counts[(band_of(probability, PROBABILITY_BANDS), band_of(impact, IMPACT_BANDS))] += 1
        for (probability_band, impact_band), count in counts.items():
            self.risk_matrix_alerts_open.labels(probability_band=probability_band, impact_band=impact_band).set(count)


# Bands are (lo, hi], the first one also takes 0: the seed matrix's cut points.
PROBABILITY_BANDS = (("0-0.3", 0.3), ("0.3-0.5", 0.5), ("0.5-0.7", 0.7), ("0.7-1", 1.0))
IMPACT_BANDS = (("0-0.1", 0.1), ("0.1-0.2", 0.2), ("0.2-0.3", 0.3), ("0.3-1", 1.0))


def band_of(value: float, bands) -> str:
    for name, upper in bands:
        if value <= upper:
            return name
    return bands[-1][0]


class AlertTally:
    """Counts alert changes into the alert families and keeps the open
    alerts for the gauges: one set of counting rules for `run`, `replay` and
    the Kafka worker."""

    def __init__(self, metrics: RiskwatchMetrics | None):
        self.metrics = metrics
        self.open: dict[str, tuple[str, float, float]] = {}  # alert_id -> (tier, probability, impact)
        self._by_tier = {tier: 0 for tier in TIERS}
        self._by_cell = {(p[0], i[0]): 0 for p in PROBABILITY_BANDS for i in IMPACT_BANDS}

    def _forget(self, alert_id: str) -> None:
        entry = self.open.pop(alert_id, None)
        if entry is not None:
            self._by_tier[entry[0]] -= 1
            self._by_cell[(band_of(entry[1], PROBABILITY_BANDS), band_of(entry[2], IMPACT_BANDS))] -= 1

    def _remember(self, alert_id: str, entry: tuple[str, float, float]) -> None:
        self._forget(alert_id)
        self.open[alert_id] = entry
        self._by_tier[entry[0]] += 1
        self._by_cell[(band_of(entry[1], PROBABILITY_BANDS), band_of(entry[2], IMPACT_BANDS))] += 1

    def count(self, record: AlertChange) -> str | None:
        """Count one change; returns "raised", "resolved", "raised_resolved" or None for the summary."""
        m = self.metrics
        indicator, tier, alert_id = record.indicator, record.tier.value, record.alert_id
        previous = self.open.get(alert_id)
        outcome = None
        if record.is_open:
            if record.change in ("raised", "reopened"):
                outcome = "raised"
                if m is not None:
                    m.alerts_raised.labels(indicator=indicator, tier=tier).inc()
            elif previous is not None and record.tier.rank > Tier.rank_of(previous[0]) and m is not None:
                m.alerts_escalated.labels(indicator=indicator, tier=tier).inc()
            self._remember(alert_id, (tier, record.probability, record.impact))
        else:
            if record.change == "resolved" or previous is not None:
                outcome = "resolved"
                if m is not None:
                    m.alerts_resolved.labels(indicator=indicator, tier=tier).inc()
            elif record.change == "raised":  # raised and cleared in one step (delivered late)
                outcome = "raised_resolved"
                if m is not None:
                    m.alerts_raised.labels(indicator=indicator, tier=tier).inc()
                    m.alerts_resolved.labels(indicator=indicator, tier=tier).inc()
            self._forget(alert_id)
        if m is not None:
            m.alert_changes.labels(indicator=indicator).inc()
        return outcome

    def track(self, record: AlertChange) -> None:
        """Follow an alert's open state without counting a change (a re-sent record)."""
        if record.is_open:
            self._remember(record.alert_id, (record.tier.value, record.probability, record.impact))
        else:
            self._forget(record.alert_id)

    def clear(self) -> None:
        for alert_id in list(self.open):
            self._forget(alert_id)

    def open_by_tier(self) -> dict[str, int]:
        return dict(self._by_tier)

    def refresh(self) -> None:
        """Set the open-alert gauges (by tier, and the probability x impact heat map)."""
        if self.metrics is None:
            return
        for tier, count in self._by_tier.items():
            self.metrics.alerts_open.labels(tier=tier).set(count)
        for (probability_band, impact_band), count in self._by_cell.items():
            self.metrics.risk_matrix_alerts_open.labels(probability_band=probability_band, impact_band=impact_band).set(count)
