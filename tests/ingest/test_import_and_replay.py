"""`riskwatch import` and `replay --mapping/--export` on the shipped mappings'
sample exports (tests/data/exports; the rows and why they matter are in
make_samples.py).

Expected alerts, from rules/indicators.yaml (strict thresholds), with the
clock moved to 15 April 2024 00:00 in Shanghai:
- INV-1001, due 4 Feb (end of day), paid 15 Mar: 39.5 days late, more than
  30: payment_overdue raised, then resolved by the payment.
- INV-1002 paid before its due date: nothing. INV-1005 due 21 Mar: its
  deadline (20 Apr) has not passed: nothing.
- INV-1004, 30,000 USD due 14 Feb, unpaid: deadline 15 Mar passed, open.
- INV-1003 (50,000 open) belongs to C003, whose credit limit is 0 (a credit
  hold, DOMAIN §3): credit_limit_breach open. No other customer's open
  receivables reach its limit (C001 5,000 of 500,000; C004 213,000 CNY of
  1,000,000).
- SO-2001 promised 15 Jan, delivered 25 Jan: more than 72 h late, raised and
  resolved. SO-2004 two days late: nothing. SO-2002 cancelled before its
  promised day: nothing. SO-2003 promised 20 Mar, undelivered: open.
- No segment has 5 invoices in a 30-day window (collection rate), there is
  no churn base of 10, no A-class customer with orders, no sales target.

The customer master is also exported as XLS and ODS (the same rows, behind a
first sheet of notes): read through customers.yaml with its `format`
changed, each gives the xlsx's events and alerts.
"""

from __future__ import annotations

import json
from datetime import datetime

import pytest

UNTIL = "2024-04-15T00:00:00+08:00"
CUSTOMERS = ("mappings/customers.yaml", "tests/data/exports/customers.xlsx")
RECEIVABLES = ("mappings/receivables.yaml", "tests/data/exports/receivables.csv")
ORDERS = ("mappings/orders.yaml", "tests/data/exports/orders.csv")


# What the three sample exports raise by 15 April (the module docstring says why).
ALERTS = {
    ("payment_overdue", "INV-1001"): "resolved",
    ("payment_overdue", "INV-1004"): "open",
    ("credit_limit_breach", "C003"): "open",
    ("delivery_delay", "shp-SO-2001"): "resolved",
    ("delivery_delay", "shp-SO-2003"): "open",
}


def outcome(done) -> dict[tuple[str, str], str]:
    return {(r["indicator"], r["subject"]["id"]): r["status"] for r in done.final.values()}


def customers_mapping(tmp_path, workbook: str, sheet: str | None = "sheet: Customers") -> str:
    """The shipped customers.yaml for `workbook`'s format (xlsx, xls, ods),
    its `sheet` line replaced by `sheet` (None: no sheet named)."""
    text = open(CUSTOMERS[0], encoding="utf-8").read()
    assert "format: xlsx" in text and "sheet: Customers" in text
    text = text.replace("format: xlsx", f"format: {workbook.rsplit('.', 1)[1]}")
    text = text.replace("sheet: Customers", sheet or "")
    path = tmp_path / f"{workbook}-{(sheet or 'no sheet').replace(': ', '-')}.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_replaying_the_three_exports_together_raises_the_alerts_the_rules_give(riskwatch):
    done = riskwatch("replay", "--export", *CUSTOMERS, "--export", *RECEIVABLES, "--export", *ORDERS, "--until", UNTIL)
    assert done.returncode == 0, done.stderr
    assert outcome(done) == ALERTS
    assert "events: 24 read, 24 accepted, 0 rejected, 0 duplicates, 0 late" in done.stderr


