#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR/..
# deploy/local.sh: run the whole Tidewatch stack on this machine, no containers.
#
#   up       install what is missing, build, create/start a private PostgreSQL
#            under var/ (unix socket only), migrate, start the four daemons in
#            the background, wait until each is healthy, print what to try
#   down     stop the daemons (SIGTERM, then SIGKILL after a timeout) and
#            PostgreSQL; --purge also deletes var/ (the database with it)
#   status   each daemon's pid, liveness and gRPC health; PostgreSQL's state
#   logs     last lines of every log, or of one service; -f follows
#
# Everything lives under var/: var/pg (cluster), var/run (socket, pid files),
# var/log (one log per process). `up` is idempotent.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=SCRIPTDIR/lib/packages.sh
. "$ROOT/deploy/lib/packages.sh"
# shellcheck source=SCRIPTDIR/lib/pg.sh
. "$ROOT/deploy/lib/pg.sh"

VAR=$ROOT/var
PGDATA_DIR=$VAR/pg
RUN_DIR=$VAR/run
LOG_DIR=$VAR/log
BUILD=$ROOT/build
BIN_DIR=${TW_LOCAL_BIN_DIR:-$BUILD/bin}
DB_NAME=tidewatch
DB_URL="host=$RUN_DIR dbname=$DB_NAME user=postgres"
PY=/usr/bin/python3

SERVICES=(ingest query provenance alerts)
GRPC_BASE=${TW_LOCAL_GRPC_BASE:-50051}      # ingest, query, provenance, alerts
METRICS_BASE=${TW_LOCAL_METRICS_BASE:-9101}
STOP_TIMEOUT=${TW_LOCAL_STOP_TIMEOUT:-15}   # seconds before SIGKILL (> the daemons' 10s grace)
HEALTH_TIMEOUT=${TW_LOCAL_HEALTH_TIMEOUT:-30}

usage() {
  cat <<EOF
usage: deploy/local.sh COMMAND [options]

commands:
  up [--no-install] [--no-build]
                      install, build, start PostgreSQL, migrate, start services
                      (--no-install: fail if a Debian package is missing;
                      --no-build: use the binaries already in build/bin)
  down [--purge]      stop services and PostgreSQL (--purge: also delete var/)
  status              pid, liveness and health of each service; PostgreSQL state
  logs [-f] [-n N] [SERVICE]
                      last N (default 40) lines of each log, or of SERVICE
                      (ingest, query, provenance, alerts, migrate, postgres)

services (gRPC, h2c) and metrics endpoints:
$(for i in "${!SERVICES[@]}"; do
    printf '  %-11s 127.0.0.1:%s   metrics 127.0.0.1:%s\n' \
      "${SERVICES[$i]}" "$((GRPC_BASE + i))" "$((METRICS_BASE + i))"
  done)
  postgres    unix socket in var/run, database $DB_NAME

environment: TIDEWATCH_LOG_LEVEL (default info), TW_LOCAL_GRPC_BASE,
TW_LOCAL_METRICS_BASE (shift all ports), TW_LOCAL_BIN_DIR (binaries).
EOF
}

# index_of NAME: position of NAME in SERVICES (ports are assigned in that order).
index_of() {
  local i
  for i in "${!SERVICES[@]}"; do
    if [ "${SERVICES[$i]}" = "$1" ]; then echo "$i"; return 0; fi
  done
  tw_die "unknown service $1"
}
port_of()    { local i; i=$(index_of "$1") && echo $((GRPC_BASE + i)); }
metrics_of() { local i; i=$(index_of "$1") && echo $((METRICS_BASE + i)); }
pidfile_of() { echo "$RUN_DIR/$1.pid"; }

# pid_of NAME: prints the pid of our running daemon NAME; false when none.
# A pid file whose process is gone, or is no longer our binary, does not count.
pid_of() {
  local f pid cmd
  f=$(pidfile_of "$1")
  [ -f "$f" ] || return 1
  pid=$(cat "$f" 2>/dev/null) || return 1
  case $pid in ''|*[!0-9]*) return 1 ;; esac
  [ -r "/proc/$pid/cmdline" ] || return 1
  cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  case $cmd in *"tidewatch-$1"*) echo "$pid" ;; *) return 1 ;; esac
}

