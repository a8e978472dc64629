"""Exports as ERP and spreadsheet users really send them, read through a
mapping (DOMAIN §9): a GBK export with Chinese headers, no byte-order mark
and decimal commas; dates typed as Excel serial numbers; a title above the
header; a value with an unquoted delimiter that shifts the row; a quoted
value over two lines; tomorrow's export that repeats today's rows and
revises one; a GB18030 export with names GBK cannot write; a UTF-8 or UTF-16
export with its byte-order mark under a mapping that says GBK; a CSV with title
lines above its header; a CSV quoted with apostrophes."""

from __future__ import annotations

import codecs
import datetime
import json

import pytest
import xlsxwriter

from riskwatch.ingest import ImportCounts, load_mapping, read_events
from riskwatch.testing import final_states

GBK_MAPPING = """
name: ar-gbk
source: {format: csv, encoding: gbk, delimiter: ";", decimal: ",", thousands: "."}
timezone: Asia/Shanghai
key: [发票号]
columns:
  开票日期: {format: "%Y-%m-%d"}
  到期日: {format: ["%Y-%m-%d", excel], time: "23:59:59"}
  修改时间: {format: "%Y-%m-%d %H:%M"}
events:
  - type: invoice.issued
    fields:
      invoice_id: {column: 发票号, transform: [trim]}
      customer_id: {column: 客户编码, transform: [trim, upper]}
      amount: 金额
      currency: {column: 币种, transform: [trim, {map: {人民币: CNY, 美元: USD}}], default: CNY}
      due_at: 到期日
      occurred_at: {column: 修改时间, default: {column: 开票日期}}
"""

GBK_EXPORT = "\n".join([
    "发票号;客户编码;客户名称;金额;币种;开票日期;到期日;修改时间",
    "FP-001;c001;华东机电;1.250.000,50;人民币;2024-01-05;2024-02-04;",
    # The due date typed into a number cell before the export: 45331 is 2024-02-09.
    'FP-002;C002;"北方;物流";80.000,00;美元;2024-01-10;45331;',
    # An unquoted delimiter inside the customer name moves every later value one column right.
    "FP-003;C003;南方;五金;50.000,00;人民币;2024-03-01;2024-03-31;",
    # A name over two lines, quoted: the next row is still found by the line it starts on.
    'FP-004;C004;"西部\n电子";3.000,00;人民币;2024-01-15;2024-02-14;',
    "FP-005;C005;首都;9,5;港币;2024-01-15;2024-02-14;",
]) + "\n"


