"""Import of a receivables CSV export to events, against the csv module reading the same file.

The export is generated once (benchmarks/out/): GBK, thousands separators,
day/month/year dates, about two in three invoices paid, as the shipped
mappings/receivables.yaml reads it. The import reads it through that
mapping (csv reader, compiled row mapper, JSON lines written to /dev/null);
the baseline iterates the same file's rows with the csv module alone, same
encoding. Pairs are interleaved; the medians and their ratio are reported,
with each one's peak memory: what tracemalloc saw allocated at most in a
fresh process doing only that (ru_maxrss would not do: Linux keeps the
parent's high-water mark across fork and exec).

    python benchmarks/import_csv.py [--rows 1000000] [--pairs 3]
"""

from __future__ import annotations

import argparse
import csv
import gc
import importlib
import os
import random
import statistics
import subprocess
import sys
import time
import tracemalloc
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from common import OUT, write_result  # noqa: E402

MAPPING = ROOT / "mappings" / "receivables.yaml"
HEADER = ["InvoiceNumber", "CustomerCode", "CustomerName", "Amount", "Currency", "IssueDate", "DueDate", "PaidDate",
          "PaidAmount", "LastModified"]
NAMES = ["华东机电", "北方物流", "南方五金", "西部电子", "首都集团", "江南纺织"]


def export_file(rows: int, seed: int = 5) -> Path:
    path = OUT / f"receivables-{rows}-{seed}.csv"
    if path.exists():
        return path
    OUT.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    start = date(2023, 1, 1)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="gbk", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(HEADER)
        for number in range(rows):
            issued = start + timedelta(days=rng.randrange(700))
            due = issued + timedelta(days=rng.choice((30, 45, 60)))
            amount = rng.randrange(100_00, 2_000_000_00) / 100
            paid = issued + timedelta(days=rng.randrange(10, 120)) if rng.random() < 0.66 else None
            modified = (due + timedelta(days=3)).strftime("%d/%m/%Y 09:15") if rng.random() < 0.05 else ""
            writer.writerow([
                f"INV-{number + 1:07d}", f"C{rng.randrange(6000):05d}", rng.choice(NAMES), f"{amount:,.2f}",
                rng.choice(("CNY", "CNY", "CNY", "USD")), issued.strftime("%d/%m/%Y"), due.strftime("%d/%m/%Y"),
                paid.strftime("%d/%m/%Y") if paid else "", f"{amount:,.2f}" if paid else "", modified,
            ])
    tmp.rename(path)
    return path


def csv_only(path: Path) -> tuple[float, int]:
    started = time.perf_counter()
    rows = 0
    with path.open(encoding="gbk", newline="") as stream:
        for _row in csv.reader(stream):
            rows += 1
    return time.perf_counter() - started, rows - 1


def import_events(path: Path) -> tuple[float, int]:
    from riskwatch.ingest import load_mapping, read_events

    mapping = load_mapping(MAPPING)
    started = time.perf_counter()
    events = 0
    with open(os.devnull, "wb") as sink:
        write = sink.write
        for _number, lines, _problems in read_events(mapping, str(path)):
            for line in lines:
                write(line + b"\n")
            events += len(lines)
    return time.perf_counter() - started, events


def peak_bytes(kind: str, path: Path) -> int:
    """Peak traced allocation (bytes) of a fresh interpreter doing only `kind` over the file."""
    done = subprocess.run([sys.executable, __file__, "--peak-of", kind, str(path)], capture_output=True, text=True,
                          check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return int(done.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--peak-of", nargs=2, metavar=("KIND", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peak_of:
        kind, file = args.peak_of
        if kind == "import":
            importlib.import_module("riskwatch.ingest")   # loaded before tracing: the peak is the work's
        tracemalloc.start()
        (csv_only if kind == "csv" else import_events)(Path(file))
        print(tracemalloc.get_traced_memory()[1])
        return
    path = export_file(args.rows)
    csv_rates, import_rates, ratios = [], [], []
    events = 0
    for pair in range(args.pairs):
        gc.collect()
        base, rows = csv_only(path)
        gc.collect()
        elapsed, events = import_events(path)
        csv_rates.append(rows / base)
        import_rates.append(rows / elapsed)
        ratios.append(base / elapsed)
        print(f"pair {pair + 1}: csv module {rows / base:,.0f} rows/s, import {rows / elapsed:,.0f} rows/s "
              f"({events / elapsed:,.0f} events/s), ratio {base / elapsed:.3f}", flush=True)
    peak_csv, peak_import = peak_bytes("csv", path), peak_bytes("import", path)
    result = {
        "rows": args.rows,
        "events": events,
        "file_bytes": path.stat().st_size,
        "csv_module_rows_per_second": round(statistics.median(csv_rates)),
        "import_rows_per_second": round(statistics.median(import_rates)),
        "ratio_import_to_csv_module": round(statistics.median(ratios), 3),
        "ratios": [round(r, 3) for r in ratios],
        "peak_traced_mib_csv_module": round(peak_csv / 2**20, 2),
        "peak_traced_mib_import": round(peak_import / 2**20, 2),
    }
    print(result)
    write_result("import_csv", result)


if __name__ == "__main__":
    main()
