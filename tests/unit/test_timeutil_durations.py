"""Durations in texts a person reads are written as the rule files write them."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, strategies as st

from riskwatch.timeutil import duration_as_written, parse_duration


def test_durations_read_as_the_rule_files_write_them():
    assert duration_as_written(timedelta(days=3)) == "3d"
    assert duration_as_written(timedelta(hours=72, minutes=30)) == "4350m"
    assert duration_as_written(timedelta(hours=36)) == "36h"
    assert duration_as_written(timedelta(seconds=45)) == "45s"


@given(st.integers(min_value=1, max_value=10 * 365 * 86400))
def test_a_written_duration_reads_back_as_the_same_span(seconds):
    written = duration_as_written(timedelta(seconds=seconds))
    assert parse_duration(written) == seconds
