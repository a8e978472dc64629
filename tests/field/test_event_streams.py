"""Issue 13, "Broken stores and files": event inputs an operator pipes in.

Before: a FIFO, `-` for `run --input` and a process substitution
(`replay <(zcat f.gz)`) were "no such file"; a gzip file gave one "not valid
JSON" per line; a 200 MB single line was read whole (441 MB resident) before
the 1 MB record limit refused it. Now any readable stream works, gzip is
recognised by its magic bytes (on a pipe too), and a line over the limit is
counted and dropped while reading, reported with its line number, and the
rest of the file goes on.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import threading
from pathlib import Path

from riskwatch.testing import invoice_issued, to_jsonl

CONSOLE_SCRIPT = Path(sys.executable).parent / "riskwatch"
REPO = Path(__file__).resolve().parents[2]
UNTIL = "2026-03-01T00:00:00Z"


def _events() -> list:
    # Two invoices 59 days overdue on the clock UNTIL moves to: one alert each.
    return [invoice_issued(f"INV-{n}", f"C{n}", 250_000, "2026-01-01T00:00:00Z", at="2025-12-01T00:00:00Z")
            for n in (1, 2)]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RISKWATCH_")}
    env["RISKWATCH_RULES"] = str(REPO / "rules")
    return env


def _alert_ids(stdout: str) -> set[str]:
    import json
    return {json.loads(line)["subject"]["id"] for line in stdout.splitlines() if line.strip()}


def test_replay_reads_a_fifo(riskwatch, tmp_path):
    fifo = tmp_path / "events.fifo"
    os.mkfifo(fifo)
    text = to_jsonl(_events())

    def write() -> None:
        with open(fifo, "w", encoding="utf-8") as pipe:
            pipe.write(text)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    done = riskwatch("replay", fifo, "--until", UNTIL, timeout=60)
    writer.join(timeout=10)
    assert done.returncode == 0, done.stderr
    assert _alert_ids(done.stdout) == {"INV-1", "INV-2"}


def test_replay_reads_a_process_substitution_of_a_gzip_file(tmp_path):
    archive = tmp_path / "events.jsonl.gz"
    archive.write_bytes(gzip.compress(to_jsonl(_events()).encode()))
    done = subprocess.run(["bash", "-c", f'"{CONSOLE_SCRIPT}" replay <(zcat "{archive}") --until {UNTIL}'],
                          capture_output=True, text=True, timeout=60, env=_env())
    assert done.returncode == 0, done.stderr
    assert _alert_ids(done.stdout) == {"INV-1", "INV-2"}


def test_a_gzip_file_is_read_as_gzip_by_name_and_on_stdin(riskwatch, tmp_path):
    archive = tmp_path / "events.jsonl.gz"
    archive.write_bytes(gzip.compress(to_jsonl(_events()).encode()))
    by_name = riskwatch("replay", archive, "--until", UNTIL)
    assert by_name.returncode == 0, by_name.stderr
    assert _alert_ids(by_name.stdout) == {"INV-1", "INV-2"}
    assert "events: 2 read, 2 accepted, 0 rejected" in by_name.stderr
    piped = riskwatch("replay", "-", "--until", UNTIL, input=archive.read_bytes())
    assert piped.returncode == 0, piped.stderr
    assert _alert_ids(piped.stdout) == {"INV-1", "INV-2"}


def test_a_cut_gzip_file_reports_where_it_ends_and_keeps_what_was_read(riskwatch, tmp_path):
    lines = [invoice_issued(f"INV-{n}", "C1", 1000, "2026-01-01T00:00:00Z", at="2025-12-01T00:00:00Z")
             for n in range(3000)]
    whole = gzip.compress(to_jsonl(lines).encode())
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    done = riskwatch("replay", cut)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    last = done.stderr.splitlines()[-1]
    assert last.startswith(f"{cut}: cannot read further: gzip stream damaged or cut short after line ")
    read = int(last.split("after line ")[1].split()[0])
    assert 0 < read < 3000
    assert f"events: {read} read, {read} accepted" in done.stderr


def test_run_reads_events_from_stdin(tmp_path):
    done = subprocess.run(
        [str(CONSOLE_SCRIPT), "run", "--input", "-", "--store-dir", str(tmp_path / "store"), "--metrics-port", "0",
         "--exit-when-done", "--quiet", "--rate", "0"],
        input=to_jsonl(_events()), capture_output=True, text=True, timeout=60, env=_env())
    assert done.returncode == 0, done.stderr
    assert "events: 2 read, 2 accepted, 0 rejected" in done.stderr


def test_a_missing_input_is_still_refused_naming_it(riskwatch, tmp_path):
    done = riskwatch("replay", tmp_path / "nowhere.jsonl")
    assert done.returncode == 2
    assert done.stderr == f"{tmp_path / 'nowhere.jsonl'}: cannot read: No such file or directory\n"


# ---------------------------------------------------------------- one huge line

_MEASURE = """
import resource, subprocess, sys
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
sys.stdout.write(done.stderr)
print(f"peak-rss-kb {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}")
sys.exit(done.returncode)
"""


def test_a_40_mb_line_is_refused_while_reading_and_the_rest_goes_on(tmp_path):
    first, second = to_jsonl(_events()).splitlines()
    path = tmp_path / "huge-line.jsonl"
    with open(path, "wb") as out:
        out.write(first.encode() + b"\n")
        out.write(b'{"type": "order.placed", "region": "' + b"x" * 40_000_000 + b'"}\r\n')
        out.write(second.encode() + b"\n")
    done = subprocess.run([sys.executable, "-c", _MEASURE, str(CONSOLE_SCRIPT), "replay", str(path), "--until", UNTIL],
                          capture_output=True, text=True, timeout=120, env=_env())
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{path}: line 2: record is 40000038 bytes; the limit is 1000000" in done.stdout
    assert "events: 3 read, 2 accepted, 1 rejected" in done.stdout
    peak_mb = int(done.stdout.split("peak-rss-kb ")[1].split()[0]) / 1024
    assert peak_mb < 150, f"peak resident memory {peak_mb:.0f} MB for a 40 MB line"