def _mapping(tmp_path, text, name="mapping.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return load_mapping(path)


def test_a_gbk_export_with_chinese_headers_and_decimal_commas(tmp_path):
    mapping = _mapping(tmp_path, GBK_MAPPING)
    export = tmp_path / "应收.csv"
    export.write_bytes(GBK_EXPORT.encode("gbk"))
    counts = ImportCounts()
    rows = list(read_events(mapping, str(export), counts))
    mapped = {number: [__import__("json").loads(line) for line in lines] for number, lines, _ in rows if lines}
    problems = {number: found for number, _, found in rows if found}
    assert mapped[2][0]["amount"] == "1250000.50" and mapped[2][0]["customer_id"] == "C001"
    assert mapped[2][0]["occurred_at"] == "2024-01-05T00:00:00+08:00"
    assert mapped[3][0]["due_at"] == "2024-02-09T23:59:59+08:00" and mapped[3][0]["currency"] == "USD"
    assert problems[4] == [(None, "9 values, but the header has 8 columns (a delimiter inside an unquoted value?)")]
    assert mapped[5][0]["invoice_id"] == "FP-004"
    assert problems[7] == [("币种", "'港币' is not one of the mapped words ('人民币', '美元') (currency of invoice.issued)")]
    assert counts.summary() == "rows: 5 read, 3 mapped, 0 gave no event, 2 not mapped; 3 events"


def test_an_export_read_with_the_wrong_encoding_is_refused_at_its_header(tmp_path):
    mapping = _mapping(tmp_path, GBK_MAPPING.replace("encoding: gbk", "encoding: utf-8"))
    export = tmp_path / "应收.csv"
    export.write_bytes(GBK_EXPORT.encode("gbk"))
    try:
        read_events(mapping, str(export))
    except Exception as refused:  # noqa: BLE001
        assert str(refused) == f"{export}: the header is not utf-8 text (set source.encoding, e.g. gbk)"
    else:
        raise AssertionError("a GBK header read as UTF-8 was accepted")


@pytest.mark.parametrize("declared, mark, written, family", [
    # Excel's "CSV UTF-8" under a mapping written for the GBK export it replaced.
    ("gbk", codecs.BOM_UTF8, "utf-8", "utf-8"),
    ("gb18030", codecs.BOM_UTF8, "utf-8", "utf-8"),
    # Excel's "Unicode text" is UTF-16 with its mark.
    ("utf-8", codecs.BOM_UTF16_LE, "utf-16-le", "utf-16"),
    ("gbk", codecs.BOM_UTF16_BE, "utf-16-be", "utf-16"),
    ("utf-16-le", codecs.BOM_UTF16_LE, "utf-16-le", "utf-16"),
    ("utf-8", codecs.BOM_UTF32_LE, "utf-32-le", "utf-32"),
])
def test_an_export_whose_byte_order_mark_names_another_encoding_is_refused_naming_it(tmp_path, declared, mark,
                                                                                      written, family):
    """Read as GBK, a UTF-8 mark is two characters glued to the first
    column's name and the file was refused for a missing 发票号 that is
    plainly there; the mark says what the file is, so the refusal says it."""
    mapping = _mapping(tmp_path, GBK_MAPPING.replace("encoding: gbk", f"encoding: {declared}"))
    export = tmp_path / "应收.csv"
    export.write_bytes(mark + GBK_EXPORT.encode(written))
    with pytest.raises(Exception) as refused:
        read_events(mapping, str(export))
    assert str(refused.value) == (f"{export}: the file starts with a {family.upper()} byte-order mark: it is "
                                  f"{family.upper()} text, not {declared} (set source.encoding: {family})")


@pytest.mark.parametrize("encoding, mark, written", [
    ("utf-8", codecs.BOM_UTF8, "utf-8"), ("utf-8", b"", "utf-8"),
    ("utf-16", codecs.BOM_UTF16_LE, "utf-16-le"), ("utf-16", codecs.BOM_UTF16_BE, "utf-16-be"),
    ("utf-32", codecs.BOM_UTF32_LE, "utf-32-le"), ("gb18030", b"", "gb18030"),
])
def test_an_export_read_as_its_byte_order_mark_says_gives_the_gbk_exports_rows(tmp_path, encoding, mark, written):
    expected = list(read_events(_mapping(tmp_path, GBK_MAPPING), str(_written(tmp_path, "gbk.csv", b"", "gbk"))))
    mapping = _mapping(tmp_path, GBK_MAPPING.replace("encoding: gbk", f"encoding: {encoding}"), name="other.yaml")
    assert list(read_events(mapping, str(_written(tmp_path, "other.csv", mark, written)))) == expected


def _written(tmp_path, name, mark, encoding):
    path = tmp_path / name
    path.write_bytes(mark + GBK_EXPORT.encode(encoding))
    return path


def test_a_row_with_bytes_the_encoding_cannot_read_is_refused_alone(tmp_path):
    mapping = _mapping(tmp_path, GBK_MAPPING)
    export = tmp_path / "mixed.csv"
    export.write_bytes(GBK_EXPORT.encode("gbk") + "FP-009;C009;".encode() + b"\xff\xfe;1,00;;2024-01-01;2024-02-01;\n")
    rows = list(read_events(mapping, str(export)))
    assert rows[-1] == (8, [], [("客户名称", "not gbk text")])


SHEET_MAPPING = """
name: sheet
source: {format: xlsx, sheet: 2, header_row: 3}
timezone: Asia/Shanghai
key: [Invoice]
columns:
  Due: {format: excel, time: "23:59:59"}
events:
  - type: invoice.issued
    fields:
      invoice_id: Invoice
      customer_id: Customer
      amount: Amount
      due_at: Due
      occurred_at: {value: "2024-01-01T00:00:00+08:00"}
"""


def test_a_spreadsheet_with_a_title_serial_dates_and_numbers_as_ids(tmp_path):
    path = tmp_path / "ar.xlsx"
    workbook = xlsxwriter.Workbook(str(path))
    workbook.add_worksheet("Notes").write(0, 0, "read me")
    sheet = workbook.add_worksheet("AR")
    sheet.write(0, 0, "Receivables as of 2024-04-01")
    sheet.write_row(2, 0, ["Invoice", "Customer", "Amount", "Due"])
    sheet.write_row(3, 0, [10001, 2001, 1234.5, 45322])                   # numbers everywhere
    sheet.write_row(5, 0, ["INV-2", "C2", "1.000,00", "next week"])          # row 6 (row 5 blank)
    sheet.write_row(6, 0, ["INV-3", "C3", 99])
    sheet.write_datetime(6, 3, datetime.datetime(2024, 3, 1), workbook.add_format({"num_format": "d mmm yyyy"}))
    workbook.close()
    mapping = load_mapping(_write(tmp_path, SHEET_MAPPING))
    rows = list(read_events(mapping, str(path)))
    first = __import__("json").loads(rows[0][1][0])
    assert rows[0][0] == 4                                                   # the row number Excel shows
    assert (first["invoice_id"], first["customer_id"], first["amount"], first["due_at"]) == (
        "10001", "2001", "1234.5", "2024-01-31T23:59:59+08:00")
    assert rows[1][0] == 6 and rows[1][2] == [
        ("Amount", "'1.000,00' is not an amount (digits with a decimal point, at most 6 decimals) "
                   "(amount of invoice.issued)"),
        ("Due", "'next week' is not a date in format excel (due_at of invoice.issued)")]
    third = __import__("json").loads(rows[2][1][0])
    assert rows[2][0] == 7 and third["due_at"] == "2024-03-01T23:59:59+08:00"  # a date cell, whatever its format


def _write(tmp_path, text):
    path = tmp_path / "m.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_tomorrows_export_repeats_todays_rows_and_revises_one(riskwatch, tmp_path):
    # Today: INV-1 due 1 Feb, unpaid. Tomorrow's export repeats it with the due
    # date moved to 30 April (changed 20 Feb), and adds INV-2. Revisions hold
    # by event time (DOMAIN §3): the later terms hold, so INV-1 is not overdue
    # on 15 April (its deadline is 30 May); INV-2, due 1 Feb, is.
    header = "InvoiceNumber,CustomerCode,CustomerName,Amount,Currency,IssueDate,DueDate,PaidDate,PaidAmount,LastModified\n"
    today = tmp_path / "ar-0220.csv"
    today.write_bytes((header + "INV-1,C1,甲,1000.00,CNY,02/01/2024,01/02/2024,,,\n").encode("gbk"))
    tomorrow = tmp_path / "ar-0221.csv"
    tomorrow.write_bytes((header + "INV-1,C1,甲,1000.00,CNY,02/01/2024,30/04/2024,,,20/02/2024 10:00\n"
                          "INV-2,C2,乙,500.00,CNY,02/01/2024,01/02/2024,,,\n").encode("gbk"))
    done = riskwatch("replay", "--mapping", "mappings/receivables.yaml", today, tomorrow, "--until",
                     "2024-04-15T00:00:00+08:00")
    assert done.returncode == 0, done.stderr
    assert {(r["subject"]["id"], r["status"]) for r in final_states(done.records).values()} == {("INV-2", "open")}
    alone = riskwatch("replay", "--mapping", "mappings/receivables.yaml", today, "--until", "2024-04-15T00:00:00+08:00")
    assert {r["subject"]["id"] for r in final_states(alone.records).values()} == {"INV-1"}
    again = riskwatch("replay", "--mapping", "mappings/receivables.yaml", today, tomorrow, tomorrow, today,
                      "--until", "2024-04-15T00:00:00+08:00")
    assert again.stdout == done.stdout
    assert "events: 6 read, 6 accepted, 0 rejected, 3 duplicates" in again.stderr   # 1 + 2 + 2 + 1 events


CUSTOMERS_GB18030 = """
name: crm-customers
source: {format: csv, encoding: gb18030}
timezone: Asia/Shanghai
key: [客户编码]
columns:
  更新日期: {format: "%Y-%m-%d"}
events:
  - type: customer.profile
    fields:
      customer_id: 客户编码
      tier: {column: 等级, transform: [{map: {大客户: A, 重点: B, 普通: C}}]}
      region: 区域
      sales_rep: 业务员
      occurred_at: 更新日期
"""

# Sales reps named with characters GBK has no code for: 𠮷 (U+20BB7) and 䶮
# (U+4DAE), written by GB18030 in four bytes each.
RARE_NAMES = ["𠮷田志远", "䶮文"]


def test_a_gb18030_export_keeps_names_gbk_cannot_write(riskwatch, tmp_path):
    for name in RARE_NAMES:
        with pytest.raises(UnicodeEncodeError):
            name.encode("gbk")
    export = tmp_path / "客户.csv"
    export.write_bytes(("客户编码,等级,区域,业务员,更新日期\n"
                        f"K-01,大客户,华东,{RARE_NAMES[0]},2024-01-02\n"
                        "K-02,普通,华北,王芳,2024-01-02\n"
                        f"K-03,重点,华南,{RARE_NAMES[1]},2024-01-03\n").encode("gb18030"))
    mapping = tmp_path / "customers.yaml"
    mapping.write_text(CUSTOMERS_GB18030, encoding="utf-8")
    done = riskwatch("import", "--row-order", "--mapping", mapping, export)
    assert done.returncode == 0, done.stderr
    profiles = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(p["customer_id"], p["tier"], p["sales_rep"]) for p in profiles] == [
        ("K-01", "A", RARE_NAMES[0]), ("K-02", "C", "王芳"), ("K-03", "B", RARE_NAMES[1])]
    # Read as GBK, the four-byte characters are not GBK text: their rows are
    # refused by column, never imported with a mangled name.
    as_gbk = tmp_path / "customers-gbk.yaml"
    as_gbk.write_text(CUSTOMERS_GB18030.replace("gb18030", "gbk"), encoding="utf-8")
    refused = riskwatch("import", "--row-order", "--mapping", as_gbk, export)
    assert refused.stderr.splitlines() == [
        f"{export}: row 2: column 业务员: not gbk text",
        f"{export}: row 4: column 业务员: not gbk text",
        "rows: 3 read, 1 mapped, 0 gave no event, 2 not mapped; 1 events",
    ]


