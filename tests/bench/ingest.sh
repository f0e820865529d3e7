#!/usr/bin/env bash
# Benchmark: records/s into the event log end to end through tidewatch-ingest
# (SubmitStream, every record acknowledged only once its group commit is
# durable), against raw COPY of the same rows into a copy of the events
# table and one INSERT per record (autocommit), in one run on one throwaway
# PostgreSQL with fsync = on and synchronous_commit = on.
#
#   tests/bench/ingest.sh [-n RECORDS] [-c STREAMS] [-k CONNECTIONS]
#                         [-i INSERT_ROWS] [-b BUILD_DIR] [-s SEED] [-p]
#                         [-- tidewatch-ingest flags...]
#
#   -n  records streamed and COPYed (default 1000000)
#   -c  concurrent SubmitStream calls (default 8); -k connections (default 1)
#   -i  rows of the one-INSERT-per-record baseline (default 10000)
#   -b  build directory with bin/ (default build; use a Release build)
#   -p  also record the daemon with perf (cpu-clock) during the ingest phase
# Flags after -- go to tidewatch-ingest (e.g. --batch 2000 --pipeline 4).
# Prints the three rates, ingest/COPY (target >= 0.50), ingest/INSERT
# (target >= 10), and the CPU seconds each process used per phase. Fails
# (exit 1) when a record is lost, doubled or rejected.
set -euo pipefail

records=1000000 streams=8 conns=1 inserts=10000 seed=1 perf=0
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$root/build
while getopts n:c:k:i:b:s:ph opt; do
  case $opt in
    n) records=$OPTARG ;;
    c) streams=$OPTARG ;;
    k) conns=$OPTARG ;;
    i) inserts=$OPTARG ;;
    b) build=$OPTARG ;;
    s) seed=$OPTARG ;;
    p) perf=1 ;;
    *) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
daemon_flags=("$@")
for v in "$records" "$streams" "$conns" "$inserts" "$seed"; do
  case $v in ''|*[!0-9]*) echo "numbers only for -n -c -k -i -s" >&2; exit 2 ;; esac
done
[ "$inserts" -le "$records" ] || inserts=$records

# shellcheck source=SCRIPTDIR/../../deploy/lib/pg.sh
. "$root/deploy/lib/pg.sh"
for b in tidewatch-ingest tidewatch-migrate tidewatch-ingest-load; do
  [ -x "$build/bin/$b" ] || { echo "missing $build/bin/$b: build first (cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build -j2)" >&2; exit 1; }
done
build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build/CMakeCache.txt" 2>/dev/null || true)
case $build_type in Release|RelWithDebInfo) ;; *) echo "warning: $build is a '${build_type:-?}' build; measure a Release build" >&2 ;; esac
bindir=$(tw_pg_bindir) || { echo "PostgreSQL server binaries not found (apt-get install postgresql)" >&2; exit 1; }
[ "$perf" = 0 ] || command -v perf >/dev/null || { echo "-p needs perf (apt-get install linux-perf)" >&2; exit 1; }

