#!/usr/bin/env bash
# Benchmark: does tidewatch-provenance keep up with tidewatch-ingest, and how
# fast does tidewatch-query answer investigators? One run, one throwaway
# PostgreSQL with fsync = on and synchronous_commit = on, the real pipeline:
#
#   1. N records (default 5,000,000) naming engines and boats drawn from M
#      items per kind (default 500,000, so about 1,000,000 items in all) are
#      streamed into tidewatch-ingest at full speed while tidewatch-provenance
#      consumes the log. Printed: the ingest rate, the consumer's rate over
#      the same window and their ratio (target >= 1.0: it keeps up), the
#      consumer's largest lag seen, and how long it took to drain after
#      ingest stopped. Then the ceiling: the derived rows COPYed by
#      PostgreSQL into empty tables with the same indexes, as events/s (no
#      consumer can write them faster), and both rates as ratios to it.
#   2. GetChain and SearchItems from 16 concurrent clients
#      (tidewatch-query-load) with keys drawn from the items provenance
#      built: calls/s and latency p50 / p90 / p99 (target: GetChain p99
#      under 5 ms).
#   3. Each daemon's peak RSS (VmHWM).
#
#   tests/bench/provenance.sh [-n RECORDS] [-m ITEMS] [-c CLIENTS] [-d SECONDS]
#                             [-b BUILD_DIR] [-s SEED]
#
#   -n  records ingested (default 5000000)
#   -m  items per kind (engines, boats) the records draw from (default 500000)
#   -c  concurrent query clients (default 16)
#   -d  seconds of each query phase (default 20)
#   -b  build directory with bin/ (default build; use a Release build)
# Fails (exit 1) when a record is not acknowledged, or provenance does not
# reach the end of the log within 30 minutes of ingest's end.
set -euo pipefail

records=5000000 items=500000 clients=16 seconds=20 seed=1
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$root/build
while getopts n:m:c:d:b:s:h opt; do
  case $opt in
    n) records=$OPTARG ;;
    m) items=$OPTARG ;;
    c) clients=$OPTARG ;;
    d) seconds=$OPTARG ;;
    b) build=$OPTARG ;;
    s) seed=$OPTARG ;;
    *) sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
  esac
done
for v in "$records" "$items" "$clients" "$seconds" "$seed"; do
  case $v in ''|*[!0-9]*) echo "numbers only for -n -m -c -d -s" >&2; exit 2 ;; esac
done
for v in "$records" "$items" "$clients" "$seconds"; do
  [ "$v" -ge 1 ] || { echo "-n -m -c -d must be at least 1" >&2; exit 2; }
done

# shellcheck source=SCRIPTDIR/../../deploy/lib/pg.sh
. "$root/deploy/lib/pg.sh"
for b in tidewatch-ingest tidewatch-provenance tidewatch-query tidewatch-migrate \
         tidewatch-ingest-load tidewatch-query-load; do
  [ -x "$build/bin/$b" ] || { echo "missing $build/bin/$b: build first (cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build -j2)" >&2; exit 1; }
done
build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build/CMakeCache.txt" 2>/dev/null || true)
case $build_type in Release|RelWithDebInfo) ;; *) echo "warning: $build is a '${build_type:-?}' build; measure a Release build" >&2 ;; esac
bindir=$(tw_pg_bindir) || { echo "PostgreSQL server binaries not found (apt-get install postgresql)" >&2; exit 1; }

# shellcheck source=SCRIPTDIR/lib.sh
. "$root/tests/bench/lib.sh"
tw_bench_start provenance

db=bench
val() { "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h "$work" -U postgres -d "$db" -tAc "$1"; }
# metric PORT NAME: the value of the first sample of NAME on a metrics endpoint.
metric() {
  /usr/bin/python3 - "$1" "$2" <<'PY'
import sys, urllib.request
body = urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1], timeout=5).read().decode()
for line in body.splitlines():
    if line.startswith(sys.argv[2]) and line[len(sys.argv[2])] in " {":
        print(line.rsplit(" ", 1)[1]); break
