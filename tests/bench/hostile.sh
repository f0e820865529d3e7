#!/usr/bin/env bash
# Benchmark: tidewatch-ingest under hostile and clumsy clients. A throwaway
# PostgreSQL, the daemon with its default limits, and tests/bench/hostile.py:
# a well-behaved client (Health.Check and one-record Submits, 25 calls/s)
# runs a quiet phase, then keeps calling while every attack runs at once
# (header-list amplification, flow-control hoarding, a reader that never
# reads, a connection flood, 4 MiB Submits of empty records, poisoned
# batches).
#
#   tests/bench/hostile.sh [-q QUIET_S] [-a ATTACK_S] [-A attack,...] [-b BUILD_DIR]
#                          [-- tidewatch-ingest flags...]
#
# Prints the client's p50/p99 and errors in both phases, what each attack
# achieved, and the daemon's peak RSS. Targets: no errors, RSS under 256 MB,
# p99 under attack within 2x of the quiet run.
set -euo pipefail

quiet=10 attack=20 attacks=
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$root/build
while getopts q:a:A:b:h opt; do
  case $opt in
    q) quiet=$OPTARG ;;
    a) attack=$OPTARG ;;
    A) attacks=$OPTARG ;;
    b) build=$OPTARG ;;
    *) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
daemon_flags=("$@")
for v in "$quiet" "$attack"; do
  case $v in ''|*[!0-9]*|0) echo "-q and -a take a positive number of seconds" >&2; exit 2 ;; esac
done

# shellcheck source=SCRIPTDIR/../../deploy/lib/pg.sh
. "$root/deploy/lib/pg.sh"
for b in tidewatch-ingest tidewatch-migrate; do
  [ -x "$build/bin/$b" ] || { echo "missing $build/bin/$b: build first (cmake -S . -B build && cmake --build build -j2)" >&2; exit 1; }
done
[ -f "$build/py/tidewatch/v1/ingest_pb2.py" ] ||
  { echo "missing $build/py (python modules): build with the tests enabled" >&2; exit 1; }
/usr/bin/python3 -c 'import grpc' 2>/dev/null || { echo "missing python3-grpcio (apt-get install python3-grpcio)" >&2; exit 1; }
bindir=$(tw_pg_bindir) || { echo "PostgreSQL server binaries not found (apt-get install postgresql)" >&2; exit 1; }

# shellcheck source=SCRIPTDIR/lib.sh
. "$root/tests/bench/lib.sh"
tw_bench_start hostile

tw_pg_chown "$work"
tw_pg_init "$work/data"
tw_pg_start "$work/data" "$work" "$work/postgres.log"
tw_pg_createdb "$work" bench
url="host=$work dbname=bench user=postgres"
TIDEWATCH_LOG_LEVEL=warn "$build/bin/tidewatch-migrate" --database-url "$url" >/dev/null

grpc_port=$(free_port)
TIDEWATCH_LOG_LEVEL=warn "$build/bin/tidewatch-ingest" --listen "127.0.0.1:$grpc_port" \
  --metrics-listen "" --database-url "$url" "${daemon_flags[@]}" 2>"$work/ingest.log" & daemon=$!
pids+=("$daemon")
wait_port "$grpc_port"
# Serving once the database connection is up.
for _ in $(seq 100); do
  "$build/bin/tidewatch" health --target "127.0.0.1:$grpc_port" tidewatch.v1.IngestService \
    >/dev/null 2>&1 && break
  sleep 0.1
done

echo "tidewatch-ingest $(cd "$root" && git describe --always --dirty 2>/dev/null || echo '?'), flags: ${daemon_flags[*]:-(defaults)}; $(nproc) cores shared by daemon, PostgreSQL, attackers and client"
rc=0
TW_BUILD_DIR=$build /usr/bin/python3 "$root/tests/bench/hostile.py" --port "$grpc_port" --pid "$daemon" \
  --quiet "$quiet" --attack "$attack" ${attacks:+--attacks "$attacks"} || rc=$?
lines=$(wc -l <"$work/ingest.log")
echo "daemon log: $lines lines during the run (warn and above)"
[ "$lines" -eq 0 ] || sort "$work/ingest.log" | cut -c 26- | sort | uniq -c | sort -rn | head -n 5
exit $rc
