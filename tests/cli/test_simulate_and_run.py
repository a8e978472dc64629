"""`riskwatch simulate` (seeded, reproducible) and `riskwatch run` (the
embedded main job with its /metrics page) through the console script."""

from __future__ import annotations

import re
import time
import urllib.request

import pytest

from riskwatch.models import Rejection, parse_event


def simulate(riskwatch, *args):
    done = riskwatch("simulate", "--customers", "40", "--days", "30", *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_same_seed_gives_the_same_bytes(riskwatch):
    assert simulate(riskwatch, "--seed", "5") == simulate(riskwatch, "--seed", "5")


def test_a_different_seed_gives_a_different_business(riskwatch):
    assert simulate(riskwatch, "--seed", "5") != simulate(riskwatch, "--seed", "6")


def test_every_simulated_line_is_a_valid_event_in_event_time_order(riskwatch):
    lines = simulate(riskwatch, "--seed", "5").splitlines()
    assert len(lines) > 500
    events = [parse_event(line) for line in lines]
    assert [e for e in events if isinstance(e, Rejection)] == []
    assert len({e.event_id for e in events}) == len(events)
    times = [e.occurred_at for e in events]
    assert times == sorted(times)
    assert {"customer.profile", "order.placed", "delivery.scheduled", "delivery.delivered", "invoice.issued",
            "payment.received", "competitor.price_observed"} <= {e.type for e in events}


def test_events_option_stops_after_that_many(riskwatch):
    assert len(simulate(riskwatch, "--events", "25").splitlines()) == 25


# --- run -------------------------------------------------------------------------------

METRICS_AT = re.compile(r"metrics at (http://[^ ]+/metrics)")


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.status == 200
        return response.read().decode()


def processed_total(page: str) -> float:
    values = [float(line.rsplit(" ", 1)[1]) for line in page.splitlines()
              if line.startswith("riskwatch_events_processed_total")]
    assert values, "riskwatch_events_processed_total is not exported"
    return sum(values)


@pytest.fixture
def business_file(riskwatch, tmp_path):
    path = tmp_path / "business.jsonl"
    done = riskwatch("simulate", "--seed", "9", "--customers", "40", "--days", "40", "--output", path)
    assert done.returncode == 0, done.stderr
    return path


@pytest.mark.slow
def test_run_on_a_file_prints_alert_lines_and_a_summary_and_serves_metrics_meanwhile(start_riskwatch, business_file):
    lines = business_file.read_text().count("\n")
    rate = max(200, lines // 4)    # about four seconds of input: time to scrape twice
    process = start_riskwatch("run", "--input", business_file, "--metrics-port", "0", "--exit-when-done",
                              "--no-color", "--rate", str(rate))
    first_line = process.stderr.readline()
    match = METRICS_AT.search(first_line)
    assert match, first_line
    url = match.group(1)
    # The console beside the run starts before the first event is read (on a
    # loaded machine that takes seconds): the count moves once reading began.
    deadline = time.monotonic() + 60
    first = processed_total(scrape(url))
    while first == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
        first = processed_total(scrape(url))
    time.sleep(1.0)
    second = processed_total(scrape(url))
    assert second > first > 0, (first, second)
    assert second < lines   # scraped while the input was still being read
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    assert "events: " in err and f"{lines} read" in err
    assert "alerts raised:" in err and "alerts open:" in err
    alert_lines = [line for line in out.splitlines() if line.strip()]
    assert alert_lines, "no alert lines"
    assert all(line.split()[0] in ("RED", "ORANGE", "YELLOW", "BLUE") for line in alert_lines)
    assert "\033[" not in out    # --no-color
    assert any("owner " in line and "respond by" in line for line in alert_lines)


def test_run_refuses_a_missing_input_file(riskwatch, tmp_path):
    done = riskwatch("run", "--input", tmp_path / "missing.jsonl", "--metrics-port", "0", "--exit-when-done")
    assert done.returncode != 0
    assert "missing.jsonl: cannot read" in done.stderr


def test_a_second_simulation_starts_in_a_fresh_store_and_keeps_the_first(riskwatch, tmp_path):
    store = tmp_path / "store"
    args = ("run", "--days", "20", "--rate", "0", "--exit-when-done", "--quiet", "--no-console",
            "--metrics-port", "0", "--store-dir", str(store))
    first = riskwatch(*args, timeout=120)
    assert first.returncode == 0, first.stderr
    assert "earlier run" not in first.stderr
    second = riskwatch(*args, timeout=120)
    assert second.returncode == 0, second.stderr
    assert f"{store} holds an earlier run (service clock 2024-01-20)" in second.stderr
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("store.")]
    assert len(kept) == 1 and (kept[0] / "workflow.sqlite3").exists()
    assert store.is_dir() and any(store.iterdir())
