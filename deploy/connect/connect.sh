#!/usr/bin/env bash
# A local Kafka Connect worker with the Debezium PostgreSQL connector, for
# change data capture from an ERP database into the project's broker (tests,
# CI, an operator's laptop), run from the Maven Central jars with Java 17.
#
#   connect.sh install                  copy the Connect runtime into lib/ and the
#                                       Debezium connector into plugins/ (idempotent)
#   connect.sh start DIR BROKER PORT    start a distributed-mode worker whose REST API
#                                       listens on 127.0.0.1:PORT, wait until it
#                                       answers, print its pid
#   connect.sh stop DIR                 stop the worker started in DIR
#
# Distributed mode, even for one worker: connectors are registered through
# the REST API exactly as an operator does it in production (docs/ingest.md),
# and the connector's configuration, offsets and status live in Kafka topics,
# so a restarted worker resumes where it left off without a local file.
#
# Environment: CONNECT_HEAP (default -Xmx512m -Xms128m), CONNECT_START_TIMEOUT
# (seconds, default 120), CONNECT_GROUP_ID (default riskwatch-connect; it also
# prefixes the three internal topics, so two Connect clusters can share a
# broker), CONNECT_OFFSET_FLUSH_MS (default 10000).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
LIB="$HERE/lib"
PLUGINS="$HERE/plugins"
DEBEZIUM_PLUGIN="$PLUGINS/debezium-connector-postgres"

die() { echo "connect.sh: $*" >&2; exit 1; }
# java_bin, port_open, stop_pidfile
# shellcheck source=../lib/jvm-service.sh
. "$HERE/../lib/jvm-service.sh"

installed() {
  ls "$LIB"/connect-runtime-*.jar >/dev/null 2>&1 && ls "$LIB"/slf4j-reload4j-*.jar >/dev/null 2>&1 \
    && ls "$DEBEZIUM_PLUGIN"/debezium-connector-postgres-*.jar >/dev/null 2>&1
}

cmd_install() {
  if installed; then echo "connect.sh: jars already in $LIB and $DEBEZIUM_PLUGIN"; return 0; fi
  command -v mvn >/dev/null 2>&1 || die "mvn not found (apt-get install maven)"
  # Into fresh directories, then moved: a copy cut short must not look installed.
  rm -rf "$LIB.partial" "$DEBEZIUM_PLUGIN.partial"
  mvn -q -B -f "$HERE/pom.xml" -P runtime dependency:copy-dependencies \
      -DoutputDirectory="$LIB.partial" -DincludeScope=runtime
  mvn -q -B -f "$HERE/pom.xml" -P debezium dependency:copy-dependencies \
      -DoutputDirectory="$DEBEZIUM_PLUGIN.partial" -DincludeScope=runtime
  rm -rf "$LIB" "$DEBEZIUM_PLUGIN"
  mkdir -p "$PLUGINS"
  mv "$LIB.partial" "$LIB"
  mv "$DEBEZIUM_PLUGIN.partial" "$DEBEZIUM_PLUGIN"
  installed || die "mvn finished but the Connect or Debezium jars are missing"
  echo "connect.sh: installed $(ls "$LIB" | wc -l) runtime jars into $LIB and $(ls "$DEBEZIUM_PLUGIN" | wc -l) into $DEBEZIUM_PLUGIN"
}

# The HTTP status of GET PATH on 127.0.0.1:PORT, or nothing when no answer
# comes (bash's /dev/tcp: no curl needed on a bare machine).
http_status() {
  local port="$1" path="$2" line=""
  {
    exec 3<>"/dev/tcp/127.0.0.1/$port" || return 0
    printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$path" >&3
    IFS= read -r -t 5 line <&3 || true
    exec 3>&-
  } 2>/dev/null
  set -- $line
  echo "${2:-}"
}

