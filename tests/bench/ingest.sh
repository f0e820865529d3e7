#!/usr/bin/env bash
# Benchmark: records/s into the event log end to end through tidewatch-ingest
# (SubmitStream, every record acknowledged only once its group commit is
# durable), on the happy path and on a mixed load (duplicates, invalid
# records, corrections), against baselines that write the very same rows
# (checked identical, digest included) into a copy of the events table:
# COPY in text and in binary format, and one prepared INSERT per record in
# autocommit from one client and from several concurrent clients. One run,
# one throwaway PostgreSQL with fsync = on and synchronous_commit = on.
#
#   tests/bench/ingest.sh [-n RECORDS] [-m MIXED] [-c STREAMS] [-k CONNECTIONS]
#                         [-i INSERT_ROWS] [-I CONCURRENT_INSERT_ROWS]
#                         [-C CLIENTS] [-b BUILD_DIR] [-s SEED] [-p]
#                         [-- tidewatch-ingest flags...]
#
#   -n  records streamed on the happy path and COPYed (default 1000000)
#   -m  records of the mixed load (default: as -n)
#   -c  concurrent SubmitStream calls (default 8); -k connections (default 1)
#   -i  rows of the INSERT baseline with 1 client (default 10000)
#   -I  rows of the INSERT baseline with -C clients (default 100000)
#   -C  concurrent INSERT clients (default 8)
#   -b  build directory with bin/ (default build; use a Release build)
#   -p  also record the daemon with perf (cpu-clock) during the ingest phase
# Flags after -- go to tidewatch-ingest (e.g. --batch 2000 --pipeline 4).
# Prints every rate, the ratios of ingest to each baseline (targets: >= 0.50
# of COPY, >= 10 x INSERT) and of the mixed load to COPY, and the CPU time
# each process used per phase. Fails (exit 1) when a record is lost,
# doubled, answered otherwise than expected, or stored differently from
# the baselines' rows.
set -euo pipefail

records=1000000 mixed='' streams=8 conns=1 inserts=10000 inserts_n=100000 clients=8 seed=1 perf=0
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$root/build
while getopts n:m:c:k:i:I:C:b:s:ph opt; do
  case $opt in
    n) records=$OPTARG ;;
    m) mixed=$OPTARG ;;
    c) streams=$OPTARG ;;
    k) conns=$OPTARG ;;
    i) inserts=$OPTARG ;;
    I) inserts_n=$OPTARG ;;
    C) clients=$OPTARG ;;
    b) build=$OPTARG ;;
    s) seed=$OPTARG ;;
    p) perf=1 ;;
    *) sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
daemon_flags=("$@")
mixed=${mixed:-$records}
for v in "$records" "$mixed" "$streams" "$conns" "$inserts" "$inserts_n" "$clients" "$seed"; do
  case $v in ''|*[!0-9]*) echo "numbers only for -n -m -c -k -i -I -C -s" >&2; exit 2 ;; esac
done
for v in "$records" "$mixed" "$inserts" "$inserts_n" "$clients"; do
  [ "$v" -ge 1 ] || { echo "-n -m -i -I -C must be at least 1" >&2; exit 2; }
done
[ "$inserts" -le "$records" ] || inserts=$records
[ "$inserts_n" -le "$records" ] || inserts_n=$records

# shellcheck source=SCRIPTDIR/../../deploy/lib/pg.sh
. "$root/deploy/lib/pg.sh"
for b in tidewatch-ingest tidewatch-migrate tidewatch-ingest-load; do
  [ -x "$build/bin/$b" ] || { echo "missing $build/bin/$b: build first (cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build -j2)" >&2; exit 1; }
done
build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build/CMakeCache.txt" 2>/dev/null || true)
case $build_type in Release|RelWithDebInfo) ;; *) echo "warning: $build is a '${build_type:-?}' build; measure a Release build" >&2 ;; esac
bindir=$(tw_pg_bindir) || { echo "PostgreSQL server binaries not found (apt-get install postgresql)" >&2; exit 1; }
[ "$perf" = 0 ] || command -v perf >/dev/null || { echo "-p needs perf (apt-get install linux-perf)" >&2; exit 1; }

