"""Two API replicas on one Kafka log (`riskwatch api --workflow-log kafka`,
as compose and Kubernetes run them): a person's retry that reaches the other
replica, and directors triggering plans on both at once.

Before: each replica kept Idempotency-Keys in its own memory (a retry on the
other replica recorded the action twice) and checked plans and the fund
against its own view only (two directors on two replicas could make two
active plans of one alert, or together overrun the price-response fund).
Now the keys and the plan claims are records on the actions topic, decided
by their order in the log, which every replica folds alike.
"""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from decimal import Decimal

import httpx
import pytest

from tests.streams.test_actions import price_war, replayed_price_cut_from_events
from tests.support.api import running_api
from tests.support.kafka import free_port, wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.api]

TOKENS = ("tok-officer-0123456789:officer,tok-director-0123456789:director,"
          "tok-readonly-0123456789:readonly,tok-operator-0123456789:operator")
OFFICER = {"Authorization": "Bearer tok-officer-0123456789", "X-Riskwatch-Actor": "Ann Li"}
DIRECTOR = {"Authorization": "Bearer tok-director-0123456789", "X-Riskwatch-Actor": "Wei Zhang"}
READER = {"Authorization": "Bearer tok-readonly-0123456789"}
OPERATOR = {"Authorization": "Bearer tok-operator-0123456789"}
# 5 % of 1,000,000: the price-response fund has 50,000 for the year.
ANNUAL_SALES_BUDGET = 1_000_000


@contextmanager
def two_replicas(broker: str, prefix: str):
    with ExitStack() as stack:
        urls = [stack.enter_context(running_api(
            free_port(), timeout=90, RISKWATCH_API_TOKENS=TOKENS, RISKWATCH_WORKFLOW_LOG="kafka",
            RISKWATCH_BROKER=broker, RISKWATCH_TOPIC_PREFIX=prefix, RISKWATCH_LOG_LEVEL="WARNING")) for _ in range(2)]
        yield urls


def price_cut_alert(urls: list[str], sku: str) -> str:
    """A price-cut alert fed through the first replica, once both show it."""
    change = replayed_price_cut_from_events(price_war(f"{sku}-1", f"{sku}-2", sku, "2026-03-01"))
    fed = httpx.post(urls[0] + "/v1/alert-changes", headers=OPERATOR, json=change, timeout=10)
    assert fed.status_code == 202, fed.text
    for url in urls:
        wait_until(lambda: httpx.get(f"{url}/v1/alerts/{change['alert_id']}", headers=READER, timeout=10).status_code == 200,
                   30, 0.2, f"the alert on {url}")
    return change["alert_id"]


def audit(url: str, subject: str, kind: str) -> list[dict]:
    rows = httpx.get(url + "/v1/actions", headers=READER, params={"subject": subject}, timeout=10).json()
    return [row for row in rows if row["kind"] == kind]


def active_plans(url: str, alert_id: str) -> list[dict]:
    plans = httpx.get(url + "/v1/plans", headers=READER, params={"status": "active", "alert_id": alert_id}, timeout=10)
    return plans.json()


def trigger(url: str, alert_id: str, amount: float, **extra) -> httpx.Response:
    return httpx.post(url + "/v1/plans", headers=DIRECTOR, timeout=60, json={
        "plan": "price_war_response", "alert_id": alert_id, "reason": "Rival cut 22 %",
        "committed_amount": amount, "annual_sales_budget": ANNUAL_SALES_BUDGET, **extra})


def test_an_idempotency_key_retried_on_the_other_replica_gets_the_first_answer_and_records_once(
        kafka_broker, topic_prefix):
    with two_replicas(kafka_broker.bootstrap, topic_prefix) as (first, second):
        alert_id = price_cut_alert([first, second], "SKU-RETRY")
        key = {"Idempotency-Key": "ack-" + uuid.uuid4().hex}
        answered = httpx.post(f"{first}/v1/alerts/{alert_id}/ack", headers={**OFFICER, **key},
                              json={"reason": "on it"}, timeout=30)
        assert answered.status_code == 200, answered.text

        # The client timed out and its retry went to the other replica.
        retried = httpx.post(f"{second}/v1/alerts/{alert_id}/ack", headers={**OFFICER, **key},
                             json={"reason": "on it"}, timeout=30)
        assert retried.status_code == 200, retried.text
        assert retried.content == answered.content
        assert retried.headers["idempotent-replayed"] == "true"
        # Without the key the same request is refused: the alert is acknowledged already.
        again = httpx.post(f"{second}/v1/alerts/{alert_id}/ack", headers=OFFICER, json={"reason": "on it"}, timeout=30)
        assert again.status_code == 409

        # The same key for another request, on either replica: 422.
        for url in (first, second):
            other = httpx.post(f"{url}/v1/alerts/{alert_id}/comments", headers={**OFFICER, **key},
                               json={"reason": "another request"}, timeout=30)
            assert other.status_code == 422, other.text

        for url in (first, second):
            acks = audit(url, alert_id, "acknowledge")
            assert len(acks) == 1, acks
            assert answered.json()["acknowledged_by"] == acks[0]["actor"]