@pytest.mark.parametrize("workbook", ["customers.xls", "customers.ods"])
def test_a_customer_master_in_xls_or_ods_gives_the_xlsx_events_and_alerts(riskwatch, tmp_path, workbook):
    """The same rows in Excel 97-2003 and OpenDocument: a title above the
    header, date cells, a date typed as serial 45293 into a General cell, an
    empty credit limit, the data on the second sheet. Derived ids hash the
    content, so the same events are the same bytes."""
    mapping = customers_mapping(tmp_path, workbook)
    source = f"tests/data/exports/{workbook}"
    imported = riskwatch("import", "--mapping", mapping, source)
    assert imported.returncode == 0, imported.stderr
    assert imported.stderr == "rows: 5 read, 5 mapped, 0 gave no event, 0 not mapped; 5 events\n"
    assert imported.stdout == riskwatch("import", "--export", *CUSTOMERS).stdout
    profiles = {event["customer_id"]: event for event in map(json.loads, imported.stdout.splitlines())}
    assert profiles["C004"]["occurred_at"] == "2024-01-02T00:00:00+08:00"          # serial 45293
    assert profiles["C003"]["credit_limit"] == "0" and "credit_limit" not in profiles["C005"]
    done = riskwatch("replay", "--export", mapping, source, "--export", *RECEIVABLES, "--export", *ORDERS,
                     "--until", UNTIL)
    assert done.returncode == 0, done.stderr
    assert outcome(done) == ALERTS
    assert "events: 24 read, 24 accepted, 0 rejected, 0 duplicates, 0 late" in done.stderr


@pytest.mark.parametrize("workbook", ["customers.xls", "customers.ods"])
def test_the_mappings_sheet_picks_the_data_behind_a_notes_sheet(riskwatch, tmp_path, workbook):
    source = f"tests/data/exports/{workbook}"
    by_position = riskwatch("import", "--mapping", customers_mapping(tmp_path, workbook, "sheet: 2"), source)
    assert by_position.returncode == 0, by_position.stderr
    assert by_position.stdout == riskwatch("import", "--export", *CUSTOMERS).stdout
    first_sheet = riskwatch("import", "--mapping", customers_mapping(tmp_path, workbook, None), source)
    assert first_sheet.returncode == 2 and first_sheet.stdout == ""
    assert first_sheet.stderr.splitlines()[0] == f"{source}: no header at row 2 of sheet 'Read me'"


def test_replay_with_one_mapping_reads_its_exports_as_the_readme_shows(riskwatch):
    done = riskwatch("replay", "--mapping", "mappings/receivables.yaml", RECEIVABLES[1], "--until", UNTIL)
    assert done.returncode == 0, done.stderr
    # Without the customer master no credit limit is known: nothing to check.
    assert outcome(done) == {("payment_overdue", "INV-1001"): "resolved", ("payment_overdue", "INV-1004"): "open"}


def test_a_cancelled_order_raises_no_delivery_delay_however_the_export_is_fed(riskwatch):
    done = riskwatch("replay", "--mapping", "mappings/orders.yaml", ORDERS[1], "--until", UNTIL)
    assert done.returncode == 0, done.stderr
    assert not [r for r in done.records if r["subject"]["id"] in ("shp-SO-2002", "shp-SO-2004")]
    assert outcome(done) == {("delivery_delay", "shp-SO-2001"): "resolved", ("delivery_delay", "shp-SO-2003"): "open"}


def test_imported_events_replay_to_the_alerts_the_export_gives(riskwatch, tmp_path):
    """`import` writes in event-time order by default: replaying its output
    raises no transient alert that the export itself (replayed through its
    mapping) would not (an invoice paid in time is never raised)."""
    out = tmp_path / "receivables.jsonl"
    done = riskwatch("import", "--mapping", RECEIVABLES[0], RECEIVABLES[1], "-o", out)
    assert done.returncode == 0, done.stderr
    instants = [json.loads(line)["occurred_at"] for line in out.read_text().splitlines()]
    assert instants == sorted(instants, key=lambda text: datetime.fromisoformat(text))
    replayed = riskwatch("replay", out, "--until", UNTIL)
    direct = riskwatch("replay", "--mapping", RECEIVABLES[0], RECEIVABLES[1], "--until", UNTIL)
    assert replayed.stdout == direct.stdout
    assert ", 0 late" in replayed.stderr


