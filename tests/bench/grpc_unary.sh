#!/usr/bin/env bash
# Benchmark: our gRPC stack on a trivial unary method against nghttpd serving
# a tiny file, with the same h2load settings, in one run.
#
#   tests/bench/grpc_unary.sh [-n REQUESTS] [-c CLIENTS] [-m STREAMS] [-b BUILD_DIR]
#
# Prints both request rates and the ratio. Every gRPC reply must carry
# grpc-status 0: h2load cannot see trailers, so the daemon's own /metrics
# count of OK calls must equal the number of requests h2load completed.
set -euo pipefail

requests=200000 clients=50 streams=10
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$root/build
while getopts n:c:m:b:h opt; do
  case $opt in
    n) requests=$OPTARG ;;
    c) clients=$OPTARG ;;
    m) streams=$OPTARG ;;
    b) build=$OPTARG ;;
    *) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
  esac
done

for tool in h2load nghttpd curl; do
  command -v $tool >/dev/null || [ -x /usr/sbin/$tool ] ||
    { echo "missing $tool: apt-get install nghttp2-client nghttp2-server curl" >&2; exit 1; }
done
nghttpd=$(command -v nghttpd || echo /usr/sbin/nghttpd)
daemon=$build/bin/tidewatch-ingest
[ -x "$daemon" ] || { echo "missing $daemon: build first (cmake -S . -B build && cmake --build build -j)" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 100); do
    (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0
    sleep 0.05
  done
  echo "nothing listening on port $1" >&2; exit 1
}
# h2load's summary: "finished in 1.23s, 162337.95 req/s, ..." and
# "requests: N total, N started, N done, N succeeded, ..."
rate() { sed -n 's/^finished in [^,]*, \([0-9.]*\) req\/s.*/\1/p' "$1"; }
succeeded() { sed -n 's/^requests: .* \([0-9]*\) succeeded.*/\1/p' "$1"; }

grpc_port=$(free_port) metrics_port=$(free_port) h2_port=$(free_port)
# An empty GetServerInfoRequest: compressed flag 0, length 0.
printf '\0\0\0\0\0' > "$work/body.lpm"
mkdir "$work/www" && printf 'hello\n' > "$work/www/tiny"

TIDEWATCH_LOG_LEVEL=warn "$daemon" --listen 127.0.0.1:$grpc_port \
  --metrics-listen 127.0.0.1:$metrics_port & pids+=($!)
"$nghttpd" --no-tls -d "$work/www" $h2_port >/dev/null 2>&1 & pids+=($!)
wait_port $grpc_port; wait_port $metrics_port; wait_port $h2_port

common=(-n "$requests" -c "$clients" -m "$streams" -t 1)
echo "h2load ${common[*]} (2 cores shared by client and server)"
h2load "${common[@]}" http://127.0.0.1:$h2_port/tiny > "$work/nghttpd.out"
h2load "${common[@]}" -H 'content-type: application/grpc' -H 'te: trailers' \
  -d "$work/body.lpm" http://127.0.0.1:$grpc_port/tidewatch.v1.IngestService/GetServerInfo \
  > "$work/grpc.out"

ok_calls=$(curl -s http://127.0.0.1:$metrics_port/metrics |
  sed -n 's/^tidewatch_grpc_calls_total{.*method="\/tidewatch.v1.IngestService\/GetServerInfo",code="OK"} \([0-9]*\)$/\1/p')
other=$(curl -s http://127.0.0.1:$metrics_port/metrics |
  grep '^tidewatch_grpc_calls_total{' | grep -v 'code="OK"' || true)

r_ng=$(rate "$work/nghttpd.out") r_grpc=$(rate "$work/grpc.out")
s_grpc=$(succeeded "$work/grpc.out")
printf '%-34s %12s req/s\n' "nghttpd, 6-byte file:" "$r_ng"
printf '%-34s %12s req/s\n' "tidewatch gRPC unary (GetServerInfo):" "$r_grpc"
awk -v a="$r_grpc" -v b="$r_ng" 'BEGIN { printf "%-34s %12.2f  (target >= 0.50)\n", "ratio gRPC / nghttpd:", a / b }'
echo "gRPC replies: h2load succeeded=$s_grpc, server grpc-status OK=$ok_calls"
if [ -z "$ok_calls" ] || [ "$ok_calls" != "$s_grpc" ] || [ "$s_grpc" != "$requests" ] || [ -n "$other" ]; then
  echo "FAIL: not every request got grpc-status 0" >&2
  [ -n "$other" ] && echo "$other" >&2
  exit 1
fi
echo "every reply carried grpc-status 0"