def test_one_request_sent_to_both_replicas_at_once_runs_once(kafka_broker, topic_prefix):
    with two_replicas(kafka_broker.bootstrap, topic_prefix) as urls:
        alert_id = price_cut_alert(urls, "SKU-TWICE")
        for attempt in range(5):
            key = {"Idempotency-Key": f"comment-{attempt}-" + uuid.uuid4().hex}
            with ThreadPoolExecutor(2) as pool:
                answers = list(pool.map(lambda url: httpx.post(
                    f"{url}/v1/alerts/{alert_id}/comments", headers={**OFFICER, **key},
                    json={"reason": f"called the customer ({attempt})"}, timeout=30), urls))
            statuses = sorted(a.status_code for a in answers)
            # Both got the first answer, or one was told the first is still running.
            assert statuses in ([200, 200], [200, 409]), [a.text for a in answers]
        for url in urls:
            # The other replica's comment reaches this one's audit trail within a fetch.
            comments = wait_until(lambda: (lambda c: c if len(c) >= 5 else None)(audit(url, alert_id, "comment")),
                                  10, 0.2, f"five comments on {url}")
            assert len(comments) == 5, comments


def test_twenty_parallel_triggers_over_both_replicas_make_one_active_plan(kafka_broker, topic_prefix):
    with two_replicas(kafka_broker.bootstrap, topic_prefix) as urls:
        alert_id = price_cut_alert(urls, "SKU-RACE")
        with ThreadPoolExecutor(20) as pool:
            answers = list(pool.map(lambda n: trigger(urls[n % 2], alert_id, 1000), range(20)))
        statuses = [a.status_code for a in answers]
        assert statuses.count(201) == 1, [a.text for a in answers]
        assert statuses.count(409) == 19, [a.text for a in answers]
        winner = next(a.json() for a in answers if a.status_code == 201)
        for refused in (a for a in answers if a.status_code == 409):
            assert "already active" in refused.json()["detail"]
            assert winner["plan_id"] in refused.json()["detail"]
        for url in urls:
            wait_until(lambda: [p["plan_id"] for p in active_plans(url, alert_id)] == [winner["plan_id"]],
                       10, 0.2, f"one active plan on {url}")
            counted = [row for row in audit(url, alert_id, "plan_triggered") if "refused" not in row]
            assert [row["plan_id"] for row in counted] == [winner["plan_id"]]


def test_sequential_triggers_over_both_replicas_stop_at_the_funds_budget(kafka_broker, topic_prefix):
    with two_replicas(kafka_broker.bootstrap, topic_prefix) as urls:
        alert_id = price_cut_alert(urls, "SKU-FUND")
        made = []
        # Alternate replicas; each second package is asked for explicitly.
        for n, amount in enumerate([20_000, 20_000]):
            answer = trigger(urls[n % 2], alert_id, amount, another=n > 0)
            assert answer.status_code == 201, answer.text
            made.append(answer.json()["plan_id"])
        for url in urls:
            refused = trigger(url, alert_id, 20_000, another=True)
            assert refused.status_code == 409, refused.text
            assert refused.json()["left"] == "10000.00", refused.json()
            assert refused.json()["committed"] == "40000.00"
        last = trigger(urls[1], alert_id, 10_000, another=True)
        assert last.status_code == 201, last.text
        made.append(last.json()["plan_id"])
        empty = trigger(urls[0], alert_id, 1, another=True)
        assert empty.status_code == 409 and empty.json()["left"] == "0.00", empty.text

        for url in urls:
            plans = wait_until(lambda: (lambda p: p if len(p) == 3 else None)(active_plans(url, alert_id)),
                               10, 0.2, f"three plans on {url}")
            assert sorted(p["plan_id"] for p in plans) == sorted(made)
            assert sum(Decimal(str(p["fund"]["committed_amount"])) for p in plans) == Decimal(50_000)