# health TIMEOUT ADDR...: asks grpc.health.v1.Health/Check (service "") on
# each ADDR until it answers SERVING or TIMEOUT seconds have passed. Prints
# "ADDR STATUS" per address; exits 0 only when all are SERVING. The request
# and response are encoded by hand: no generated code needed.
health() {
  "$PY" - "$@" <<'PY'
import sys, time
import grpc

timeout = float(sys.argv[1])
addrs = sys.argv[2:]
names = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}

def varint(buf, i):
    shift = value = 0
    while True:
        b = buf[i]; i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, i

def status_of(resp):
    i, status = 0, 0
    while i < len(resp):
        key, i = varint(resp, i)
        field, wt = key >> 3, key & 7
        if wt == 0:
            v, i = varint(resp, i)
            if field == 1:
                status = v
        elif wt == 2:
            n, i = varint(resp, i); i += n
        elif wt == 1:
            i += 8
        elif wt == 5:
            i += 4
        else:
            break
    return status

def check(addr, per_try):
    ch = grpc.insecure_channel(addr, options=[("grpc.enable_http_proxy", 0)])
    try:
        rpc = ch.unary_unary("/grpc.health.v1.Health/Check",
                             request_serializer=lambda b: b,
                             response_deserializer=lambda b: b)
        return names.get(status_of(rpc(b"", timeout=per_try)), "?")
    except grpc.RpcError as e:
        return "DOWN(" + e.code().name + ")"
    finally:
        ch.close()

deadline = time.monotonic() + timeout
result = {}
pending = list(addrs)
while True:
    for a in list(pending):
        result[a] = check(a, 1.0)
        if result[a] == "SERVING":
            pending.remove(a)
    if not pending or time.monotonic() >= deadline:
        break
    time.sleep(0.3)
for a in addrs:
    print(a, result[a])
sys.exit(0 if not pending else 1)
PY
}

# port_busy PORT: true when something accepts TCP connections on 127.0.0.1:PORT.
port_busy() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# ---------------------------------------------------------------- postgres --
prepare_var() {
  mkdir -p "$PGDATA_DIR" "$RUN_DIR" "$LOG_DIR"
  touch "$LOG_DIR/postgres.log"
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || tw_die "no 'postgres' user to run the server as (is the postgresql package installed?)"
    chown postgres:postgres "$PGDATA_DIR" "$RUN_DIR" "$LOG_DIR/postgres.log"
    chmod 700 "$PGDATA_DIR"
    if ! runuser -u postgres -- test -w "$RUN_DIR" -a -x "$PGDATA_DIR"; then
      tw_die "the postgres user cannot reach $VAR: make every parent directory of $ROOT traversable (chmod o+x)"
    fi
  fi
}

pg_up() {
  prepare_var
  if [ ! -f "$PGDATA_DIR/PG_VERSION" ]; then
    echo "creating PostgreSQL cluster in var/pg"
    tw_pg_init "$PGDATA_DIR" || tw_die "initdb failed"
  fi
  if tw_pg_running "$PGDATA_DIR"; then
    echo "PostgreSQL already running"
  else
    echo "starting PostgreSQL (socket in var/run)"
    tw_pg_start "$PGDATA_DIR" "$RUN_DIR" "$LOG_DIR/postgres.log" || tw_die "PostgreSQL did not start"
  fi
  tw_pg_createdb "$RUN_DIR" "$DB_NAME" || tw_die "cannot create database $DB_NAME"
}

pg_state() {
  if [ ! -f "$PGDATA_DIR/PG_VERSION" ]; then
    echo "not created"
  elif tw_pg_running "$PGDATA_DIR"; then
    local bindir
    bindir=$(tw_pg_bindir)
    if "$bindir/pg_isready" -q -h "$RUN_DIR" -U postgres -d postgres -t 2; then echo "running, accepting connections"; else echo "running, not ready"; fi
  else
    echo "stopped"
  fi
}

