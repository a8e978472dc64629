"""Timelines a sales risk officer recognises, replayed through the real
console script: `riskwatch replay FILE --until TIME` prints every alert
change as one JSON line; the last line of an alert_id is its final state."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from riskwatch import testing as t

SECTION_5_FIELDS = {"alert_id", "indicator", "tier", "status", "subject", "probability", "impact",
                    "controllability", "observed", "threshold", "raised_at", "owner", "respond_by",
                    "playbook", "evidence"}
INDICATORS = {"customer_churn_rate", "delivery_delay", "payment_overdue", "competitor_price_cut",
              "key_account_decline", "credit_limit_breach", "collection_rate", "sales_target_lag"}


def when(text: str) -> datetime:
    return t.instant(text)


def replay(riskwatch, events_file, events, until=None, name="events.jsonl"):
    path = events_file(events, name=name)
    args = ["replay", path] + (["--until", until] if until else [])
    done = riskwatch(*args)
    assert done.returncode == 0, done.stderr
    return done


def assert_section_5_record(record: dict) -> None:
    """The alert contract of DOMAIN §5, field by field."""
    assert SECTION_5_FIELDS <= set(record), SECTION_5_FIELDS - set(record)
    assert record["indicator"] in INDICATORS
    assert record["tier"] in ("red", "orange", "yellow", "blue")
    assert record["status"] in ("open", "resolved") or record["status"]
    assert record["subject"]["kind"] and record["subject"]["id"]
    for name in ("probability", "impact", "controllability"):
        assert isinstance(record[name], (int, float)) and 0.0 <= record[name] <= 1.0, (name, record[name])
    assert isinstance(record["observed"], (int, float)) and isinstance(record["threshold"], (int, float))
    for name in ("raised_at", "respond_by"):
        assert t.instant(record[name]).tzinfo is not None
    assert t.instant(record["respond_by"]) > t.instant(record["raised_at"])
    assert isinstance(record["owner"], str) and record["owner"]
    assert record["playbook"]["id"]
    assert record["playbook"]["steps"]
    for step in record["playbook"]["steps"]:
        assert step["action"] and step["owner"]
        assert t.instant(step["due_at"]) >= t.instant(record["raised_at"])
    assert record["evidence"] and all(isinstance(e, str) for e in record["evidence"])


# --- payment overdue ------------------------------------------------------------------

UNPAID = [t.invoice_issued("INV-2026-0301", "ACME", "250000.00", due_at="2026-03-01T00:00:00Z",
                           at="2026-02-01T09:00:00Z", event_id="inv-issued-1")]
PAID = t.payment_received("INV-2026-0301", "ACME", "250000.00", at="2026-04-02T10:00:00Z", event_id="paid-1")


def test_an_invoice_due_1_march_and_unpaid_on_1_april_raises_one_overdue_alert(riskwatch, events_file):
    done = replay(riskwatch, events_file, UNPAID, until="2026-04-01T00:00:00Z")
    [alert] = done.records
    assert_section_5_record(alert)
    assert alert["indicator"] == "payment_overdue"
    assert alert["status"] == "open"
    assert alert["subject"] == {"kind": "invoice", "id": "INV-2026-0301", "customer_id": "ACME"}
    assert alert["raised_at"] == "2026-03-31T00:00:00Z"      # due + 30 days: the moment it became overdue
    # 250k CNY from a customer with no profile and no purchase history: half the
    # 500k a year assumed for a customer of unknown class, so an orange alert.
    assert alert["owner"] == "sales_leadership_group"
    assert alert["tier"] == "orange"
    assert (alert["amount_at_stake_cny"], alert["impact_reference_cny"]) == (250_000, 500_000)
    assert alert["respond_by"] == "2026-03-31T04:00:00Z"
    assert alert["playbook"]["id"] == "credit_tightening"
    assert [s["owner"] for s in alert["playbook"]["steps"]] == ["credit_controller", "finance", "sales_director"]
    assert alert["evidence"] == ["inv-issued-1"]
    assert alert["observed"] == pytest.approx(31.0)
    assert alert["threshold"] == 30


def test_paid_on_2_april_the_same_alert_is_resolved_not_deleted(riskwatch, events_file):
    before = replay(riskwatch, events_file, UNPAID, until="2026-04-01T00:00:00Z").records[0]
    done = replay(riskwatch, events_file, UNPAID + [PAID], until="2026-04-02T12:00:00Z", name="paid.jsonl")
    records = done.records
    assert {r["alert_id"] for r in records} == {before["alert_id"]}
    assert [r["status"] for r in records] == ["open", "resolved"]
    final = done.final[before["alert_id"]]
    assert final["resolution"] == "paid"
    assert final["resolved_at"] == "2026-04-02T10:00:00Z"
    assert "paid-1" in final["evidence"]


# --- delivery delay -------------------------------------------------------------------------

def test_a_late_shipment_alerts_past_72_hours_and_resolves_when_delivered(riskwatch, events_file):
    story = [
        t.order_placed("ORD-77", "ACME", "480000.00", customer_tier="B", at="2026-03-05T10:00:00Z"),
        t.delivery_scheduled("SHP-77", "ACME", promised_at="2026-03-10T12:00:00Z", order_id="ORD-77",
                             at="2026-03-05T10:10:00Z"),
    ]
    undelivered = replay(riskwatch, events_file, story, until="2026-03-13T13:00:00Z")
    [alert] = undelivered.records
    assert_section_5_record(alert)
    assert (alert["indicator"], alert["status"]) == ("delivery_delay", "open")
    assert alert["subject"]["id"] == "SHP-77"
    assert alert["raised_at"] == "2026-03-13T12:00:00Z"
    assert alert["playbook"]["id"] == "supply_chain_guarantee"

    story.append(t.delivered("SHP-77", "ACME", delivered_at="2026-03-14T08:00:00Z"))
    done = replay(riskwatch, events_file, story, until="2026-03-20T00:00:00Z", name="delivered.jsonl")
    final = done.final[alert["alert_id"]]
    assert final["status"] == "resolved"
    assert final["resolution"] == "delivered"
    assert final["observed"] == pytest.approx(92.0)      # hours late when delivered


# --- competitor price cut ------------------------------------------------------------------------

def test_a_15_percent_competitor_cut_starts_the_price_war_response_and_resolves_when_the_price_is_back(
        riskwatch, events_file):
    story = [
        t.price_observed("Borealis", "SKU-0042", "2000.00", at="2026-03-02T12:00:00Z"),
        t.price_observed("Borealis", "SKU-0042", "1700.00", at="2026-03-05T12:00:00Z"),
        t.price_observed("Borealis", "SKU-0042", "1990.00", at="2026-03-08T12:00:00Z"),
    ]
    done = replay(riskwatch, events_file, story, until="2026-03-09T00:00:00Z")
    opened, resolved = done.records
    assert_section_5_record(opened)
    assert opened["indicator"] == "competitor_price_cut"
    assert opened["status"] == "open"
    assert opened["observed"] == pytest.approx(0.15)
    assert opened["subject"]["competitor"] == "Borealis" and opened["subject"]["sku"] == "SKU-0042"
    steps = opened["playbook"]["steps"]
    package = next(s for s in steps if "price protection" in s["action"])
    assert t.instant(package["due_at"]) == t.instant(opened["raised_at"]) + timedelta(hours=72)
    assert any("price-response fund" in s["action"] for s in steps)
    assert resolved["alert_id"] == opened["alert_id"]
    assert resolved["status"] == "resolved"
    assert resolved["resolution"] == "price back"


# --- churn in a segment ---------------------------------------------------------------------------

def test_a_segment_drifting_into_churn_raises_one_alert_for_the_segment(riskwatch, events_file):
    start = when("2026-01-05T09:00:00Z")
    story = [t.customer_profile(f"C-{n:02d}", "C", region="east", at=start) for n in range(20)]
    for week in range(0, 26):
        for n in range(20):
            if n < 5 and week >= 2:
                continue   # five customers stop ordering after the second week
            story.append(t.order_placed(f"O-{week}-{n}", f"C-{n:02d}", "12000.00", customer_tier="C",
                                        at=start + timedelta(weeks=week, minutes=n)))
    done = replay(riskwatch, events_file, story, until=(start + timedelta(weeks=26)).isoformat())
    churn = [r for r in done.final.values() if r["indicator"] == "customer_churn_rate"]
    [alert] = churn
    assert_section_5_record(alert)
    assert alert["subject"]["id"] == "C"
    assert alert["status"] == "open"
    assert alert["observed"] == pytest.approx(0.25)
    assert alert["playbook"]["id"] == "churn_retention"
    assert alert["playbook"]["steps"][0]["owner"] == "customer_success_manager"


# --- credit limit -----------------------------------------------------------------------------------

def test_receivables_above_the_credit_limit_raise_a_breach_until_paid_down(riskwatch, events_file):
    story = [
        t.customer_profile("ACME", "C", credit_limit="1000000", at="2026-03-01T08:00:00Z"),
        t.invoice_issued("INV-1", "ACME", "600000.00", due_at="2026-04-30T00:00:00Z", at="2026-03-02T09:00:00Z"),
        t.invoice_issued("INV-2", "ACME", "500000.00", due_at="2026-04-30T00:00:00Z", at="2026-03-03T09:00:00Z"),
        t.payment_received("INV-2", "ACME", "500000.00", at="2026-03-10T09:00:00Z"),
    ]
    done = replay(riskwatch, events_file, story, until="2026-03-11T00:00:00Z")
    breaches = [r for r in done.records if r["indicator"] == "credit_limit_breach"]
    assert breaches, done.stdout
    assert_section_5_record(breaches[0])
    assert breaches[0]["status"] == "open"
    assert breaches[0]["subject"]["id"] == "ACME"
    assert breaches[0]["observed"] == pytest.approx(1.1)
    assert breaches[0]["playbook"]["id"] == "credit_tightening"
    assert done.final[breaches[0]["alert_id"]]["status"] == "resolved"


# --- key account decline ------------------------------------------------------------------------------

def test_an_a_class_key_account_ordering_far_less_than_the_prior_90_days_raises_a_decline(riskwatch, events_file):
    start = when("2026-01-05T09:00:00Z")
    story = [t.customer_profile("BIGCO", "A", credit_limit=50_000_000, at=start)]
    for day in range(0, 100, 10):
        story.append(t.order_placed(f"O-{day}", "BIGCO", "1000000.00", at=start + timedelta(days=day, hours=1)))
    for day in range(100, 190, 10):
        story.append(t.order_placed(f"O-{day}", "BIGCO", "400000.00", at=start + timedelta(days=day, hours=1)))
    done = replay(riskwatch, events_file, story, until=(start + timedelta(days=190)).isoformat())
    [alert] = [r for r in done.final.values() if r["indicator"] == "key_account_decline"]
    assert_section_5_record(alert)
    assert alert["subject"]["id"] == "BIGCO"
    assert alert["status"] == "open"
    assert alert["observed"] > 0.2


def test_a_c_class_customer_ordering_less_is_not_a_key_account_decline(riskwatch, events_file):
    start = when("2026-01-05T09:00:00Z")
    story = [t.customer_profile("SMALLCO", "C", at=start)]
    for day in range(0, 100, 10):
        story.append(t.order_placed(f"O-{day}", "SMALLCO", "100000.00", at=start + timedelta(days=day, hours=1)))
    story.append(t.order_placed("O-last", "SMALLCO", "1000.00", at=start + timedelta(days=150)))
    done = replay(riskwatch, events_file, story, until=(start + timedelta(days=190)).isoformat())
    assert [r for r in done.records if r["indicator"] == "key_account_decline"] == []


# --- bad input ------------------------------------------------------------------------------------------

def test_bad_lines_are_reported_with_their_line_number_and_the_rest_is_processed(riskwatch, events_file):
    good = t.invoice_issued("INV-9", "ACME", "1000.00", due_at="2026-03-01T00:00:00Z", at="2026-02-01T09:00:00Z")
    negative = t.payment_received("INV-9", "ACME", "-5", at="2026-02-02T09:00:00Z")
    unknown = t.payment_received("INV-9", "ACME", "5", at="2026-02-02T09:00:00Z", type="payment.reversed")
    path = events_file([good, "this is not json", t.to_jsonl([negative]).strip(), "", t.to_jsonl([unknown]).strip()])
    done = riskwatch("replay", path, "--until", "2026-04-15T00:00:00Z")
    assert done.returncode == 0
    assert f"{path}: line 2: not valid JSON" in done.stderr
    assert f"{path}: line 3: amount: must be >= 0\n" in done.stderr
    assert f"{path}: line 5: type: unknown event type 'payment.reversed'\n" in done.stderr
    assert "line 4" not in done.stderr            # a blank line is not a record
    assert "events: 4 read, 1 accepted, 3 rejected" in done.stderr
    [alert] = done.records
    assert alert["subject"]["id"] == "INV-9"


def test_a_missing_file_is_an_error_naming_it(riskwatch, tmp_path):
    done = riskwatch("replay", tmp_path / "nope.jsonl")
    assert done.returncode != 0
    assert "nope.jsonl: cannot read" in done.stderr


def test_several_files_replay_as_one_stream(riskwatch, events_file):
    first = events_file(UNPAID, name="january.jsonl")
    second = events_file([PAID], name="april.jsonl")
    done = riskwatch("replay", first, second, "--until", "2026-04-03T00:00:00Z")
    assert done.returncode == 0, done.stderr
    assert [r["status"] for r in done.records] == ["open", "resolved"]


# --- every record of a simulated quarter ------------------------------------------------------------------

@pytest.mark.slow
# Four weeks after the simulated period, and a year and a half after it: group
# alerts measured again once their events left the window keep their evidence.
@pytest.mark.parametrize("until", ["2024-06-26T00:00:00Z", "2025-12-01T00:00:00Z"])
def test_every_alert_record_of_a_simulated_business_honours_the_contract(riskwatch, tmp_path, until):
    path = tmp_path / "business.jsonl"
    made = riskwatch("simulate", "--seed", "3", "--customers", "80", "--days", "150", "--output", path)
    assert made.returncode == 0, made.stderr
    # The simulation starts on 2024-01-01 and runs 150 days.
    done = riskwatch("replay", path, "--until", until)
    assert done.returncode == 0, done.stderr
    records = done.records
    assert len({r["indicator"] for r in records}) >= 3
    for record in records:
        assert_section_5_record(record)
    again = riskwatch("replay", path, "--until", until)
    assert again.stdout == done.stdout      # same inputs, same alert ids, same bytes
