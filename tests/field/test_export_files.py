"""Issue 12, item 12: files as editors and exports write them. A UTF-8
byte-order mark, CRLF line ends and blank lines are accepted, and a report's
line number is the file's own, in `replay` and `run --input` alike (DOMAIN §3
"Files")."""

from __future__ import annotations

from riskwatch import testing as t

UNTIL = "2024-04-01T00:00:00Z"
INVOICE = t.invoice_issued("INV-1", "C1", "100000.00", due_at="2024-02-15T00:00:00Z", at="2024-01-15T09:00:00Z",
                           event_id="i-1")
PRICES = [
    t.price_observed("Apex", "SKU-1", "1000.00", at="2024-01-20T12:00:00Z", event_id="p-1"),
    t.price_observed("Apex", "SKU-1", "850.00", at="2024-01-23T12:00:00Z", event_id="p-2"),
]


def jsonl(*events) -> bytes:
    return t.to_jsonl(events).encode()


def test_a_file_with_a_utf8_byte_order_mark_is_read_like_the_same_file_without(riskwatch, tmp_path):
    plain = tmp_path / "plain.jsonl"
    plain.write_bytes(jsonl(INVOICE, *PRICES))
    marked = tmp_path / "marked.jsonl"
    marked.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes())
    done = riskwatch("replay", marked, "--until", UNTIL)
    reference = riskwatch("replay", plain, "--until", UNTIL)
    assert done.returncode == 0, done.stderr
    assert ": line " not in done.stderr            # no line rejected, the first one included
    assert done.stdout == reference.stdout
    assert {r["indicator"] for r in done.final.values()} == {"payment_overdue", "competitor_price_cut"}


# Line 1 the invoice; lines 2-3 blank (one of them only a CR); line 4 a record
# cut short; line 5 blank; line 6 the first price; line 7 a record without a
# type; line 8 the second price. Every line ends with CRLF.
EDITED = b"\r\n".join([
    jsonl(INVOICE).rstrip(b"\n"),
    b"",
    b"   ",
    b'{"event_id": "cut-1", "type": "invoice.iss',
    b"",
    jsonl(PRICES[0]).rstrip(b"\n"),
    b'{"event_id": "x-1", "occurred_at": "2024-01-21T12:00:00Z"}',
    jsonl(PRICES[1]).rstrip(b"\n"),
]) + b"\r\n"


def reported_lines(stderr: str, path) -> list[str]:
    return [line.removeprefix(f"{path}: ") for line in stderr.splitlines() if line.startswith(f"{path}: line ")]


def test_replay_reports_the_files_own_line_numbers_after_blank_lines_and_crlf(riskwatch, tmp_path):
    path = tmp_path / "edited.jsonl"
    path.write_bytes(EDITED)
    done = riskwatch("replay", path, "--until", UNTIL)
    assert done.returncode == 0, done.stderr
    assert [line.split(":", 2)[:2] for line in reported_lines(done.stderr, path)] == [
        ["line 4", " not valid JSON"], ["line 7", " type"]]
    assert {r["indicator"] for r in done.final.values()} == {"payment_overdue", "competitor_price_cut"}


def test_run_input_reports_the_same_line_numbers_as_replay(riskwatch, tmp_path):
    path = tmp_path / "edited.jsonl"
    path.write_bytes(EDITED)
    done = riskwatch("run", "--input", path, "--metrics-port", "0", "--exit-when-done", "--rate", "0", "--quiet",
                     "--store-dir", tmp_path / "store")
    replayed = riskwatch("replay", path)
    assert done.returncode == 0, done.stderr
    assert reported_lines(done.stderr, path) == reported_lines(replayed.stderr, path)
    assert [line.split(":", 1)[0] for line in reported_lines(done.stderr, path)] == ["line 4", "line 7"]