# ---------------------------------------------------------------- services --
build() {
  local targets=(tidewatch-ingest tidewatch-query tidewatch-provenance tidewatch-alerts
                 tidewatch-migrate tidewatch-cli)
  if [ ! -f "$BUILD/CMakeCache.txt" ]; then
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo || tw_die "cmake configure failed"
  fi
  cmake --build "$BUILD" -j2 --target "${targets[@]}" || tw_die "build failed"
}

migrate() {
  local bin=$BIN_DIR/tidewatch-migrate
  [ -x "$bin" ] || tw_die "$bin not found: build it first (cmake --build build)"
  echo "migrating database $DB_NAME"
  local log=$LOG_DIR/migrate.log out rc=0
  printf '\n--- %s migrate ---\n' "$(date '+%F %T')" >>"$log"
  out=$(cd "$ROOT" && TIDEWATCH_DATABASE_URL=$DB_URL TIDEWATCH_MIGRATIONS_DIR=$ROOT/migrations \
        TIDEWATCH_LOG_LEVEL=${TIDEWATCH_LOG_LEVEL:-info} "$bin" 2>&1 </dev/null) || rc=$?
  [ -z "$out" ] || printf '%s\n' "$out" >>"$log"
  if [ "$rc" != 0 ]; then
    printf '%s\n' "$out" | tail -n 20 >&2
    tw_die "tidewatch-migrate failed with exit $rc (log: var/log/migrate.log)"
  fi
  [ -z "$out" ] || printf '%s\n' "$out" | tail -n 20 | sed 's/^/  /'
}

# Each daemon logs in as its own user, a member of the group role that the
# migrations grant exactly what that service needs (least privilege).
role_of() {
  case $1 in
    ingest) echo tidewatch_ingest ;;
    provenance|alerts) echo tidewatch_consumer ;;
    query) echo tidewatch_query ;;
  esac
}

service_logins() {
  local name sql=
  for name in "${SERVICES[@]}"; do
    sql+="DO \$\$ BEGIN
      IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tw_$name') THEN
        CREATE ROLE tw_$name LOGIN;
      END IF;
    END \$\$;
    GRANT $(role_of "$name") TO tw_$name;
"
  done
  psql -X -q -v ON_ERROR_STOP=1 "$DB_URL" -c "$sql" >>"$LOG_DIR/migrate.log" 2>&1 ||
    tw_die "cannot create the service logins (log: var/log/migrate.log)"
  echo "service logins: ${SERVICES[*]/#/tw_}"
}

start_service() {
  local name=$1 bin=$BIN_DIR/tidewatch-$1 port metrics pid log
  port=$(port_of "$name")
  metrics=$(metrics_of "$name")
  log=$LOG_DIR/$name.log
  if pid=$(pid_of "$name"); then
    echo "  $name already running (pid $pid)"
    return 0
  fi
  [ -x "$bin" ] || { echo "  $name: $bin not found (not built yet?)" >&2; return 1; }
  if port_busy "$port"; then
    echo "  $name: 127.0.0.1:$port is already in use by another process" >&2
    return 1
  fi
  printf '\n--- %s start %s ---\n' "$(date '+%F %T')" "$name" >>"$log"
  # setsid: the daemon leaves our session, so ^C in this terminal spares it.
  (
    cd "$ROOT"
    export TIDEWATCH_DATABASE_URL="host=$RUN_DIR dbname=$DB_NAME user=tw_$name"
    export TIDEWATCH_LISTEN=127.0.0.1:$port
    export TIDEWATCH_METRICS_LISTEN=127.0.0.1:$metrics
    export TIDEWATCH_LOG_LEVEL=${TIDEWATCH_LOG_LEVEL:-info}
    exec setsid "$bin"
  ) >>"$log" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$(pidfile_of "$name")"
  echo "  $name started (pid $pid), 127.0.0.1:$port"
}