# shellcheck source=SCRIPTDIR/lib.sh
. "$root/tests/bench/lib.sh"
tw_bench_start ingest

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
db=bench
psql_q() { "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h "$work" -U postgres -d "$db" "$@"; }
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
# Wait until backends have exited and been reaped (their CPU time then
# counts in the postmaster's cutime/cstime).
gone() {
  local p
  for p in "$@"; do
    for _ in $(seq 200); do [ -e "/proc/$p" ] || break; sleep 0.05; done
  done
}
per() { awk -v c="$1" -v n="$2" 'BEGIN { printf "%.1f", c / n * 1e6 }'; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a - b }'; }
add() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a + b }'; }
rate() { awk -v n="$1" -v t="$2" 'BEGIN { printf "%.0f", n / t }'; }
wal_since() { val "SELECT round(pg_wal_lsn_diff(pg_current_wal_lsn(), '$1') / 1048576)"; }
# bash's `time` of a command into $work/time.out as "real user sys"
TIMEFORMAT='%R %U %S'
# Figures per phase (ingest, mixed, copy, copyb, ins1, insn): wall seconds,
# rows/s, WAL MB, CPU seconds of the daemon, of PostgreSQL and of the
# client (load generator, psql, INSERT clients).
declare -A wall rate_ wal cpu_daemon cpu_pg cpu_client deadlocks
# Deadlocks PostgreSQL detected so far (each one cost its victim
# deadlock_timeout, 1 s by default, before the daemon retried its batch).
deadlocks_so_far() { grep -c 'ERROR:  deadlock detected' "$work/postgres.log" || true; }

# The columns every baseline writes (the daemon's writer fills these; the
# others are the table's defaults: id, tx, received_at, principal (the
# login, postgres for the daemon and the baselines alike); corrects stays
# NULL).
cols="source, source_ref, kind, occurred_at, corrects_source, corrects_ref, serial_keys, hull_keys, derived, payload, digest"
# Rows of table $1 identical in every column ingest writes to the events
# row of the same key (digest included: computed by the generator as the
# daemon does; both NULL does not count).
same_rows() {
  val "SELECT count(*) FROM events e JOIN $1 c USING (source, source_ref)
       WHERE e.kind = c.kind AND e.occurred_at IS NOT DISTINCT FROM c.occurred_at
         AND e.corrects_source IS NOT DISTINCT FROM c.corrects_source
         AND e.corrects_ref IS NOT DISTINCT FROM c.corrects_ref
         AND e.serial_keys = c.serial_keys AND e.hull_keys = c.hull_keys
         AND e.derived = c.derived AND e.payload = c.payload AND e.digest = c.digest
         AND e.principal IS NOT DISTINCT FROM c.principal
         AND e.corrects IS NULL AND c.corrects IS NULL"
}
check_same() { # table rows what
  local n
  n=$(same_rows "$1")
  echo "rows identical to the ingested ones (every column ingest writes, digest included): $n of $2"
  [ "$n" = "$2" ] && return 0
  echo "FAIL: the $3 rows differ from the ingested rows; rows differing, by column:" >&2
  val "SELECT count(*) FILTER (WHERE e.id IS NULL) AS not_in_events,
              count(*) FILTER (WHERE e.kind <> c.kind) AS kind,
              count(*) FILTER (WHERE e.occurred_at IS DISTINCT FROM c.occurred_at) AS occurred_at,
              count(*) FILTER (WHERE e.corrects_source IS DISTINCT FROM c.corrects_source
                                  OR e.corrects_ref IS DISTINCT FROM c.corrects_ref) AS corrects,
              count(*) FILTER (WHERE e.serial_keys <> c.serial_keys) AS serial_keys,
              count(*) FILTER (WHERE e.hull_keys <> c.hull_keys) AS hull_keys,
              count(*) FILTER (WHERE e.derived <> c.derived) AS derived,
              count(*) FILTER (WHERE e.payload <> c.payload) AS payload,
              count(*) FILTER (WHERE e.digest IS DISTINCT FROM c.digest) AS digest,
              count(*) FILTER (WHERE e.principal IS DISTINCT FROM c.principal) AS principal,
              count(*) FILTER (WHERE e.corrects IS NOT NULL OR c.corrects IS NOT NULL) AS corrects_id
       FROM $1 c LEFT JOIN events e USING (source, source_ref)" -P footer=off >&2
  exit 1
}

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
# bench: the happy path and every baseline; bench_mixed: the mixed load,
# into an empty log of its own as well.
for d in bench bench_mixed; do
  tw_pg_createdb "$work" "$d"
  TIDEWATCH_LOG_LEVEL=warn "$build/bin/tidewatch-migrate" \
    --database-url "host=$work dbname=$d user=postgres" >/dev/null
