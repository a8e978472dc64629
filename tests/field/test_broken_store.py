"""Issue 13, "Broken stores and files": the workflow store (workflow.sqlite3)
damaged, truncated, unopenable, or on a full disk.

Before: `riskwatch api` exited with a raw DatabaseError traceback (a crash
loop with no message) and a full disk gave a plain 500. Now: one line naming
the file and what to do, exit status 3 (docs/operations.md, "Exit
statuses"); a full disk is 503 with Retry-After, nothing half-written, and
/readyz is not ready while the store cannot take a write.

The full disk is SQLite's `max_page_count` (the store may not grow): the
same SQLITE_FULL a full volume gives, without mounting one.
"""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from riskwatch.alerts import AlertDesk, StoreFull, WorkflowStore
from riskwatch.alerts.store import STORE_FILE
from riskwatch.api import create_app
from riskwatch.rules.response import load_response_rules

REPO = Path(__file__).resolve().parents[2]
CONSOLE_SCRIPT = Path(sys.executable).parent / "riskwatch"
TOKENS = {"tok-officer-0123456789": "officer", "tok-readonly-0123456789": "readonly"}
OFFICER = {"Authorization": "Bearer tok-officer-0123456789"}
READER = {"Authorization": "Bearer tok-readonly-0123456789"}
EXIT_STORE = 3


def _riskwatch(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RISKWATCH_")}
    env.update(RISKWATCH_RULES=str(REPO / "rules"), RISKWATCH_API_TOKENS="tok-officer-0123456789:officer")
    return subprocess.run([str(CONSOLE_SCRIPT), *args], capture_output=True, text=True, timeout=timeout, env=env)


def _a_store_with_history(directory: Path) -> Path:
    store = WorkflowStore(directory)
    for n in range(2000):
        store.append("action", {"action_id": f"act-{n}", "subject_key": "al-1", "kind": "comment",
                                "reason": "called the customer " * 10})
    store.close()
    return directory / STORE_FILE


def _damaged_garbage(directory: Path) -> Path:
    directory.mkdir()
    (directory / STORE_FILE).write_bytes(b"this is not a database\n" * 400)
    return directory


def _truncated(directory: Path) -> Path:
    path = _a_store_with_history(directory)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return directory


def _a_directory_in_its_place(directory: Path) -> Path:
    (directory / STORE_FILE).mkdir(parents=True)
    return directory


def _under_a_file(directory: Path) -> Path:
    directory.write_text("a file where the store directory should be\n")
    return directory / "store"


BROKEN = [
    pytest.param(_damaged_garbage, "damaged or not a riskwatch store (file is not a database)",
                 "restore the last backup", id="not-a-database"),
    pytest.param(_truncated, "damaged or not a riskwatch store (database disk image is malformed)",
                 "restore the last backup", id="truncated"),
    pytest.param(_a_directory_in_its_place, "cannot be opened or created", "writable directory",
                 id="a-directory-in-its-place"),
    pytest.param(_under_a_file, "cannot create its directory", "--store-dir / RISKWATCH_STORE_DIR",
                 id="directory-cannot-be-created"),
]


@pytest.mark.parametrize("breaks, reason, remedy", BROKEN)
def test_api_refuses_a_broken_store_in_one_line_with_its_own_exit_status(tmp_path, breaks, reason, remedy):
    store_dir = breaks(tmp_path / "store")
    done = _riskwatch("api", "--store-dir", str(store_dir), "--port", "0")
    assert done.returncode == EXIT_STORE, done.stderr
    assert "Traceback" not in done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"riskwatch api: workflow store {store_dir / STORE_FILE}: {reason}")
    assert remedy in line


@pytest.mark.parametrize("breaks, reason, remedy", BROKEN[:2])
def test_run_refuses_a_broken_store_the_same_way(tmp_path, breaks, reason, remedy):
    store_dir = breaks(tmp_path / "store")
    done = _riskwatch("run", "--store-dir", str(store_dir), "--metrics-port", "0", "--days", "5",
                      "--exit-when-done", "--quiet")
    assert done.returncode == EXIT_STORE, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines()[-1].startswith(f"riskwatch run: workflow store {store_dir / STORE_FILE}: {reason}")


# ---------------------------------------------------------------- a full disk

ALERT = "al-0000000000000001"


def _change() -> dict:
    sys.path.insert(0, str(REPO))
    from tests.workflow.records import change_record
    return change_record()


def _fill(store: WorkflowStore) -> None:
    """No room left: the file may not grow past its pages (SQLITE_FULL on the next page)."""
    store._db.execute("VACUUM")  # no free pages left to reuse
    pages = store._db.execute("PRAGMA page_count").fetchone()[0]
    store._db.execute(f"PRAGMA max_page_count = {pages}")


def _make_room(store: WorkflowStore) -> None:
    store._db.execute("PRAGMA max_page_count = 1073741823")


@pytest.fixture
def full_disk_api(tmp_path):
    rules, problems = load_response_rules(REPO / "rules")
    assert problems == []
    sys.path.insert(0, str(REPO))
    from tests.workflow.records import T0, change_record

    store = WorkflowStore(tmp_path)
    desk = AlertDesk(rules, store)
    desk.ingest(change_record())
    app = create_app(desk, TOKENS, clock=lambda: T0 + timedelta(hours=1), tick_seconds=0)
    return TestClient(app), store, desk, rules