services_up() {
  local name failed=0 addrs=() out missing=()
  for name in "${SERVICES[@]}"; do
    [ -x "$BIN_DIR/tidewatch-$name" ] || missing+=("tidewatch-$name")
  done
  [ "${#missing[@]}" = 0 ] ||
    tw_die "not built yet: ${missing[*]} (expected in $BIN_DIR; run cmake --build build)"
  echo "starting services"
  for name in "${SERVICES[@]}"; do
    start_service "$name" || failed=1
  done
  [ "$failed" = 0 ] || tw_die "some services could not be started (see above; logs in var/log)"
  for name in "${SERVICES[@]}"; do addrs+=("127.0.0.1:$(port_of "$name")"); done
  echo "waiting for health (up to ${HEALTH_TIMEOUT}s)"
  out=$(health "$HEALTH_TIMEOUT" "${addrs[@]}") || failed=1
  for name in "${SERVICES[@]}"; do
    if ! pid_of "$name" >/dev/null; then
      echo "  $name exited; last lines of var/log/$name.log:" >&2
      tail -n 15 "$LOG_DIR/$name.log" | sed 's/^/    /' >&2
      failed=1
    fi
  done
  [ "$failed" = 0 ] || { echo "$out" >&2; tw_die "not every service is healthy (logs: deploy/local.sh logs)"; }
}

# alive PID: true while PID runs (a zombie waiting for its reaper is gone).
alive() {
  local state
  kill -0 "$1" 2>/dev/null || return 1
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

stop_service() {
  local name=$1 pid waited=0
  if ! pid=$(pid_of "$name"); then
    rm -f "$(pidfile_of "$name")"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  while alive "$pid" && [ "$waited" -lt $((STOP_TIMEOUT * 10)) ]; do
    sleep 0.1
    waited=$((waited + 1))
  done
  if alive "$pid"; then
    echo "  $name (pid $pid) ignored SIGTERM for ${STOP_TIMEOUT}s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    waited=0
    while alive "$pid" && [ "$waited" -lt 50 ]; do sleep 0.1; waited=$((waited + 1)); done
  else
    echo "  $name stopped (pid $pid)"
  fi
  rm -f "$(pidfile_of "$name")"
}

demo() {
  # The deterministic demo scenario, once it ships, lives in deploy/demo/.
  local loader=$ROOT/deploy/demo/load.sh
  if [ -x "$loader" ]; then
    echo "loading the demo scenario"
    TIDEWATCH_INGEST=127.0.0.1:$(port_of ingest) TIDEWATCH_QUERY=127.0.0.1:$(port_of query) \
      TW_BIN_DIR=$BIN_DIR "$loader" >>"$LOG_DIR/demo.log" 2>&1 </dev/null ||
      tw_die "loading the demo scenario failed (log: var/log/demo.log)"
  fi
}

table() {
  local name pid alive hl port
  printf '\n%-11s %-8s %-6s %-18s %-16s %s\n' SERVICE PID ALIVE GRPC METRICS HEALTH
  for name in "${SERVICES[@]}"; do
    port=$(port_of "$name")
    if pid=$(pid_of "$name"); then
      alive=yes
      hl=$(health 0 "127.0.0.1:$port" | awk '{print $2}') || true
    else
      pid=- alive=no hl=-
    fi
    printf '%-11s %-8s %-6s %-18s %-16s %s\n' "$name" "$pid" "$alive" \
      "127.0.0.1:$port" "127.0.0.1:$(metrics_of "$name")" "$hl"
  done
  printf '%-11s %s\n' postgres "$(pg_state) (socket var/run, db $DB_NAME)"
}

next_steps() {
  local buf=buf bin=$BIN_DIR
  [ "$bin" = "$BUILD/bin" ] && bin=build/bin
  [ -x "$BUILD/tools/node_modules/.bin/buf" ] && buf=build/tools/node_modules/.bin/buf
  cat <<EOF

Database:   TIDEWATCH_DATABASE_URL="$DB_URL"
            psql "$DB_URL"
Logs:       deploy/local.sh logs [-f] [service]      (files in var/log)

Try:
  # health of every service
  deploy/local.sh status
  # the CLI (talks to query on 127.0.0.1:$(port_of query) unless --target)
  $bin/tidewatch health
  $bin/tidewatch info --target 127.0.0.1:$(port_of ingest)
  # any stock gRPC client, through server reflection (no .proto files needed)
  $buf curl --protocol grpc --http2-prior-knowledge --list-methods http://127.0.0.1:$(port_of query)
  $buf curl --protocol grpc --http2-prior-knowledge http://127.0.0.1:$(port_of ingest)/grpc.health.v1.Health/Check
  # grpcio (Debian's python3), raw bytes: b'\\x08\\x01' is SERVING
  $PY -c 'import grpc; c=grpc.insecure_channel("127.0.0.1:$(port_of ingest)"); print(c.unary_unary("/grpc.health.v1.Health/Check")(b"", timeout=2))'
Stop:       deploy/local.sh down        (keeps the database; --purge deletes var/)
EOF
}

# --------------------------------------------------------------- commands --
cmd_up() {
  local no_install=0 no_build=0
  while [ $# -gt 0 ]; do
    case $1 in
      --no-install) no_install=1 ;;
      --no-build) no_build=1 ;;
      *) tw_die "up: unknown option $1" ;;
    esac
    shift
  done
  tw_section "packages"
  if [ "$no_install" = 1 ]; then tw_ensure_packages --no-install || exit 1
  else tw_ensure_packages || exit 1; fi
  # buf (npm) is only for trying things out: a warning, not a failure.
  if [ "$no_install" = 1 ]; then tw_ensure_buf "$BUILD/tools" --no-install || true
  else tw_ensure_buf "$BUILD/tools" || echo "warning: buf not available (npm registry unreachable?)"; fi
  if [ "$no_build" = 0 ]; then
    tw_section "build"
    build
  fi
  tw_section "postgres"
  pg_up
  tw_section "migrate"
  migrate
  service_logins
  tw_section "services"
  services_up
  demo
  table
  next_steps
}