work=$(mktemp -d /tmp/tw-bench-ingest.XXXXXX)
chmod 700 "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  tw_pg_stop "$work/data" immediate >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "nothing listening on port $1" >&2; exit 1
}
# grpc.health.v1.Health/Check for the IngestService until SERVING (the
# daemon answers NOT_SERVING until its database connection is up).
wait_serving() {
  /usr/bin/python3 - "$1" <<'PY'
import sys, time, grpc
ch = grpc.insecure_channel("127.0.0.1:" + sys.argv[1])
check = ch.unary_unary("/grpc.health.v1.Health/Check")
req = b"\n" + bytes([len("tidewatch.v1.IngestService")]) + b"tidewatch.v1.IngestService"
for _ in range(300):
    try:
        if check(req, timeout=1) == b"\x08\x01":
            sys.exit(0)
    except grpc.RpcError:
        pass
    time.sleep(0.1)
sys.exit("tidewatch-ingest never became SERVING")
PY
}
now_s() { date +%s.%N; }
# Start each phase from the same quiet state: no dirty buffers in
# PostgreSQL, no dirty pages in the OS (a commit's fdatasync otherwise waits
# behind the writeback of earlier phases' data).
quiesce() { val "CHECKPOINT" >/dev/null; sync; }
# Mean fdatasync latency of 8 kB appends on the cluster's filesystem: what
# one autocommit INSERT waits for at least.
fsync_us() {
  /usr/bin/python3 - "$work/fsync.probe" <<'PY'
import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
buf = b"\0" * 8192
n, t0 = 0, time.perf_counter()
while n < 300 and time.perf_counter() - t0 < 2:
    os.write(fd, buf); os.fdatasync(fd); n += 1
print(round((time.perf_counter() - t0) / n * 1e6))
os.close(fd); os.unlink(sys.argv[1])
PY
}
psql_q() { "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h "$work" -U postgres -d bench "$@"; }
val() { psql_q -tAc "$1"; }

# CPU seconds (user + system) of a process; with "all", also of its reaped
# children (PostgreSQL backends that exited are charged to the postmaster).
tck=$(getconf CLK_TCK)
proc_cpu() {
  local f
  f=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
  # after "pid (comm) ": state is field 1, utime 12, stime 13, cutime 14, cstime 15
  awk -v all="${2:-}" -v t="$tck" '{ s = $12 + $13; if (all == "all") s += $14 + $15; printf "%.2f\n", s / t }' <<<"$f"
}
pg_cpu() {
  local pm total c
  pm=$(head -n 1 "$work/data/postmaster.pid")
  total=$(proc_cpu "$pm" all)
  for c in $(ps -o pid= --ppid "$pm"); do
    total=$(awk -v a="$total" -v b="$(proc_cpu "$c")" 'BEGIN { printf "%.2f", a + b }')
  done
  echo "$total"
}
# Wait until a backend has exited and been reaped (its CPU time then
# counts in the postmaster's cutime/cstime).
gone() {
  for _ in $(seq 200); do [ -e "/proc/$1" ] || return 0; sleep 0.05; done
}
per() { awk -v c="$1" -v n="$2" 'BEGIN { printf "%.1f", c / n * 1e6 }'; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a - b }'; }
# bash's `time` of a command into $work/time.out as "real user sys"
TIMEFORMAT='%R %U %S'

# ------------------------------------------------------------ PostgreSQL --
tw_pg_chown "$work"
tw_pg_init "$work/data"
# tw_pg_init makes a fast, non-durable test cluster: undo that. Later lines
# win. max_wal_size is raised for every phase alike so that bulk loads do
# not checkpoint every few seconds.
cat >>"$work/data/postgresql.conf" <<'CONF'

# --- ingest benchmark: durable ---
fsync = on
synchronous_commit = on
full_page_writes = on
max_wal_size = 4GB
CONF
tw_pg_start "$work/data" "$work" "$work/postgres.log"
tw_pg_createdb "$work" bench
url="host=$work dbname=bench user=postgres"
TIDEWATCH_LOG_LEVEL=warn "$build/bin/tidewatch-migrate" --database-url "$url" >/dev/null

settings=$(val "SELECT string_agg(name || '=' || setting || coalesce(unit, ''), ' ' ORDER BY name) FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes', 'wal_level', 'shared_buffers', 'max_wal_size', 'wal_sync_method')")
case " $settings " in
  *" fsync=on "*" synchronous_commit=on "*) ;;
  *) echo "FAIL: the cluster is not durable: $settings" >&2; exit 1 ;;
esac

# ----------------------------------------------------------- the daemon --
grpc_port=$(free_port) metrics_port=$(free_port)
TIDEWATCH_LOG_LEVEL=warn "$build/bin/tidewatch-ingest" --listen "127.0.0.1:$grpc_port" \
  --metrics-listen "127.0.0.1:$metrics_port" --database-url "$url" "${daemon_flags[@]}" \
  2>"$work/ingest.log" & daemon=$!
pids+=("$daemon")
wait_port "$grpc_port"
wait_serving "$grpc_port"

prefix="bench$(date +%s)"
anchor=$(date +%s)
load=("$build/bin/tidewatch-ingest-load" --seed "$seed" --prefix "$prefix" --now "$anchor")

echo "PostgreSQL $("$bindir/postgres" --version | awk '{print $3}'): $settings"
echo "build: $build ($build_type); $(nproc) cores shared by every process"
echo "tidewatch-ingest flags: ${daemon_flags[*]:-(defaults)}"
echo

# ------------------------------------------------------ phase 1: ingest --
echo "== ingest: $records records, $streams SubmitStream calls on $conns connection(s)"
quiesce
d0=$(proc_cpu "$daemon") p0=$(pg_cpu)
if [ "$perf" = 1 ]; then
  perf record -e cpu-clock -F 499 -g -p "$daemon" -o "$work/perf.data" 2>"$work/perf.log" & perfpid=$!
  pids+=("$perfpid")
  sleep 0.5