done

settings=$(val "SELECT string_agg(name || '=' || setting || coalesce(unit, ''), ' ' ORDER BY name) FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes', 'wal_level', 'shared_buffers', 'max_wal_size', 'wal_sync_method')")
case " $settings " in
  *" fsync=on "*" synchronous_commit=on "*) ;;
  *) echo "FAIL: the cluster is not durable: $settings" >&2; exit 1 ;;
esac

# ----------------------------------------------------------- the daemon --
daemon=
start_daemon() { # database
  grpc_port=$(free_port) metrics_port=$(free_port)
  TIDEWATCH_LOG_LEVEL=warn "$build/bin/tidewatch-ingest" --listen "127.0.0.1:$grpc_port" \
    --metrics-listen "127.0.0.1:$metrics_port" --database-url "host=$work dbname=$1 user=postgres" \
    "${daemon_flags[@]}" 2>>"$work/ingest.log" & daemon=$!
  pids+=("$daemon")
  wait_port "$grpc_port"
  wait_serving "$grpc_port" tidewatch.v1.IngestService
}
stop_daemon() {
  kill "$daemon" 2>/dev/null || true
  wait "$daemon" 2>/dev/null || true
}

anchor=$(date +%s)
prefix="bench$anchor" mprefix="mixed$anchor"
load=("$build/bin/tidewatch-ingest-load" --seed "$seed" --prefix "$prefix" --now "$anchor")
mload=("$build/bin/tidewatch-ingest-load" --seed "$seed" --prefix "$mprefix" --now "$anchor" --mix)

echo "PostgreSQL $("$bindir/postgres" --version | awk '{print $3}'): $settings"
echo "build: $build ($build_type); $(nproc) cores shared by every process"
echo "tidewatch-ingest flags: ${daemon_flags[*]:-(defaults)}"
echo "load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

# Stream with the generator ($1: the phase; then its command) into the
# running daemon; sets the phase's figures.
run_ingest() {
  local name=$1 rc=0 d0 d1 p0 p1 w0 gu gs k0
  shift
  quiesce
  k0=$(deadlocks_so_far)
  d0=$(proc_cpu "$daemon") p0=$(pg_cpu)
  if [ "$perf" = 1 ] && [ "$name" = ingest ]; then
    perf record -e cpu-clock -F 499 -g -p "$daemon" -o "$work/perf.data" 2>"$work/perf.log" & perfpid=$!
    pids+=("$perfpid")
    sleep 0.5
  fi
  w0=$(val "SELECT pg_current_wal_lsn()")
  { time "$@" -c "$streams" --channels "$conns" \
      --target "127.0.0.1:$grpc_port" --metrics "127.0.0.1:$metrics_port" \
      >"$work/load.out" 2>&3; } 3>&2 2>"$work/time.out" || rc=$?
  d1=$(proc_cpu "$daemon") p1=$(pg_cpu)
  read -r _ gu gs <"$work/time.out"
  if [ "$perf" = 1 ] && [ "$name" = ingest ]; then
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
  rate_[$name]=$(sed -n 's/^total [0-9]* records, [0-9.]* s, \([0-9]*\) records\/s.*/\1/p' "$work/load.out")
  wall[$name]=$(sed -n 's/^total [0-9]* records, \([0-9.]*\) s,.*/\1/p' "$work/load.out")
  wal[$name]=$(wal_since "$w0")
  cpu_daemon[$name]=$(sub "$d1" "$d0")
  cpu_pg[$name]=$(sub "$p1" "$p0")
  cpu_client[$name]=$(add "$gu" "$gs")
  deadlocks[$name]=$(( $(deadlocks_so_far) - k0 ))
  echo "deadlocks between the daemon's group commits: ${deadlocks[$name]}"
}

# ------------------------------------------------------ phase 1: ingest --
echo "== ingest: $records records, $streams SubmitStream calls on $conns connection(s)"
db=bench
start_daemon bench
run_ingest ingest "${load[@]}" -n "$records"
n_events=$(val "SELECT count(*) FROM events")
n_quar=$(val "SELECT count(*) FROM quarantine")
n_distinct=$(val "SELECT count(DISTINCT source_ref) FROM events WHERE source_ref LIKE '%-$prefix-%'")
echo "events: $n_events rows ($n_distinct distinct references), quarantine: $n_quar"
if [ "$n_events" != "$records" ] || [ "$n_distinct" != "$records" ] || [ "$n_quar" != 0 ]; then
  echo "FAIL: expected exactly $records events and an empty quarantine" >&2
  exit 1
