#!/usr/bin/env bash
# Install the real components the test suite starts: Prometheus, Alertmanager,
# Chromium (the console's browser tests) and PostgreSQL (the ERP database of
# the change data capture tests) from Debian's packages, the Apache Kafka
# broker, Kafka Connect and Debezium jars from Maven Central.
# Idempotent; nothing is started here (the tests start what they need).
set -euo pipefail
cd "$(dirname "$0")/.."
need_apt=()
command -v prometheus >/dev/null 2>&1 || need_apt+=(prometheus)
command -v promtool >/dev/null 2>&1 || need_apt+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || need_apt+=(prometheus-alertmanager)
# `kubectl kustomize` renders the Kubernetes manifests in the deployment tests.
command -v kubectl >/dev/null 2>&1 || need_apt+=(kubernetes-client)
# Playwright drives this browser through executable_path: browsers come from
# Debian here, never from `playwright install`.
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || need_apt+=(chromium)
# The console is in Simplified Chinese: without a CJK font its screenshots and
# text layout show empty boxes instead of characters.
{ command -v fc-list >/dev/null 2>&1 && fc-list :lang=zh-cn family | grep -q .; } || need_apt+=(fonts-noto-cjk)
# deploy/postgres/postgres.sh runs the server binaries of the package (as the
# `postgres` user it creates when the suite runs as root).
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
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
  # Debian's postgresql starts a cluster of its own on port 5432.
  if command -v pg_lsclusters >/dev/null 2>&1; then
    pg_lsclusters --no-header 2>/dev/null | while read -r version cluster _; do
      $SUDO pg_ctlcluster "$version" "$cluster" stop 2>/dev/null || true
    done
  fi
fi
if [ -x deploy/kafka/kafka.sh ]; then
  deploy/kafka/kafka.sh install
fi
if [ -x deploy/connect/connect.sh ]; then
  deploy/connect/connect.sh install
fi
