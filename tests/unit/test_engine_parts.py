"""The engine's small parts, each a pure function a reader can check by eye:
the watermark clock, the deadline index, scoring, alert ids."""

from __future__ import annotations

import pytest

from riskwatch.engine import alert_id_for
from riskwatch.engine.clock import Watermark
from riskwatch.engine.deadlines import DeadlineIndex
from riskwatch.engine.scoring import score
from riskwatch.rules.schema import Score


def test_the_clock_is_the_latest_event_time_less_the_allowed_lateness():
    clock = Watermark(600)
    assert clock.now is None
    clock.observe(10_000)
    assert clock.now == 9_400
    clock.observe(9_000)            # a late event does not move the clock back
    assert clock.now == 9_400
    clock.observe(10_060)
    assert clock.now == 9_460


def test_advancing_the_clock_only_moves_it_forward():
    clock = Watermark(600)
    clock.advance_to(5_000)
    assert clock.now == 5_000
    clock.advance_to(4_000)
    assert clock.now == 5_000
    clock.observe(5_100)            # events 100 s later: the watermark (4 500) is behind the advance
    assert clock.now == 5_000
    clock.observe(20_000)
    assert clock.now == 19_400


def test_a_deadline_is_due_only_once_the_clock_is_strictly_past_it():
    index = DeadlineIndex()
    index.schedule(100.0, "i:INV-1")
    index.schedule(50.0, "s:SHP-1")
    index.schedule(100.0, "i:INV-1")
    assert index.due(50.0) == []
    assert index.due(100.0) == ["s:SHP-1"]
    assert index.due(100.5) == ["i:INV-1"]          # once, though scheduled twice
    assert index.due(1e12) == []


def test_a_cancelled_deadline_does_not_fire_and_leaves_its_neighbours():
    index = DeadlineIndex()
    index.schedule(100.0, "i:INV-1")
    index.schedule(100.0, "i:INV-1")
    index.schedule(110.0, "i:INV-1")
    index.schedule(101.0, "s:SHP-1")
    index.cancel(100.0, "i:INV-1")                  # every entry of that key at that instant
    index.cancel(100.0, "s:SHP-1")                  # none there: nothing happens
    index.cancel(5_000.0, "i:INV-1")                # no bucket at all
    assert len(index) == 2
    assert index.due(200.0) == ["s:SHP-1", "i:INV-1"]
    index.schedule(300.0, "s:SHP-2")
    index.cancel(300.0, "s:SHP-2")                  # an emptied bucket
    assert index.due(400.0) == [] and len(index) == 0


def test_a_score_takes_the_largest_step_beyond_the_observed_value_plus_additions():
    spec = Score.model_validate({
        "value": 0.2,
        "by_observed": [{"above": 30, "value": 0.55}, {"above": 60, "value": 0.75}],
        "by_amount": [{"above": 1_000_000, "value": 0.32}],
        "add_by_class": {"A": 0.05},
    })
    assert score(spec, observed=30.0, amount_cny=None, customer_class=None) == 0.2      # strict: 30 is not above 30
    assert score(spec, observed=31.0, amount_cny=None, customer_class=None) == 0.55
    assert score(spec, observed=61.0, amount_cny=None, customer_class="A") == 0.8
    assert score(spec, observed=1.0, amount_cny=2_000_000, customer_class=None) == 0.32
    assert score(spec, observed=1.0, amount_cny=1_000_000, customer_class=None) == 0.2


def test_a_score_is_clipped_to_the_unit_interval():
    spec = Score.model_validate({"value": 0.98, "add_by_class": {"A": 0.5}})
    assert score(spec, 0.0, None, "A") == 1.0


def test_alert_ids_are_the_same_across_versions_and_restarts():
    # Changing how ids are made would duplicate every open alert after an upgrade.
    assert alert_id_for("payment_overdue", "invoice", "INV-1") == "al-6e99f625c2ba6348"
    assert alert_id_for("payment_overdue", "invoice", "INV-1") != alert_id_for("payment_overdue", "invoice", "INV-2")
    assert alert_id_for("payment_overdue", "customer", "X") != alert_id_for("credit_limit_breach", "customer", "X")


def test_an_episode_is_cut_at_the_breakpoints_and_each_stretch_measured_at_its_end():
    from riskwatch.engine.indicators.findings import episode
    from riskwatch.testing import default_rules

    indicator = default_rules().indicators["delivery_delay"]      # breakpoints past 72 h: 120 h and 168 h
    promised = 1_773_144_000.123                                 # a fraction of a second: sums are inexact
    hour = 3600.0
    stretches = episode(indicator, promised, hour, promised + 72 * hour, promised + 170 * hour, lambda _: 5.0)
    assert stretches == ((120, 5.0), (168, 5.0), (pytest.approx(170.0), 5.0))
    # Delivered exactly 168 h late: the last stretch ends on the bound, which is not beyond it.
    assert episode(indicator, promised, hour, promised + 72 * hour, promised + 168 * hour, lambda _: None)[-1][0] == 168


def test_over_several_inputs_the_clock_follows_the_slowest_one_that_is_not_idle():
    from riskwatch.engine.clock import InputWatermark

    clock = InputWatermark(600, inputs=("orders", "payments"))
    clock.observe(10_000, "orders")
    assert clock.now is None                 # payments not read yet: it may hold anything
    clock.observe(5_000, "payments")
    assert clock.now == 4_400                # orders read ahead cannot make payments late
    clock.reading = "orders"
    clock.observe(20_000)                    # the input the caller said it is reading
    assert clock.progress["orders"] == 20_000 and clock.now == 4_400
    clock.set_idle("payments")               # nothing left to read there: it does not hold the clock
    assert clock.now == 19_400
    clock.set_idle("payments", False)        # busy again with older progress: the clock does not go back
    assert clock.now == 19_400
    clock.observe(30_000, "payments")
    assert clock.now == 19_400
    clock.set_idle("orders")
    assert clock.now == 29_400
    clock.set_idle("payments")               # all idle: the latest event time seen, as a replay
    assert clock.now == 29_400 and clock.max_event_ts == 30_000
    clock.advance_to(40_000)                 # idle advance, a shared clock, --until
    assert clock.now == 40_000
    clock.expect("customers")                # a new input not read yet holds it where it is
    clock.set_idle("orders", False)
    assert clock.now == 40_000