write_config() {
  local dir="$1" broker="$2" port="$3" group="${CONNECT_GROUP_ID:-riskwatch-connect}"
  cat >"$dir/connect-distributed.properties" <<PROPS
bootstrap.servers=$broker
group.id=$group
listeners=http://127.0.0.1:$port
rest.advertised.host.name=127.0.0.1
rest.advertised.port=$port
# Keys and values as JSON. A connector may override both (Debezium's
# "key.converter.schemas.enable" etc.); these are the defaults.
key.converter=org.apache.kafka.connect.json.JsonConverter
value.converter=org.apache.kafka.connect.json.JsonConverter
key.converter.schemas.enable=true
value.converter.schemas.enable=true
# The three internal topics of a distributed worker. Replication factor 1:
# the project's broker is a single node, and Connect refuses to start when
# it cannot create them with the factor asked for (default 3).
config.storage.topic=$group.configs
offset.storage.topic=$group.offsets
status.storage.topic=$group.status
config.storage.replication.factor=1
offset.storage.replication.factor=1
status.storage.replication.factor=1
offset.storage.partitions=5
status.storage.partitions=1
offset.flush.interval.ms=${CONNECT_OFFSET_FLUSH_MS:-10000}
# Connectors may create their topics with settings of their own
# (topic.creation.default.*); without them the broker's defaults apply.
topic.creation.enable=true
plugin.path=$PLUGINS
# Scan plugin.path for plugins (Debezium's jars carry no complete
# ServiceLoader manifests, which the faster service_load mode needs). The
# scan logs an ERROR for Debezium's CloudEventsConverter, which calls a
# JsonConverter method that Kafka 3.9 no longer has; riskwatch does not use
# that converter, and the connector itself loads.
plugin.discovery=only_scan
PROPS
  cat >"$dir/log4j.properties" <<PROPS
log4j.rootLogger=INFO, file
log4j.logger.org.apache.kafka.clients=WARN
log4j.logger.org.apache.kafka.common=WARN
log4j.logger.org.reflections=ERROR
log4j.logger.org.eclipse.jetty=WARN
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=$dir/connect.log
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
PROPS
}

logs_tail() {
  tail -n "${1:-40}" "$2/stdout.log" "$2/connect.log" >&2 2>/dev/null || true
}

cmd_start() {
  [ $# -ge 3 ] || die "usage: connect.sh start DIR BROKER PORT"
  local dir broker="$2" port="$3" java pid
  mkdir -p "$1"; dir="$(cd "$1" && pwd)"
  installed || die "jars missing: run 'connect.sh install' first"
  if [ -f "$dir/connect.pid" ] && kill -0 "$(cat "$dir/connect.pid")" 2>/dev/null; then
    die "a Connect worker is already running from $dir (pid $(cat "$dir/connect.pid"))"
  fi
  port_open "$port" && die "127.0.0.1:$port is already in use"
  java="$(java_bin)"
  write_config "$dir" "$broker" "$port"
  # shellcheck disable=SC2086
  nohup "$java" ${CONNECT_HEAP:--Xmx512m -Xms128m} -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -Djava.awt.headless=true -Dlog4j.configuration="file:$dir/log4j.properties" \
    -cp "$LIB/*" org.apache.kafka.connect.cli.ConnectDistributed "$dir/connect-distributed.properties" \
    >"$dir/stdout.log" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$dir/connect.pid"
  # GET /connectors answers 200 only once the worker has joined its group and
  # read its config topic: before that the REST server listens but a
  # connector cannot be registered yet.
  local deadline=$((SECONDS + ${CONNECT_START_TIMEOUT:-120}))
  until [ "$(http_status "$port" /connectors)" = 200 ]; do
    if ! kill -0 "$pid" 2>/dev/null; then
      logs_tail 40 "$dir"
      die "Connect exited during start (logs in $dir)"
    fi
    if [ $SECONDS -ge $deadline ]; then
      logs_tail 40 "$dir"
      kill -9 "$pid" 2>/dev/null || true
      die "Connect's REST API did not answer on 127.0.0.1:$port in time (logs in $dir)"
    fi
    sleep 0.5
  done
  echo "$pid"
}

cmd_stop() {
  [ $# -ge 1 ] || die "usage: connect.sh stop DIR"
  stop_pidfile "$1/connect.pid"
}

case "${1:-}" in
  install) shift; cmd_install "$@" ;;
  start) shift; cmd_start "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  *) die "usage: connect.sh install | start DIR BROKER PORT | stop DIR" ;;
esac
