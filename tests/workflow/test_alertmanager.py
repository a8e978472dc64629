"""Notification through the real Alertmanager: what riskwatch pushes is
delivered to the right receivers, grouped per customer and indicator, lower
tiers inhibited by a red alert of the same customer, resolved on resolve,
kept alive by re-sends, re-routed when an alert escalates, and complete again
after Alertmanager was away (the sink posts on its own thread: `flush()`
waits for delivery where a test reads Alertmanager at once)."""

from __future__ import annotations

import subprocess
import time
from datetime import datetime, timedelta, timezone

import pytest

from riskwatch.alerts import AlertDesk
from riskwatch.metrics import RiskwatchMetrics
from riskwatch.sinks.alertmanager import AlertmanagerSink, alert_labels
from riskwatch.sinks.delivery import DeliveryPolicy
from support.alertmanager import AMTOOL, DEPLOY_CONFIG, config_for_test, free_port, running_alertmanager, webhook_receiver

from .records import change_record, next_change

pytestmark = [pytest.mark.alertmanager, pytest.mark.slow]

NOW = datetime.now(timezone.utc)


def live(alert_id: str, **kw) -> dict:
    """A change record whose times are around now (Alertmanager runs on the wall clock)."""
    record = change_record(alert_id, **kw)
    record["raised_at"] = record["updated_at"] = NOW.isoformat()
    record["respond_by"] = (NOW + timedelta(hours=8)).isoformat()
    return record


@pytest.fixture(scope="module")
def hook():
    with webhook_receiver() as hook:
        yield hook


@pytest.fixture(scope="module")
def am(hook, tmp_path_factory):
    with running_alertmanager(config_for_test(hook.url), tmp_path_factory.mktemp("alertmanager")) as am:
        yield am


@pytest.fixture
def sink(am):
    metrics = RiskwatchMetrics.create()
    sink = AlertmanagerSink(am.url, metrics=metrics, generator_url="http://riskwatch.example/api")
    sink.metrics_for_test = metrics
    yield sink
    sink.close()


def alert_ids(payload: dict) -> set[str]:
    return {a["labels"]["alert_id"] for a in payload["alerts"]}


