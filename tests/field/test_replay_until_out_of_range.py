"""Issue 13: `replay --until 9999-12-31T23:59:59Z` crashed ("year 10000 is
out of range") after reading every file, and the summary was lost. An
`--until` is now an RFC 3339 instant with an offset (like an event's
timestamps) inside the range riskwatch works in, 2000 to 2100; anything else
is refused before a line is read, naming the option."""

from __future__ import annotations

import pytest

from riskwatch.testing import invoice_issued

REFUSED = [
    pytest.param("9999-12-31T23:59:59Z", "outside the range riskwatch works in (2000-01-01 to 2100-12-31, UTC)",
                 id="last-representable-instant"),
    pytest.param("2100-12-31T23:59:59-23:59", "outside the range riskwatch works in", id="offset-pushes-past-2100"),
    pytest.param("1970-01-01T00:00:00Z", "outside the range riskwatch works in", id="epoch"),
    pytest.param("2026-03-01", "is not an RFC 3339 instant with a date, a time and an offset", id="bare-date"),
    pytest.param("2026-03-01T00:00:00", "is not an RFC 3339 instant with a date, a time and an offset",
                 id="no-offset"),
    pytest.param("1767225600", "is not an RFC 3339 instant", id="unix-seconds"),
    pytest.param("2026-02-30T00:00:00Z", "is not a valid instant", id="february-30"),
]


@pytest.mark.parametrize("until, reason", REFUSED)
def test_an_until_outside_the_range_or_shape_is_refused_naming_the_option(riskwatch, events_file, until, reason):
    events = events_file([invoice_issued("INV-1", "C1", 250_000, "2026-01-01T00:00:00Z", at="2025-12-01T00:00:00Z")])
    done = riskwatch("replay", events, "--until", until, timeout=30)
    assert done.returncode == 2
    assert "Invalid value for --until" in done.stderr and reason in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def test_the_end_of_the_range_is_a_run_that_finishes_with_its_summary(riskwatch, events_file):
    events = events_file([invoice_issued("INV-1", "C1", 250_000, "2026-01-01T00:00:00Z", at="2025-12-01T00:00:00Z")])
    done = riskwatch("replay", events, "--until", "2100-12-31T23:59:59+00:00", timeout=120)
    assert done.returncode == 0, done.stderr
    assert "clock: 2100-12-31T23:59:59+00:00" in done.stderr
    (alert,) = done.final.values()
    assert alert["indicator"] == "payment_overdue" and alert["status"] == "open"