TITLED = """
name: ar-titled
source: {format: csv, header_row: 4}
timezone: Asia/Shanghai
key: [Invoice]
columns:
  Due: {format: "%d/%m/%Y", time: "23:59:59"}
  Issued: {format: "%d/%m/%Y"}
events:
  - type: invoice.issued
    fields:
      invoice_id: Invoice
      customer_id: Customer
      amount: Amount
      due_at: Due
      occurred_at: Issued
"""


def test_a_csv_with_title_lines_above_its_header_is_read_from_the_header_row(riskwatch, tmp_path):
    """Rows 1-3 are a report title, the export's date and a blank line; the
    header is row 4. A bad row is reported by its own line in the file."""
    export = tmp_path / "ar.csv"
    export.write_text("Receivables open items,,\n"
                      "Exported 01/04/2024 by ERP, all customers\n"
                      "\n"
                      "Invoice,Customer,Amount,Issued,Due\n"
                      "INV-1,C1,1000.00,02/01/2024,01/02/2024\n"
                      "INV-2,C2,2000.00,02/01/2024,30/02/2024\n"
                      "INV-3,C3,500.00,03/03/2024,02/04/2024\n", encoding="utf-8")
    mapping = tmp_path / "titled.yaml"
    mapping.write_text(TITLED, encoding="utf-8")
    done = riskwatch("import", "--row-order", "--mapping", mapping, export)
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["invoice_id"] for line in done.stdout.splitlines()] == ["INV-1", "INV-3"]
    assert done.stderr.splitlines() == [
        f"{export}: row 6: column Due: '30/02/2024' is not a date in format %d/%m/%Y (due_at of invoice.issued)",
        "rows: 3 read, 2 mapped, 0 gave no event, 1 not mapped; 2 events",
    ]
    # The replay's clock reaches 15 April: INV-1 (due 1 Feb) is more than 30 days overdue, INV-3 (due 2 Apr) not.
    replayed = riskwatch("replay", "--mapping", mapping, export, "--until", "2024-04-15T00:00:00+08:00")
    assert {(r["subject"]["id"], r["status"]) for r in final_states(replayed.records).values()} == {("INV-1", "open")}


