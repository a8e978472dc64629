"""`riskwatch run` serves the console beside it: the address and a token per
role are printed, the console shows what the run raises, and changes arrive
live while the run replays its input."""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time

import pytest

from support.api import clean_env
from support.console import RISKWATCH, Browserless, alert_ids

pytestmark = [pytest.mark.api, pytest.mark.slow]


def test_run_prints_the_consoles_address_and_tokens_and_the_console_follows_the_replay(tmp_path):
    events = tmp_path / "business.jsonl"
    simulated = subprocess.run([RISKWATCH, "simulate", "--days", "90", "-o", str(events)], env=clean_env(),
                               capture_output=True, text=True, timeout=120)
    assert simulated.returncode == 0, simulated.stderr
    process = subprocess.Popen(
        [RISKWATCH, "run", "--input", str(events), "--rate", "1500", "--metrics-port", "0", "--console-port", "0",
         "--store-dir", str(tmp_path / "store"), "--lines", "--no-color"],
        env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        said: list[str] = []
        deadline = time.monotonic() + 60
        while not any(line.strip().startswith("readonly") for line in said) and time.monotonic() < deadline:
            said.append(process.stderr.readline())
        text = "".join(said)
        url = re.search(r"console at (http://\S+)/", text).group(1)
        tokens = dict(re.findall(r"^\s+(officer|director|operator|readonly)\s+(\S+)$", text, re.M))
        assert set(tokens) == {"officer", "director", "operator", "readonly"}
        assert (tmp_path / "store" / "console-tokens").stat().st_mode & 0o077 == 0  # only its owner reads it

        officer = Browserless(url, "en")
        for _ in range(100):  # the console's app is built in its own thread while the run starts
            try:
                if officer.http.get("/console/login").status_code == 200:
                    break
            except Exception:
                pass
            time.sleep(0.1)
        signed_in = officer.http.post("/console/login", data={"token": tokens["officer"]}, headers={"Origin": url})
        assert signed_in.status_code == 303
        changes: list[str] = []

        def listen():
            with officer.http.stream("GET", "/console/events", timeout=30) as stream:
                for line in stream.iter_lines():
                    if line.startswith("event: change"):
                        changes.append(line)
                        if len(changes) >= 2:
                            return
        listener = threading.Thread(target=listen, daemon=True)
        listener.start()
        listener.join(30)
        assert len(changes) >= 2, "the replay's alert changes reach an open console"
        inbox = officer.get("/console/")
        assert inbox.status_code == 200 and alert_ids(inbox.text)
        # The run records its clock every few seconds; deadlines are measured on it from then on.
        for _ in range(40):
            if "Service clock:" in officer.get("/console/").text:
                break
            time.sleep(0.5)
        assert "Service clock:" in officer.get("/console/").text
        assert officer.http.post("/console/login", data={"token": "rw-officer-not-this-one"},
                                 headers={"Origin": url}).status_code == 401

        # A customer with an overdue invoice, as the engine sees it beside the run.
        overdue = [line for line in events.read_text().splitlines() if '"invoice.issued"' in line]
        customers = {json.loads(line)["customer_id"] for line in overdue}
        shown = None
        for customer in sorted(customers):
            page = officer.get(f"/console/customers/{customer}")
            if page.status_code == 200 and 'data-invoice-id="' in page.text:
                shown = page.text
                break
        assert shown is not None, "no customer page shows the engine's open invoices"
        assert "data-engine-view" in shown and "As the engine sees it" in shown
        assert re.search(r"Receivables</dt><dd class=\"receivables\">¥[\d,]+\.\d\d", shown)
        # Each recent order says what it is (an empty status column read as "unknown").
        statuses = re.findall(r'<tr data-order-id="[^"]+">.*?data-label="Status">([^<]*)</td>', shown, re.S)
        assert statuses and all(status.strip() in {"active", "cancelled"} for status in statuses), statuses
    finally:
        process.terminate()
        process.wait(timeout=30)