def test_parallel_triggers_over_both_replicas_never_overrun_the_fund(kafka_broker, topic_prefix):
    with two_replicas(kafka_broker.bootstrap, topic_prefix) as urls:
        alert_id = price_cut_alert(urls, "SKU-FUND-RACE")
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda n: trigger(urls[n % 2], alert_id, 20_000, another=True), range(8)))
        statuses = [a.status_code for a in answers]
        # 50,000 holds two commitments of 20,000; every other one is told what is left.
        assert statuses.count(201) == 2, [a.text for a in answers]
        for refused in (a for a in answers if a.status_code == 409):
            assert refused.json()["left"] == "10000.00", refused.text
        for url in urls:
            plans = wait_until(lambda: (lambda p: p if len(p) == 2 else None)(active_plans(url, alert_id)),
                               10, 0.2, f"two plans on {url}")
            assert sum(Decimal(str(p["fund"]["committed_amount"])) for p in plans) == Decimal(40_000)


def test_the_first_claim_in_the_partition_wins_whatever_the_replicas_clocks_say(kafka_broker, topic_prefix):
    """Two replicas whose clocks disagree by a minute: the second claim in the
    partition carries the earlier timestamp. The partition's order decides,
    on a replica folding it live and on one reading the log afresh."""
    import json

    from kafka import KafkaProducer

    from riskwatch.alerts.kafkalog import PLANS_KEY
    from tests.support.kafka import read_topic

    broker = kafka_broker.bootstrap
    with running_api(free_port(), timeout=90, RISKWATCH_API_TOKENS=TOKENS, RISKWATCH_WORKFLOW_LOG="kafka",
                     RISKWATCH_BROKER=broker, RISKWATCH_TOPIC_PREFIX=topic_prefix,
                     RISKWATCH_LOG_LEVEL="WARNING") as live:
        alert_id = price_cut_alert([live], "SKU-SKEW")
        first = trigger(live, alert_id, 1000)
        assert first.status_code == 201, first.text
        closed = httpx.post(f"{live}/v1/plans/{first.json()['plan_id']}/close", headers=DIRECTOR,
                            json={"reason": "wrong SKU", "outcome": "cancelled"}, timeout=30)
        assert closed.status_code == 200, closed.text
        # Two claims as two replicas write them: the same request, their own ids and clocks.
        written = next(json.loads(r.value) for r in read_topic(broker, topic_prefix + "actions", idle_seconds=1.5)
                       if json.loads(r.value).get("kind") == "plan_triggered")
        now_ms = int(time.time() * 1000)
        producer = KafkaProducer(bootstrap_servers=broker, acks="all")
        claims = []
        for n, stamped in enumerate([now_ms, now_ms - 60_000]):
            plan_id = f"pl-skew{n}"
            claim = {**written, "action_id": f"act-skew{n}", "plan_id": plan_id,
                     "data": {**written["data"], "plan": {**written["data"]["plan"], "plan_id": plan_id}}}
            producer.send(topic_prefix + "actions", key=PLANS_KEY, value=json.dumps(claim).encode(),
                          timestamp_ms=stamped).get(timeout=30)
            claims.append(plan_id)
        producer.close()

        def active_on(url: str) -> list[str]:
            return [p["plan_id"] for p in active_plans(url, alert_id)]

        assert wait_until(lambda: active_on(live) or None, 10, 0.2, "a plan decided live") == ["pl-skew0"]
        with running_api(free_port(), timeout=90, RISKWATCH_API_TOKENS=TOKENS, RISKWATCH_WORKFLOW_LOG="kafka",
                         RISKWATCH_BROKER=broker, RISKWATCH_TOPIC_PREFIX=topic_prefix,
                         RISKWATCH_LOG_LEVEL="WARNING") as afresh:
            assert active_on(afresh) == ["pl-skew0"]
            refused = [row for row in audit(afresh, alert_id, "plan_triggered") if row["plan_id"] == "pl-skew1"]
            assert len(refused) == 1 and "already active" in refused[0]["refused"]