def test_a_csv_quoted_with_apostrophes_reads_through_the_quotechar_option(riskwatch, tmp_path):
    """A customer name holding the delimiter, quoted with ' (and a literal '
    doubled inside, as the csv convention writes it)."""
    export = tmp_path / "ar.csv"
    export.write_text("Invoice,Customer,Name,Amount,Issued,Due\n"
                      "INV-1,C1,'O''Brien, Smith & Co',1000.00,02/01/2024,01/02/2024\n"
                      "INV-2,C2,Plain Ltd,2000.00,02/01/2024,01/03/2024\n", encoding="utf-8")
    quoted = TITLED.replace("header_row: 4", "quotechar: \"'\"")
    assert "quotechar" in quoted
    mapping = tmp_path / "quoted.yaml"
    # An export without customer codes: customers are known by name.
    mapping.write_text(quoted.replace("customer_id: Customer", "customer_id: Name"), encoding="utf-8")
    done = riskwatch("import", "--row-order", "--mapping", mapping, export)
    assert done.returncode == 0, done.stderr
    assert [(e["invoice_id"], e["customer_id"]) for e in map(json.loads, done.stdout.splitlines())] == [
        ("INV-1", "O'Brien, Smith & Co"), ("INV-2", "Plain Ltd")]
    # With the default quote character the name's comma splits the row, which is refused.
    mapping.write_text(mapping.read_text(encoding="utf-8").replace("quotechar: \"'\"", "quotechar: '\"'"),
                       encoding="utf-8")
    default = riskwatch("import", "--row-order", "--mapping", mapping, export)
    assert default.stderr.splitlines()[0] == (
        f"{export}: row 2: 7 values, but the header has 6 columns (a delimiter inside an unquoted value?)")
