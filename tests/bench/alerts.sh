#!/usr/bin/env bash
# Benchmark: alert quality and alert latency (issue 8). One throwaway
# PostgreSQL, the real pipeline (tidewatch-ingest, -provenance, -alerts,
# -query), real gRPC:
#
#   1. Quality. A scenario (`tidewatch simulate --seed S --scale X`) is
#      submitted to ingest in arrival order (every answer checked against
#      the expected outcome); when tidewatch-alerts has consumed the whole
#      log (its consumer cursor at the log's end), the scheduled jobs
#      bulk_acquisition and quiet_near_coast are run as a live system would
#      have run them (`tidewatch jobs run NAME --as-of TIME`, every -j days
#      of the scenario and at its end; -j 0: at the end only). Then
#      tests/bench/alerts_score.py prints recall (network items named by an
#      alert on the item, its buyer cluster or its consignment, at or above
#      medium severity, before their seizure or launch; target >= 0.9),
#      precision (such alerts that concern a network; target >= 0.8), the
#      alerts on legitimate coastal trade, and counts per rule.
#   2. Latency. In a fresh database, a WatchAlerts client
#      (tests/bench/alerts_latency.py, python3-grpcio) subscribes while
#      another scenario (seed S+1) is submitted at -r records a second;
#      printed: p50 / p90 / p99 from a record's acknowledgement to its alert
#      on WatchAlerts (target p99 under 250 ms).
#   3. With -J N: the scheduled jobs' run time on a large model. In a fresh
#      database tidewatch-ingest-load (the provenance benchmark's
#      generator) submits -N records drawn from N engines and N boats (N =
#      500000: about 1,000,000 items); once provenance has caught up, each
#      job is run as of the load's anchor time by an alerts daemon that
#      runs jobs only (--realtime=false), and again as of a day later (as
#      the schedule would, with nothing new recorded); printed: each run's
#      time, alerts raised and updated (alert_job_runs), and the alerts by
#      rule and subject kind.
#
#   tests/bench/alerts.sh [-s SEED] [-x SCALE] [-d DAYS] [-j JOB_STEP_DAYS]
#                         [-r RATE] [-J ITEMS_PER_KIND [-N RECORDS]] [-b BUILD_DIR]
#                         [-k KEEP_DIR] [-q] [-l]
#
#   -s  scenario seed (default 1)        -x  scenario scale (default 1)
#   -d  scenario days (default 120)      -j  job step in days (default 1)
#   -r  records/s in the latency phase (default 100)
#   -J  run phase 3 with this many items per kind; -N its records
#       (default 2 x 2 x ITEMS)
#   -q  quality phase only               -l  latency phase only
#   -g  phase 3 only (with -J)
#   -k  copy the scenario, the score (JSON) and the alert export here
#   -b  build directory with bin/ (default build)
# Figures only, no verdict on them; exits 1 when a service fails, an answer
# differs from the scenario's expected outcome, or a consumer does not
# catch up within 30 minutes.
set -euo pipefail

seed=1 scale=1 days=120 step=1 rate=100 jobs_items=0 jobs_records=0 keep="" only=""
alerts_extra=()
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$root/build
while getopts s:x:d:j:r:J:N:b:k:qlgh opt; do
  case $opt in
    s) seed=$OPTARG ;;
    x) scale=$OPTARG ;;
    d) days=$OPTARG ;;
    j) step=$OPTARG ;;
    r) rate=$OPTARG ;;
    J) jobs_items=$OPTARG ;;
    N) jobs_records=$OPTARG ;;
    b) build=$OPTARG ;;
    k) keep=$OPTARG ;;
    q) only=quality ;;
    l) only=latency ;;
    g) only="jobs" ;;
    *) sed -n '2,44p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
  esac
done
for v in "$seed" "$scale" "$days" "$step" "$rate" "$jobs_items" "$jobs_records"; do
  case $v in ''|*[!0-9]*) echo "numbers only for -s -x -d -j -r -J -N" >&2; exit 2 ;; esac
