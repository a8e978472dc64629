#!/usr/bin/env bash
# The whole test suite from a fresh clone: installs riskwatch and the real
# components (Kafka, Prometheus, Alertmanager, Chromium), then runs pytest. Extra
# arguments go to pytest (e.g. `-m "not kafka"` for the fast part).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh --test
scripts/install-services.sh
set +e
.venv/bin/python -m pytest --durations=15 "$@"
status=$?
set -e
if [ "$status" = 5 ]; then
  echo "pytest collected no tests: treating as a failure" >&2
  exit 1
fi
exit "$status"
