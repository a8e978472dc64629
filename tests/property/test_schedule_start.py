"""The scheduled evaluations (riskwatch/engine/indicators/scheduler.py) do
not depend on how the clock got where it is: moved a day at a time, or in
one jump by an engine that first heard of its inputs late, the instants
evaluated are every aligned instant from the first fact on."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from riskwatch.engine.indicators.scheduler import Scheduler

DAY = 86400.0


class _Daily:
    """A scheduled indicator that records the instants it is evaluated as of."""

    id = "daily"
    every = DAY

    def __init__(self):
        self.instants: list[float] = []

    def evaluate(self, as_of: float) -> list:
        self.instants.append(as_of)
        return []


def _run(start: float, moves: list[float]) -> list[float]:
    indicator = _Daily()
    scheduler = Scheduler({}, [indicator], lambda findings, as_of: list(findings))
    scheduler.note_start(start)
    for now in moves:
        scheduler.run(now)
    return indicator.instants


@settings(max_examples=200, deadline=None)
@given(start=st.floats(min_value=1.7e9, max_value=1.8e9),
       steps=st.lists(st.floats(min_value=1.0, max_value=40 * DAY), min_size=1, max_size=30),
       first_after=st.floats(min_value=0.0, max_value=60 * DAY))
def test_every_day_from_the_first_fact_is_evaluated_once_however_the_clock_moved(start, steps, first_after):
    moves = [start + first_after]
    for step in steps:
        moves.append(moves[-1] + step)
    stepped = _run(start, moves)
    jumped = _run(start, [moves[-1]])
    assert stepped == jumped
    assert len(set(stepped)) == len(stepped)
    first = (start // DAY) * DAY
    assert stepped[:1] == ([first] if first < moves[-1] else [])
    assert all(later - earlier == DAY for earlier, later in zip(stepped, stepped[1:]))


def test_a_fact_dated_after_the_first_run_does_not_move_the_schedule_back():
    indicator = _Daily()
    state: dict = {}
    scheduler = Scheduler(state, [indicator], lambda findings, as_of: list(findings))
    scheduler.run(100 * DAY + 5)
    evaluated = list(indicator.instants)
    scheduler.note_start(10 * DAY)
    scheduler.run(101 * DAY + 5)
    assert evaluated == [100 * DAY]
    assert indicator.instants == [100 * DAY, 101 * DAY]
    assert "gt:^start" not in state
