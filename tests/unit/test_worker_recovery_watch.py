"""A table recovery that stops receiving changelog records is started again
(streams/recovery.py).

Seen once in CI: after a source topic was deleted and created again, the
worker's rebalance restored its state up to all but the last records of the
changelog and then waited for them for good (not ready, sources paused). The
race cannot be provoked on demand, so the decision is driven here with the
recovery's own numbers: highwaters, offsets restored, fetch positions.
"""

from __future__ import annotations

from typing import NamedTuple

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.recovery import STALL_SECONDS, StallRule, Step


class TP(NamedTuple):
    topic: str
    partition: int


A, B = TP("w-state-changelog", 0), TP("w-state-changelog", 1)


def test_a_recovery_that_keeps_receiving_is_left_alone():
    rule = StallRule()
    offsets = {A: 10, B: 3}
    for second in range(0, 120, 5):
        offsets = {A: offsets[A] + 1, B: offsets[B]}   # A moves on; B waits its turn
        assert rule.decide({A: 500, B: 9}, offsets, {A: offsets[A] + 1, B: 4}, float(second)) == []


def test_a_stalled_partition_is_fetched_again_from_the_record_after_the_last_restored():
    rule = StallRule()
    highwaters, offsets, positions = {A: 24, B: 30}, {A: 24, B: 22}, {A: 25, B: 31}
    assert rule.decide(highwaters, offsets, positions, 0.0) == []
    assert rule.decide(highwaters, offsets, positions, STALL_SECONDS - 1) == []
    # A is restored; only B, short of its highwater, is fetched again.
    assert rule.decide(highwaters, offsets, positions, STALL_SECONDS + 1) == [Step(B, "fetch_from", 23)]


def test_a_partition_still_short_after_fetching_again_with_its_position_past_the_highwater_counts_as_restored():
    rule = StallRule()
    highwaters, offsets, positions = {A: 30}, {A: 22}, {A: 31}
    rule.decide(highwaters, offsets, positions, 0.0)
    assert rule.decide(highwaters, offsets, positions, 20.0) == [Step(A, "fetch_from", 23)]
    # Nothing came: the offsets left hold no records (markers, aborted records).
    assert rule.decide(highwaters, offsets, positions, 30.0) == []
    assert rule.decide(highwaters, offsets, positions, 40.0) == [Step(A, "restored", 30)]


def test_a_partition_whose_fetch_does_not_pass_the_highwater_is_fetched_again_not_given_up():
    rule = StallRule()
    highwaters, offsets, positions = {A: 30}, {A: 22}, {A: 23}
    rule.decide(highwaters, offsets, positions, 0.0)
    assert rule.decide(highwaters, offsets, positions, 20.0) == [Step(A, "fetch_from", 23)]
    assert rule.decide(highwaters, offsets, positions, 40.0) == [Step(A, "fetch_from", 23)]


def test_an_empty_changelog_partition_needs_nothing():
    rule = StallRule()
    for second in (0.0, 20.0, 40.0):
        assert rule.decide({A: -1, B: None}, {A: -1, B: None}, {A: 0, B: None}, second) == []


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 40), st.integers(-1, 40), st.integers(0, 45)), min_size=1, max_size=4),
       st.lists(st.floats(0.5, 30.0), min_size=1, max_size=12))
def test_only_partitions_short_of_their_highwater_are_ever_touched(parts, gaps):
    tps = [TP("c", n) for n in range(len(parts))]
    highwaters = {tp: high for tp, (high, _, _) in zip(tps, parts)}
    offsets = {tp: min(done, high) for tp, (high, done, _) in zip(tps, parts)}
    positions = {tp: pos for tp, (_, _, pos) in zip(tps, parts)}
    rule, now = StallRule(), 0.0
    for gap in gaps:
        now += gap
        for step in rule.decide(highwaters, offsets, positions, now):
            assert offsets[step.tp] < highwaters[step.tp]
            if step.action == "fetch_from":
                assert step.offset == offsets[step.tp] + 1
            else:
                assert step.offset == highwaters[step.tp] and positions[step.tp] > highwaters[step.tp]
