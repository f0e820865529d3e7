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
#   wait_serving PORT SVC polls grpc.health.v1.Health/Check for SVC on
#                         127.0.0.1:PORT until SERVING (60 s at most; the
#                         daemons answer NOT_SERVING until their database
#                         connection is up)

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

wait_serving() {
  /usr/bin/python3 - "$1" "$2" <<'PY'
import sys, time, grpc
ch = grpc.insecure_channel("127.0.0.1:" + sys.argv[1])
check = ch.unary_unary("/grpc.health.v1.Health/Check")
svc = sys.argv[2].encode()
req = b"\n" + bytes([len(svc)]) + svc
for _ in range(600):
    try:
        if check(req, timeout=1) == b"\x08\x01":
            sys.exit(0)
    except grpc.RpcError:
        pass
    time.sleep(0.1)
sys.exit(sys.argv[2] + " never became SERVING")
PY
}
