"""Issue 12, item 8: one mistyped year. An event dated 2042 among 2024 events
is rejected as in the future (DOMAIN §3 "Timestamps"): it must not move the
service clock years ahead and fire every deadline. The other events alert
exactly as in the file without it."""

from __future__ import annotations

from riskwatch import testing as t

UNTIL = "2024-04-01T00:00:00Z"
BUSINESS = [
    t.delivery_scheduled("SHP-1", "C1", promised_at="2024-02-10T00:00:00Z", at="2024-02-01T09:00:00Z", event_id="s-1"),
    t.invoice_issued("INV-1", "C1", "100000.00", due_at="2024-02-15T00:00:00Z", at="2024-01-15T09:00:00Z",
                     event_id="i-1"),
    t.invoice_issued("INV-2", "C2", "50000.00", due_at="2024-02-20T00:00:00Z", at="2024-01-20T09:00:00Z",
                     event_id="i-2"),
    # Delivered 36 h after the promise: within the 72 h, no delay alert.
    t.delivered("SHP-1", "C1", delivered_at="2024-02-11T12:00:00Z", event_id="d-1"),
]
# INV-2's payment, its year typed as 2042 instead of 2024.
MISTYPED = t.payment_received("INV-2", "C2", "50000.00", at="2042-02-19T10:00:00Z", event_id="p-2")


def test_an_event_dated_2042_is_rejected_as_in_the_future_and_the_rest_alerts_as_without_it(riskwatch, events_file):
    with_it = events_file(BUSINESS[:3] + [MISTYPED] + BUSINESS[3:], name="with.jsonl")
    without_it = events_file(BUSINESS, name="without.jsonl")
    done = riskwatch("replay", with_it, "--until", UNTIL)
    reference = riskwatch("replay", without_it, "--until", UNTIL)
    assert done.returncode == 0 and reference.returncode == 0, done.stderr

    [rejected] = [line for line in done.stderr.splitlines() if ": line " in line]
    assert rejected.startswith(f"{with_it}: line 4: occurred_at: 2042-02-19T10:00:00Z is ")
    assert "years in the future" in rejected and "tolerance 1.0 h" in rejected

    assert done.stdout == reference.stdout
    final = {(r["indicator"], r["subject"]["id"]): (r["status"], r["raised_at"]) for r in done.final.values()}
    assert final == {
        ("payment_overdue", "INV-1"): ("open", "2024-03-16T00:00:00Z"),
        ("payment_overdue", "INV-2"): ("open", "2024-03-21T00:00:00Z"),
    }
    assert "clock: 2024-04-01T00:00:00+00:00" in done.stderr


def test_a_forecast_is_replayed_on_purpose_with_the_check_turned_off(riskwatch, events_file):
    forecast = events_file([
        t.invoice_issued("INV-F", "C1", "100000.00", due_at="2042-02-15T00:00:00Z", at="2042-01-15T09:00:00Z",
                         event_id="f-1"),
    ])
    done = riskwatch("replay", forecast, "--until", "2042-04-01T00:00:00Z", "--future-tolerance", "-1")
    assert done.returncode == 0, done.stderr
    [alert] = done.final.values()
    assert (alert["indicator"], alert["subject"]["id"], alert["raised_at"]) == (
        "payment_overdue", "INV-F", "2042-03-17T00:00:00Z")
