#!/bin/sh
# tidewatch-healthcheck TARGET [SERVICE...]: is the Tidewatch daemon at
# TARGET (host:port) able to do its work? Asks grpc.health.v1.Health/Check,
# with the CLI, for each SERVICE: the daemon's own gRPC services, which turn
# NOT_SERVING when it cannot (ingest's while its database is unreachable).
# A daemon that registers none of them yet (NOT_FOUND for every one) is
# judged by the server-wide entry, which only says that it answers.
#
# Prints one status: SERVING, "SERVING (server)", NOT_SERVING (or another
# status or error), or DOWN when nothing answers. Exits 0 only when serving.
# Used by docker-compose.yml (the image installs it as tidewatch-healthcheck)
# and by deploy/local.sh. TW_CLI names the CLI (default: tidewatch in PATH);
# TW_HEALTH_TIMEOUT the deadline per call (default 2s).
set -u

cli=${TW_CLI:-tidewatch}
timeout=${TW_HEALTH_TIMEOUT:-2s}
[ $# -ge 1 ] || { echo "usage: tidewatch-healthcheck TARGET [SERVICE...]" >&2; exit 2; }
target=$1
shift

# check [SERVICE]: sets out and rc (0 serving, 3 no answer, 1 otherwise).
check() {
  rc=0
  out=$("$cli" health --target "$target" --timeout "$timeout" "$@" 2>&1) || rc=$?
}

first_line() {
  printf '%s\n' "$1" | head -n 1 | sed 's/^tidewatch: //'
}

n=0
unregistered=0
for svc in "$@"; do
  n=$((n + 1))
  check "$svc"
  case $rc in
    0) continue ;;
    3) echo DOWN; exit 1 ;;
  esac
  case $out in
    *NOT_FOUND*) unregistered=$((unregistered + 1)) ;;
    *) first_line "$out"; exit 1 ;;
  esac
done
if [ "$n" -gt 0 ] && [ "$unregistered" -lt "$n" ]; then
  echo SERVING
  exit 0
fi
check
case $rc in
  0) if [ "$n" -gt 0 ]; then echo "SERVING (server)"; else echo SERVING; fi; exit 0 ;;
  3) echo DOWN; exit 1 ;;
  *) first_line "$out"; exit 1 ;;
esac
