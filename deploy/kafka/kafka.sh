#!/usr/bin/env bash
# A local single-node Apache Kafka broker (KRaft, loopback only) for tests,
# CI and an operator's laptop, run from the Maven Central jars with the
# machine's Java 17.
#
#   kafka.sh install                       copy the broker jars into lib/ (idempotent)
#   kafka.sh start DIR PORT [CTRL_PORT]    format DIR once, start the broker on
#                                          127.0.0.1:PORT, wait until it accepts
#                                          connections, print its pid
#   kafka.sh stop DIR                      stop the broker started in DIR
#
# Environment: KAFKA_HEAP (default -Xmx512m -Xms128m), KAFKA_START_TIMEOUT
# (seconds, default 90), KAFKA_PARTITIONS (default partitions of topics the
# broker creates on first use, default 4).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
LIB="$HERE/lib"

die() { echo "kafka.sh: $*" >&2; exit 1; }
# java_bin, port_open, stop_pidfile
# shellcheck source=../lib/jvm-service.sh
. "$HERE/../lib/jvm-service.sh"

installed() { ls "$LIB"/kafka_2.13-*.jar >/dev/null 2>&1 && ls "$LIB"/slf4j-reload4j-*.jar >/dev/null 2>&1; }

cmd_install() {
  if installed; then echo "kafka.sh: jars already in $LIB"; return 0; fi
  command -v mvn >/dev/null 2>&1 || die "mvn not found (apt-get install maven)"
  mvn -q -B -f "$HERE/pom.xml" dependency:copy-dependencies \
      -DoutputDirectory="$LIB" -DincludeScope=runtime
  installed || die "mvn finished but $LIB has no kafka jars"
  echo "kafka.sh: installed $(ls "$LIB" | wc -l) jars into $LIB"
}

write_config() {
  local dir="$1" port="$2" ctrl="$3"
  cat >"$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$ctrl
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$ctrl
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/data
num.partitions=${KAFKA_PARTITIONS:-4}
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
min.insync.replicas=1
# A single broker: no reason to wait for more group members before the
# first rebalance (tests start workers one after another).
group.initial.rebalance.delay.ms=0
log.retention.hours=168
log.segment.bytes=67108864
log.cleaner.dedupe.buffer.size=8388608
num.network.threads=2
num.io.threads=2
PROPS
  cat >"$dir/log4j.properties" <<PROPS
log4j.rootLogger=WARN, file
log4j.logger.kafka=INFO
log4j.logger.org.apache.kafka=WARN
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=$dir/broker.log
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
PROPS
}

cmd_start() {
  [ $# -ge 2 ] || die "usage: kafka.sh start DIR PORT [CONTROLLER_PORT]"
  local dir port ctrl java pid
  mkdir -p "$1"; dir="$(cd "$1" && pwd)"; port="$2"; ctrl="${3:-$((port + 1))}"
  installed || die "jars missing: run 'kafka.sh install' first"
  if [ -f "$dir/broker.pid" ] && kill -0 "$(cat "$dir/broker.pid")" 2>/dev/null; then
    die "a broker is already running from $dir (pid $(cat "$dir/broker.pid"))"
  fi
  port_open "$port" && die "127.0.0.1:$port is already in use"
  java="$(java_bin)"
  write_config "$dir" "$port" "$ctrl"
  if [ ! -f "$dir/data/meta.properties" ]; then
    local cluster_id
    cluster_id="$("$java" -Dlog4j.configuration="file:$dir/log4j.properties" -cp "$LIB/*" kafka.tools.StorageTool random-uuid 2>/dev/null)"
    "$java" -Dlog4j.configuration="file:$dir/log4j.properties" -cp "$LIB/*" \
      kafka.tools.StorageTool format -t "$cluster_id" -c "$dir/server.properties" >"$dir/format.log" 2>&1 \
      || { cat "$dir/format.log" >&2; die "formatting $dir/data failed"; }
  fi
  # shellcheck disable=SC2086
  nohup "$java" ${KAFKA_HEAP:--Xmx512m -Xms128m} -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -Djava.awt.headless=true -Dlog4j.configuration="file:$dir/log4j.properties" \
    -cp "$LIB/*" kafka.Kafka "$dir/server.properties" >"$dir/stdout.log" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$dir/broker.pid"
  local deadline=$((SECONDS + ${KAFKA_START_TIMEOUT:-90}))
  until port_open "$port"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 30 "$dir/stdout.log" "$dir/broker.log" >&2 2>/dev/null || true
      die "broker exited during start (logs in $dir)"
    fi
    [ $SECONDS -lt $deadline ] || { kill -9 "$pid" 2>/dev/null || true; die "broker did not listen on 127.0.0.1:$port in time"; }
    sleep 0.2
  done
  echo "$pid"
}

cmd_stop() {
  [ $# -ge 1 ] || die "usage: kafka.sh stop DIR"
  stop_pidfile "$1/broker.pid"
}

case "${1:-}" in
  install) shift; cmd_install "$@" ;;
  start) shift; cmd_start "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  *) die "usage: kafka.sh install | start DIR PORT [CONTROLLER_PORT] | stop DIR" ;;
esac
