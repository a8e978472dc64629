"""Issue 13, "Broken stores and files": `RISKWATCH_LOG_LEVEL=verbose`
crashed with a KeyError, and riskwatch's own log lines carried no time or
level. Now an unknown level is refused at start-up naming the setting and
the accepted values, for every command; log lines are JSON lines (time,
level, logger, message) when stderr is not a terminal, and a readable line
with time and level when it is."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import time

import httpx
import pytest
from support.alertmanager import free_port
from support.api import RISKWATCH, clean_env

from riskwatch.logconfig import configure_logging

ACCEPTED = "accepted: DEBUG, INFO, WARNING, ERROR, CRITICAL, any case"


@pytest.mark.parametrize("command", [["api"], ["run", "--days", "3", "--exit-when-done"], ["replay", "-"],
                                     ["rules", "check"]])
def test_an_unknown_log_level_is_refused_at_start_up_naming_the_setting(command):
    done = subprocess.run([RISKWATCH, *command], env=clean_env(RISKWATCH_LOG_LEVEL="verbose"), input="",
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and "KeyError" not in done.stderr
    assert f"Error: RISKWATCH_LOG_LEVEL: 'verbose' is not a log level ({ACCEPTED})" in done.stderr


def test_the_api_logs_json_lines_with_time_and_level_when_stderr_is_not_a_terminal(tmp_path):
    port = free_port()
    process = subprocess.Popen(
        [RISKWATCH, "api", "--port", str(port), "--store-dir", str(tmp_path / "store")],
        env=clean_env(RISKWATCH_API_TOKENS="tok-readonly-0123456789:readonly", RISKWATCH_LOG_LEVEL="info"),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(300):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=20)
    lines = stderr.splitlines()
    assert lines[0].startswith("riskwatch api on http://127.0.0.1:")  # the command's own report, not a log line
    records = [json.loads(line) for line in lines[1:]]
    assert records, stderr
    for record in records:
        assert set(record) >= {"time", "level", "logger", "message"}
        assert record["time"].endswith("Z") and record["level"] in {"INFO", "WARNING", "ERROR"}
    assert any(r["logger"] == "uvicorn.access" and '"GET /readyz HTTP/1.1" 200' in r["message"] for r in records)


@pytest.fixture
def own_root_logger(monkeypatch):
    """configure_logging replaces the root handlers: give it a copy, restored after."""
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    monkeypatch.setattr(root, "level", root.level)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_a_log_line_reads_time_level_logger_message(own_root_logger):
    stream = _Terminal()
    configure_logging("warning", stream)
    logging.getLogger("riskwatch.alerts.desk").info("not shown below the level")
    logging.getLogger("riskwatch.alerts.desk").warning("escalation tick not recorded")
    (line,) = stream.getvalue().splitlines()
    stamp, level, rest = line.split(maxsplit=2)
    assert stamp.endswith("Z") and "T" in stamp
    assert level == "WARNING" and rest == "riskwatch.alerts.desk: escalation tick not recorded"


def test_a_message_with_line_breaks_stays_one_json_line(own_root_logger):
    stream = io.StringIO()
    configure_logging("INFO", stream)
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("riskwatch").exception("forged\n{\"level\": \"INFO\"}")
    (line,) = stream.getvalue().splitlines()
    record = json.loads(line)
    assert record["message"] == "forged\n{\"level\": \"INFO\"}" and record["level"] == "ERROR"
    assert "ValueError: boom" in record["exception"]
