# Shell functions shared by deploy/kafka/kafka.sh and deploy/connect/connect.sh,
# which run a Java service from Maven Central jars: sourced, not run. The
# sourcing script defines `die MESSAGE`.

# The Java 17 to run: $JAVA_HOME's, else the one on PATH.
java_bin() {
  if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then echo "$JAVA_HOME/bin/java"; return; fi
  command -v java >/dev/null 2>&1 || die "java not found (Java 17 is needed)"
  command -v java
}

# True when something accepts connections on 127.0.0.1:PORT.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# stop_pidfile FILE: stop the process whose pid FILE holds (TERM, up to 30 s
# for a clean shutdown, then KILL) and remove FILE. No FILE: nothing to do.
stop_pidfile() {
  local file="$1" pid
  [ -f "$file" ] || { echo "$(basename "$0"): no $(basename "$file") in $(dirname "$file")" >&2; return 0; }
  pid="$(cat "$file")"
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 30))
    while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
  fi
  rm -f "$file"
}
