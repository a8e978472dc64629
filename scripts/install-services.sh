#!/usr/bin/env bash
# Install the real components the test suite starts: Prometheus and
# Alertmanager from Debian's packages, Apache Kafka jars from Maven Central.
# Idempotent; nothing is started here (the tests start what they need).
set -euo pipefail
cd "$(dirname "$0")/.."
need_apt=()
command -v prometheus >/dev/null 2>&1 || need_apt+=(prometheus)
command -v promtool >/dev/null 2>&1 || need_apt+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || need_apt+=(prometheus-alertmanager)
if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  # --no-install-recommends: the packages' recommended extras pull exporters we do not use.
  $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  # The Debian packages start their own services; the suite runs its own instances.
  for svc in prometheus prometheus-alertmanager; do
    (command -v systemctl >/dev/null && $SUDO systemctl stop "$svc" 2>/dev/null) || true
    pkill -x "$svc" 2>/dev/null || true
  done
fi
if [ -x deploy/kafka/kafka.sh ]; then
  deploy/kafka/kafka.sh install
fi
