"""What `riskwatch run`'s live view costs the event loop.

1. In process, with 10,000 open alerts: one redraw (frame built from the
   view's tally, the urgent rows' owners from the desk, drawn by rich), the
   view's work per alert change and per event, and the alternative it
   avoids (describing every alert on the desk at each redraw).
2. The console script on a pseudo-terminal, `run --days 60 --rate 0
   --exit-when-done`, `--live` against `--lines`, in interleaved pairs: events
   per CPU second of the process (CPU, not wall time, so other load on the
   machine does not decide the ratio; start-up is included in both).

    python benchmarks/live_view.py [--pairs 5] [--days 60]
"""

from __future__ import annotations

import argparse
import copy
import io
import os
import pty
import random
import re
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from rich.console import Console

from riskwatch.alerts.desk import open_desk
from riskwatch.cli.live import LiveView
from riskwatch.service import EmbeddedService
from riskwatch.settings import load_settings
from riskwatch.simulate import SimulationSettings, simulate
from riskwatch.testing import default_rules

from common import write_result

CONSOLE_SCRIPT = Path(sys.executable).parent / "riskwatch"


def _median_ms(action, times: int) -> float:
    taken = []
    for _ in range(times):
        started = time.perf_counter()
        action()
        taken.append(time.perf_counter() - started)
    return statistics.median(taken) * 1000


def in_process(open_alerts: int = 10_000) -> dict:
    rules = default_rules()
    changes: list[dict] = []
    service = EmbeddedService(rules, sinks=[changes.append])
    for line in simulate(SimulationSettings(seed=7, customers=400, days=60)):
        service.feed(line)
    template = next(r for r in changes if r["status"] == "open")
    desk = open_desk(load_settings(), persistent=False)
    view = LiveView([("metrics", "http://127.0.0.1:9464/metrics")])
    view.console = Console(file=io.StringIO(), force_terminal=True, width=140, height=40)
    clock = service.engine.watermark
    rng = random.Random(1)
    for n in range(open_alerts):
        record = copy.deepcopy(template)
        record.update(alert_id=f"bench-{n}", change="raised", tier=rng.choice(["red", "orange", "yellow", "blue"]),
                      respond_by=(clock + timedelta(minutes=rng.randint(-5000, 5000))).isoformat())
        view.record(record)
        desk.ingest(record)
    view.start(service, desk)
    try:
        redraw = _median_ms(lambda: view._live.update(view._frame(time.monotonic()), refresh=True), 50)
        urgent = _median_ms(lambda: view.most_urgent(8), 50)
        describe_all = _median_ms(lambda: desk.alerts(clock), 5)
        one = dict(template, alert_id="bench-x")
        per_change = _median_ms(lambda: view.record(one), 10_000) * 1000
        view._next_draw = time.monotonic() + 3600
        per_event = _median_ms(view.tick, 10_000) * 1000
    finally:
        view.stop()
    return {"open_alerts": open_alerts, "redraw_ms": round(redraw, 2), "most_urgent_ms": round(urgent, 2),
            "desk_describe_all_ms": round(describe_all, 1), "record_per_change_us": round(per_change, 2),
            "tick_per_event_us": round(per_event, 2),
            "redraw_share_of_a_core_at_2_per_s": round(2 * redraw / 1000, 4)}


def _on_a_pty(mode: str, days: int) -> float:
    """Events per CPU second of `run` with stdout and stderr on a pseudo-terminal."""
    master, slave = pty.openpty()
    store = tempfile.mkdtemp(prefix="riskwatch-live-bench-")
    process = subprocess.Popen(
        [str(CONSOLE_SCRIPT), "run", "--days", str(days), "--rate", "0", "--exit-when-done", "--metrics-port", "0",
         "--store-dir", store, mode],
        stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env={**os.environ, "TERM": "xterm-256color"})
    os.close(slave)
    written = bytearray()
    while True:
        select.select([master], [], [])
        try:
            data = os.read(master, 1 << 16)
        except OSError:
            break
        if not data:
            break
        written += data
    _, _, usage = os.wait4(process.pid, 0)
    process.returncode = 0
    os.close(master)
    shutil.rmtree(store, ignore_errors=True)
    events = int(re.search(rb"events: (\d+) read", written).group(1))
    return events / (usage.ru_utime + usage.ru_stime)


def on_a_pty(pairs: int, days: int) -> dict:
    lines, live = [], []
    for _ in range(pairs):
        lines.append(_on_a_pty("--lines", days))
        live.append(_on_a_pty("--live", days))
    ratios = [b / a for a, b in zip(lines, live)]
    return {"days": days, "pairs": pairs, "lines_events_per_cpu_s": round(statistics.median(lines)),
            "live_events_per_cpu_s": round(statistics.median(live)),
            "ratio_live_over_lines": round(statistics.median(ratios), 3),
            "ratios": [round(r, 3) for r in ratios]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--days", type=int, default=60)
    args = parser.parse_args()
    result = {"in_process": in_process(), "pty": on_a_pty(args.pairs, args.days)}
    write_result("live_view", result)
    print(result)


if __name__ == "__main__":
    main()