def test_import_in_row_order_writes_events_that_replay_reads(riskwatch, tmp_path):
    out = tmp_path / "receivables.jsonl"
    done = riskwatch("import", "--row-order", "--mapping", RECEIVABLES[0], RECEIVABLES[1], "-o", out)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "rows: 5 read, 5 mapped, 0 gave no event, 0 not mapped; 8 events\n"
    events = [json.loads(line) for line in out.read_text().splitlines()]
    assert [e["type"] for e in events] == ["invoice.issued", "payment.received"] * 2 + ["invoice.issued"] * 2 + [
        "invoice.issued", "payment.received"]
    assert events[6]["amount"] == "9800.00" and events[7]["amount"] == "4800.00" and "currency" not in events[7]
    replayed = riskwatch("replay", out, "--until", UNTIL)
    assert "0 rejected" in replayed.stderr


def test_import_to_stdout_in_event_time_order(riskwatch):
    done = riskwatch("import", "--export", *RECEIVABLES, "--export", *CUSTOMERS)
    assert done.returncode == 0, done.stderr
    instants = [json.loads(line)["occurred_at"] for line in done.stdout.splitlines()]
    assert len(instants) == 13
    assert instants[:5] == ["2024-01-02T00:00:00+08:00"] * 5           # the profiles come first


def test_reimporting_the_same_export_changes_nothing(riskwatch):
    once = riskwatch("replay", "--export", *RECEIVABLES, "--until", UNTIL)
    twice = riskwatch("replay", "--export", *RECEIVABLES, "--export", *RECEIVABLES, "--until", UNTIL)
    assert twice.stdout == once.stdout
    assert "events: 16 read, 16 accepted, 0 rejected, 8 duplicates" in twice.stderr


def test_rows_that_cannot_be_mapped_are_reported_by_row_and_column_and_the_others_go_on(riskwatch, tmp_path):
    export = tmp_path / "receivables.csv"
    lines = open(RECEIVABLES[1], encoding="gbk").read().splitlines()
    lines.insert(2, 'INV-2001,C001,坏行,"1,000.00",CNY,05/01/2024,31/02/2024,,,')
    lines.insert(3, 'INV-2002,,无客户,"1,000.00",CNY,05/01/2024,01/03/2024,,,')
    export.write_bytes(("\n".join(lines) + "\n").encode("gbk"))
    done = riskwatch("import", "--mapping", RECEIVABLES[0], export)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        f"{export}: row 3: column DueDate: '31/02/2024' is not a date in format %d/%m/%Y (due_at of invoice.issued)",
        f"{export}: row 4: column CustomerCode: empty, but customer_id of invoice.issued is required",
        "rows: 7 read, 5 mapped, 0 gave no event, 2 not mapped; 8 events",
    ]
    replayed = riskwatch("replay", "--mapping", RECEIVABLES[0], export, "--until", UNTIL)
    assert f"{export}: row 3: column DueDate: '31/02/2024' is not a date" in replayed.stderr
    assert "events: 10 read, 8 accepted, 2 rejected" in replayed.stderr
    assert "rejected by reason: unmappable 2" in replayed.stderr


def test_an_event_the_contract_rejects_is_reported_with_the_file_and_row(riskwatch, tmp_path):
    export = tmp_path / "receivables.csv"
    lines = open(RECEIVABLES[1], encoding="gbk").read().splitlines()
    lines.append('INV-3001,C001,外币,"1,000.00",SGD,05/01/2024,04/02/2024,,,')   # no rate for SGD
    export.write_bytes(("\n".join(lines) + "\n").encode("gbk"))
    done = riskwatch("replay", "--mapping", RECEIVABLES[0], export)
    assert done.returncode == 0
    [reported] = [line for line in done.stderr.splitlines() if ": row " in line]
    assert reported.startswith(f"{export}: row 7: currency") and "'SGD'" in reported


