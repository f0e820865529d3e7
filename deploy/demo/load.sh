#!/usr/bin/env bash
# The demo scenario of `deploy/local.sh up`: once, on an empty event log,
# a simulated season (`tidewatch simulate --seed 1`: legitimate trade in
# five countries and several smuggling networks, with the mess of real
# data) ending ten days ago, submitted to tidewatch-ingest; then, once
# provenance and alerts have applied it, the scheduled alert jobs are run
# as of now, and the alerts raised are counted.
#
# Environment (set by deploy/local.sh): TIDEWATCH_INGEST, TIDEWATCH_QUERY,
# TIDEWATCH_ALERTS (host:port), TW_BIN_DIR, TW_DB_URL (a superuser libpq
# string, to read the consumers' cursors), TW_DEMO_DIR (where the scenario
# files and their ground truth are kept).
set -euo pipefail

bin=${TW_BIN_DIR:?}
tw=$bin/tidewatch
db=${TW_DB_URL:?}
dir=${TW_DEMO_DIR:?}
q() { psql "$db" -XAtq -c "$1"; }

if [ "$(q "SELECT count(*) FROM (SELECT 1 FROM events LIMIT 1) e")" != 0 ]; then
  echo "the event log is not empty: the demo is not loaded again"
  exit 0
fi
start=$(date -u -d "$(date -u +%F) - 130 days" +%FT00:00:00Z)
echo "simulating 120 days from $start (seed 1) into tidewatch-ingest at $TIDEWATCH_INGEST"
mkdir -p "$dir"
"$tw" simulate --seed 1 --days 120 --start "$start" --out "$dir" --target "$TIDEWATCH_INGEST"
echo "waiting for provenance and alerts to apply the log"
for _ in $(seq 1 600); do
  behind=$(q "SELECT count(*) FROM (VALUES ('provenance'), ('alerts')) n(c)
              LEFT JOIN consumer_cursors k ON k.consumer = n.c
              WHERE coalesce(k.last_id, -1) <> (SELECT id FROM events ORDER BY tx DESC, id DESC LIMIT 1)")
  [ "$behind" = 0 ] && break
  sleep 1
done
[ "$behind" = 0 ] || { echo "the consumers did not catch up within 10 minutes"; exit 1; }
for job in bulk_acquisition quiet_near_coast; do
  "$tw" jobs run "$job" --alerts "$TIDEWATCH_ALERTS"
done
q "SELECT 'demo: ' || sum(n) || ' alerts raised (' || string_agg(n || ' ' || s, ', ') || ')'
   FROM (SELECT CASE severity WHEN 1 THEN 'low' WHEN 2 THEN 'medium' WHEN 3 THEN 'high'
                ELSE 'critical' END AS s, count(*) AS n FROM alerts GROUP BY severity
         ORDER BY severity DESC) x"
echo "ground truth: $dir/truth.json"