else:
    print(0)
PY
}
hwm() { awk '/^VmHWM/ { printf "%.0f MB", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo "?"; }
now_s() { date +%s.%N; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a - b }'; }
rate() { awk -v n="$1" -v t="$2" 'BEGIN { printf "%.0f", n / t }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

# ------------------------------------------------------------ PostgreSQL --
tw_pg_chown "$work"
tw_pg_init "$work/data"
cat >>"$work/data/postgresql.conf" <<'CONF'

# --- provenance benchmark: durable ---
fsync = on
synchronous_commit = on
full_page_writes = on
max_wal_size = 8GB
# A server sized for its data (the default 128MB holds little of a 5M-event
# model, and every chain then reads its pages from the OS cache).
shared_buffers = 2GB
CONF
tw_pg_start "$work/data" "$work" "$work/postgres.log"
tw_pg_createdb "$work" "$db"
url="host=$work dbname=$db user=postgres"
TIDEWATCH_LOG_LEVEL=warn "$build/bin/tidewatch-migrate" --database-url "$url" >/dev/null

# ----------------------------------------------------------- the daemons --
ingest_port=$(free_port) ingest_metrics=$(free_port)
prov_port=$(free_port) prov_metrics=$(free_port)
query_port=$(free_port) query_metrics=$(free_port)
TIDEWATCH_LOG_LEVEL=warn "$build/bin/tidewatch-ingest" --listen "127.0.0.1:$ingest_port" \
  --metrics-listen "127.0.0.1:$ingest_metrics" --database-url "$url" 2>>"$work/ingest.log" &
ingest_pid=$!
TIDEWATCH_LOG_LEVEL=warn "$build/bin/tidewatch-provenance" --listen "127.0.0.1:$prov_port" \
  --metrics-listen "127.0.0.1:$prov_metrics" --database-url "$url" 2>>"$work/provenance.log" &
prov_pid=$!
TIDEWATCH_LOG_LEVEL=warn "$build/bin/tidewatch-query" --listen "127.0.0.1:$query_port" \
  --metrics-listen "127.0.0.1:$query_metrics" --database-url "$url" 2>>"$work/query.log" &
query_pid=$!
pids+=("$ingest_pid" "$prov_pid" "$query_pid")
wait_port "$ingest_port"; wait_serving "$ingest_port" tidewatch.v1.IngestService
wait_port "$prov_port"; wait_serving "$prov_port" tidewatch.v1.WorkerService
wait_port "$query_port"; wait_serving "$query_port" tidewatch.v1.ProvenanceService

applied() { metric "$prov_metrics" tidewatch_consumer_applied_events_total; }
lag() { metric "$prov_metrics" tidewatch_consumer_cursor_lag_events; }

echo "PostgreSQL $("$bindir/postgres" --version | awk '{print $3}'), fsync=on, synchronous_commit=on"
echo "build: $build ($build_type); $(nproc) cores shared by every process"
echo "records: $records, items drawn from: $items engines + $items boats"
echo

# ----------------------------------------------- 1. ingest and provenance --
anchor=$(date +%s)
a0=$(applied) t0=$(now_s)
(
  while sleep 1; do lag >>"$work/lag.samples" 2>/dev/null || true; done
) & sampler=$!
pids+=("$sampler")
"$build/bin/tidewatch-ingest-load" -n "$records" --items "$items" --seed "$seed" \
  --prefix "prov$anchor" --now "$anchor" --target "127.0.0.1:$ingest_port" \
  --metrics "127.0.0.1:$ingest_metrics" >"$work/load.out" 2>"$work/load.err" ||
  { cat "$work/load.err" >&2; echo "FAIL: ingest load" >&2; exit 1; }
t1=$(now_s) a1=$(applied)
ingest_s=$(sub "$t1" "$t0")
ingest_rate=$(rate "$records" "$ingest_s")
during=$(awk -v a="$a1" -v b="$a0" 'BEGIN { printf "%d", a - b }')
consumer_rate=$(rate "$during" "$ingest_s")
total=$(val "SELECT count(*) FROM events")
deadline=$(( $(date +%s) + 1800 ))
while :; do
  done_n=$(applied)
  awk -v a="$done_n" -v b="$a0" -v t="$total" 'BEGIN { exit !(a - b >= t) }' && break
  [ "$(date +%s)" -lt "$deadline" ] || { echo "FAIL: provenance applied $done_n of $total events within 30 minutes" >&2; exit 1; }
  sleep 0.5
done
t2=$(now_s)
kill "$sampler" 2>/dev/null || true
maxlag=$(sort -n "$work/lag.samples" 2>/dev/null | tail -n 1)
drain_s=$(sub "$t2" "$t1")
overall=$(rate "$total" "$(sub "$t2" "$t0")")
# The ceiling: the very rows provenance derived, COPYed by PostgreSQL itself
# into empty tables with the same indexes (no decoding, no identity work,
# one session). No consumer writing these rows can beat it; its ratio to the
# ingest rate bounds the consumer's on this machine.
derived="prov_items prov_item_keys prov_readings prov_parties prov_party_identifiers prov_hops prov_merges"
val "CREATE SCHEMA ceiling" >/dev/null
for t in $derived; do
  val "CREATE TABLE ceiling.$t (LIKE public.$t INCLUDING ALL); COPY public.$t TO '$work/$t.copy'" >/dev/null
done
c0=$(now_s)
for t in $derived; do val "COPY ceiling.$t FROM '$work/$t.copy'" >/dev/null; done
c1=$(now_s)
val "SET client_min_messages = warning; DROP SCHEMA ceiling CASCADE" >/dev/null
for t in $derived; do rm -f "$work/$t.copy"; done
ceiling_s=$(sub "$c1" "$c0")
ceiling_rate=$(rate "$total" "$ceiling_s")
# The query phase measures a settled database: statistics and visibility
# maps as autovacuum leaves them some minutes after a bulk load (the tables
# grew from empty during the run; otherwise autovacuum's passes over them run
# during the measurement), and the load's dirty pages written out.
val "VACUUM (ANALYZE)" >/dev/null
val "CHECKPOINT" >/dev/null
nitems=$(val "SELECT count(*) FROM prov_items")
nhops=$(val "SELECT count(*) FROM prov_hops")
echo "ingest: $records records in ${ingest_s} s = $ingest_rate records/s (acknowledged, durable)"
echo "provenance while ingest ran: $during events = $consumer_rate events/s; ratio to ingest $(ratio "$consumer_rate" "$ingest_rate") (target >= 1.0)"
echo "provenance overall: $total events in $(sub "$t2" "$t0") s = $overall events/s; drained ${drain_s} s after ingest ended; largest lag sampled ${maxlag:-0} events"
echo "derived: $nitems items, $nhops hops"
echo "ceiling: the same rows by COPY into empty indexed tables: ${ceiling_s} s = $ceiling_rate events/s (ingest's rate is $(ratio "$ingest_rate" "$ceiling_rate") of it; provenance overall $(ratio "$overall" "$ceiling_rate"))"
echo

# ------------------------------------------------------------- 2. queries --
val "SELECT key FROM prov_item_keys WHERE key_kind = 1 AND NOT partial ORDER BY random() LIMIT 20000" >"$work/keys"
echo "query keys: $(wc -l <"$work/keys") engine serials drawn from prov_item_keys"
for m in chain search; do
  "$build/bin/tidewatch-query-load" --method "$m" --keys "$work/keys" -c "$clients" -d "$seconds" \
    --target "127.0.0.1:$query_port" || { echo "FAIL: query load ($m)" >&2; exit 1; }
done
echo

# ------------------------------------------------------------ 3. memory --
echo "peak RSS: tidewatch-ingest $(hwm "$ingest_pid"), tidewatch-provenance $(hwm "$prov_pid"), tidewatch-query $(hwm "$query_pid")"
