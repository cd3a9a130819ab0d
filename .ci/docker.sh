#!/usr/bin/env bash
# Start or stop a Docker daemon for the docker-launcher tests, tracked by PID (never by name).
#
#   .ci/docker.sh start   install docker.io if dockerd is missing, start `dockerd --iptables=false` in the
#                         background, wait until `docker info` answers. A daemon that already answers is left
#                         alone (and then `stop` stops nothing).
#   .ci/docker.sh stop    stop the daemon that `start` started, by the PID it recorded; no-op otherwise.
#
# Settings (environment): AUTOTUNER_DOCKERD_PIDFILE (default ${TMPDIR:-/tmp}/autotuner-dockerd.pid),
# AUTOTUNER_DOCKERD_LOG (default ${TMPDIR:-/tmp}/autotuner-dockerd.log), AUTOTUNER_DOCKERD_WAIT (seconds, 60).
#
# Why a script of our own: machines without a running daemon (this project's CI containers) need one for
# tests/integration/test_docker_launcher.py, and a daemon we start must be stopped by us, by PID, on exit, while a
# daemon someone else runs (GitHub's hosted runners) must not be touched.
set -euo pipefail

tmp=${TMPDIR:-/tmp}
pidfile=${AUTOTUNER_DOCKERD_PIDFILE:-$tmp/autotuner-dockerd.pid}
logfile=${AUTOTUNER_DOCKERD_LOG:-$tmp/autotuner-dockerd.log}
wait_seconds=${AUTOTUNER_DOCKERD_WAIT:-60}

say() { echo ".ci/docker.sh: $*" >&2; }

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  sudo_cmd=(sudo -n)
fi

daemon_answers() {
  command -v docker >/dev/null 2>&1 && "${sudo_cmd[@]}" docker info >/dev/null 2>&1
}

# The PID we recorded, if that process still is a dockerd (a PID reused by anything else is not ours to signal).
our_pid() {
  [ -f "$pidfile" ] || return 1
  local pid
  pid=$(cat "$pidfile")
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [ -r "/proc/$pid/comm" ] && [ "$(cat "/proc/$pid/comm")" = "dockerd" ] || return 1
  echo "$pid"
}

install_docker() {
  say "dockerd not found: installing Debian's docker.io"
  export DEBIAN_FRONTEND=noninteractive
  # Keep the package's maintainer scripts from starting a daemon we would not know the PID of.
  local policy=/usr/sbin/policy-rc.d added_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo_cmd[@]}" tee "$policy" >/dev/null
    "${sudo_cmd[@]}" chmod +x "$policy"
    added_policy=1
  fi
  local status=0
  { "${sudo_cmd[@]}" apt-get update -qq && "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends docker.io; } \
    >"$tmp/autotuner-docker-install.log" 2>&1 || status=$?
  if [ "$added_policy" = 1 ]; then
    "${sudo_cmd[@]}" rm -f "$policy"
  fi
  if [ "$status" -ne 0 ]; then
    tail -n 20 "$tmp/autotuner-docker-install.log" >&2
    say "installing docker.io failed (exit $status); full output in $tmp/autotuner-docker-install.log"
    exit 1
  fi
}

start() {
  if daemon_answers; then
    say "a Docker daemon already answers: leaving it alone"
    return 0
  fi
  if pid=$(our_pid); then
    say "dockerd $pid (started earlier) does not answer: stop it first with '$0 stop'"
    exit 1
  fi
  if ! command -v dockerd >/dev/null 2>&1; then
    install_docker
  fi
  # --iptables=false: containers use the host network, and many CI containers may not touch iptables.
  # The shell records its own PID and then becomes dockerd (exec), so the PID is dockerd's even through sudo.
  rm -f "$pidfile"
  # shellcheck disable=SC2016 # $$ and $1 belong to the inner shell
  "${sudo_cmd[@]}" sh -c 'echo $$ >"$1" && exec dockerd --iptables=false' sh "$pidfile" >"$logfile" 2>&1 </dev/null &
  local waited=0
  while [ ! -s "$pidfile" ] && [ "$waited" -lt 50 ]; do
    sleep 0.1
    waited=$((waited + 1))
  done
  local pid
  pid=$(cat "$pidfile" 2>/dev/null || true)
  if [ -z "$pid" ]; then
    tail -n 30 "$logfile" >&2
    say "dockerd did not start; see $logfile"
    exit 1
  fi
  say "started dockerd (pid $pid, log $logfile, pid file $pidfile)"
  waited=0
  until daemon_answers; do
    if [ ! -d "/proc/$pid" ]; then
      tail -n 30 "$logfile" >&2
      rm -f "$pidfile"
      say "dockerd exited during startup; see $logfile"
      exit 1
    fi
    if [ "$waited" -ge "$wait_seconds" ]; then
      tail -n 30 "$logfile" >&2
      say "dockerd (pid $pid) did not answer 'docker info' within ${wait_seconds}s; see $logfile (stop it with '$0 stop')"
      exit 1
    fi
    sleep 1
    waited=$((waited + 1))
  done
  say "Docker daemon ready after ${waited}s"
}

stop() {
  local pid
  if ! pid=$(our_pid); then
    if [ -f "$pidfile" ]; then
      say "the process in $pidfile is no longer dockerd: nothing to stop"
      rm -f "$pidfile"
    else
      say "no dockerd started by this script ($pidfile absent): nothing to stop"
    fi
    return 0
  fi
  # dockerd stops its containers and its containerd on SIGTERM; give it time before SIGKILL.
  "${sudo_cmd[@]}" kill -TERM "$pid" 2>/dev/null || true
  local waited=0
  while [ -d "/proc/$pid" ] && [ "$waited" -lt 30 ]; do
    sleep 1
    waited=$((waited + 1))
  done
  if [ -d "/proc/$pid" ]; then
    say "dockerd $pid still runs after 30s: SIGKILL"
    "${sudo_cmd[@]}" kill -KILL "$pid" 2>/dev/null || true
  fi
  "${sudo_cmd[@]}" rm -f "$pidfile"
  say "stopped dockerd (pid $pid)"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