cmd_down() {
  local purge=0 name
  [ "${1:-}" = --purge ] && purge=1
  echo "stopping services"
  for name in "${SERVICES[@]}"; do stop_service "$name"; done
  if [ -f "$PGDATA_DIR/PG_VERSION" ] && tw_pg_running "$PGDATA_DIR"; then
    echo "stopping PostgreSQL"
    tw_pg_stop "$PGDATA_DIR" fast || tw_pg_stop "$PGDATA_DIR" immediate
  fi
  if [ "$purge" = 1 ]; then
    echo "removing var/"
    rm -rf "$VAR"
  fi
}

cmd_status() {
  local name rc=0
  table
  for name in "${SERVICES[@]}"; do pid_of "$name" >/dev/null || rc=3; done
  tw_pg_running "$PGDATA_DIR" || rc=3
  return "$rc"
}

cmd_logs() {
  local follow=0 n=40 name files=() f
  while [ $# -gt 0 ]; do
    case $1 in
      -f) follow=1 ;;
      -n) n=${2:?-n needs a number}; shift ;;
      -*) tw_die "logs: unknown option $1" ;;
      *) name=$1 ;;
    esac
    shift
  done
  if [ -n "${name:-}" ]; then
    case $name in
      ingest|query|provenance|alerts|migrate|postgres|demo) files=("$LOG_DIR/$name.log") ;;
      *) tw_die "logs: unknown service '$name'" ;;
    esac
    [ -f "${files[0]}" ] || tw_die "no log yet: ${files[0]}"
  else
    for f in "$LOG_DIR"/*.log; do [ -f "$f" ] && files+=("$f"); done
    [ "${#files[@]}" -gt 0 ] || tw_die "no logs yet in var/log"
  fi
  if [ "$follow" = 1 ]; then exec tail -n "$n" -F "${files[@]}"; fi
  tail -n "$n" "${files[@]}"
}

main() {
  [ $# -gt 0 ] || { usage >&2; return 2; }
  local cmd=$1
  shift
  case $cmd in
    up) cmd_up "$@" ;;
    down) cmd_down "$@" ;;
    status) cmd_status ;;
    logs) cmd_logs "$@" ;;
    -h|--help|help) usage ;;
    *) echo "unknown command: $cmd" >&2; usage >&2; return 2 ;;
  esac
}

main "$@"
exit
