"""Server time of the console's pages against the API's, on 10,000 open alerts.

One desk (in memory) holds 10,000 open alerts made from a real simulated
alert record (tiers, regions, classes and respond-by times varied); the app
`riskwatch api` serves (API and console) answers in process through
Starlette's test client, so both sides pay the same client and framework
costs. Measured, median of repeated requests:

- the inbox's first page (`/console/`, 50 rows, urgency order), and its
  live-refresh fragment (`/console/inbox/rows`);
- the heat map (`/console/heatmap`);
- the baseline: `GET /v1/alerts?limit=50`, the API call for the same page.

Target (issue 14): inbox and heat map within 2x the API call.

    python benchmarks/console_render.py [--alerts 10000] [--repeat 15]
"""

from __future__ import annotations

import argparse
import copy
import random
import statistics
import time
from datetime import timedelta

from fastapi.testclient import TestClient

from riskwatch.alerts.desk import open_desk
from riskwatch.api.app import create_app
from riskwatch.service import EmbeddedService
from riskwatch.settings import load_settings
from riskwatch.simulate import SimulationSettings, simulate
from riskwatch.testing import default_rules

from common import write_result

TOKENS = {"bench-reader-0123456789": "readonly"}


def desk_with_open_alerts(count: int):
    rules = default_rules()
    changes: list[dict] = []
    service = EmbeddedService(rules, sinks=[changes.append])
    for line in simulate(SimulationSettings(seed=7, customers=400, days=60)):
        service.feed(line)
    template = next(r for r in changes if r["status"] == "open" and r.get("region"))
    clock = service.engine.watermark
    desk = open_desk(load_settings(), persistent=False)
    rng = random.Random(1)
    for n in range(count):
        record = copy.deepcopy(template)
        record.update(alert_id=f"bench-{n:06d}", change="raised", tier=rng.choice(["red", "orange", "yellow", "blue"]),
                      region=rng.choice(["east", "north", "south", "west"]), customer_class=rng.choice("ABCD"),
                      probability=rng.random(), impact=rng.random() * 0.6,
                      respond_by=(clock + timedelta(minutes=rng.randint(-5000, 5000))).isoformat())
        desk.ingest(record)
    return desk, clock


def timed(client: TestClient, path: str, repeat: int, **kw) -> float:
    taken = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(path, **kw)
        taken.append(time.perf_counter() - started)
        assert response.status_code == 200, (path, response.status_code, response.text[:300])
    return statistics.median(taken) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--alerts", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    desk, clock = desk_with_open_alerts(args.alerts)
    app = create_app(desk, TOKENS, clock=lambda: clock, tick_seconds=0, rules_dir=load_settings().rules_dir)
    client = TestClient(app, base_url="http://bench")
    token = next(iter(TOKENS))
    signed_in = client.post("/console/login", data={"token": token}, headers={"Origin": "http://bench"},
                            follow_redirects=False)
    assert signed_in.status_code == 303
    bearer = {"Authorization": f"Bearer {token}"}
    timed(client, "/console/", 2)  # templates compiled, caches warm
    api_ms = timed(client, "/v1/alerts?limit=50", args.repeat, headers=bearer)
    inbox_ms = timed(client, "/console/", args.repeat)
    rows_ms = timed(client, "/console/inbox/rows", args.repeat)
    heat_ms = timed(client, "/console/heatmap", args.repeat)
    result = {
        "open_alerts": args.alerts,
        "api_alerts_page_ms": round(api_ms, 1),
        "console_inbox_ms": round(inbox_ms, 1),
        "console_inbox_rows_ms": round(rows_ms, 1),
        "console_heatmap_ms": round(heat_ms, 1),
        "inbox_over_api": round(inbox_ms / api_ms, 3),
        "heatmap_over_api": round(heat_ms / api_ms, 3),
        "target": "inbox and heat map <= 2x the API call",
    }
    write_result("console_render", result)
    for key, value in result.items():
        print(f"{key:24} {value}")


if __name__ == "__main__":
    main()