done
[ "$jobs_records" -gt 0 ] || jobs_records=$(( 4 * jobs_items ))

# shellcheck source=SCRIPTDIR/../../deploy/lib/pg.sh
. "$root/deploy/lib/pg.sh"
for b in tidewatch-ingest tidewatch-provenance tidewatch-alerts tidewatch-query tidewatch-migrate \
         tidewatch tidewatch-ingest-load; do
  [ -x "$build/bin/$b" ] || { echo "missing $build/bin/$b: build first (cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build -j2)" >&2; exit 1; }
done
bindir=$(tw_pg_bindir) || { echo "PostgreSQL server binaries not found (apt-get install postgresql)" >&2; exit 1; }
export TW_BUILD_DIR=$build

# shellcheck source=SCRIPTDIR/lib.sh
. "$root/tests/bench/lib.sh"
tw_bench_start alerts

cli() { "$build/bin/tidewatch" "$@"; }
val() { "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h "$work" -U postgres -d "$db" -tAc "$1"; }

# ------------------------------------------------------------ PostgreSQL --
tw_pg_chown "$work"
tw_pg_init "$work/data"
cat >>"$work/data/postgresql.conf" <<'CONF'

# --- alerts benchmark: durable ---
fsync = on
synchronous_commit = on
shared_buffers = 1GB
max_wal_size = 4GB
CONF
tw_pg_start "$work/data" "$work" "$work/postgres.log"

daemon_pids=()
# start_daemons DB: migrate DB, start the four daemons on it.
start_daemons() {
  db=$1
  tw_pg_createdb "$work" "$db"
  url="host=$work dbname=$db user=postgres"
  TIDEWATCH_LOG_LEVEL=warn "$build/bin/tidewatch-migrate" --database-url "$url" >/dev/null
  ingest_port=$(free_port) prov_port=$(free_port) alerts_port=$(free_port) query_port=$(free_port)
  local name port
  daemon_pids=()
  for name in ingest provenance alerts query; do
    case $name in
      ingest) port=$ingest_port ;; provenance) port=$prov_port ;;
      alerts) port=$alerts_port ;; query) port=$query_port ;;
    esac
    local extra=()
    # The bench runs the jobs itself (no scheduled runs meanwhile); in
    # phase 3 the alerts daemon runs jobs only (--realtime=false): the
    # real-time consumer is not what is measured there.
    [ "$name" = alerts ] && extra=(--bulk-schedule "" --quiet-schedule "" ${alerts_extra[@]+"${alerts_extra[@]}"})
    TIDEWATCH_LOG_LEVEL=warn "$build/bin/tidewatch-$name" --listen "127.0.0.1:$port" \
      --metrics-listen "127.0.0.1:$(free_port)" --database-url "$url" ${extra[@]+"${extra[@]}"} \
      2>>"$work/$name.$db.log" &
    daemon_pids+=("$!")
    pids+=("$!")
  done
  wait_port "$ingest_port"; wait_serving "$ingest_port" tidewatch.v1.IngestService
  wait_port "$prov_port"; wait_serving "$prov_port" tidewatch.v1.WorkerService
  wait_port "$alerts_port"; wait_serving "$alerts_port" tidewatch.v1.WorkerService
  wait_port "$query_port"; wait_serving "$query_port" tidewatch.v1.AlertService
}
stop_daemons() {
  local p
  for p in "${daemon_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${daemon_pids[@]}"; do wait "$p" 2>/dev/null || true; done
  daemon_pids=()
}
# caught_up CONSUMER: wait until its cursor is at the end of the log.
caught_up() {
  local deadline=$(( $(date +%s) + 1800 )) left
  while :; do
    left=$(val "SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM consumer_cursors WHERE consumer = '$1')
                  THEN -1 ELSE (SELECT count(*) FROM events e, consumer_cursors c
                  WHERE c.consumer = '$1' AND (e.tx, e.id) > (c.last_tx, c.last_id)) END")
    [ "$left" = 0 ] && return 0
    [ "$(date +%s)" -lt "$deadline" ] || { echo "FAIL: consumer $1 has $left events to go after 30 minutes (-1: no cursor)" >&2; exit 1; }
    sleep 0.5
  done
}
# run_job NAME ISO_TIME
# (tidewatch jobs run when the CLI has it, else WorkerService/RunJob from
# python3-grpcio.)
run_job() {
  if [ -z "${have_jobs_cli:-}" ]; then
    if cli jobs --help >/dev/null 2>&1; then have_jobs_cli=1; else have_jobs_cli=0; fi
  fi
  if [ "$have_jobs_cli" = 1 ]; then
    cli jobs run "$1" --as-of "$2" --target "127.0.0.1:$alerts_port" --timeout 30m >>"$work/jobs.out" 2>&1 ||
      { tail -5 "$work/jobs.out" >&2; echo "FAIL: tidewatch jobs run $1 --as-of $2" >&2; exit 1; }
    return
  fi
  /usr/bin/python3 - "$alerts_port" "$1" "$2" >>"$work/jobs.out" 2>&1 <<'PY' ||
import calendar, os, sys, time
sys.path.insert(0, os.path.join(os.environ["TW_BUILD_DIR"], "py"))
import grpc
from tidewatch.v1 import worker_pb2 as wk
ch = grpc.insecure_channel("127.0.0.1:" + sys.argv[1])
run = ch.unary_unary("/tidewatch.v1.WorkerService/RunJob", request_serializer=lambda m: m.SerializeToString(),
                     response_deserializer=wk.JobRun.FromString)
req = wk.RunJobRequest(job=sys.argv[2])
req.as_of.seconds = calendar.timegm(time.strptime(sys.argv[3], "%Y-%m-%dT%H:%M:%SZ"))
r = run(req, timeout=1800)
print(r.job, r.outcome, r.raised, r.updated, r.message)
sys.exit(0 if r.outcome == "ok" else 1)
PY
    { tail -5 "$work/jobs.out" >&2; echo "FAIL: WorkerService/RunJob $1 as of $2" >&2; exit 1; }
}

echo "PostgreSQL $("$bindir/postgres" --version | awk '{print $3}'), fsync=on; $(nproc) cores shared by every process"

# ---------------------------------------------------------------- 1. quality --
if [ "$only" != latency ] && [ "$only" != jobs ]; then
  start_daemons quality
  scn=$work/scenario
  echo "scenario: seed $seed, scale $scale, $days days"
  t0=$(date +%s.%N)
  cli simulate --seed "$seed" --scale "$scale" --days "$days" --out "$scn" \
    --target "127.0.0.1:$ingest_port" --timeout 60s >"$work/simulate.out" 2>"$work/simulate.err" ||
    { cat "$work/simulate.out"; tail -25 "$work/simulate.err" >&2; echo "FAIL: simulate --target" >&2; exit 1; }
  sed 's/^/  /' "$work/simulate.out"
  caught_up provenance
  caught_up alerts
  t1=$(date +%s.%N)
  echo "submitted and consumed by provenance and alerts in $(awk -v a="$t1" -v b="$t0" 'BEGIN { printf "%.1f", a - b }') s"
  start=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["scenario"]["start"])' "$scn/truth.json")
  end=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["scenario"]["end"])' "$scn/truth.json")
  # The scheduled jobs as the days went by (then at the end).
  runs=0
  if [ "$step" -gt 0 ]; then
    s0=$(date -u -d "$start" +%s) s1=$(date -u -d "$end" +%s)
    for (( t = s0 + step * 86400; t < s1; t += step * 86400 )); do
      at=$(date -u -d "@$t" +%Y-%m-%dT%H:%M:%SZ)
      run_job bulk_acquisition "$at"; run_job quiet_near_coast "$at"; runs=$(( runs + 2 ))
    done
  fi
  run_job bulk_acquisition "$end"; run_job quiet_near_coast "$end"; runs=$(( runs + 2 ))
  echo "scheduled jobs: $runs runs (every ${step} days, and as of $end)"
  echo
  /usr/bin/python3 "$root/tests/bench/alerts_score.py" --truth "$scn/truth.json" \
    --db "host=$work dbname=$db user=postgres" --psql "$bindir/psql" --json "$work/score.json"
  if [ -n "$keep" ]; then
    mkdir -p "$keep"
    cp -r "$scn" "$keep/" && cp "$work/score.json" "$keep/"
    "$bindir/psql" -X -q -h "$work" -U postgres -d "$db" --csv -c \
      "SELECT alert_id, rule, subject_kind, subject, hub, severity, score, known_at, job, title FROM alerts ORDER BY alert_id" \
      >"$keep/alerts.csv"
    echo "kept: $keep/scenario, $keep/score.json, $keep/alerts.csv"
  fi
  stop_daemons
  echo
