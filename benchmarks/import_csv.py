"""`riskwatch import` of a receivables CSV export, against the fastest library
reader of the same file: rows per second and peak resident memory.

The export is generated once per size (benchmarks/out/): GBK, thousands
separators, day/month/year dates, about two in three invoices paid, as the
shipped mappings/receivables.yaml reads it. Each run is a fresh process:

- `import`: what `riskwatch import --mapping mappings/receivables.yaml FILE
  -o /dev/null` does by default: read (csv module), map, sort by event time
  (riskwatch.ingest.ordering: 100,000 events in memory, sorted runs spilled
  to temporary files and merged), write JSON lines. The command itself,
  run in the child's interpreter.
- `import --row-order`: the same without the sort.
- the readers alone, every column as text: the csv module (GBK decoded),
  pyarrow.csv.read_csv (GBK decoded by pyarrow's transcoder) and
  polars.read_csv (polars decodes UTF-8 only: `utf8-lossy` turns the GBK
  names into replacement characters, so it does less work than the others;
  as the baseline that makes riskwatch's ratio lower, never higher).

Runs are interleaved: each pair runs every kind once, and an import's ratio
is taken against the baseline's run of the same pair (the machine is shared;
neighbours slow both alike). The baseline is the reader with the highest
median rows/s. Times exclude the interpreter's start and imports.

Peak memory is each child's ru_maxrss. The child is started through
/bin/sh, not forked from this process: Linux carries the forking process's
high-water mark into a child across exec, so a child forked from a large
parent would report at least the parent's size.

    python benchmarks/import_csv.py [--rows 100000 1000000] [--pairs 3]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time
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
READERS = ("csv module", "pyarrow.csv", "polars")
IMPORTS = ("import", "import --row-order")
KINDS = READERS + IMPORTS


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


# --- what one child process does; a reader returns the rows it read ---------------------------------------------

def read_with_csv_module(path: Path) -> int:
    rows = 0
    with path.open(encoding="gbk", newline="") as stream:
        for _row in csv.reader(stream):
            rows += 1
    return rows - 1


def read_with_pyarrow(path: Path) -> int:
    import pyarrow as pa
    from pyarrow import csv as pa_csv

    table = pa_csv.read_csv(path, read_options=pa_csv.ReadOptions(encoding="gbk"),
                            convert_options=pa_csv.ConvertOptions(column_types={name: pa.string() for name in HEADER}))
    return table.num_rows


def read_with_polars(path: Path) -> int:
    import polars

    return polars.read_csv(path, encoding="utf8-lossy", infer_schema=False).height


def run_import(path: Path, row_order: bool) -> None:
    """The command as typed; it prints its counts on stderr, where `measure` reads them."""
    from riskwatch.cli import main

    arguments = ["import", "--mapping", str(MAPPING), str(path), "-o", os.devnull] + (["--row-order"] if row_order else [])
    main.main(arguments, prog_name="riskwatch", standalone_mode=False)


def child(kind: str, file: str) -> None:
    """Run one `kind` over `file` and print {"seconds", "rows", "max_rss_kib"} as JSON."""
    path = Path(file)
    if kind in IMPORTS:
        import riskwatch.cli.ingest  # noqa: F401 - loaded before the clock starts, as the readers' modules are

        def work() -> None:
            run_import(path, row_order=kind == "import --row-order")
    else:
        if kind == "pyarrow.csv":
            import pyarrow.csv  # noqa: F401
        elif kind == "polars":
            import polars  # noqa: F401
        reader = {"csv module": read_with_csv_module, "pyarrow.csv": read_with_pyarrow, "polars": read_with_polars}[kind]

        def work() -> int:
            return reader(path)
    started = time.perf_counter()
    rows = work()
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "rows": rows,
                      "max_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))


def measure(kind: str, path: Path) -> dict:
    """One run of `kind` in a fresh interpreter started by /bin/sh (see the module docstring)."""
    # `; :` keeps sh alive, so it forks the child instead of exec'ing it in its own (our forked) image.
    done = subprocess.run(["/bin/sh", "-c", '"$@"; :', "sh", sys.executable, __file__, "--child", kind, str(path)],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    lines = done.stdout.strip().splitlines()
    if not lines:
        raise RuntimeError(f"{kind} failed: {done.stderr}")
    result = json.loads(lines[-1])
    if kind in IMPORTS:
        # "rows: R read, M mapped, E gave no event, U not mapped; N events"
        summary = next(line for line in done.stderr.splitlines() if line.startswith("rows: "))
        result["rows"] = int(summary.split()[1])
        result["events"] = int(summary.rsplit(";", 1)[1].split()[0])
    return result


def bench(rows: int, pairs: int) -> dict:
    path = export_file(rows)
    runs: dict[str, list[dict]] = {kind: [] for kind in KINDS}
    for pair in range(pairs):
        for kind in KINDS:
            run = measure(kind, path)
            assert run["rows"] == rows, (kind, run)
            runs[kind].append(run)
        print(f"{rows:,} rows, pair {pair + 1}: " + ", ".join(
            f"{kind} {rows / runs[kind][-1]['seconds']:,.0f} rows/s" for kind in KINDS), flush=True)
    rate = {kind: statistics.median(rows / run["seconds"] for run in runs[kind]) for kind in KINDS}
    baseline = max(READERS, key=rate.__getitem__)
    ratios = {kind: [base["seconds"] / run["seconds"] for base, run in zip(runs[baseline], runs[kind])]
              for kind in IMPORTS}
    return {
        "rows": rows,
        "events": runs["import"][0]["events"],
        "file_bytes": path.stat().st_size,
        "rows_per_second": {kind: round(rate[kind]) for kind in KINDS},
        "import_events_per_second": round(statistics.median(r["events"] / r["seconds"] for r in runs["import"])),
        "baseline": baseline,
        "ratio_import_to_baseline": round(statistics.median(ratios["import"]), 3),
        "ratios_import": [round(r, 3) for r in ratios["import"]],
        "ratio_import_row_order_to_baseline": round(statistics.median(ratios["import --row-order"]), 3),
        "ratios_import_row_order": [round(r, 3) for r in ratios["import --row-order"]],
        # The largest of the runs: what the machine must have free.
        "peak_rss_mib": {kind: round(max(run["max_rss_kib"] for run in runs[kind]) / 1024, 1) for kind in KINDS},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--child", nargs=2, metavar=("KIND", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    sizes = {}
    for rows in args.rows:
        sizes[str(rows)] = result = bench(rows, args.pairs)
        print(json.dumps(result), flush=True)
    write_result("import_csv", {"pairs": args.pairs, "sizes": sizes})


if __name__ == "__main__":
    main()
