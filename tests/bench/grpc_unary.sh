#!/usr/bin/env bash
# Benchmark: our gRPC stack on a trivial unary method against nghttpd serving
# a tiny file, with the same h2load settings, over several runs in one go.
#
#   tests/bench/grpc_unary.sh [-n REQUESTS] [-c CLIENTS] [-m STREAMS] [-r RUNS] [-b BUILD_DIR]
#
# Each run measures both servers back to back and records the request rate
# and the server's CPU time per request (user + system from /proc, so the
# figure does not depend on how h2load, which shares the two cores, was
# scheduled). Prints every run, then the medians and the ratios. Every gRPC
# reply must carry grpc-status 0: h2load cannot see trailers, so the
# daemon's own /metrics count of OK calls must equal the requests completed.
set -euo pipefail

requests=200000 clients=50 streams=10 runs=5
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$root/build
while getopts n:c:m:r:b:h opt; do
  case $opt in
    n) requests=$OPTARG ;;
    c) clients=$OPTARG ;;
    m) streams=$OPTARG ;;
    r) runs=$OPTARG ;;
    b) build=$OPTARG ;;
    *) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
  esac
done
for v in "$requests" "$clients" "$streams" "$runs"; do
  case $v in ''|*[!0-9]*|0) echo "-n -c -m -r take positive numbers" >&2; exit 2 ;; esac
done

for tool in h2load nghttpd curl; do
  command -v $tool >/dev/null || [ -x /usr/sbin/$tool ] ||
    { echo "missing $tool: apt-get install nghttp2-client nghttp2-server curl" >&2; exit 1; }
done
nghttpd=$(command -v nghttpd || echo /usr/sbin/nghttpd)
daemon=$build/bin/tidewatch-ingest
[ -x "$daemon" ] || { echo "missing $daemon: build first (cmake -S . -B build && cmake --build build -j)" >&2; exit 1; }

# shellcheck source=SCRIPTDIR/lib.sh
. "$root/tests/bench/lib.sh"
tw_bench_start grpc-unary

# h2load's summary: "finished in 1.23s, 162337.95 req/s, ..." and
# "requests: N total, N started, N done, N succeeded, ..."
rate() { sed -n 's/^finished in [^,]*, \([0-9.]*\) req\/s.*/\1/p' "$1"; }
succeeded() { sed -n 's/^requests: .* \([0-9]*\) succeeded.*/\1/p' "$1"; }
tck=$(getconf CLK_TCK)
# µs of server CPU per request between two tick readings.
us_per() { awk -v a="$1" -v b="$2" -v t="$tck" -v n="$3" 'BEGIN { printf "%.2f", (b - a) / t / n * 1e6 }'; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

grpc_port=$(free_port) metrics_port=$(free_port) h2_port=$(free_port)
# An empty GetServerInfoRequest: compressed flag 0, length 0.
printf '\0\0\0\0\0' > "$work/body.lpm"
mkdir "$work/www" && printf 'hello\n' > "$work/www/tiny"

# No database: GetServerInfo needs none (the daemon logs its reconnect attempts to daemon.log).
TIDEWATCH_LOG_LEVEL=warn "$daemon" --listen 127.0.0.1:$grpc_port \
  --metrics-listen 127.0.0.1:$metrics_port 2>"$work/daemon.log" & tw_pid=$!; pids+=($tw_pid)
"$nghttpd" --no-tls -d "$work/www" $h2_port >/dev/null 2>&1 & ng_pid=$!; pids+=($ng_pid)
wait_port $grpc_port; wait_port $metrics_port; wait_port $h2_port

common=(-n "$requests" -c "$clients" -m "$streams" -t 1)
echo "h2load ${common[*]}, $runs runs ($(nproc) cores shared by client and server)"
printf '%-4s %14s %14s %10s %16s %16s %10s\n' run "nghttpd req/s" "gRPC req/s" ratio \
  "nghttpd µs/req" "gRPC µs/req" "CPU ratio"
: > "$work/rows"
total_ok=0
for run in $(seq "$runs"); do
  c0=$(cpu_ticks $ng_pid)
  h2load "${common[@]}" http://127.0.0.1:$h2_port/tiny > "$work/nghttpd.out"
  c1=$(cpu_ticks $ng_pid)
  g0=$(cpu_ticks $tw_pid)
  h2load "${common[@]}" -H 'content-type: application/grpc' -H 'te: trailers' \
    -d "$work/body.lpm" http://127.0.0.1:$grpc_port/tidewatch.v1.IngestService/GetServerInfo \
    > "$work/grpc.out"
  g1=$(cpu_ticks $tw_pid)
  r_ng=$(rate "$work/nghttpd.out") r_grpc=$(rate "$work/grpc.out")
  s_ng=$(succeeded "$work/nghttpd.out") s_grpc=$(succeeded "$work/grpc.out")
  if [ "$s_grpc" != "$requests" ] || [ "$s_ng" != "$requests" ]; then
    echo "FAIL: run $run: h2load completed $s_ng (nghttpd) and $s_grpc (gRPC) of $requests" >&2
    exit 1
  fi
  total_ok=$((total_ok + s_grpc))
  u_ng=$(us_per "$c0" "$c1" "$requests") u_grpc=$(us_per "$g0" "$g1" "$requests")
  echo "$r_ng $r_grpc $u_ng $u_grpc" >> "$work/rows"
  awk -v run="$run" -v a="$r_ng" -v b="$r_grpc" -v c="$u_ng" -v d="$u_grpc" 'BEGIN {
    printf "%-4s %14.0f %14.0f %10.2f %16.2f %16.2f %10.2f\n", run, a, b, b / a, c, d, (c > 0 ? d / c : 0) }'
done

m_rng=$(cut -d' ' -f1 "$work/rows" | median) m_rgrpc=$(cut -d' ' -f2 "$work/rows" | median)
m_ung=$(cut -d' ' -f3 "$work/rows" | median) m_ugrpc=$(cut -d' ' -f4 "$work/rows" | median)
awk -v a="$m_rng" -v b="$m_rgrpc" -v c="$m_ung" -v d="$m_ugrpc" 'BEGIN {
  printf "%-4s %14.0f %14.0f %10.2f %16.2f %16.2f %10.2f\n", "med", a, b, b / a, c, d, (c > 0 ? d / c : 0)
  printf "\nmedian rate ratio gRPC / nghttpd: %.2f (target >= 0.50); median server CPU per request: gRPC %.2f µs, nghttpd %.2f µs\n", b / a, d, c }'

ok_calls=$(curl -s http://127.0.0.1:$metrics_port/metrics |
  sed -n 's/^tidewatch_grpc_calls_total{.*method="\/tidewatch.v1.IngestService\/GetServerInfo",code="OK"} \([0-9]*\)$/\1/p')
other=$(curl -s http://127.0.0.1:$metrics_port/metrics |
  grep '^tidewatch_grpc_calls_total{' | grep -v 'code="OK"' || true)
echo "gRPC replies: h2load succeeded=$total_ok, server grpc-status OK=$ok_calls"
if [ -z "$ok_calls" ] || [ "$ok_calls" != "$total_ok" ] || [ -n "$other" ]; then
  echo "FAIL: not every request got grpc-status 0" >&2
  [ -n "$other" ] && echo "$other" >&2
  exit 1
fi
echo "every reply carried grpc-status 0"