fi

# ---------------------------------------------------------------- 2. latency --
if [ "$only" != quality ] && [ "$only" != jobs ]; then
  start_daemons latency
  lscn=$work/latency-scenario
  cli simulate --seed "$(( seed + 1 ))" --scale "$scale" --days "$days" --out "$lscn" >/dev/null
  echo "latency: scenario seed $(( seed + 1 )), $(( $(wc -l <"$lscn/index.csv") - 1 )) records at $rate records/s"
  /usr/bin/python3 "$root/tests/bench/alerts_latency.py" --ingest "127.0.0.1:$ingest_port" \
    --query "127.0.0.1:$query_port" --scenario "$lscn" --rate "$rate" ||
    { echo "FAIL: latency client" >&2; exit 1; }
  stop_daemons
  echo
fi

# ------------------------------------------------------- 3. jobs at scale --
if [ "$jobs_items" -gt 0 ]; then
  alerts_extra=(--realtime=false)
  start_daemons jobs
  anchor=$(date +%s)
  echo "jobs: $jobs_records records over $jobs_items engines + $jobs_items boats (tidewatch-ingest-load)"
  "$build/bin/tidewatch-ingest-load" -n "$jobs_records" --items "$jobs_items" --seed "$seed" \
    --prefix "alerts$anchor" --now "$anchor" --target "127.0.0.1:$ingest_port" >"$work/load.out" 2>"$work/load.err" ||
    { tail -5 "$work/load.err" >&2; echo "FAIL: ingest load" >&2; exit 1; }
  caught_up provenance
  echo "model: $(val "SELECT count(*) FROM prov_items") items, $(val "SELECT count(*) FROM prov_hops") hops"
  at=$(date -u -d "@$anchor" +%Y-%m-%dT%H:%M:%SZ)
  run_job bulk_acquisition "$at"
  run_job quiet_near_coast "$at"
  # As the schedule would: the next day, with nothing new (the same alerts,
  # no updates; bulk's window has moved on by a day).
  at=$(date -u -d "@$(( anchor + 86400 ))" +%Y-%m-%dT%H:%M:%SZ)
  run_job bulk_acquisition "$at"
  run_job quiet_near_coast "$at"
  val "SELECT format('  %-18s as of %s: %s, %s s, %s raised, %s updated', job, as_of, outcome,
                     round(extract(epoch FROM finished_at - started_at)::numeric, 2), raised, updated)
         FROM alert_job_runs WHERE trigger = 'manual' ORDER BY run_id"
  val "SELECT format('  alerts: %-18s on %-8s %s', rule, subject_kind, count(*))
         FROM alerts GROUP BY rule, subject_kind ORDER BY 1"
  stop_daemons
fi
