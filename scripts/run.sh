#!/usr/bin/env bash
# Install riskwatch into .venv and start the main job, embedded (no broker).
# Arguments go to `riskwatch run` (e.g. --input events.jsonl, --days 120).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/riskwatch run "$@"
