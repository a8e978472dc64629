"""The console's risk-register exports with 10,000 alerts on the desk.

A store is filled with 10,000 alerts (copies of a simulated business's
alert records with their own ids, tiers, regions and customers); the API
and console are built over it in process (`app_from_settings`, the app
`riskwatch api` serves) and a signed-in session asks, in Chinese, for the
register page, the CSV and the XLSX export of everything, beside the API's
`GET /v1/register` for the same (unfiltered) register. Median of 5 each,
server time including the whole body; peak traced memory of one XLSX export.

    .venv/bin/python benchmarks/console_register.py [--alerts 10000]
"""

from __future__ import annotations

import argparse
import copy
import random
import statistics
import tempfile
import time
import tracemalloc
from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient

from riskwatch.alerts.desk import open_desk
from riskwatch.api.server import app_from_settings
from riskwatch.service import EmbeddedService
from riskwatch.settings import load_settings
from riskwatch.simulate import SimulationSettings, simulate
from riskwatch.testing import default_rules

from common import write_result

TOKEN = "bench-readonly-0123456789"


def fill(store_dir: Path, alerts: int) -> None:
    rules = default_rules()
    changes: list[dict] = []
    service = EmbeddedService(rules, sinks=[changes.append])
    for line in simulate(SimulationSettings(seed=7, customers=400, days=60)):
        service.feed(line)
    templates = [r for r in changes if r["status"] == "open" and r["change"] == "raised"]
    clock = service.engine.watermark
    settings = load_settings({"RISKWATCH_STORE_DIR": str(store_dir)})
    desk = open_desk(settings)
    rng = random.Random(1)
    with desk.store.transaction():
        for n in range(alerts):
            record = copy.deepcopy(templates[n % len(templates)])
            subject = dict(record.get("subject") or {})
            if subject.get("customer_id"):
                subject["customer_id"] = f"CUST-{rng.randint(0, 3999):05d}"
            record.update(alert_id=f"bench-{n}", subject=subject, tier=rng.choice(["red", "orange", "yellow", "blue"]),
                          region=rng.choice(["east", "north", "south", "west"]),
                          raised_at=(clock - timedelta(minutes=rng.randint(0, 50_000))).isoformat(),
                          respond_by=(clock + timedelta(minutes=rng.randint(-5000, 5000))).isoformat())
            desk.store.append("alert_change", record)


def median_ms(client: TestClient, path: str, times: int = 5, **kw) -> tuple[float, int]:
    spent, size = [], 0
    for _ in range(times):
        started = time.perf_counter()
        response = client.get(path, **kw)
        spent.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text[:500]
        size = len(response.content)
    return round(statistics.median(spent), 1), size


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--alerts", type=int, default=10_000)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        store = Path(directory) / "store"
        fill(store, arguments.alerts)
        settings = load_settings({"RISKWATCH_STORE_DIR": str(store), "RISKWATCH_API_TOKENS": f"{TOKEN}:readonly"})
        app = app_from_settings(settings)
        with TestClient(app, base_url="http://bench") as client:
            client.post("/console/login", data={"token": TOKEN}, headers={"Origin": "http://bench"})
            client.cookies.set("rw_lang", "zh-CN")
            results = {"alerts": arguments.alerts}
            for name, path, kw in (
                ("api_register_ms", "/v1/register", {"headers": {"Authorization": f"Bearer {TOKEN}"}}),
                ("page_ms", "/console/register", {}),
                ("csv_ms", "/console/register/export.csv", {}),
                ("xlsx_ms", "/console/register/export.xlsx", {}),
            ):
                results[name], results[name.replace("_ms", "_bytes")] = median_ms(client, path, **kw)
            tracemalloc.start()
            client.get("/console/register/export.xlsx")
            results["xlsx_peak_traced_mb"] = round(tracemalloc.get_traced_memory()[1] / 2**20, 1)
            tracemalloc.reset_peak()
            client.get("/console/register/export.csv")
            results["csv_peak_traced_mb"] = round(tracemalloc.get_traced_memory()[1] / 2**20, 1)
            tracemalloc.stop()
    for key, value in results.items():
        print(f"{key:>24}: {value}")
    write_result("console_register", results)


if __name__ == "__main__":
    main()