fi
rc=0
w0=$(val "SELECT pg_current_wal_lsn()")
{ time "${load[@]}" -n "$records" -c "$streams" --channels "$conns" \
    --target "127.0.0.1:$grpc_port" --metrics "127.0.0.1:$metrics_port" \
    >"$work/load.out" 2>&3; } 3>&2 2>"$work/time.out" || rc=$?
d1=$(proc_cpu "$daemon") p1=$(pg_cpu)
read -r _ gu gs <"$work/time.out"
if [ "$perf" = 1 ]; then
  kill -INT "$perfpid" 2>/dev/null || true
  wait "$perfpid" 2>/dev/null || true
  perf report -i "$work/perf.data" --no-children --sort symbol --stdio 2>/dev/null |
    grep -v '^#' | grep -v '^$' | grep '%' | head -n 40 >"$build/ingest-perf.txt" || true
  echo "perf profile of tidewatch-ingest (top symbols): $build/ingest-perf.txt"
fi
cat "$work/load.out"
if [ "$rc" != 0 ]; then
  echo "FAIL: the load generator failed (exit $rc)" >&2
  tail -n 20 "$work/ingest.log" >&2
  exit 1
fi
r_ingest=$(sed -n 's/^total [0-9]* records, [0-9.]* s, \([0-9]*\) records\/s.*/\1/p' "$work/load.out")
t_ingest=$(sed -n 's/^total [0-9]* records, \([0-9.]*\) s,.*/\1/p' "$work/load.out")
wal_ingest=$(val "SELECT round(pg_wal_lsn_diff(pg_current_wal_lsn(), '$w0') / 1048576)")
n_events=$(val "SELECT count(*) FROM events")
n_quar=$(val "SELECT count(*) FROM quarantine")
n_distinct=$(val "SELECT count(DISTINCT source_ref) FROM events WHERE source_ref LIKE '%-$prefix-%'")
echo "events: $n_events rows ($n_distinct distinct references), quarantine: $n_quar"
if [ "$n_events" != "$records" ] || [ "$n_distinct" != "$records" ] || [ "$n_quar" != 0 ]; then
  echo "FAIL: expected exactly $records events and an empty quarantine" >&2
  exit 1
fi
cpu_ingest_daemon=$(sub "$d1" "$d0") cpu_ingest_pg=$(sub "$p1" "$p0")
cpu_ingest_gen=$(awk -v a="$gu" -v b="$gs" 'BEGIN { printf "%.2f", a + b }')
kill "$daemon" 2>/dev/null || true
wait "$daemon" 2>/dev/null || true

# ------------------------------------------ the same rows for baselines --
t0=$(now_s)
"${load[@]}" -n "$records" --emit-copy "$work/rows.copy" 2>"$work/emit.err" ||
  { cat "$work/emit.err" >&2; exit 1; }
"${load[@]}" -n "$inserts" --emit-sql "$work/rows.sql" --table events_ins 2>>"$work/emit.err" ||
  { cat "$work/emit.err" >&2; exit 1; }
echo "(baseline rows generated and validated in $(awk -v a="$t0" -v b="$(now_s)" 'BEGIN { printf "%.1f", b - a }') s, not timed)"
echo

# --------------------------------------------------------- phase 2: COPY --
cols="source, source_ref, kind, occurred_at, serial_keys, hull_keys, derived, payload"
echo "== COPY: $records rows, psql \\copy from a file, one transaction, into events_copy"
val "CREATE TABLE events_copy (LIKE events INCLUDING ALL); CREATE TABLE events_ins (LIKE events INCLUDING ALL)" >/dev/null
quiesce
p0=$(pg_cpu) w0=$(val "SELECT pg_current_wal_lsn()")
{ time psql_q -tA -c "SELECT pg_backend_pid()" \
    -c "\\copy events_copy ($cols) FROM '$work/rows.copy'" >"$work/psql.out"; } 2>"$work/time.out"