def test_amtool_accepts_the_shipped_config():
    result = subprocess.run([AMTOOL, "check-config", str(DEPLOY_CONFIG)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_red_alert_reaches_crisis_team_and_director_at_once(am, hook, sink):
    sink.send(live("al-red-1", tier="red", owner="general_manager", customer_id="C-RED-1"))
    for receiver in ("crisis-team", "sales-director", "riskwatch-audit"):
        (payload, *_) = hook.wait_for(lambda r, p, receiver=receiver: r == receiver and "al-red-1" in alert_ids(p))
        (alert,) = [a for a in payload["alerts"] if a["labels"]["alert_id"] == "al-red-1"]
        assert payload["status"] == "firing"
    labels = alert["labels"]
    assert set(labels) == {"alertname", "alert_id", "tier", "indicator", "owner", "region", "customer_class", "customer"}
    assert (labels["tier"], labels["indicator"], labels["owner"], labels["region"], labels["customer_class"]) == \
        ("red", "payment_overdue", "general_manager", "east", "A")
    assert "C-RED-1" not in str(labels) and "INV-1" not in str(labels)
    assert alert["annotations"]["first_step"].startswith("step 1 (credit_controller")
    assert alert["annotations"]["respond_by"] == (NOW + timedelta(hours=8)).isoformat()
    assert "summary" in alert["annotations"]
    assert alert["generatorURL"] == "http://riskwatch.example/api/v1/alerts/al-red-1"
    assert sink.metrics_for_test.alertmanager_pushes._value.get() >= 1
    # Red goes nowhere near the tier routes of lower tiers.
    assert not [p for p in hook.received("sales-leadership") if "al-red-1" in alert_ids(p)]


def test_alerts_of_one_customer_and_indicator_are_one_notification(am, hook, sink):
    for alert_id in ("al-grp-1", "al-grp-2"):
        sink.send(live(alert_id, tier="orange", customer_id="C-GRP"))
    sink.send(live("al-grp-3", tier="orange", customer_id="C-GRP", indicator="credit_limit_breach"))
    sink.flush()
    (payload, *_) = hook.wait_for(lambda r, p: r == "sales-leadership" and "al-grp-1" in alert_ids(p))
    assert alert_ids(payload) == {"al-grp-1", "al-grp-2"}
    assert set(payload["groupLabels"]) == {"customer", "indicator"}
    (other, *_) = hook.wait_for(lambda r, p: r == "sales-leadership" and "al-grp-3" in alert_ids(p))
    assert alert_ids(other) == {"al-grp-3"}


def test_red_alert_inhibits_lower_tiers_of_the_same_customer(am, hook, sink):
    sink.send(live("al-inh-red", tier="red", owner="general_manager", customer_id="C-INH", indicator="delivery_delay"))
    # The red alert is in Alertmanager before the lower tiers arrive: its
    # inhibitor learns of alerts asynchronously, and on a loaded machine a
    # blue alert sent in the same instant was once digested before it.
    assert sink.flush()
    am.wait_for_alerts(lambda alerts: any(a["labels"]["alert_id"] == "al-inh-red" and a["status"]["state"] == "active"
                                          for a in alerts))
    sink.send(live("al-inh-blue", tier="blue", owner="frontline_team", customer_id="C-INH"))
    sink.send(live("al-inh-other", tier="blue", owner="frontline_team", customer_id="C-OTHER"))

    def states(alerts):
        return {a["labels"]["alert_id"]: a["status"] for a in alerts if a["labels"]["alert_id"].startswith("al-inh")}

    alerts = am.wait_for_alerts(lambda alerts: states(alerts).get("al-inh-blue", {}).get("state") == "suppressed"
                                and states(alerts).get("al-inh-other", {}).get("state") == "active")
    blue = states(alerts)["al-inh-blue"]
    assert blue["inhibitedBy"], blue
    # The other customer's blue alert is delivered in the daily digest; the inhibited one never.
    (digest, *_) = hook.wait_for(lambda r, p: r == "frontline-daily" and "al-inh-other" in alert_ids(p))
    time.sleep(2)
    assert not [p for p in hook.received("frontline-daily") if "al-inh-blue" in alert_ids(p)]


def test_resolving_ends_the_alert_and_receivers_hear_it(am, hook, sink):
    record = live("al-res-1", tier="red", owner="general_manager", customer_id="C-RES")
    sink.send(record)
    hook.wait_for(lambda r, p: r == "crisis-team" and "al-res-1" in alert_ids(p) and p["status"] == "firing")
    sink.send(next_change(record, status="resolved", change="resolved"))
    (payload, *_) = hook.wait_for(lambda r, p: r == "crisis-team" and "al-res-1" in alert_ids(p) and p["status"] == "resolved")
    assert [a["status"] for a in payload["alerts"] if a["labels"]["alert_id"] == "al-res-1"] == ["resolved"]
    assert "al-res-1" not in sink.firing
    assert not am.alerts(alert_id="al-res-1") or all(
        a["status"]["state"] != "active" for a in am.alerts(alert_id="al-res-1"))


def test_open_alerts_are_resent_before_ends_at(am):
    sink = AlertmanagerSink(am.url, resend_every=timedelta(seconds=1))
    sink.send(live("al-resend", tier="yellow", owner="department_head", customer_id="C-RESEND"))
    assert sink.flush()
    (first,) = am.alerts(alert_id="al-resend")
    time.sleep(1.1)
    assert sink.tick() == 1
    assert sink.flush()
    (second,) = am.alerts(alert_id="al-resend")
    assert second["endsAt"] > first["endsAt"]
    assert second["startsAt"] == first["startsAt"]
    assert sink.tick() == 0  # nothing due yet
    sink.close()


def test_escalation_reroutes_and_snooze_ends(am, hook, response_rules):
    """The desk drives the sink: nobody answers by respond_by, the alert goes to
    the general manager (owner label changes: old one ended, new one routed to the
    crisis team); a snooze ends it in Alertmanager until the snooze is over."""
    sink = AlertmanagerSink(am.url)
    desk = AlertDesk(response_rules, notify=sink)
    record = live("al-esc-1", tier="orange", owner="sales_leadership_group", customer_id="C-ESC")
    desk.ingest(record)
    assert sink.flush()
    assert am.alerts(alert_id="al-esc-1")[0]["labels"]["owner"] == "sales_leadership_group"
    desk.tick(NOW + timedelta(hours=8, minutes=1))
    assert sink.firing["al-esc-1"]["owner"] == "general_manager"
    am.wait_for_alerts(lambda alerts: {a["labels"]["owner"] for a in alerts
                                                if a["labels"]["alert_id"] == "al-esc-1" and a["status"]["state"] == "active"}
                                == {"general_manager"})
    hook.wait_for(lambda r, p: r == "crisis-team" and "al-esc-1" in alert_ids(p))
    desk.act("snooze", now=NOW + timedelta(hours=9), actor="ann", role="officer", alert_id="al-esc-1",
             reason="customer closed for the holiday", data={"until": (NOW + timedelta(hours=30)).isoformat()})
    assert "al-esc-1" not in sink.firing
    am.wait_for_alerts(lambda alerts: not [a for a in alerts if a["labels"]["alert_id"] == "al-esc-1"
                                           and a["status"]["state"] == "active"])
    desk.tick(NOW + timedelta(hours=31))
    assert "al-esc-1" in sink.firing
    sink.close()


def test_labels_never_carry_amounts_or_raw_ids():
    record = change_record("al-x", customer_id="C-SECRET")
    record["observed"] = 123456.78
    labels = alert_labels(record)
    assert "C-SECRET" not in str(labels) and "123456" not in str(labels) and "INV-1" not in str(labels)
    # Same customer, same key: grouping and inhibition work across alerts.
    assert alert_labels(change_record("al-y", customer_id="C-SECRET"))["customer"] == labels["customer"]


FAST = DeliveryPolicy(timeout_seconds=1, backoff_initial_seconds=0.1, backoff_max_seconds=0.5)


def wait_until(predicate, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def test_push_failure_is_counted_and_retried_without_holding_up_the_caller():
    metrics = RiskwatchMetrics.create()
    sink = AlertmanagerSink(f"http://127.0.0.1:{free_port()}", metrics=metrics, policy=FAST)
    started = time.monotonic()
    for n in range(200):
        sink.send(live(f"al-fail-{n}", tier="red", owner="general_manager"))
    assert time.monotonic() - started < 5  # queued, not posted inline
    wait_until(lambda: metrics.alertmanager_circuit_open._value.get() == 1)
    assert metrics.alertmanager_push_failures._value.get() >= 3
    assert metrics.alertmanager_notifications_queued._value.get() == 200
    assert sink.close() == 200


def test_alertmanager_that_starts_late_or_restarts_gets_every_open_alert(hook, response_rules, tmp_path):
    """riskwatch starts before Alertmanager, and Alertmanager restarts (losing
    its alerts) while riskwatch runs: once it answers, every open alert is
    there and the resolved one is not."""
    port = free_port()
    metrics = RiskwatchMetrics.create()
    sink = AlertmanagerSink(f"http://127.0.0.1:{port}", metrics=metrics, policy=FAST)
    desk = AlertDesk(response_rules, notify=sink)
    records = {n: live(f"al-late-{n}", tier="yellow", owner="department_head", customer_id=f"C-LATE-{n}")
               for n in range(4)}
    for record in records.values():
        desk.ingest(record)
    desk.ingest(next_change(records[0], status="resolved", change="resolved"))
    wait_until(lambda: metrics.alertmanager_circuit_open._value.get() == 1)

    def active(alerts) -> set[str]:
        return {a["labels"]["alert_id"] for a in alerts
                if a["labels"]["alert_id"].startswith("al-late") and a["status"]["state"] == "active"}

    expected = {"al-late-1", "al-late-2", "al-late-3"}
    config = config_for_test(hook.url)
    with running_alertmanager(config, tmp_path / "first", port=port) as am:
        am.wait_for_alerts(lambda alerts: active(alerts) == expected, timeout=20)
    # Down again: a change meanwhile (a new alert) finds it away; then it comes back empty.
    desk.ingest(live("al-late-4", tier="orange", owner="sales_leadership_group", customer_id="C-LATE-4"))
    wait_until(lambda: metrics.alertmanager_circuit_open._value.get() == 1)
    with running_alertmanager(config, tmp_path / "second", port=port) as am:
        am.wait_for_alerts(lambda alerts: active(alerts) == expected | {"al-late-4"}, timeout=20)
    assert metrics.alertmanager_notifications_dropped.labels(reason="overflow")._value.get() == 0
    sink.close()


def test_engine_output_through_the_desk_to_alertmanager(am, hook, tmp_path):
    """Real engine output (EmbeddedService over the event file): the desk works
    it, Alertmanager shows the desk's view; the paid invoice ends in Alertmanager."""
    from riskwatch.alerts import open_desk
    from riskwatch.rules import load_rules
    from riskwatch.service import EmbeddedService
    from riskwatch.settings import Settings

    from .conftest import REPO

    settings = Settings(rules_dir=REPO / "rules", store_dir=tmp_path / "store")
    sink = AlertmanagerSink(am.url)
    desk = open_desk(settings, notify=sink)
    service = EmbeddedService(load_rules(REPO / "rules"), sinks=[desk])
    lines = (REPO / "tests" / "workflow" / "data" / "overdue_and_price_war.jsonl").read_text().splitlines()
    for number, line in enumerate(lines[:4], start=1):
        service.feed(line, "events", number)
    service.advance_to(datetime(2026, 4, 5, tzinfo=timezone.utc))
    assert sink.flush()
    by_indicator = {i["alert"]["indicator"]: i["alert_id"] for i in desk.ledger.alerts.values()}
    overdue, price = by_indicator["payment_overdue"], by_indicator["competitor_price_cut"]
    firing = {a["labels"]["alert_id"]: a for a in am.alerts() if a["status"]["state"] == "active"}
    assert {overdue, price} <= set(firing)
    assert firing[overdue]["labels"]["customer_class"] == "A"
    assert "2500000" not in str(firing[overdue]["labels"])  # the amount is not a label
    # Nobody acknowledged the price war by its respond_by (event time): it goes to the GM.
    desk.tick(service.engine.watermark)
    assert sink.firing[price]["owner"] == "general_manager"
    # The invoice is paid: the engine resolves it, Alertmanager hears it.
    service.feed(lines[4], "events", 5)
    assert desk.ledger.alerts[overdue]["status"] == "resolved"
    am.wait_for_alerts(lambda alerts: not [a for a in alerts if a["labels"]["alert_id"] == overdue
                                           and a["status"]["state"] == "active"])
    assert desk.reviews(service.engine.watermark)[0]["alert_id"] == overdue
    sink.close()
