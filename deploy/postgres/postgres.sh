#!/usr/bin/env bash
# A throw-away PostgreSQL server with logical decoding on, standing in for an
# ERP's database in the change data capture tests (and on an operator's
# laptop), run from Debian's `postgresql` package binaries
# (/usr/lib/postgresql/VERSION/bin; the newest installed version is used).
#
#   postgres.sh start DIR PORT    create a cluster once (initdb), start it listening
#                                 on 127.0.0.1:PORT only, wait until it accepts
#                                 connections, print its pid
#   postgres.sh stop DIR          stop the server started from DIR (data kept)
#   postgres.sh remove DIR        stop it and delete its cluster
#
# The superuser is `postgres`, password $POSTGRES_PASSWORD (default
# `postgres`); connections are over TCP on loopback with scram-sha-256 (no
# Unix socket), including replication connections, which Debezium uses.
#
# Run as root (as CI and the tests may be): PostgreSQL refuses to run as root
# ("cannot be run as root" in initdb and postgres; there is no option to
# allow it), so the cluster is created and run by the `postgres` system user
# that the Debian package adds, through runuser. That user cannot enter a
# root-only directory such as pytest's /tmp/pytest-of-root, so the cluster
# then lives in its own directory under ${TMPDIR:-/tmp}, owned by `postgres`,
# and DIR/pgdata is a symbolic link to it; `remove` deletes both.
#
# Environment: POSTGRES_PASSWORD (default postgres), POSTGRES_START_TIMEOUT
# (seconds, default 60).
set -euo pipefail

die() { echo "postgres.sh: $*" >&2; exit 1; }

bindir() {
  local found
  found="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
  [ -n "$found" ] && [ -x "$found/initdb" ] \
    || die "PostgreSQL binaries not found under /usr/lib/postgresql/*/bin (apt-get install postgresql)"
  echo "$found"
}

# Run a PostgreSQL program as the user that owns the cluster.
as_owner() {
  if [ "$(id -u)" = 0 ]; then
    # From /: the caller's directory may be closed to that user (every path
    # passed is absolute).
    (cd / && runuser -u postgres -- "$@")
  else
    "$@"
  fi
}

data_dir() {
  # Resolved: runuser'd programs must not pass through DIR's own path.
  readlink -f "$1/pgdata"
}

# Beside the data directory, where the server user can write it (DIR itself
# when not root; DIR/server.log links to it when root).
log_file() {
  echo "$(dirname "$(data_dir "$1")")/server.log"
}

make_cluster() {
  local dir="$1" port="$2" bin="$3" home data pwfile
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || die "running as root needs the 'postgres' user (apt-get install postgresql adds it)"
    # initdb wants an empty data directory: the password file goes beside it.
    home="$(mktemp -d "${TMPDIR:-/tmp}/riskwatch-postgres.XXXXXX")"
    chown postgres: "$home"
    data="$home/data"
    ln -sfn "$data" "$dir/pgdata"
    ln -sfn "$home/server.log" "$dir/server.log"
  else
    home="$dir"
    data="$dir/pgdata"
  fi
  pwfile="$home/superuser-password"
  ( umask 077; printf '%s\n' "${POSTGRES_PASSWORD:-postgres}" >"$pwfile" )
  [ "$(id -u)" = 0 ] && chown postgres: "$pwfile"
  # --no-locale: C collation, so a result's order does not depend on the
  # machine's locales; UTF8 holds any customer name.
  as_owner "$bin/initdb" -D "$data" -U postgres --pwfile="$pwfile" --auth=scram-sha-256 \
      --no-locale --encoding=UTF8 >"$dir/initdb.log" 2>&1 \
    || { rm -f "$pwfile"; cat "$dir/initdb.log" >&2; die "initdb failed (log in $dir/initdb.log)"; }
  rm -f "$pwfile"
  cat >>"$data/postgresql.conf" <<CONF

# --- riskwatch CDC test server (deploy/postgres/postgres.sh) ---
listen_addresses = '127.0.0.1'
port = $port
# TCP only: a socket directory would have to be writable by the server
# user and short enough for a socket path.
unix_socket_directories = ''
# Logical decoding, for Debezium's pgoutput plugin.
wal_level = logical
max_wal_senders = 4
max_replication_slots = 4
# Small: a test database, sharing the machine with Kafka and Connect.
shared_buffers = 32MB
max_connections = 40
# Row timestamps without a zone are read as UTC by the mappings in tests.
timezone = 'UTC'
log_timezone = 'UTC'
logging_collector = off
CONF
  # initdb's pg_hba.conf already allows scram-sha-256 from 127.0.0.1 for
  # ordinary and replication connections; nothing else may connect.
}

cmd_start() {
  [ $# -ge 2 ] || die "usage: postgres.sh start DIR PORT"
  local dir port="$2" bin data
  mkdir -p "$1"; dir="$(cd "$1" && pwd)"
  bin="$(bindir)"
  if [ ! -e "$dir/pgdata/PG_VERSION" ]; then
    make_cluster "$dir" "$port" "$bin"
  else
    # The port may differ from the last start's.
    sed -i "s/^port = .*/port = $port/" "$(data_dir "$dir")/postgresql.conf"
  fi
  data="$(data_dir "$dir")"
  if [ -f "$data/postmaster.pid" ] && kill -0 "$(head -n 1 "$data/postmaster.pid")" 2>/dev/null; then
    die "a server is already running from $dir (pid $(head -n 1 "$data/postmaster.pid"))"
  fi
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && die "127.0.0.1:$port is already in use"
  # pg_ctl -w waits until the server reports itself ready in postmaster.pid.
  as_owner "$bin/pg_ctl" -D "$data" -l "$(log_file "$dir")" -w \
      -t "${POSTGRES_START_TIMEOUT:-60}" start >"$dir/pg_ctl.log" 2>&1 \
    || { tail -n 30 "$dir/server.log" "$dir/pg_ctl.log" >&2 2>/dev/null; die "PostgreSQL did not start (logs in $dir)"; }
  head -n 1 "$data/postmaster.pid"
}

cmd_stop() {
  [ $# -ge 1 ] || die "usage: postgres.sh stop DIR"
  local dir="$1" data
  [ -e "$dir/pgdata/PG_VERSION" ] || { echo "postgres.sh: no cluster in $dir" >&2; return 0; }
  data="$(data_dir "$dir")"
  [ -f "$data/postmaster.pid" ] || return 0
  # Fast shutdown: open sessions (Debezium's replication connection) are
  # ended rather than waited for.
  as_owner "$(bindir)/pg_ctl" -D "$data" -m fast -w -t 30 stop >/dev/null 2>&1 || {
    local pid
    pid="$(head -n 1 "$data/postmaster.pid" 2>/dev/null || true)"
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
  }
}

cmd_remove() {
  [ $# -ge 1 ] || die "usage: postgres.sh remove DIR"
  local dir="$1" data
  cmd_stop "$dir"
  if [ -L "$dir/pgdata" ]; then
    data="$(data_dir "$dir")"
    case "$data" in */riskwatch-postgres.*/data) rm -rf "$(dirname "$data")" ;; esac
  fi
  rm -rf "$dir/pgdata"
}

case "${1:-}" in
  start) shift; cmd_start "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  remove) shift; cmd_remove "$@" ;;
  *) die "usage: postgres.sh start DIR PORT | stop DIR | remove DIR" ;;
esac