fi
stop_daemon
echo

# ------------------------------------------------- phase 2: mixed ingest --
echo "== mixed: $mixed records (~1% resubmitted, ~1% invalid, ~0.5% corrections), $streams SubmitStream calls, into an empty log (database bench_mixed)"
db=bench_mixed
start_daemon bench_mixed
run_ingest mixed "${mload[@]}" -n "$mixed"
stop_daemon
m_acc=$(sed -n 's/^total .*(accepted \([0-9]*\),.*/\1/p' "$work/load.out")
m_dup=$(sed -n 's/^total .*, duplicates \([0-9]*\),.*/\1/p' "$work/load.out")
m_rej=$(sed -n 's/^total .*, rejected \([0-9]*\),.*/\1/p' "$work/load.out")
echo

# ------------------------------------------ the same rows for baselines --
t0=$(now_s)
"${load[@]}" -n "$records" --emit-copy "$work/rows.copy" 2>"$work/emit.err" ||
  { cat "$work/emit.err" >&2; exit 1; }
"${mload[@]}" -n "$mixed" --emit-copy "$work/mixed.copy" --emit-quarantine "$work/mixed.quarantine" \
  2>"$work/emit-mixed.err" || { cat "$work/emit-mixed.err" >&2; exit 1; }
echo "(baseline rows generated and validated in $(awk -v a="$t0" -v b="$(now_s)" 'BEGIN { printf "%.1f", b - a }') s, not timed)"
e_events=$(sed -n 's/.*rows: events \([0-9]*\), quarantine \([0-9]*\), duplicates \([0-9]*\)$/\1/p' "$work/emit-mixed.err")
e_quar=$(sed -n 's/.*rows: events \([0-9]*\), quarantine \([0-9]*\), duplicates \([0-9]*\)$/\2/p' "$work/emit-mixed.err")
e_dup=$(sed -n 's/.*rows: events \([0-9]*\), quarantine \([0-9]*\), duplicates \([0-9]*\)$/\3/p' "$work/emit-mixed.err")

# The mixed load's log and quarantine hold exactly what was sent: the
# stored records, each as the generator computes it, and the rejected ones.
echo "== mixed: checking the log and the quarantine"
echo "answered: accepted $m_acc, duplicates $m_dup, rejected $m_rej; expected: events $e_events, duplicates $e_dup, quarantine $e_quar"
if [ "$m_acc" != "$e_events" ] || [ "$m_dup" != "$e_dup" ] || [ "$m_rej" != "$e_quar" ]; then
  echo "FAIL: the mixed load was not answered as expected" >&2
  exit 1
fi
val "CREATE TABLE events_expect (LIKE events INCLUDING ALL);
     CREATE TABLE quarantine_expect (source text COLLATE \"C\", source_ref text COLLATE \"C\", payload bytea,
                                     PRIMARY KEY (source, source_ref))" >/dev/null
psql_q -c "\\copy events_expect ($cols) FROM '$work/mixed.copy'" \
  -c "\\copy quarantine_expect FROM '$work/mixed.quarantine'"
