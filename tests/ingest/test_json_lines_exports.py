"""JSON lines in another schema (`format: jsonl`): an online shop's invoice
dump with nested and renamed fields, read through a mapping by `riskwatch
import` and `riskwatch replay --mapping`.

A nested object's fields are columns named by their path (`customer.code`);
a key a line does not have is empty, as null is (JSON exporters leave nulls
out). Expected alerts, from rules/indicators.yaml, with the clock at 15 April
2024 00:00 in Shanghai:
- A-1, due 4 Feb (end of day), paid 15 Mar: 39.5 days late, more than 30:
  payment_overdue raised, then resolved by the payment.
- A-2, due 9 Feb, `payment: null`: its deadline (10 Mar) passed: open.
- A-4, due 1 Apr, no `payment` key at all: deadline 1 May, nothing yet.
"""

from __future__ import annotations

import json

UNTIL = "2024-04-15T00:00:00+08:00"

MAPPING = """
name: shop-invoices
source: {format: jsonl}
timezone: Asia/Shanghai
key: [doc]
columns:
  dates.due: {time: "23:59:59"}
  payment.on: {time: "12:00"}
events:
  - type: invoice.issued
    fields:
      invoice_id: doc
      customer_id: {column: customer.code, transform: [trim, upper]}
      amount: total.amount
      currency: {column: total.currency, transform: [trim, upper], default: CNY}
      due_at: dates.due
      occurred_at: dates.issued
  - type: payment.received
    when: {column: payment.on, not_empty: true}
    fields:
      invoice_id: doc
      customer_id: {column: customer.code, transform: [trim, upper]}
      amount: payment.amount
      occurred_at: payment.on
"""


def line(record: dict) -> str:
    return json.dumps(record, ensure_ascii=False) + "\n"


def invoice(doc: str, customer: object, amount: object, issued: str, due: str, **more) -> dict:
    return {"doc": doc, "customer": {"code": customer, "name": "华东机电"},
            "total": {"amount": amount, "currency": "cny"}, "dates": {"issued": issued, "due": due}, **more}


EXPORT = "".join([
    line(invoice("A-1", " c001 ", "120000.00", "2024-01-05", "2024-02-04",
                 payment={"on": "2024-03-15", "amount": 120000})),             # a JSON number, read exactly
    line(invoice("A-2", "C002", 80000.5, "2024-01-10", "2024-02-09", payment=None)),
    "\n",
    line(invoice("A-3", "C003", "-5.00", "2024-03-01", "2024-03-31")),         # line 4: a negative amount
    line(invoice("A-4", "C004", "9800", "2024-03-02", "2024-04-01")),
    '{"doc": "A-5", "customer": \n',                                         # line 6: cut short
    line(invoice("A-6", ["C006", "C007"], "10", "2024-03-02", "2024-04-01")),  # line 7: two customers
])


def _files(tmp_path):
    mapping = tmp_path / "shop.yaml"
    mapping.write_text(MAPPING, encoding="utf-8")
    export = tmp_path / "invoices.jsonl"
    export.write_text(EXPORT, encoding="utf-8")
    return mapping, export


def test_a_json_lines_export_with_nested_fields_imports_and_reports_bad_lines(riskwatch, tmp_path):
    mapping, export = _files(tmp_path)
    done = riskwatch("import", "--row-order", "--mapping", mapping, export)
    assert done.returncode == 0, done.stderr
    events = [json.loads(text) for text in done.stdout.splitlines()]
    assert [(e["type"], e["invoice_id"], e["customer_id"], e["amount"]) for e in events] == [
        ("invoice.issued", "A-1", "C001", "120000.00"), ("payment.received", "A-1", "C001", "120000"),
        ("invoice.issued", "A-2", "C002", "80000.5"), ("invoice.issued", "A-4", "C004", "9800")]
    assert events[0]["due_at"] == "2024-02-04T23:59:59+08:00" and events[0]["currency"] == "CNY"
    assert events[1]["occurred_at"] == "2024-03-15T12:00:00+08:00"
    reports = done.stderr.splitlines()
    assert reports[0] == (f"{export}: row 4: column total.amount: '-5.00' is negative; amounts must be >= 0 "
                          f"(amount of invoice.issued)")
    assert reports[1].startswith(f"{export}: row 6: not valid JSON: ")
    assert reports[2] == (f"{export}: row 7: column customer.code: a JSON array, not a single value "
                          f"(customer_id of invoice.issued)")
    assert reports[3:] == ["rows: 6 read, 3 mapped, 0 gave no event, 3 not mapped; 4 events"]


def test_a_json_lines_export_replays_to_the_alerts_the_rules_give(riskwatch, tmp_path):
    mapping, export = _files(tmp_path)
    done = riskwatch("replay", "--mapping", mapping, export, "--until", UNTIL)
    assert done.returncode == 0, done.stderr
    assert {(r["indicator"], r["subject"]["id"]): r["status"] for r in done.final.values()} == {
        ("payment_overdue", "A-1"): "resolved", ("payment_overdue", "A-2"): "open"}
    assert "events: 7 read, 4 accepted, 3 rejected" in done.stderr
    assert "rejected by reason: unmappable 3" in done.stderr


def test_the_sample_check_names_a_column_no_line_has(riskwatch, tmp_path):
    """A key a line lacks reads as empty, so a misspelt column would pass
    every row: `mapping check --sample` is where it is caught."""
    mapping, export = _files(tmp_path)
    done = riskwatch("mapping", "check", mapping, "--sample", export)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[0] == f"{mapping}: ok (shop-invoices: jsonl rows give invoice.issued, payment.received)"
    assert done.stdout.splitlines()[-1] == f"{export}: rows: 6 read, 3 mapped, 0 gave no event, 3 not mapped; 4 events"
    mapping.write_text(MAPPING.replace("dates.due: {time", "dates.duedate: {time"), encoding="utf-8")
    misspelt = riskwatch("mapping", "check", mapping, "--sample", export)
    keys = ("customer.code, customer.name, dates.due, dates.issued, doc, payment, payment.amount, payment.on, "
            "total.amount, total.currency")
    assert misspelt.returncode == 1
    assert misspelt.stdout.splitlines() == [f"{mapping}: columns.dates.duedate: in no line of {export} (its keys: {keys})"]
