"""Several people and an engine on one real `riskwatch api` at once (issue 13,
"Concurrent users"): every answer is a consistent state of the desk, never a
500 or a dropped connection; bounded in threads, requests and time."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta

import httpx
import pytest

from support.alertmanager import free_port
from support.api import running_api

from .records import T0, change_record, iso, next_change

pytestmark = [pytest.mark.api, pytest.mark.slow]

TOKENS = {"operator": "operator-token-0123456789", "readonly": "readonly-token-0123456789"}
LIST_ENDPOINTS = ("/v1/alerts", "/v1/register", "/v1/plans", "/v1/reviews", "/v1/actions", "/v1/health")
SECONDS = 4.0          # each thread stops after this long ...
REQUESTS = 400         # ... or after this many requests
SEEDED = 300


def H(role: str) -> dict:
    return {"Authorization": f"Bearer {TOKENS[role]}"}


def run_threads(url: str, workers: list) -> tuple[Counter, list[str]]:
    statuses: Counter = Counter()
    failures: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + SECONDS

    def loop(requests):
        with httpx.Client(base_url=url, timeout=10) as client:
            for n, (method, path, kwargs) in enumerate(requests):
                if n >= REQUESTS or time.monotonic() > deadline:
                    return
                try:
                    response = client.request(method, path, **kwargs)
                except httpx.HTTPError as error:
                    with lock:
                        failures.append(f"{method} {path}: {type(error).__name__} {error}")
                    continue
                with lock:
                    statuses[response.status_code] += 1
                    if response.status_code >= 500:
                        failures.append(f"{method} {path}: {response.status_code} {response.text[:200]}")

    threads = [threading.Thread(target=loop, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=SECONDS + 30)
    assert not any(t.is_alive() for t in threads), "a client thread hung"
    return statuses, failures


def writer(prefix: str):
    """New alerts, and each resolved again (a review opens for an orange one)."""
    n = 0
    while True:
        n += 1
        record = change_record(f"al-{prefix}{n:06d}", customer_id=f"C-{prefix}{n}", at=T0)
        yield "POST", "/v1/alert-changes", {"json": record, "headers": H("operator")}
        cleared = iso(T0 + timedelta(hours=1))
        resolved = next_change(record, status="resolved", change="resolved", updated_at=cleared, resolved_at=cleared)
        yield "POST", "/v1/alert-changes", {"json": resolved, "headers": H("operator")}


def reader(offset: int):
    n = offset
    while True:
        yield "GET", LIST_ENDPOINTS[n % len(LIST_ENDPOINTS)], {"headers": H("readonly")}
        n += 1


def test_lists_read_while_the_engine_writes_are_never_a_server_error(tmp_path):
    tokens = ",".join(f"{token}:{role}" for role, token in TOKENS.items())
    with running_api(free_port(), RISKWATCH_API_TOKENS=tokens, RISKWATCH_STORE_DIR=str(tmp_path / "store"),
                     RISKWATCH_LOG_LEVEL="WARNING") as url:
        with httpx.Client(base_url=url, timeout=10, headers=H("operator")) as client:
            for n in range(SEEDED):  # long lists: a read takes long enough to meet a write
                assert client.post("/v1/alert-changes", json=change_record(f"al-seed{n:05d}")).status_code == 202
        statuses, failures = run_threads(url, [writer("a"), writer("b"), reader(0), reader(2), reader(4)])
        assert failures == [], failures[:5]
        assert statuses[202] > 20 and statuses[200] > 20, statuses  # both sides did real work
        # What the writers were told was recorded is there, once.
        shown = httpx.get(url + "/v1/alerts", params={"limit": 1000}, headers=H("readonly")).json()
        assert len(shown) == len({a["alert_id"] for a in shown}) and len(shown) * 2 >= statuses[202] - 1 + 2 * SEEDED