def test_a_source_without_a_column_the_mapping_names_is_refused_before_any_output(riskwatch, tmp_path):
    export = tmp_path / "orders.csv"
    export.write_text("OrderNo;Customer;Amount\nSO-1;C1;1,00\n", encoding="utf-8")
    done = riskwatch("replay", "--mapping", ORDERS[0], export)
    assert done.returncode == 2 and done.stdout == ""
    assert (f"{export}: row 1 (header): no column 'Currency' (named by mappings/orders.yaml "
            f"events[0].fields.currency.column); its columns: OrderNo, Customer, Amount") in done.stderr
    imported = riskwatch("import", "--mapping", ORDERS[0], export, *ORDERS[1:])
    assert imported.returncode == 2
    assert len(imported.stdout.splitlines()) == 11         # the good source is still imported
    assert imported.stderr.splitlines()[-1] == "1 source(s) not read"


def test_run_reads_an_export_through_a_mapping(riskwatch, tmp_path):
    done = riskwatch("run", "--input", ORDERS[1], "--mapping", ORDERS[0], "--metrics-port", "0", "--exit-when-done",
                     "--rate", "0", "--lines", "--no-console", "--store-dir", tmp_path / "store")
    assert done.returncode == 0, done.stderr
    assert "events: 11 read, 11 accepted, 0 rejected" in done.stderr
    assert "shp-SO-2001" in done.stdout and "shp-SO-2002" not in done.stdout


@pytest.mark.parametrize("arguments, message", [
    (["import", "tests/data/exports/orders.csv"], "give --mapping for the sources"),
    (["run", "--mapping", "mappings/orders.yaml"], "--mapping reads the --input file: give --input too"),
    (["replay"], "give FILE... (or --export MAPPING SOURCE)"),
])
def test_usage_errors(riskwatch, arguments, message):
    done = riskwatch(*arguments)
    assert done.returncode == 2 and message in done.stderr


def test_a_reversed_payment_gives_no_payment_through_the_empty_condition(riskwatch, tmp_path):
    """A receivables export with a ReversedDate column (a bounced payment).
    The payment event's conditions: PaidDate not empty and ReversedDate
    `empty`. INV-1 is paid 6 days late and stands: no alert (30 days allowed).
    INV-2's payment was reversed: no payment.received, so on 15 April it is
    more than 30 days past its due date of 4 February: overdue, open. INV-3's
    PaidDate is spaces (a padded export): empty, so no payment either, and
    no problem with the row."""
    mapping = tmp_path / "receivables-reversals.yaml"
    shipped = open(RECEIVABLES[0], encoding="utf-8").read()
    condition = "    when: {column: PaidDate, not_empty: true}\n"
    assert condition in shipped
    mapping.write_text(shipped.replace(condition, "    when: [{column: PaidDate, not_empty: true}, "
                                                  "{column: ReversedDate, empty: true}]\n"), encoding="utf-8")
    header = ("InvoiceNumber,CustomerCode,CustomerName,Amount,Currency,IssueDate,DueDate,PaidDate,PaidAmount,"
              "LastModified,ReversedDate\n")
    export = tmp_path / "receivables.csv"
    export.write_bytes((header + "INV-1,C1,甲,1000.00,CNY,05/01/2024,04/02/2024,10/02/2024,1000.00,,\n"
                                 "INV-2,C2,乙,2000.00,CNY,05/01/2024,04/02/2024,10/02/2024,2000.00,,20/02/2024\n"
                                 "INV-3,C3,丙,3000.00,CNY,05/01/2024,04/02/2024,   ,,,\n").encode("gbk"))
    done = riskwatch("import", "--row-order", "--mapping", mapping, export)
    assert done.returncode == 0, done.stderr
    assert [(e["invoice_id"], e["type"]) for e in map(json.loads, done.stdout.splitlines())] == [
        ("INV-1", "invoice.issued"), ("INV-1", "payment.received"), ("INV-2", "invoice.issued"),
        ("INV-3", "invoice.issued")]
    assert done.stderr == "rows: 3 read, 3 mapped, 0 gave no event, 0 not mapped; 4 events\n"
    replayed = riskwatch("replay", "--mapping", mapping, export, "--until", UNTIL)
    assert outcome(replayed) == {("payment_overdue", "INV-2"): "open", ("payment_overdue", "INV-3"): "open"}
