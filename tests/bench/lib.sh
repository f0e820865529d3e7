# shellcheck shell=bash
# What the benchmark scripts share. Sourced, not run; needs deploy/lib/pg.sh
# sourced first when a script runs a PostgreSQL cluster.
#
#   tw_bench_start NAME   makes the private work directory $work (mode 0700)
#                         and arms the exit trap: every pid in $pids is
#                         killed, the cluster in $work/data (if any) stopped,
#                         $work removed
#   free_port             prints a free TCP port on 127.0.0.1
#   wait_port PORT        waits up to 10 s for something to listen there
#   cpu_ticks PID         clock ticks (user + system) PID has used so far

tw_bench_start() {
  work=$(mktemp -d "/tmp/tw-bench-$1.XXXXXX")
  chmod 700 "$work"
  pids=()
  trap tw_bench_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

tw_bench_cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -d "$work/data" ] && declare -F tw_pg_stop >/dev/null; then
    tw_pg_stop "$work/data" immediate >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}

free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_port() {
  local _
  for _ in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "nothing listening on port $1" >&2
  exit 1
}

cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
