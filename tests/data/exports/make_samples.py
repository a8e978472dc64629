"""Writes the sample exports the shipped mappings (mappings/) are tested on.

    python tests/data/exports/make_samples.py

The files are committed; this script says how they were made and remakes
them after an edit. receivables.csv is GBK (a Chinese ERP's default), with
day/month/year dates and thousands separators; orders.csv is UTF-8 with a
byte-order mark, semicolons, decimal commas, yyyymmdd dates and CRLF line
ends (a European-locale export); customers.xlsx has a title row above the
header, date cells, one date typed as a serial number into a General cell,
and an empty credit limit. customers.xls (Excel 97-2003, written with xlwt)
and customers.ods (OpenDocument, written with odfpy) hold the same rows
behind a first sheet of notes, so the mapping's `sheet` has to pick them.

xlwt and odfpy are the `dev` extra (pip install -e ".[dev]"): they only
write these samples; riskwatch reads all three with python-calamine.
"""

from __future__ import annotations

import datetime
import io
import zipfile
from pathlib import Path

import xlsxwriter

HERE = Path(__file__).resolve().parent

RECEIVABLES = [
    ["InvoiceNumber", "CustomerCode", "CustomerName", "Amount", "Currency", "IssueDate", "DueDate", "PaidDate",
     "PaidAmount", "LastModified"],
    # Paid on 15 March, 40 days after its due date of 4 February.
    ["INV-1001", "C001", "华东机电", "120,000.00", "CNY", "05/01/2024", "04/02/2024", "15/03/2024", "120,000.00", ""],
    # Paid before it fell due.
    ["INV-1002", "C002", "北方物流", "80,000.00", "CNY", "10/01/2024", "09/02/2024", "05/02/2024", "80,000.00", ""],
    # Open; its customer is on credit hold (credit limit 0 in customers.xlsx).
    ["INV-1003", "C003", "南方五金", "50,000.00", "CNY", "01/03/2024", "31/03/2024", "", "", ""],
    # Open, in US dollars, due 14 February: more than 30 days overdue by April.
    ["INV-1004", "C004", "西部电子", "30,000.00", "usd", "15/01/2024", "14/02/2024", "", "", ""],
    # Partly paid, not yet 30 days past its due date on 15 April.
    ["INV-1005", "C001", "华东机电", "9,800.00", "CNY", "20/02/2024", "21/03/2024", "20/03/2024", "4,800.00",
     "20/03/2024 16:30"],
]

ORDERS = [
    ["OrderNo", "Customer", "Amount", "Currency", "Status", "OrderDate", "PromisedDate", "DeliveredDate", "Updated"],
    # Delivered ten days after the promised day.
    ["SO-2001", "C001", "45.000,00", "CNY", "delivered", "20240108", "20240115", "20240125", "20240125"],
    # Cancelled on 16 January, before its promised day (20 January) passed.
    ["SO-2002", "C002", "12.500,50", "CNY", "canceled", "20240110", "20240120", "", "20240116"],
    # Promised for 20 March, still not delivered.
    ["SO-2003", "C004", "8.000,00", "USD", "open", "20240301", "20240320", "", "20240301"],
    # Delivered two days late: within the 72 h.
    ["SO-2004", "C001", "20.000,00", "CNY", "delivered", "20240201", "20240210", "20240212", "20240212 10:15:00"],
]

CUSTOMERS = [
    ["Code", "Name", "Class", "Region", "CreditLimit", "SalesRep", "Updated"],
    ["C001", "华东机电", "Large", "East", 500000, "Wang Fang", datetime.date(2024, 1, 2)],
    ["C002", "北方物流", "Medium", "North", 200000, "Li Lei", datetime.date(2024, 1, 2)],
    ["C003", "南方五金", "Small", "South", 0, "Zhao Min", datetime.date(2024, 1, 2)],
    # Updated typed as a number into a General cell: 45293 is 2024-01-02.
    ["C004", "西部电子", "Medium", "West", 1000000, "Chen Jie", 45293],
    # No credit limit known.
    ["C005", "首都集团", "Key", "North", None, "Liu Yang", datetime.date(2024, 1, 2)],
]

