#!/usr/bin/env bash
# Start or stop a throwaway PostgreSQL cluster for the shared-study tests, tracked by its data directory and PID.
#
#   .ci/postgres.sh start   install Debian's postgresql if initdb is missing, create a cluster in a temporary data
#                           directory owned by the postgres user, start it on 127.0.0.1 only, create a user and a
#                           database for the tests, wait until it accepts connections, and write the SQLAlchemy URL
#                           to $AUTOTUNER_POSTGRES_URLFILE (also printed on stdout). Running it again while the
#                           cluster runs prints the same URL and starts nothing.
#   .ci/postgres.sh stop    stop that cluster (pg_ctl on its data directory, i.e. its postmaster PID) and delete the
#                           data directory; a no-op when nothing was started.
#
# Settings (environment): AUTOTUNER_POSTGRES_DIR (data dir, default ${TMPDIR:-/tmp}/autotuner-postgres),
# AUTOTUNER_POSTGRES_PORT (default 55432), AUTOTUNER_POSTGRES_URLFILE (default ${TMPDIR:-/tmp}/autotuner-postgres.url).
#
# Why a cluster of our own instead of Debian's service: the service (pg_ctlcluster, systemd) is shared machine
# state; a cluster in a temporary directory on its own port is ours alone, so stopping it can never hit a
# database someone else uses, and nothing is left behind.
set -euo pipefail

tmp=${TMPDIR:-/tmp}
datadir=${AUTOTUNER_POSTGRES_DIR:-$tmp/autotuner-postgres}
port=${AUTOTUNER_POSTGRES_PORT:-55432}
urlfile=${AUTOTUNER_POSTGRES_URLFILE:-$tmp/autotuner-postgres.url}
user=autotuner
password=autotuner
database=autotuner
url="postgresql+psycopg2://$user:$password@127.0.0.1:$port/$database"

say() { echo ".ci/postgres.sh: $*" >&2; }

# Run a command as the postgres user (PostgreSQL refuses to run as root).
as_postgres() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  elif [ "$(id -un)" = postgres ]; then
    "$@"
  else
    sudo -n -u postgres -- "$@"
  fi
}

bindir() {
  local dir
  dir=$(find /usr/lib/postgresql -maxdepth 3 -name initdb -path '*/bin/*' 2>/dev/null | sort -V | tail -n 1)
  [ -n "$dir" ] && dirname "$dir"
}

install_postgres() {
  say "initdb not found: installing Debian's postgresql"
  export DEBIAN_FRONTEND=noninteractive
  # Keep the package's maintainer scripts from starting Debian's own cluster (a service we would not own).
  local policy=/usr/sbin/policy-rc.d added_policy=0 status=0 sudo_cmd=()
  [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo -n)
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo_cmd[@]}" tee "$policy" >/dev/null
    "${sudo_cmd[@]}" chmod +x "$policy"
    added_policy=1
  fi
  { "${sudo_cmd[@]}" apt-get update -qq && "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends postgresql; } \
    >"$tmp/autotuner-postgres-install.log" 2>&1 || status=$?
  [ "$added_policy" = 1 ] && "${sudo_cmd[@]}" rm -f "$policy"
  if [ "$status" -ne 0 ]; then
    tail -n 20 "$tmp/autotuner-postgres-install.log" >&2
    say "installing postgresql failed (exit $status); full output in $tmp/autotuner-postgres-install.log"
    exit 1
  fi
}

running() {
  local bin=$1
  [ -f "$datadir/postmaster.pid" ] && as_postgres "$bin/pg_ctl" -D "$datadir" status >/dev/null 2>&1
}

start() {
  local bin
  bin=$(bindir) || true
  if [ -z "$bin" ]; then
    install_postgres
    bin=$(bindir)
  fi
  if running "$bin"; then
    say "the cluster in $datadir already runs: reusing it"
    echo "$url" >"$urlfile"
    echo "$url"
    return 0
  fi
  if [ ! -f "$datadir/PG_VERSION" ]; then
    rm -rf "$datadir"
    mkdir -p "$datadir"
    chown postgres:postgres "$datadir" 2>/dev/null || true
    chmod 700 "$datadir"
    # Trust only through the cluster's own socket directory (inside the data dir); passwords over TCP.
    as_postgres "$bin/initdb" -D "$datadir" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
      -E UTF8 --no-instructions >"$tmp/autotuner-postgres-initdb.log" 2>&1 || {
      tail -n 20 "$tmp/autotuner-postgres-initdb.log" >&2
      say "initdb failed; see $tmp/autotuner-postgres-initdb.log"
      exit 1
    }
  fi
  # -w waits until the server accepts connections; listen on loopback only, socket in the data dir.
  as_postgres "$bin/pg_ctl" -D "$datadir" -l "$datadir/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $datadir -c max_connections=200" start >/dev/null || {
    tail -n 30 "$datadir/server.log" >&2 || true
    say "PostgreSQL did not start; see $datadir/server.log"
    exit 1
  }
  local psql=("$bin/psql" -h "$datadir" -p "$port" -U postgres -v ON_ERROR_STOP=1 -qAt)
  if [ -z "$(as_postgres "${psql[@]}" -c "SELECT 1 FROM pg_roles WHERE rolname = '$user'" postgres)" ]; then
    as_postgres "${psql[@]}" -c "CREATE ROLE $user LOGIN PASSWORD '$password'" postgres
    as_postgres "${psql[@]}" -c "CREATE DATABASE $database OWNER $user" postgres
  fi
  echo "$url" >"$urlfile"
  say "PostgreSQL ($(head -n 1 "$datadir/postmaster.pid"), port $port, data $datadir) ready; URL in $urlfile"
  echo "$url"
}

stop() {
  local bin
  bin=$(bindir) || true
  if [ -n "$bin" ] && running "$bin"; then
    local pid
    pid=$(head -n 1 "$datadir/postmaster.pid")
    as_postgres "$bin/pg_ctl" -D "$datadir" -m fast -w -t 30 stop >/dev/null || {
      say "pg_ctl stop failed: SIGKILL to postmaster $pid"
      kill -KILL "$pid" 2>/dev/null || true
    }
    say "stopped PostgreSQL (postmaster $pid)"
  else
    say "no cluster started by this script runs in $datadir: nothing to stop"
  fi
  rm -rf "$datadir"
  rm -f "$urlfile"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
