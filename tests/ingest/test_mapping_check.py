"""`riskwatch mapping check`: the shipped mappings pass; broken ones are refused
with every problem as `file: field.path: reason`, word for word
(tests/data/mappings/bad/<case>/expected.txt beside each mapping)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BAD = REPO / "tests" / "data" / "mappings" / "bad"
EXPORTS = REPO / "tests" / "data" / "exports"
CASES = sorted(p.name for p in BAD.iterdir() if p.is_dir())
SHIPPED = [("receivables", "receivables.csv", "invoice.issued, payment.received", 5, 8),
           ("orders", "orders.csv", "order.placed, order.cancelled, delivery.scheduled, delivery.delivered", 4, 11),
           ("customers", "customers.xlsx", "customer.profile", 5, 5)]


@pytest.mark.parametrize("name, sample, types, rows, events", SHIPPED)
def test_each_shipped_mapping_passes_the_check_on_its_sample(riskwatch, name, sample, types, rows, events):
    done = riskwatch("mapping", "check", f"mappings/{name}.yaml", "--sample", f"tests/data/exports/{sample}")
    assert done.returncode == 0, done.stdout + done.stderr
    source = "xlsx" if sample.endswith(".xlsx") else "csv"
    assert done.stdout.splitlines() == [
        f"mappings/{name}.yaml: ok ({name}: {source} rows give {types})",
        f"tests/data/exports/{sample}: rows: {rows} read, {rows} mapped, 0 gave no event, 0 not mapped; {events} events",
    ]


@pytest.mark.parametrize("case", CASES)
def test_a_broken_mapping_is_refused_word_for_word(riskwatch, case):
    directory = BAD / case
    arguments = ["mapping", "check", "mapping.yaml"]
    if (directory / "sample.csv").exists():
        arguments += ["--sample", "sample.csv"]
    done = riskwatch(*arguments, cwd=directory)
    expected = (directory / "expected.txt").read_text(encoding="utf-8").splitlines()
    assert done.returncode == 1
    assert done.stdout.splitlines() == expected
    assert done.stderr == f"{len(expected)} problem(s) in mapping.yaml\n"


def test_the_cases_cover_what_the_issue_names():
    messages = "\n".join((BAD / case / "expected.txt").read_text(encoding="utf-8") for case in CASES)
    for wanted in ("unknown field of invoice.issued", "unknown event type 'invoice.issue'",
                   "column 'InvoiceNo' is not in the header of sample.csv", "malformed template",
                   "bad timestamp format", "unknown time zone 'Asia/Shangai'", "amount: required for payment.received",
                   "unknown operator 'contains'"):
        assert wanted in messages


def test_a_missing_mapping_file_is_named(riskwatch, tmp_path):
    done = riskwatch("mapping", "check", tmp_path / "nowhere.yaml")
    assert done.returncode == 1
    assert done.stdout == f"{tmp_path / 'nowhere.yaml'}: cannot read: No such file or directory\n"


def test_a_sample_that_is_not_the_mappings_format_is_refused(riskwatch):
    done = riskwatch("mapping", "check", "mappings/customers.yaml", "--sample", "tests/data/exports/orders.csv")
    assert done.returncode == 2
    assert done.stdout.startswith("tests/data/exports/orders.csv: cannot read as xlsx: ")


def test_the_sample_check_lists_rows_that_cannot_be_mapped(riskwatch, tmp_path):
    sample = tmp_path / "orders.csv"
    sample.write_bytes((EXPORTS / "orders.csv").read_bytes()
                       + "SO-9;C9;1.000,00;CNY;open;20240230;20240305;;20240301\r\n".encode())
    done = riskwatch("mapping", "check", "mappings/orders.yaml", "--sample", sample)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1:] == [
        f"{sample}: row 6: column OrderDate: '20240230' is not a date in format %Y%m%d (occurred_at of order.placed)",
        f"{sample}: rows: 5 read, 4 mapped, 0 gave no event, 1 not mapped; 11 events",
    ]


def test_a_sample_none_of_whose_rows_fits_fails_the_check_and_names_the_encoding(riskwatch, tmp_path):
    """Every row refused is the mapping's fault, not the export's: a GBK
    export read as UTF-8 must not end in "ok" and exit 0."""
    mapping = tmp_path / "receivables-utf8.yaml"
    mapping.write_text((REPO / "mappings" / "receivables.yaml").read_text(encoding="utf-8")
                       .replace("encoding: gbk", "encoding: utf-8"), encoding="utf-8")
    sample = EXPORTS / "receivables.csv"
    done = riskwatch("mapping", "check", mapping, "--sample", sample)
    assert done.returncode == 1
    assert done.stdout.splitlines()[-1] == f"{sample}: rows: 5 read, 0 mapped, 0 gave no event, 5 not mapped; 0 events"
    assert done.stderr.strip().splitlines()[-1] == (
        f"no row of {sample} could be mapped: {mapping} does not fit this export; every refused row is not "
        "utf-8 text: set source.encoding to the export's (utf-8, gbk, gb18030, ...)")


def _receivables_in(tmp_path, name: str, *replacements: tuple[bytes, bytes]):
    """The shipped receivables sample (GBK) with its currency cells replaced."""
    data = (EXPORTS / "receivables.csv").read_bytes()
    for old, new in replacements:
        data = data.replace(old, new)
    sample = tmp_path / name
    sample.write_bytes(data)
    return sample


def _refused_rows(riskwatch, mapping, sample) -> list[str]:
    done = riskwatch("replay", "--mapping", mapping, sample)
    return sorted({line.split(": ")[1] for line in done.stderr.splitlines() if "no rate for" in line})


def test_the_sample_check_names_the_rows_whose_currency_the_rules_have_no_rate_for(riskwatch, tmp_path):
    """RMB is how many Chinese exports write yuan, but it is not the ISO code
    (CNY): the mapping maps every row, and replay refuses the invoices one by
    one. The check must say so before the replay, naming the same rows."""
    sample = _receivables_in(tmp_path, "rmb.csv", (b",CNY,", b",RMB,"))
    done = riskwatch("mapping", "check", "mappings/receivables.yaml", "--sample", sample)
    assert done.returncode == 0, done.stderr
    rates = REPO / "rules" / "indicators.yaml"
    assert done.stdout.splitlines()[1:] == [
        f"{sample}: rows: 5 read, 5 mapped, 0 gave no event, 0 not mapped; 8 events",
        f"{sample}: rows 2, 3, 4 and 1 more: currency 'RMB': no rate in {rates} currency_rates_to_cny, so replay "
        "refuses these rows' events (an amount is never taken as CNY); RMB is the yuan: map it to CNY in the mapping "
        "(a transform {map: {RMB: CNY}, unmapped: keep})",
    ]
    # The rows named are the ones replay refuses for the currency (row 5 is in USD),
    # and replay's refusal says what RMB is.
    assert _refused_rows(riskwatch, "mappings/receivables.yaml", sample) == ["row 2", "row 3", "row 4", "row 6"]
    replayed = riskwatch("replay", "--mapping", "mappings/receivables.yaml", sample)
    assert (f"{sample}: row 2: currency: no rate for 'RMB' in the rules (indicators.yaml currency_rates_to_cny); an "
            "amount is never taken as CNY (RMB is the yuan: its ISO 4217 code is CNY)") in replayed.stderr.splitlines()


def test_a_real_currency_the_rules_lack_is_never_suggested_as_yuan(riskwatch, tmp_path):
    """Mapping CHF to CNY would take francs as yuan: the fix offered for a
    code that may be a real currency is its rate."""
    sample = _receivables_in(tmp_path, "chf.csv", (b",usd,", b",chf,"))
    done = riskwatch("mapping", "check", "mappings/receivables.yaml", "--sample", sample)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[2:] == [
        f"{sample}: row 5: currency 'CHF': no rate in {REPO / 'rules' / 'indicators.yaml'} currency_rates_to_cny, so "
        "replay refuses these rows' events (an amount is never taken as CNY); add its rate to the rules, or, if the "
        "export's CHF stands for another currency, map it to that ISO 4217 code in the mapping (a transform "
        "{map: {WORD: CODE}, unmapped: keep})",
    ]
    assert _refused_rows(riskwatch, "mappings/receivables.yaml", sample) == ["row 5"]
    assert "the yuan" not in riskwatch("replay", "--mapping", "mappings/receivables.yaml", sample).stderr


def test_a_sample_none_of_whose_rows_has_a_rated_currency_fails_the_check(riskwatch, tmp_path):
    sample = _receivables_in(tmp_path, "rmb.csv", (b",CNY,", b",RMB,"), (b",usd,", b",rmb,"))
    done = riskwatch("mapping", "check", "mappings/receivables.yaml", "--sample", sample)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        f"no mapped row of {sample} can be replayed: no rate for 'RMB' in {REPO / 'rules' / 'indicators.yaml'}")


def test_the_currency_check_reads_the_rules_given_and_the_suggested_map_fits(riskwatch, tmp_path):
    sample = _receivables_in(tmp_path, "rmb.csv", (b",CNY,", b",RMB,"), (b",usd,", b",rmb,"))
    rules = tmp_path / "rules"
    rules.mkdir()
    for path in (REPO / "rules").iterdir():
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            (rules / path.name).write_text(text.replace("currency_rates_to_cny: {CNY: 1,", "currency_rates_to_cny: {CNY: 1, RMB: 1,"),
                                           encoding="utf-8")
    assert "RMB: 1" in (rules / "indicators.yaml").read_text(encoding="utf-8")
    done = riskwatch("mapping", "check", "mappings/receivables.yaml", "--sample", sample, "--rules", rules)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1:] == [f"{sample}: rows: 5 read, 5 mapped, 0 gave no event, 0 not mapped; 8 events"]

    mapping = tmp_path / "receivables-rmb.yaml"
    mapping.write_text((REPO / "mappings" / "receivables.yaml").read_text(encoding="utf-8").replace(
        "transform: [trim, upper], default: CNY",
        "transform: [trim, upper, {map: {RMB: CNY}, unmapped: keep}], default: CNY"), encoding="utf-8")
    done = riskwatch("mapping", "check", mapping, "--sample", sample)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1:] == [f"{sample}: rows: 5 read, 5 mapped, 0 gave no event, 0 not mapped; 8 events"]
    assert _refused_rows(riskwatch, mapping, sample) == []
