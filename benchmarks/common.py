"""Where benchmark inputs and results live."""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
OUT = ROOT / "out"              # generated inputs (not committed)
RESULTS = ROOT / "results"      # results, quoted in the README


def write_result(name: str, result: dict) -> None:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "core.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data[name] = {**result, "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                  "python": platform.python_version(), "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores"}
    path.write_text(json.dumps(data, indent=2) + "\n")
