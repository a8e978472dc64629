"""One clock for the alert desk (issue 12): the API beside `riskwatch run`
measures deadlines on the service clock run records in their shared store
(DOMAIN §4, the event-time watermark), never on its own wall clock. A
replayed history years old is not escalated for being old; an alert is
escalated once the service clock passes its respond_by."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient

from riskwatch import testing as t
from riskwatch.alerts import WorkflowStore
from riskwatch.api.server import app_from_settings
from riskwatch.settings import Settings

from .conftest import REPO

pytestmark = pytest.mark.api

TOKENS = "tok-readonly-0123456789:readonly,tok-operator-0123456789:operator,tok-officer-0123456789:officer"
READ = {"Authorization": "Bearer tok-readonly-0123456789"}
DUE = "2019-03-01T00:00:00Z"
# The last event of the history: the watermark ends 10 minutes before it.
LAST_EVENT = "2019-03-31T00:30:00Z"
WATERMARK = datetime(2019, 3, 31, 0, 20, tzinfo=timezone.utc)


def api_in_store_mode(store_dir) -> TestClient:
    """What `riskwatch api --store-dir` serves (its lifespan ticker included)."""
    settings = Settings(rules_dir=REPO / "rules", api_tokens=TOKENS, store_dir=store_dir, workflow_log="store")
    return TestClient(app_from_settings(settings))


@pytest.fixture
def replayed_store(tmp_path, events_file, riskwatch):
    """A 2019 history fed through the real `riskwatch run` into a store: an
    invoice 30 days overdue, raised 20 minutes before the history ends."""
    history = events_file([
        t.invoice_issued("INV-H1", "C-H1", "120000.00", due_at=DUE, at="2019-02-01T09:00:00Z"),
        t.price_observed("Apex", "SKU-H", 100, at=LAST_EVENT),
    ])
    store_dir = tmp_path / "store"
    done = riskwatch("run", "--input", history, "--store-dir", store_dir, "--exit-when-done", "--quiet",
                     "--rate", "0", "--metrics-port", "0", timeout=120)
    assert done.returncode == 0, done.stderr
    return store_dir


def the_overdue_alert(client: TestClient) -> dict:
    [alert] = client.get("/v1/alerts", headers=READ).json()
    assert alert["indicator"] == "payment_overdue"
    return client.get(f"/v1/alerts/{alert['alert_id']}", headers=READ).json()


def escalations(client: TestClient) -> list[dict]:
    return [a for a in client.get("/v1/actions", headers=READ).json() if a["kind"] == "escalate"]


def test_a_replayed_history_is_not_escalated_because_the_wall_clock_is_years_ahead(replayed_store):
    assert WorkflowStore(replayed_store).service_clock() == WATERMARK
    with api_in_store_mode(replayed_store) as client:
        alert = the_overdue_alert(client)
        respond_by = datetime.fromisoformat(alert["alert"]["respond_by"].replace("Z", "+00:00"))
        assert WATERMARK < respond_by < datetime.now(timezone.utc)
        assert alert["status"] == "open" and alert["level"] == alert["base_level"]
        assert alert["escalations"] == [] and escalations(client) == []
        assert alert["response_overdue"] is False
        health = client.get("/v1/health", headers=READ).json()
        assert health["service_clock"] == WATERMARK.isoformat()


def test_the_api_escalates_once_the_service_clock_passes_respond_by(replayed_store):
    with api_in_store_mode(replayed_store) as client:
        alert = the_overdue_alert(client)
        respond_by = datetime.fromisoformat(alert["alert"]["respond_by"].replace("Z", "+00:00"))
        owner = alert["owner"]
        # `riskwatch run` moves the store's clock as its events arrive; only the clock moves here,
        # so what is escalated is escalated by the API, on that clock.
        WorkflowStore(replayed_store).advance_clock(respond_by + timedelta(seconds=1))
        alert = the_overdue_alert(client)
        assert alert["level"] == alert["base_level"] + 1 and alert["owner"] != owner
        assert alert["escalations"][0]["reason"] == f"not acknowledged by {alert['alert']['respond_by']}"
        [escalation] = escalations(client)
        assert escalation["actor"] == "riskwatch"
        assert escalation["at"] == (respond_by + timedelta(seconds=1)).isoformat()


def test_the_store_clock_never_moves_back(tmp_path):
    store = WorkflowStore(tmp_path)
    assert store.service_clock() is None
    assert store.advance_clock(WATERMARK) == WATERMARK
    assert store.advance_clock(WATERMARK - timedelta(days=400)) == WATERMARK
    assert WorkflowStore(tmp_path).service_clock() == WATERMARK
    with pytest.raises(ValueError, match="naive"):
        store.advance_clock(datetime(2019, 1, 1))


def test_without_a_clock_in_the_store_the_api_measures_nothing_on_its_wall_clock(tmp_path):
    # Engine records of an old history fed over HTTP, with no `run` keeping a clock.
    story = t.Scenario().feed(t.invoice_issued("INV-H2", "C-H2", "120000.00", due_at=DUE, at="2019-02-01T09:00:00Z"))
    [record] = story.advance_to("2019-04-30T00:00:00Z").alerts("payment_overdue")
    with api_in_store_mode(tmp_path / "store") as client:
        fed = client.post("/v1/alert-changes", json=record, headers={"Authorization": "Bearer tok-operator-0123456789"})
        assert fed.status_code == 202, fed.text
        alert = the_overdue_alert(client)
        assert alert["escalations"] == [] and alert["response_overdue"] is False
        assert escalations(client) == []
        assert client.get("/v1/health", headers=READ).json()["service_clock"] is None


def test_a_snooze_is_measured_on_the_service_clock_too(replayed_store):
    officer = {"Authorization": "Bearer tok-officer-0123456789", "X-Riskwatch-Actor": "Ann"}
    with api_in_store_mode(replayed_store) as client:
        alert_id = the_overdue_alert(client)["alert_id"]
        before_clock = client.post(f"/v1/alerts/{alert_id}/snooze", headers=officer,
                                   json={"reason": "holiday", "until": (WATERMARK - timedelta(hours=1)).isoformat()})
        assert before_clock.status_code == 422 and before_clock.json()["detail"][0]["loc"][-1] == "until"
        # Long past on the wall clock, ahead on the service clock: a snooze the desk will end.
        until = WATERMARK + timedelta(hours=1)
        snoozed = client.post(f"/v1/alerts/{alert_id}/snooze", headers=officer,
                              json={"reason": "holiday", "until": until.isoformat()})
        assert snoozed.status_code == 200, snoozed.text
        assert snoozed.json()["status"] == "snoozed"
        assert the_overdue_alert(client)["status"] == "snoozed"
        WorkflowStore(replayed_store).advance_clock(until)
        assert the_overdue_alert(client)["status"] == "open"
        kinds = [a["kind"] for a in client.get("/v1/actions", headers=READ, params={"subject": alert_id}).json()]
        assert kinds == ["snooze", "snooze_ended"]
