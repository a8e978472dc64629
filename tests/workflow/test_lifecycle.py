"""The alert lifecycle as a risk officer lives it: acknowledge, work the steps,
snooze, escalate when nobody answers, hysteresis on tier drops, reviews."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from riskwatch.alerts import ActionRefused, AlertDesk, InvalidField, WorkflowStore
from riskwatch.alerts.desk import FundExceeded
from riskwatch.rules.response import load_response_rules
from riskwatch.timeutil import duration_as_written

from .conftest import REPO
from .records import T0, change_record, next_change

H = timedelta(hours=1)


@pytest.fixture
def desk(response_rules):
    return AlertDesk(response_rules)


def officer(desk, kind, alert_id="al-0000000000000001", at=T0 + H, **kw):
    return desk.act(kind, now=at, actor="ann", role="officer", alert_id=alert_id, **kw)


def test_open_acknowledged_in_progress_resolved(desk):
    desk.ingest(change_record())
    assert desk.ledger.alerts["al-0000000000000001"]["status"] == "open"
    officer(desk, "acknowledge", reason="on it")
    assert desk.alert("al-0000000000000001", T0 + H)["status"] == "acknowledged"
    officer(desk, "step_done", data={"step": 1, "note": "called the finance contact"})
    item = desk.alert("al-0000000000000001", T0 + H)
    assert item["status"] == "in_progress"
    assert item["steps"][0]["status"] == "done" and item["steps"][0]["done_by"] == "ann"
    assert item["steps"][0]["note"] == "called the finance contact"
    officer(desk, "resolve", reason="paid by wire")
    item = desk.alert("al-0000000000000001", T0 + H)
    assert (item["status"], item["resolved_by"], item["resolution_reason"]) == ("resolved", "ann", "paid by wire")
    with pytest.raises(ActionRefused):
        officer(desk, "acknowledge")


def test_acknowledging_twice_is_refused_and_unknown_alert_is_not_found(desk):
    desk.ingest(change_record())
    officer(desk, "acknowledge")
    with pytest.raises(ActionRefused):
        officer(desk, "acknowledge")
    with pytest.raises(ActionRefused) as err:
        officer(desk, "acknowledge", alert_id="al-nope")
    assert err.value.not_found


def test_engine_resolution_resolves_and_opens_a_48h_review_for_orange(desk):
    record = change_record()
    desk.ingest(record)
    resolved_at = T0 + 30 * H
    desk.ingest(next_change(record, status="resolved", change="resolved",
                            updated_at=resolved_at.isoformat(), resolved_at=resolved_at.isoformat()))
    item = desk.ledger.alerts["al-0000000000000001"]
    assert item["status"] == "resolved" and item["resolved_by"] == "engine"
    (review,) = desk.reviews(T0)
    assert review["due_at"] == (resolved_at + 48 * H).isoformat()
    assert not review["overdue"]
    assert desk.reviews(resolved_at + 49 * H)[0]["overdue"]
    recorded = desk.tick(resolved_at + 49 * H)
    assert [a.kind for a in recorded] == ["review_overdue"]


def test_blue_alerts_get_no_review(desk):
    record = change_record(tier="blue", owner="frontline_team")
    desk.ingest(record)
    desk.ingest(next_change(record, status="resolved", change="resolved"))
    assert desk.reviews(T0) == []


def test_an_alert_closed_at_a_higher_tier_gets_the_review_of_that_tier(desk):
    """A late shipment worked as yellow and delivered past the orange step closes
    orange (the engine closes it at the highest tier its delay reached): the
    post-incident review orange events need is opened, at orange."""
    record = change_record(tier="yellow", owner="frontline_team")
    desk.ingest(record)
    desk.ingest(next_change(record, status="resolved", change="resolved", tier="orange"))
    (review,) = desk.reviews(T0)
    assert review["tier"] == "orange"


def test_review_submit_then_director_sign_off(desk):
    record = change_record(tier="red", owner="general_manager")
    desk.ingest(record)
    officer(desk, "resolve", reason="customer paid")
    (review,) = desk.reviews(T0)
    with pytest.raises(ActionRefused):
        desk.act("review_signed_off", now=T0 + 2 * H, actor="dora", role="director", review_id=review["review_id"])
    desk.act("review_submitted", now=T0 + 2 * H, actor="ann", role="officer", review_id=review["review_id"],
             data={"whys": ["late payment", "cash squeeze", "lost a contract", "no early warning", "no credit review"],
                   "root_cause": "credit line never reviewed", "corrective_actions": ["quarterly credit review"]})
    desk.act("review_signed_off", now=T0 + 3 * H, actor="dora", role="director", review_id=review["review_id"])
    (review,) = desk.reviews(T0 + 100 * H)
    assert review["status"] == "signed_off" and review["signed_off_by"] == "dora" and not review["overdue"]
    assert len(review["whys"]) == 5


def test_unacknowledged_alert_escalates_up_the_chain(desk, response_rules):
    desk.ingest(change_record(tier="orange", owner="sales_leadership_group"))
    assert desk.tick(T0 + 7 * H) == []
    (escalation,) = [a for a in desk.tick(T0 + 8 * H + timedelta(seconds=1)) if a.kind == "escalate"]
    assert escalation.data["to_owner"] == "general_manager"
    assert escalation.reason.startswith("not acknowledged by")
    item = desk.ledger.alerts["al-0000000000000001"]
    assert item["owner"] == "general_manager" and item["level"] == response_rules.escalation.top_level
    # The top of the chain does not escalate further.
    assert [a.kind for a in desk.tick(T0 + 30 * H) if a.kind == "escalate"] == []


def test_an_owner_the_rules_do_not_know_is_said_loudly_and_the_alert_kept(desk, caplog):
    """The loader refuses rule files naming such an owner; a record made under other
    rules is still worked (from the bottom of the chain) and the mismatch is logged."""
    with caplog.at_level(logging.ERROR, logger="riskwatch.alerts.lifecycle"):
        desk.ingest(change_record(tier="orange", owner="frontlne_team"))
    (logged,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "al-0000000000000001" in logged.getMessage()
    assert "unknown role 'frontlne_team'" in logged.getMessage()
    item = desk.ledger.alerts["al-0000000000000001"]
    assert (item["status"], item["owner"], item["level"]) == ("open", "frontlne_team", 0)
    (escalation,) = [a for a in desk.tick(T0 + 8 * H + timedelta(seconds=1)) if a.kind == "escalate"]
    assert escalation.data["to_owner"] == "department_head"


def test_blue_alert_walks_the_chain_one_record_per_level(desk):
    desk.ingest(change_record(tier="blue", owner="frontline_team", respond_within=24 * H))
    recorded = desk.tick(T0 + 24 * 10 * H)
    owners = [a.data["to_owner"] for a in recorded if a.kind == "escalate"]
    assert owners == ["department_head", "sales_leadership_group", "general_manager"]
    assert len(desk.ledger.alerts["al-0000000000000001"]["escalations"]) == 3


def test_acknowledged_alert_escalates_when_a_step_is_overdue(desk):
    desk.ingest(change_record(tier="yellow", owner="department_head"))
    officer(desk, "acknowledge")
    assert [a for a in desk.tick(T0 + 23 * H) if a.kind == "escalate"] == []
    assert desk.alert("al-0000000000000001", T0 + 25 * H)["steps"][0]["overdue"]
    (escalation,) = [a for a in desk.tick(T0 + 25 * H) if a.kind == "escalate"]
    assert "step 1" in escalation.reason
    assert desk.ledger.alerts["al-0000000000000001"]["owner"] == "sales_leadership_group"
    # The same late step does not escalate twice.
    assert [a for a in desk.tick(T0 + 26 * H) if a.kind == "escalate"] == []


def test_snooze_until_a_time_pauses_escalation_then_resumes(desk):
    desk.ingest(change_record())
    officer(desk, "snooze", reason="customer on holiday", data={"until": (T0 + 20 * H).isoformat()})
    assert desk.ledger.alerts["al-0000000000000001"]["status"] == "snoozed"
    assert desk.tick(T0 + 10 * H) == []  # respond_by passed, but snoozed
    kinds = [a.kind for a in desk.tick(T0 + 21 * H)]
    assert kinds[0] == "snooze_ended" and "escalate" in kinds
    assert desk.ledger.alerts["al-0000000000000001"]["status"] == "open"


def test_snooze_until_recovery_ends_with_engine_resolution(desk):
    record = change_record()
    desk.ingest(record)
    officer(desk, "snooze", reason="waiting for the transfer", data={"until_recovery": True})
    assert desk.tick(T0 + 100 * H) == [] or all(a.kind == "review_overdue" for a in desk.tick(T0 + 100 * H))
    desk.ingest(next_change(record, status="resolved", change="resolved"))
    assert desk.ledger.alerts["al-0000000000000001"]["status"] == "resolved"


def test_snooze_in_the_past_is_refused(desk):
    desk.ingest(change_record())
    with pytest.raises(ActionRefused):
        officer(desk, "snooze", data={"until": T0.isoformat()})
    with pytest.raises(ActionRefused):
        officer(desk, "snooze", data={})


def test_tier_rise_applies_at_once_and_ends_a_snooze(desk):
    record = change_record(tier="yellow", owner="department_head")
    desk.ingest(record)
    officer(desk, "snooze", data={"until_recovery": True})
    desk.ingest(next_change(record, tier="red", change="tier_changed", owner="general_manager"))
    item = desk.ledger.alerts["al-0000000000000001"]
    assert (item["tier"], item["status"], item["owner"], item["last_change"]) == ("red", "open", "general_manager", "tier_raised")


def test_tier_drop_waits_for_hysteresis(desk, response_rules):
    hold = response_rules.escalation.hysteresis.tier_drop_hold
    record = change_record(tier="red", owner="general_manager")
    desk.ingest(record)
    officer(desk, "acknowledge")
    lower = next_change(record, tier="yellow", change="tier_changed", updated_at=(T0 + H).isoformat())
    desk.ingest(lower)
    assert desk.ledger.alerts["al-0000000000000001"]["tier"] == "red"
    # Flapping back up cancels the pending drop.
    back = next_change(lower, tier="red", change="tier_changed", updated_at=(T0 + 2 * H).isoformat())
    desk.ingest(back)
    assert desk.ledger.alerts["al-0000000000000001"]["pending_tier"] is None
    down = next_change(back, tier="yellow", change="tier_changed", updated_at=(T0 + 3 * H).isoformat())
    desk.ingest(down)
    assert [a for a in desk.tick(T0 + 3 * H + hold - timedelta(seconds=1)) if a.kind == "tier_lowered"] == []
    assert [a.kind for a in desk.tick(T0 + 3 * H + hold)] == ["tier_lowered"]
    assert desk.ledger.alerts["al-0000000000000001"]["tier"] == "yellow"


def test_unacknowledged_alert_is_renotified(desk, response_rules):
    desk.ingest(change_record(tier="red", owner="general_manager", respond_within=timedelta(minutes=30)))
    every = response_rules.escalation.renotify_every.red
    renotified = desk.tick(T0 + every)
    assert [a.kind for a in renotified] == ["renotify"]
    # The interval as the rule file writes it, not Python's "3 days, 0:00:00".
    assert renotified[0].reason == f"still unacknowledged after {duration_as_written(every)}"
    assert ":" not in renotified[0].reason and "day" not in renotified[0].reason
    assert desk.tick(T0 + every) == []


def test_redelivered_change_changes_nothing(desk):
    record = change_record()
    desk.ingest(record)
    officer(desk, "acknowledge")
    desk.ingest(record)
    assert desk.ledger.alerts["al-0000000000000001"]["status"] == "acknowledged"


def test_person_resolved_alert_reopens_when_engine_says_worse(desk):
    record = change_record(tier="yellow", owner="department_head")
    desk.ingest(record)
    officer(desk, "resolve", reason="handled offline")
    desk.ingest(next_change(record, tier="red", change="tier_changed", owner="general_manager"))
    item = desk.ledger.alerts["al-0000000000000001"]
    assert item["status"] == "open" and item["cycle"] == 2


def test_contingency_plan_from_alert_with_fund(response_rules):
    desk = AlertDesk(response_rules)
    desk.ingest(change_record(indicator="competitor_price_cut", tier="orange"))
    with pytest.raises(InvalidField) as err:
        desk.trigger_plan("price_war_response", alert_id="al-0000000000000001", now=T0, actor="dora",
                          role="director", reason="price war")
    assert err.value.field == "committed_amount"
    # Past the fund's budget: a conflict (409) a director may override with a reason, saying what is left.
    with pytest.raises(FundExceeded) as over:
        desk.trigger_plan("price_war_response", alert_id="al-0000000000000001", now=T0, actor="dora",
                          role="director", reason="price war", committed_amount=6_000_000, annual_sales_budget=100_000_000)
    assert "committed_amount" in over.value.reason and "5%" in over.value.reason
    assert over.value.facts["left"] == "5000000.00"
    with pytest.raises(InvalidField) as err:
        desk.trigger_plan("credit_tightening", alert_id="al-0000000000000001", now=T0, actor="dora",
                          role="director", reason="wrong plan")
    assert err.value.field == "plan"
    plan = desk.trigger_plan("price_war_response", alert_id="al-0000000000000001", now=T0, actor="dora",
                             role="director", reason="price war", committed_amount=2_000_000,
                             annual_sales_budget=100_000_000)
    assert plan["fund"]["committed_amount"] == 2_000_000 and plan["fund"]["cap"] == 5_000_000
    assert plan["steps"][0]["due_at"] == (T0 + 72 * H).isoformat()
    assert desk.plans(T0 + 73 * H)[0]["overdue"]
    for n in (1, 2, 3):
        desk.act("plan_step_done", now=T0 + H, actor="sam", role="officer", plan_id=plan["plan_id"], data={"step": n})
    assert desk.plans(T0 + 73 * H)[0]["status"] == "completed"
    assert desk.ledger.alerts["al-0000000000000001"]["plan_ids"] == [plan["plan_id"]]


def test_state_survives_a_restart(tmp_path, response_rules):
    store = WorkflowStore(tmp_path)
    desk = AlertDesk(response_rules, store)
    record = change_record()
    desk.ingest(record)
    officer(desk, "acknowledge", reason="mine")
    desk.ingest(next_change(record, status="resolved", change="resolved"))
    before = desk.ledger
    audit_before = desk.audit()
    store.close()
    again = AlertDesk(response_rules, WorkflowStore(tmp_path))
    assert again.ledger == before
    assert again.audit() == audit_before and audit_before[0]["reason"] == "mine"


def test_two_desks_on_one_store_see_each_other(tmp_path, response_rules):
    engine_side = AlertDesk(response_rules, WorkflowStore(tmp_path))
    api_side = AlertDesk(response_rules, WorkflowStore(tmp_path))
    engine_side.ingest(change_record())
    api_side.sync()
    officer(api_side, "acknowledge")
    engine_side.sync()
    assert engine_side.ledger.alerts["al-0000000000000001"]["status"] == "acknowledged"
    # Both tick past a deadline: the escalation is recorded once.
    engine_side.ingest(change_record("al-0000000000000002"))
    a = engine_side.tick(T0 + 9 * H)
    b = api_side.tick(T0 + 9 * H)
    assert [x.kind for x in a] == ["escalate"] and b == []


def test_the_log_refuses_updates_and_deletes(tmp_path, response_rules):
    import sqlite3

    store = WorkflowStore(tmp_path)
    AlertDesk(response_rules, store).ingest(change_record())
    db = sqlite3.connect(store.path)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("DELETE FROM log")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("UPDATE log SET body = 'x'")


def test_bad_rule_files_name_file_field_and_reason(tmp_path):
    (tmp_path / "escalation.yaml").write_text(
        (REPO / "rules" / "escalation.yaml").read_text().replace("tier_drop_hold: 6h", "tier_drop_hold: soon\n  colour: red"))
    (tmp_path / "contingency_plans.yaml").write_text("plans:\n  x:\n    title: X\n    steps: []\n")
    rules, problems = load_response_rules(tmp_path)
    assert rules is None
    assert "escalation.yaml: hysteresis.tier_drop_hold: expected a duration like '72h' (number + s|m|h|d), got 'soon'" in problems
    assert "escalation.yaml: hysteresis.colour: unknown key" in problems
    assert any(p.startswith("contingency_plans.yaml: plans.x.steps: ") for p in problems)


def test_missing_rule_file_is_reported(tmp_path):
    rules, problems = load_response_rules(tmp_path)
    assert rules is None
    assert problems[0].startswith("escalation.yaml: cannot read: ")
    assert problems[1].startswith("contingency_plans.yaml: cannot read: ")
