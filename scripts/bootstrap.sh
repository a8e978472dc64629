#!/usr/bin/env bash
# Create .venv and install riskwatch into it (with test extras when asked;
# --bench adds the libraries the benchmarks measure riskwatch against).
# Usage: scripts/bootstrap.sh [--test | --bench]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
extras=""
if [ "${1:-}" = "--test" ]; then extras="[test]"; fi
if [ "${1:-}" = "--bench" ]; then extras="[test,bench]"; fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip >/dev/null
# pip's own output (build warnings included) goes to a log shown only when
# the install fails: the first thing a newcomer reads should be riskwatch's.
log=$(mktemp)
if ! .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".${extras}" >"$log" 2>&1; then
  cat "$log" >&2
  rm -f "$log"
  exit 1
fi
rm -f "$log"
# The console's browser libraries (htmx and its server-sent-events extension)
# come from the npm registry at the versions package-lock.json pins; the
# console serves them itself, so a browser fetches nothing from outside.
if ! command -v npm >/dev/null 2>&1; then
  echo "bootstrap: npm not found; installing Debian's npm for the console's browser libraries" >&2
  apt-get install -y -q npm >/dev/null
fi
npm ci --prefix riskwatch/console --no-audit --no-fund --loglevel=error >/dev/null