n_events=$(val "SELECT count(*) FROM events")
n_corr=$(val "SELECT count(*) FROM events WHERE kind = 4")
n_quar=$(val "SELECT count(*) FROM quarantine")
echo "events: $n_events rows ($n_corr corrections), quarantine: $n_quar rows"
[ "$n_events" = "$e_events" ] || { echo "FAIL: expected $e_events events" >&2; exit 1; }
check_same events_expect "$e_events" "mixed"
q_same=$(val "SELECT count(*) FROM quarantine q JOIN quarantine_expect x USING (source, source_ref)
              WHERE q.payload = x.payload AND q.attempts = 1 AND q.resolved_event IS NULL")
echo "quarantine rows as expected (key, payload, one attempt, unresolved): $q_same of $e_quar"
if [ "$n_quar" != "$e_quar" ] || [ "$q_same" != "$e_quar" ]; then
  echo "FAIL: the quarantine does not hold exactly the rejected records" >&2
  exit 1
fi
n_linked=$(val "SELECT count(*) FROM event_corrections WHERE target_id IS NOT NULL")
echo "corrections resolved to the record they correct: $n_linked of $n_corr"
[ "$n_linked" = "$n_corr" ] || { echo "FAIL: a correction's target is missing" >&2; exit 1; }
db=bench
echo

# ---------------------------------------------------- phase 3: COPY text --
echo "== COPY (text): $records rows, psql \\copy from a file, one transaction, into events_copy"
val "CREATE TABLE events_copy (LIKE events INCLUDING ALL); CREATE TABLE events_copyb (LIKE events INCLUDING ALL);
     CREATE TABLE events_ins1 (LIKE events INCLUDING ALL); CREATE TABLE events_insn (LIKE events INCLUDING ALL)" >/dev/null
# Time one psql \copy into a fresh table: sets the phase's figures and
# checks the rows.
run_copy() { # phase table file format
  local p0 p1 w0 t cu cs n
  quiesce
  p0=$(pg_cpu) w0=$(val "SELECT pg_current_wal_lsn()")
  { time psql_q -tA -c "SELECT pg_backend_pid()" \
      -c "\\copy $2 ($cols) FROM '$3' (FORMAT $4)" >"$work/psql.out"; } 2>"$work/time.out"
  gone "$(head -n 1 "$work/psql.out")"
  p1=$(pg_cpu)
  read -r t cu cs <"$work/time.out"
  wall[$1]=$t
  wal[$1]=$(wal_since "$w0")
  cpu_pg[$1]=$(sub "$p1" "$p0")
  cpu_client[$1]=$(add "$cu" "$cs")
  n=$(val "SELECT count(*) FROM $2")
  [ "$n" = "$records" ] || { echo "FAIL: $2 has $n rows" >&2; exit 1; }
  rate_[$1]=$(rate "$records" "$t")
  echo "$records rows in $t s"
  check_same "$2" "$records" "COPY ($4)"
}
run_copy copy events_copy "$work/rows.copy" text
echo

# -------------------------------------------------- phase 4: COPY binary --
echo "== COPY (binary): the same $records rows, exported from events_copy with \\copy TO (FORMAT binary) (not timed), \\copy from that file into events_copyb"
psql_q -c "\\copy events_copy ($cols) TO '$work/rows.bin' (FORMAT binary)"
echo "binary file: $(( $(stat -c %s "$work/rows.bin") / 1048576 )) MB, text file: $(( $(stat -c %s "$work/rows.copy") / 1048576 )) MB"
run_copy copyb events_copyb "$work/rows.bin" binary
echo

# ----------------------------------------------------- phase 5-6: INSERT --
# One prepared INSERT per row, autocommit, by the generator's libpq
# clients (threads, one connection each; rows built before the clock).
run_insert() { # phase table rows clients
  local p0 p1 w0 rc=0 n
  quiesce
  p0=$(pg_cpu) w0=$(val "SELECT pg_current_wal_lsn()")
  "${load[@]}" -n "$3" --insert-baseline "host=$work dbname=bench user=postgres" \
    --clients "$4" --table "$2" >"$work/insert.out" 2>"$work/insert.err" || rc=$?
  if [ "$rc" != 0 ]; then
    cat "$work/insert.err" >&2
    echo "FAIL: the INSERT baseline failed (exit $rc)" >&2
    exit 1
  fi
  # shellcheck disable=SC2046  # the pids, one word each
  gone $(sed -n 's/.* backends \(.*\)$/\1/p' "$work/insert.out")
  p1=$(pg_cpu)
  cat "$work/insert.out"
  wall[$1]=$(sed -n 's/^insert [0-9]* rows, [0-9]* client(s), \([0-9.]*\) s,.*/\1/p' "$work/insert.out")
  rate_[$1]=$(sed -n 's/^insert [0-9]* rows, [0-9]* client(s), [0-9.]* s, \([0-9]*\) rows\/s.*/\1/p' "$work/insert.out")
  cpu_client[$1]=$(sed -n 's/.*client CPU \([0-9.]*\) s.*/\1/p' "$work/insert.out")
  wal[$1]=$(wal_since "$w0")
  cpu_pg[$1]=$(sub "$p1" "$p0")
  n=$(val "SELECT count(*) FROM $2")
  [ "$n" = "$3" ] || { echo "FAIL: $2 has $n rows" >&2; exit 1; }
  check_same "$2" "$3" "INSERT"
}
fsync_lat=$(fsync_us)
echo "fdatasync latency on this filesystem now: $fsync_lat us per 8 kB write"
echo "== INSERT, 1 client: $inserts rows, one prepared INSERT per record, autocommit, into events_ins1"
run_insert ins1 events_ins1 "$inserts" 1
echo
echo "== INSERT, $clients clients: $inserts_n rows, one prepared INSERT per record, autocommit, each client its own connection, into events_insn"
run_insert insn events_insn "$inserts_n" "$clients"
echo

# -------------------------------------------------------------- summary --
echo "== results (fsync=on, synchronous_commit=on; every rate counts durable rows)"
line() { printf '%-52s %8s %s\n' "$@"; }
line "ingest, end to end (SubmitStream, acked):" "${rate_[ingest]}" "rows/s  (${wall[ingest]} s; ${deadlocks[ingest]} deadlocks)"
line "ingest, mixed load (dups, rejects, corrections):" "${rate_[mixed]}" \
  "records/s  (${wall[mixed]} s; $(rate "$e_events" "${wall[mixed]}") events/s stored; ${deadlocks[mixed]} deadlocks)"
line "COPY of the same rows, text (psql \\copy):" "${rate_[copy]}" "rows/s  (${wall[copy]} s)"
line "COPY of the same rows, binary (psql \\copy):" "${rate_[copyb]}" "rows/s  (${wall[copyb]} s)"
line "one prepared INSERT per record, 1 client:" "${rate_[ins1]}" "rows/s  (${wall[ins1]} s for $inserts rows)"
line "one prepared INSERT per record, $clients clients:" "${rate_[insn]}" "rows/s  (${wall[insn]} s for $inserts_n rows)"
awk -v i="${rate_[ingest]}" -v m="${rate_[mixed]}" -v c="${rate_[copy]}" -v b="${rate_[copyb]}" \
    -v s="${rate_[ins1]}" -v n="${rate_[insn]}" -v k="$clients" 'BEGIN {
  f = "%-52s %8.2f%s\n"
  printf f, "ratio ingest / COPY text:", i / c, "  (target >= 0.50: " (i / c >= 0.5 ? "met" : "MISSED") ")"
  printf f, "ratio ingest / COPY binary:", i / b, "  (target >= 0.50: " (i / b >= 0.5 ? "met" : "MISSED") ")"
  printf f, "ratio ingest / INSERT, 1 client:", i / s, "  (target >= 10: " (i / s >= 10 ? "met" : "MISSED") ")"
  printf f, "ratio ingest / INSERT, " k " clients (prepared):", i / n, "  (target >= 10: " (i / n >= 10 ? "met" : "MISSED") ")"
  printf f, "ratio mixed / COPY text:", m / c, ""
  printf f, "ratio mixed / COPY binary:", m / b, ""
  printf f, "ratio mixed / ingest (happy path):", m / i, ""
}'
echo
echo "CPU seconds (and microseconds per row) per phase; 2 cores: at most 2 x wall in all:"
for ph in ingest mixed copy copyb ins1 insn; do
  case $ph in
    ingest) n=$records who="load generator" ;;
    mixed) n=$mixed who="load generator" ;;
    copy|copyb) n=$records who=psql ;;
    ins1) n=$inserts who="INSERT client" ;;
    insn) n=$inserts_n who="INSERT clients" ;;
  esac
  d=
  [ -n "${cpu_daemon[$ph]:-}" ] &&
    d="tidewatch-ingest ${cpu_daemon[$ph]} ($(per "${cpu_daemon[$ph]}" "$n")), "
  printf '  %-6s wall %8ss: %sPostgreSQL %s (%s), %s %s (%s); WAL %s MB\n' "$ph" "${wall[$ph]}" "$d" \
    "${cpu_pg[$ph]}" "$(per "${cpu_pg[$ph]}" "$n")" "$who" "${cpu_client[$ph]}" \
    "$(per "${cpu_client[$ph]}" "$n")" "${wal[$ph]}"
done
echo "  (per row: the mixed phase counts every record sent; copyb is COPY binary,"
echo "   ins1 and insn the INSERT phases with 1 and $clients clients)"
echo "  (other work on the machine: load average now $(cut -d' ' -f1-3 /proc/loadavg))"
echo "  (one autocommit INSERT waits for one fdatasync: $fsync_lat us each in this run)"