TITLE = "Customer master, exported 2024-01-02"
# The first sheet of the XLS and ODS workbooks: a reader that ignored the
# mapping's `sheet` would find no header here.
NOTES = "Read me"


def csv_text(rows: list[list[str]], delimiter: str, line_end: str) -> str:
    def cell(value: str) -> str:
        return f'"{value}"' if delimiter in value or '"' in value else value
    return "".join(delimiter.join(cell(value) for value in row) + line_end for row in rows)


def main() -> None:
    (HERE / "receivables.csv").write_bytes(csv_text(RECEIVABLES, ",", "\n").encode("gbk"))
    (HERE / "orders.csv").write_bytes(b"\xef\xbb\xbf" + csv_text(ORDERS, ";", "\r\n").encode("utf-8"))
    write_customers(HERE / "customers.xlsx")
    write_customers_xls(HERE / "customers.xls")
    write_customers_ods(HERE / "customers.ods")


def write_customers(path: Path) -> None:
    workbook = xlsxwriter.Workbook(str(path))
    workbook.set_properties({"created": datetime.datetime(2024, 1, 2)})  # the same bytes on every run
    sheet = workbook.add_worksheet("Customers")
    day = workbook.add_format({"num_format": "yyyy-mm-dd"})
    for r, c, value in customer_cells():
        if isinstance(value, datetime.datetime):
            sheet.write_datetime(r, c, value, day)
        else:
            sheet.write(r, c, value)
    workbook.close()


def customer_cells():
    """(row, column, value) of the customer sheet counting from 0, the title
    in row 0; dates as datetimes (the writers' date type); empty cells left out."""
    yield 0, 0, TITLE
    for r, row in enumerate(CUSTOMERS, start=1):
        for c, value in enumerate(row):
            if isinstance(value, datetime.date):
                yield r, c, datetime.datetime.combine(value, datetime.time())
            elif value is not None:
                yield r, c, value


def write_customers_xls(path: Path) -> None:
    import xlwt

    workbook = xlwt.Workbook(encoding="utf-8")
    workbook.add_sheet(NOTES).write(0, 0, "Sheet Customers holds the master data.")
    sheet = workbook.add_sheet("Customers")
    day = xlwt.easyxf(num_format_str="yyyy-mm-dd")
    for r, c, value in customer_cells():
        sheet.write(r, c, value, day if isinstance(value, datetime.datetime) else xlwt.Style.default_style)
    workbook.save(str(path))


def write_customers_ods(path: Path) -> None:
    from odf.opendocument import OpenDocumentSpreadsheet
    from odf.table import Table, TableCell, TableRow
    from odf.text import P

    def cell(value: object) -> TableCell:
        if value is None:
            return TableCell()
        if isinstance(value, datetime.date):
            made = TableCell(valuetype="date", datevalue=value.isoformat())
        elif isinstance(value, (int, float)):
            made = TableCell(valuetype="float", value=value)
        else:
            made = TableCell(valuetype="string")
        made.addElement(P(text=str(value)))
        return made

    document = OpenDocumentSpreadsheet()
    for name, rows in ((NOTES, [["Sheet Customers holds the master data."]]), ("Customers", [[TITLE], *CUSTOMERS])):
        table = Table(name=name)
        for values in rows:
            row = TableRow()
            for value in values:
                row.addElement(cell(value))
            table.addElement(row)
        document.spreadsheet.addElement(table)
    written = io.BytesIO()
    document.save(written)
    path.write_bytes(_dated(written.getvalue(), (2024, 1, 2, 0, 0, 0)))


def _dated(archive: bytes, when: tuple[int, ...]) -> bytes:
    """The zip `archive` with every member dated `when`: odfpy stamps the
    time of writing, and the committed sample should be the same bytes on
    every run. Member order and compression are kept (ODF wants `mimetype`
    first and stored)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(archive)) as source, zipfile.ZipFile(out, "w") as target:
        for member in source.infolist():
            dated = zipfile.ZipInfo(member.filename, when)
            dated.compress_type = member.compress_type
            dated.external_attr = member.external_attr
            target.writestr(dated, source.read(member))
    return out.getvalue()


if __name__ == "__main__":
    main()