gone "$(head -n 1 "$work/psql.out")"
p1=$(pg_cpu)
read -r t_copy cu cs <"$work/time.out"
wal_copy=$(val "SELECT round(pg_wal_lsn_diff(pg_current_wal_lsn(), '$w0') / 1048576)")
cpu_copy_pg=$(sub "$p1" "$p0") cpu_copy_psql=$(awk -v a="$cu" -v b="$cs" 'BEGIN { printf "%.2f", a + b }')
n_copy=$(val "SELECT count(*) FROM events_copy")
[ "$n_copy" = "$records" ] || { echo "FAIL: events_copy has $n_copy rows" >&2; exit 1; }
r_copy=$(awk -v n="$records" -v t="$t_copy" 'BEGIN { printf "%.0f", n / t }')
echo "$records rows in $t_copy s"
# The baseline rows must be the rows the daemon stored.
same=$(val "SELECT count(*) FROM events e JOIN events_copy c USING (source, source_ref)
            WHERE e.kind = c.kind AND e.occurred_at IS NOT DISTINCT FROM c.occurred_at
              AND e.serial_keys = c.serial_keys AND e.hull_keys = c.hull_keys
              AND e.derived::text = c.derived::text AND e.payload = c.payload")
echo "rows identical to the ingested ones (kind, time, keys, derived, payload): $same of $records"
[ "$same" = "$records" ] || { echo "FAIL: the COPY rows differ from the ingested rows" >&2; exit 1; }
echo

# ------------------------------------------------------- phase 3: INSERT --
echo "== INSERT: $inserts rows, one INSERT per record, autocommit, 1 client (psql), into events_ins"
quiesce
fsync_lat=$(fsync_us)
echo "fdatasync latency on this filesystem now: $fsync_lat us per 8 kB write"
p0=$(pg_cpu) w0=$(val "SELECT pg_current_wal_lsn()")
{ time psql_q -tA -c "SELECT pg_backend_pid()" -f "$work/rows.sql" >"$work/psql.out"; } 2>"$work/time.out"
gone "$(head -n 1 "$work/psql.out")"
p1=$(pg_cpu)
read -r t_ins iu is <"$work/time.out"
wal_ins=$(val "SELECT round(pg_wal_lsn_diff(pg_current_wal_lsn(), '$w0') / 1048576)")
cpu_ins_pg=$(sub "$p1" "$p0") cpu_ins_psql=$(awk -v a="$iu" -v b="$is" 'BEGIN { printf "%.2f", a + b }')
n_ins=$(val "SELECT count(*) FROM events_ins")
[ "$n_ins" = "$inserts" ] || { echo "FAIL: events_ins has $n_ins rows" >&2; exit 1; }
r_ins=$(awk -v n="$inserts" -v t="$t_ins" 'BEGIN { printf "%.0f", n / t }')
echo "$inserts rows in $t_ins s"
echo

# -------------------------------------------------------------- summary --
echo "== results (fsync=on, synchronous_commit=on; every rate counts durable rows)"
printf '%-44s %10s rows/s  (%s s)\n' "ingest, end to end (SubmitStream, acked):" "$r_ingest" "$t_ingest"
printf '%-44s %10s rows/s  (%s s)\n' "COPY of the same rows (psql \\copy):" "$r_copy" "$t_copy"
printf '%-44s %10s rows/s  (%s s for %s rows)\n' "one INSERT per record (autocommit, 1 client):" "$r_ins" "$t_ins" "$inserts"
awk -v i="$r_ingest" -v c="$r_copy" -v s="$r_ins" 'BEGIN {
  a = i / c; b = i / s
  printf "%-44s %10.2f  (target >= 0.50: %s)\n", "ratio ingest / COPY:", a, (a >= 0.5 ? "met" : "MISSED")
  printf "%-44s %10.1f  (target >= 10: %s)\n", "ratio ingest / INSERT:", b, (b >= 10 ? "met" : "MISSED")
}'
echo
echo "CPU seconds (and microseconds per row) per phase; 2 cores: at most 2 x wall in all:"
printf '  %-7s wall %8ss: tidewatch-ingest %7s (%s), PostgreSQL %7s (%s), load generator %6s (%s); WAL %s MB\n' \
  ingest "$t_ingest" "$cpu_ingest_daemon" "$(per "$cpu_ingest_daemon" "$records")" \
  "$cpu_ingest_pg" "$(per "$cpu_ingest_pg" "$records")" \
  "$cpu_ingest_gen" "$(per "$cpu_ingest_gen" "$records")" "$wal_ingest"
printf '  %-7s wall %8ss: PostgreSQL %7s (%s), psql %7s (%s); WAL %s MB\n' COPY "$t_copy" \
  "$cpu_copy_pg" "$(per "$cpu_copy_pg" "$records")" "$cpu_copy_psql" "$(per "$cpu_copy_psql" "$records")" "$wal_copy"
printf '  %-7s wall %8ss: PostgreSQL %7s (%s), psql %7s (%s); WAL %s MB\n' INSERT "$t_ins" \
  "$cpu_ins_pg" "$(per "$cpu_ins_pg" "$inserts")" "$cpu_ins_psql" "$(per "$cpu_ins_psql" "$inserts")" "$wal_ins"
echo "  (other work on the machine during the run, load average now: $(cut -d' ' -f1-3 /proc/loadavg))"
echo "  (one INSERT per record waits for one fdatasync: $fsync_lat us each in this run)"