def test_a_full_disk_is_503_with_retry_after_and_nothing_half_written(full_disk_api, tmp_path):
    client, store, desk, rules = full_disk_api
    assert client.get("/readyz").status_code == 200
    _fill(store)
    answers = []
    for n in range(10):  # each comment ~1.5 KB: the last free space in the pages goes within a few
        response = client.post(f"/v1/alerts/{ALERT}/comments", headers=OFFICER, json={"reason": f"{n} " + "x" * 1500})
        answers.append(response.status_code)
        if response.status_code != 200:
            break
    assert answers[-1] == 503, answers
    assert response.headers["Retry-After"] == "30"
    assert response.json()["detail"].startswith("not recorded: workflow store: no space left")
    recorded = [a["reason"].split()[0] for a in client.get(f"/v1/alerts/{ALERT}", headers=READER).json()["audit"]]
    assert recorded == [str(n) for n in range(len(answers) - 1)]  # the refused one is not shown...
    restarted = AlertDesk(rules, WorkflowStore(tmp_path))          # ...nor stored
    assert [a["reason"].split()[0] for a in restarted.audit(subject=ALERT)] == recorded
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.text.startswith("not ready: workflow store: no space left")

    _make_room(store)
    again = client.post(f"/v1/alerts/{ALERT}/comments", headers=OFFICER, json={"reason": "retried"})
    assert again.status_code == 200
    assert client.get("/readyz").status_code == 200


def test_readyz_says_not_ready_while_the_store_cannot_grow_even_before_a_write_failed(full_disk_api):
    client, store, _desk, _rules = full_disk_api
    _fill(store)
    ready = client.get("/readyz")
    assert ready.status_code == 503
    _make_room(store)
    assert client.get("/readyz").status_code == 200


def test_an_alert_change_the_full_store_refused_is_not_in_the_desk(full_disk_api):
    """The desk folds an appended record before the commit; a failed commit
    must take it back out, or the API shows what was never stored."""
    _client, store, desk, _rules = full_disk_api
    _fill(store)
    sequence = 1
    with pytest.raises(StoreFull):
        for n in range(200):
            sequence += 1
            desk.ingest({**_change(), "alert_id": f"al-{n:016d}", "sequence": sequence,
                         "summary": "y" * 1500})
    stored = {record["alert_id"] for _seq, kind, record in store.read_after(0) if kind == "alert_change"}
    assert set(desk.ledger.alerts) == stored


class _CommitFails:
    """The store's connection, with COMMIT failing as on a full volume: SQLite
    writes the WAL at commit, so that is where a real full disk shows."""

    def __init__(self, connection):
        self._connection = connection
        self.armed = True
        self._changes = 0

    def execute(self, sql, *args):
        if sql == "BEGIN IMMEDIATE":
            self._changes = self._connection.total_changes
        if self.armed and sql == "COMMIT" and self._connection.total_changes > self._changes:
            error = sqlite3.OperationalError("database or disk is full")
            error.sqlite_errorcode = 13  # SQLITE_FULL
            raise error
        return self._connection.execute(sql, *args)

    def __getattr__(self, name):
        return getattr(self._connection, name)


def test_an_acknowledgement_whose_commit_fails_is_not_shown_as_done(full_disk_api):
    client, store, _desk, _rules = full_disk_api
    store._db = _CommitFails(store._db)
    refused = client.post(f"/v1/alerts/{ALERT}/ack", headers=OFFICER, json={"reason": "mine"})
    assert refused.status_code == 503 and "Retry-After" in refused.headers
    shown = client.get(f"/v1/alerts/{ALERT}", headers=READER).json()
    assert shown["status"] == "open" and shown["audit"] == []
    store._db.armed = False
    assert client.post(f"/v1/alerts/{ALERT}/ack", headers=OFFICER, json={"reason": "mine"}).status_code == 200
    assert client.get(f"/v1/alerts/{ALERT}", headers=READER).json()["status"] == "acknowledged"


def test_run_stops_at_the_line_it_could_not_record_when_the_disk_fills(tmp_path, monkeypatch):
    from click.testing import CliRunner

    import riskwatch.alerts.desk as desk_module
    from riskwatch.cli import main
    from riskwatch.testing import invoice_issued, to_jsonl

    class FillingStore(WorkflowStore):
        def __init__(self, store_dir):
            super().__init__(store_dir)
            _fill(self)

    monkeypatch.setattr(desk_module, "WorkflowStore", FillingStore)
    # In-process: keep pytest's signal handlers and logging as they were.
    monkeypatch.setattr(signal, "signal", lambda *_args: None)
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))
    monkeypatch.setattr(root, "level", root.level)
    for name in [n for n in os.environ if n.startswith("RISKWATCH_")]:
        monkeypatch.delenv(name)
    events = tmp_path / "events.jsonl"
    # Each invoice falls overdue when the next one's time passes: a stream of alerts to record.
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    events.write_text(to_jsonl([
        invoice_issued(f"INV-{n}", f"C{n}", 250_000, start + timedelta(days=n + 1), at=start + timedelta(days=n))
        for n in range(300)]), encoding="utf-8")
    result = CliRunner().invoke(main, ["run", "--input", str(events), "--store-dir", str(tmp_path / "store"),
                                       "--metrics-port", "0", "--exit-when-done", "--quiet", "--rate", "0",
                                       "--rules", str(REPO / "rules")])
    assert result.exit_code == EXIT_STORE, result.output
    last = result.output.splitlines()[-1]
    assert last.startswith(f"riskwatch run: stopped at {events} line ")
    assert ": no space left" in last and "free space on its volume" in last
    assert "events: " in result.output  # the summary of what was evaluated before the stop
