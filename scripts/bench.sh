#!/usr/bin/env bash
# Run the benchmarks; results land in benchmarks/results/*.json.
# `scripts/bench.sh core` runs only the engine benchmarks (no broker).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh --bench
cd benchmarks
../.venv/bin/python engine_throughput.py
../.venv/bin/python engine_growth.py
../.venv/bin/python memory_per_entity.py
../.venv/bin/python live_view.py
../.venv/bin/python console_render.py
../.venv/bin/python console_register.py
../.venv/bin/python import_csv.py
if [ "${1:-all}" != core ]; then
  for bench in kafka_*.py; do
    [ -e "$bench" ] && ../.venv/bin/python "$bench"
  done
fi
