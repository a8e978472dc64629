"""Issue 12, item 7: timestamps as real exports spell them. A compact date
("20240131"), a bare year ("2024") or a number is not an RFC 3339 timestamp:
the line is rejected naming the field, never read as Unix time (DOMAIN §3
"Timestamps"); the other lines of the file go on as before."""

from __future__ import annotations

import pytest

from riskwatch import testing as t

DUE = "2024-01-31T00:00:00Z"
UNTIL = "2024-04-01T00:00:00Z"
# An invoice that is well formed: unpaid 30 days after its due time, it alerts.
WELL_FORMED = t.invoice_issued("INV-OK", "C-OK", "80000.00", due_at=DUE, at="2024-01-02T09:00:00Z",
                               event_id="inv-ok")


def replay_with(riskwatch, events_file, spoiled: dict):
    path = events_file([WELL_FORMED, spoiled])
    done = riskwatch("replay", path, "--until", UNTIL)
    assert done.returncode == 0, done.stderr
    return path, done


def assert_only_the_well_formed_invoice_alerts(done) -> None:
    [alert] = done.final.values()
    assert alert["subject"]["id"] == "INV-OK"
    assert alert["raised_at"] == "2024-03-01T00:00:00Z"    # due + 30 days
    assert not any(record["raised_at"].startswith("1970") for record in done.records)


@pytest.mark.parametrize("due_at", ["20240131", "2024"], ids=["compact date", "bare year"])
def test_a_due_date_written_without_dashes_or_as_a_year_is_rejected_naming_due_at(riskwatch, events_file, due_at):
    spoiled = t.invoice_issued("INV-1", "C1", "250000.00", due_at=DUE, at="2024-01-02T09:00:00Z", event_id="inv-1")
    spoiled["due_at"] = due_at
    path, done = replay_with(riskwatch, events_file, spoiled)
    assert (f'{path}: line 2: due_at: must be an RFC 3339 timestamp with a date, a time and an offset '
            f'(got "{due_at}")') in done.stderr.splitlines()
    assert_only_the_well_formed_invoice_alerts(done)


def test_unix_time_as_occurred_at_is_rejected_naming_occurred_at(riskwatch, events_file):
    spoiled = t.invoice_issued("INV-1", "C1", "250000.00", due_at=DUE, event_id="inv-1")
    spoiled["occurred_at"] = 1704186000    # 2024-01-02T09:00:00Z as Unix seconds
    path, done = replay_with(riskwatch, events_file, spoiled)
    assert (f"{path}: line 2: occurred_at: must be an RFC 3339 timestamp with a date, a time and an offset "
            f"(got 1704186000)") in done.stderr.splitlines()
    assert_only_the_well_formed_invoice_alerts(done)


def test_a_long_bad_timestamp_is_echoed_cut_short(riskwatch, events_file):
    spoiled = t.invoice_issued("INV-1", "C1", "250000.00", due_at=DUE, event_id="inv-1")
    spoiled["due_at"] = "31/01/2024 " + "x" * 500
    path, done = replay_with(riskwatch, events_file, spoiled)
    [line] = [line for line in done.stderr.splitlines() if ": line 2: " in line]
    assert line.startswith(f'{path}: line 2: due_at: must be an RFC 3339 timestamp with a date, a time and an '
                           f'offset (got "31/01/2024 xxx')
    assert len(line) < len(str(path)) + 160
