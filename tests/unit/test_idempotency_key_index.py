"""The idempotency keys every API replica folds from the actions topic
(`KeyIndex`): the first claim of a key in its partition owns it, whoever
answers or releases it afterwards."""

from __future__ import annotations

import base64
import time

from riskwatch.alerts.idempotency import KEY_RECORD, KeyIndex


def record(event: str, claim_id: str, at: float, **fields) -> dict:
    return {"record": KEY_RECORD, "event": event, "scope": "s1", "key": "k1", "claim_id": claim_id, "at": at, **fields}


def test_the_first_claim_owns_the_key_and_only_its_answer_counts():
    now = time.time()
    index = KeyIndex(3600)
    index.take(record("claimed", "first", now, request_hash="h"))
    index.take(record("claimed", "second", now, request_hash="h"))   # the other replica, later in the partition
    assert index.lookup("s1", "k1").claim_for("h").outcome == "pending"
    index.take(record("answered", "second", now, status=500, media_type="x", body=""))
    assert index.lookup("s1", "k1").claim_for("h").outcome == "pending"
    index.take(record("answered", "first", now, status=201, media_type="application/json",
                      body=base64.b64encode(b'{"plan_id": "pl-1"}').decode()))
    replay = index.lookup("s1", "k1").claim_for("h")
    assert (replay.outcome, replay.status, replay.body) == ("replay", 201, b'{"plan_id": "pl-1"}')
    assert index.lookup("s1", "k1").claim_for("another request").outcome == "mismatch"


def test_a_released_key_is_free_for_the_next_claim():
    now = time.time()
    index = KeyIndex(3600)
    index.take(record("claimed", "first", now, request_hash="h"))
    index.take(record("released", "first", now))
    assert index.lookup("s1", "k1") is None
    index.take(record("claimed", "retry", now, request_hash="h"))
    assert index.lookup("s1", "k1").claim_id == "retry"


def test_a_key_is_forgotten_after_its_lifetime():
    index = KeyIndex(3600)
    index.take(record("claimed", "old", time.time() - 3601, request_hash="h"))
    assert index.lookup("s1", "k1") is None


def test_a_damaged_key_record_is_skipped():
    index = KeyIndex(3600)
    index.take({"record": KEY_RECORD, "event": "claimed", "scope": "s1"})
    index.take(record("claimed", "first", "not a time", request_hash="h"))
    assert index.lookup("s1", "k1") is None
