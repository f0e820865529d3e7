#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR/..
# deploy/local.sh: run the whole Tidewatch stack on this machine, no containers.
#
#   up       install what is missing, build, create/start a private PostgreSQL
#            under var/ (unix socket only, durable unless --fast), migrate,
#            create the service logins, start the four daemons in the
#            background (restarting any whose binary or settings changed),
#            wait until each is healthy, print what to try
#   restart  restart daemons (all, or those named; `postgres` the server)
#   down     stop the daemons (SIGTERM, then SIGKILL after a timeout) and
#            PostgreSQL; --purge also deletes var/ (the database with it);
#            with service names, only those daemons
#   status   each daemon's pid and the health of its own gRPC service;
#            PostgreSQL's state and durability
#   logs     last lines of every log, or of one service; -f follows
#
# Everything lives under var/: var/pg (cluster), var/run (socket and pid
# files; private to the cluster owner), var/log (one log per process),
# var/pgpass (the service logins' generated passwords, mode 0600). `up` is
# idempotent.
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
PGPASS=$VAR/pgpass
BUILD=$ROOT/build
BIN_DIR=${TW_LOCAL_BIN_DIR:-$BUILD/bin}
CLI=$BIN_DIR/tidewatch
DB_NAME=tidewatch
PY=/usr/bin/python3

SERVICES=(ingest query provenance alerts)
GRPC_BASE=${TW_LOCAL_GRPC_BASE:-50051}      # ingest, query, provenance, alerts
METRICS_BASE=${TW_LOCAL_METRICS_BASE:-9101}
STOP_TIMEOUT=${TW_LOCAL_STOP_TIMEOUT:-15}   # seconds before SIGKILL (> the daemons' 10s grace)
HEALTH_TIMEOUT=${TW_LOCAL_HEALTH_TIMEOUT:-30}
IDLE_IN_XACT_TIMEOUT=1min                   # service logins (see migrations/0004)

# Connection strings quote the paths; keep them free of what would need escaping.
case $ROOT in *"'"* | *\\*) tw_die "the checkout's path must not contain quotes or backslashes: $ROOT" ;; esac
# The superuser, by peer authentication: only the invoking OS user (and the
# cluster owner) may log in as postgres.
DB_URL="host='$RUN_DIR' dbname=$DB_NAME user=postgres"

usage() {
  cat <<EOF
usage: deploy/local.sh COMMAND [options]

commands:
  up [--fast] [--no-install] [--no-build]
                      install, build, start PostgreSQL, migrate, start services;
                      a running daemon whose binary was rebuilt or whose
                      settings changed is restarted
                      --fast: PostgreSQL without fsync, full_page_writes and
                      synchronous_commit: quicker, but a crash of the machine
                      can corrupt the whole database (throwaway data only;
                      the next \`up\` without --fast makes it durable again)
                      --no-install: fail if a Debian package is missing
                      --no-build: use the binaries already in build/bin
  restart [SERVICE...]
                      restart the named daemons (default: all four);
                      \`postgres\` restarts the PostgreSQL server
  down [--purge]      stop services and PostgreSQL (--purge: also delete var/)
  down SERVICE...     stop only these daemons (PostgreSQL and the others keep running)
  status              each daemon's pid and the health of its own gRPC service
                      (e.g. tidewatch.v1.IngestService, NOT_SERVING while its
                      database is unreachable); PostgreSQL's state and
                      durability. Exit 0 only when everything is serving.
  logs [-f] [-n N] [SERVICE]
                      last N (default 40) lines of each log, or of SERVICE
                      (ingest, query, provenance, alerts, migrate, postgres)

services (gRPC, h2c) and metrics endpoints:
$(for i in "${!SERVICES[@]}"; do
    printf '  %-11s 127.0.0.1:%s   metrics 127.0.0.1:%s\n' \
      "${SERVICES[$i]}" "$((GRPC_BASE + i))" "$((METRICS_BASE + i))"
  done)
  postgres    unix socket in var/run (private to its owner), database $DB_NAME

database logins: \`postgres\` (superuser) by peer authentication, for the OS
user running this script only; each daemon as tw_<service>, a member of its
service's group role, with a generated password (scram-sha-256) kept in
var/pgpass (mode 0600) and passed to the daemon as passfile=.

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
  tw_die "unknown service '$1' (one of: ${SERVICES[*]})"
}
port_of()    { local i; i=$(index_of "$1") && echo $((GRPC_BASE + i)); }
metrics_of() { local i; i=$(index_of "$1") && echo $((METRICS_BASE + i)); }
pidfile_of() { echo "$RUN_DIR/$1.pid"; }
envfile_of() { echo "$RUN_DIR/$1.env"; }

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

# ------------------------------------------------------------------ health --
# The gRPC services whose health says whether daemon NAME can do its work
# (ingest's turns NOT_SERVING while its database is unreachable). The
# server-wide entry ("") only says the process answers; it is used for a
# daemon that registers none of these yet.
health_services_of() {
  case $1 in
    ingest) echo tidewatch.v1.IngestService ;;
    query) echo tidewatch.v1.ProvenanceService tidewatch.v1.AlertService ;;
    provenance | alerts) echo tidewatch.v1.WorkerService ;;
  esac
}

# health_of NAME: one health check of daemon NAME (deploy/healthcheck.sh,
# with the CLI). Prints SERVING, NOT_SERVING (or another status), DOWN (no
# answer), or "SERVING (server)" when the daemon registers none of its
# services yet. Returns 0 only when serving.
health_of() {
  [ -x "$CLI" ] || { echo "? (no $CLI)"; return 1; }
  # shellcheck disable=SC2046  # one word per service name
  TW_CLI=$CLI "$ROOT/deploy/healthcheck.sh" "127.0.0.1:$(port_of "$1")" $(health_services_of "$1")
}

# wait_healthy NAME...: until every named daemon is serving, at most
# HEALTH_TIMEOUT seconds. Prints "NAME STATUS" for those that are not.
wait_healthy() {
  local deadline=$((SECONDS + HEALTH_TIMEOUT)) name pending=("$@") left
  while :; do
    left=()
    for name in "${pending[@]}"; do
      health_of "$name" >/dev/null || left+=("$name")
    done
    pending=("${left[@]+"${left[@]}"}")
    [ "${#pending[@]}" = 0 ] && return 0
    [ "$SECONDS" -ge "$deadline" ] && break
    sleep 0.3
  done
  for name in "${pending[@]}"; do echo "  $name: $(health_of "$name" || true)"; done
  return 1
}

# port_busy PORT: true when something accepts TCP connections on 127.0.0.1:PORT.
port_busy() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# ---------------------------------------------------------------- postgres --
prepare_var() {
  local owner
  owner=$(tw_pg_owner)
  mkdir -p "$VAR" "$PGDATA_DIR" "$RUN_DIR" "$LOG_DIR"
  # var/ itself: traversable (the server may run as another user), not listable.
  chmod 711 "$VAR" "$LOG_DIR"
  [ -f "$LOG_DIR/postgres.log" ] || (umask 077 && : >"$LOG_DIR/postgres.log")
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || tw_die "no 'postgres' user to run the server as (is the postgresql package installed?)"
    chown postgres:postgres "$PGDATA_DIR" "$RUN_DIR" "$LOG_DIR/postgres.log"
    if ! runuser -u postgres -- test -w "$RUN_DIR" -a -x "$PGDATA_DIR"; then
      tw_die "the postgres user cannot reach $VAR: make every parent directory of $ROOT traversable (chmod o+x)"
    fi
  fi
  # Who can reach the socket can try to log in: the directory is the
  # cluster owner's alone (root, the invoking user when root, still can).
  chmod 700 "$PGDATA_DIR" "$RUN_DIR"
  [ "$(stat -c %U "$RUN_DIR")" = "$owner" ] || tw_die "$RUN_DIR is not owned by $owner"
}

announce_mode() {
  if [ "$1" = fast ]; then
    cat >&2 <<'EOF'

  ##########################################################################
  #  --fast: PostgreSQL runs with fsync, full_page_writes and              #
  #  synchronous_commit OFF. A crash or power loss of this machine can     #
  #  corrupt the WHOLE database in var/pg, not just lose the last seconds. #
  #  Keep nothing in it you cannot load again. `deploy/local.sh up`        #
  #  without --fast makes it durable again.                                #
  ##########################################################################

EOF
  else
    echo "durable: fsync, full_page_writes and synchronous_commit on"
  fi
}

psql_admin() {
  psql -X -q -v ON_ERROR_STOP=1 "$DB_URL" "$@"
}

pg_up() {
  local mode=$1 prev bindir pending
  bindir=$(tw_pg_bindir) || tw_die "PostgreSQL server binaries not found"
  prepare_var
  if [ ! -f "$PGDATA_DIR/PG_VERSION" ]; then
    echo "creating PostgreSQL cluster in var/pg"
    tw_pg_init "$PGDATA_DIR" "$mode" peer || tw_die "initdb failed"
    prev=$mode
  else
    prev=$(tw_pg_mode "$PGDATA_DIR")
    tw_pg_configure "$PGDATA_DIR" "$mode" peer || tw_die "cannot write the PostgreSQL configuration"
  fi
  announce_mode "$mode"
  if tw_pg_running "$PGDATA_DIR"; then
    echo "PostgreSQL already running: reloading its configuration"
    tw_pg_reload "$PGDATA_DIR" || tw_die "cannot reload PostgreSQL"
    sleep 0.2
    pending=$(psql_admin -tA -c "SELECT string_agg(name, ', ') FROM pg_settings WHERE pending_restart" 2>/dev/null || true)
    if [ -n "$pending" ]; then
      echo "restarting PostgreSQL to apply: $pending"
      tw_pg_stop "$PGDATA_DIR" fast || tw_die "cannot stop PostgreSQL"
      tw_pg_start "$PGDATA_DIR" "$RUN_DIR" "$LOG_DIR/postgres.log" || tw_die "PostgreSQL did not start"
    fi
  else
    echo "starting PostgreSQL (socket in var/run)"
    tw_pg_start "$PGDATA_DIR" "$RUN_DIR" "$LOG_DIR/postgres.log" || tw_die "PostgreSQL did not start"
  fi
  if [ "$prev" = fast ] && [ "$mode" = durable ]; then
    # Written while fsync was off: push everything to disk now (the way
    # PostgreSQL's documentation asks for when turning fsync back on).
    echo "was --fast: flushing the cluster to disk"
    tw_pg_as_owner "$bindir/initdb" --sync-only -D "$PGDATA_DIR" >/dev/null || tw_die "initdb --sync-only failed"
    psql_admin -c CHECKPOINT || tw_die "CHECKPOINT failed"
  fi
  tw_pg_createdb "$RUN_DIR" "$DB_NAME" || tw_die "cannot create database $DB_NAME"
}

pg_state() {
  local bindir mode
  if [ ! -f "$PGDATA_DIR/PG_VERSION" ]; then
    echo "not created"
    return 1
  fi
  mode=$(tw_pg_mode "$PGDATA_DIR")
  [ "$mode" = fast ] && mode="FAST (fsync off: a crash can corrupt it)"
  if tw_pg_running "$PGDATA_DIR"; then
    bindir=$(tw_pg_bindir)
    if "$bindir/pg_isready" -q -h "$RUN_DIR" -U postgres -d postgres -t 2; then
      echo "running, accepting connections; $mode"
      return 0
    fi
    echo "running, not ready; $mode"
  else
    echo "stopped; $mode"
  fi
  return 1
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
        TIDEWATCH_CONNECT_TIMEOUT=10s TIDEWATCH_LOG_LEVEL=${TIDEWATCH_LOG_LEVEL:-info} \
        "$bin" 2>&1 </dev/null) || rc=$?
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
    provenance) echo tidewatch_provenance ;;
    alerts) echo tidewatch_alerts ;;
    query) echo tidewatch_query ;;
  esac
}

# password_of LOGIN: the login's password from var/pgpass ("" when none).
password_of() {
  [ -f "$PGPASS" ] || return 0
  awk -F: -v u="$1" '$4 == u { print $5; exit }' "$PGPASS"
}

# ensure_passwords: every service login has a random password in var/pgpass
# (libpq's password file format; 0600, or libpq ignores it). Kept across runs.
ensure_passwords() {
  local name pw
  (umask 077 && touch "$PGPASS")
  chmod 600 "$PGPASS"
  for name in "${SERVICES[@]}"; do
    [ -n "$(password_of "tw_$name")" ] && continue
    pw=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
    [ "${#pw}" = 48 ] || tw_die "cannot generate a password"
    printf '*:*:%s:tw_%s:%s\n' "$DB_NAME" "$name" "$pw" >>"$PGPASS"
  done
}

service_logins() {
  local name
  ensure_passwords
  # Passwords go to psql on stdin (not in argv) and are quoted by psql (:'pw').
  {
    for name in "${SERVICES[@]}"; do
      printf '\\set pw %s\n' "$(password_of "tw_$name")"
      cat <<SQL
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tw_$name') THEN
    CREATE ROLE tw_$name LOGIN;
  END IF;
END \$\$;
ALTER ROLE tw_$name LOGIN PASSWORD :'pw';
ALTER ROLE tw_$name SET idle_in_transaction_session_timeout = '$IDLE_IN_XACT_TIMEOUT';
GRANT $(role_of "$name") TO tw_$name;
SQL
    done
    # Before migration 0004 the consumers were direct members of tidewatch_consumer.
    cat <<'SQL'
DO $$
DECLARE l text;
BEGIN
  FOREACH l IN ARRAY ARRAY['tw_provenance', 'tw_alerts'] LOOP
    IF EXISTS (SELECT FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
               JOIN pg_roles u ON u.oid = m.member
               WHERE g.rolname = 'tidewatch_consumer' AND u.rolname = l) THEN
      EXECUTE format('REVOKE tidewatch_consumer FROM %I', l);
    END IF;
  END LOOP;
END $$;
SQL
  } | psql_admin >>"$LOG_DIR/migrate.log" 2>&1 ||
    tw_die "cannot create the service logins (log: var/log/migrate.log)"
  echo "service logins: ${SERVICES[*]/#/tw_} (passwords in var/pgpass)"
}

# service_env NAME: the daemon's environment, one VAR=value per line. A
# running daemon started with other values is restarted by `up`.
service_env() {
  local name=$1
  printf '%s\n' \
    "TIDEWATCH_DATABASE_URL=host='$RUN_DIR' dbname=$DB_NAME user=tw_$name passfile='$PGPASS'" \
    "TIDEWATCH_LISTEN=127.0.0.1:$(port_of "$name")" \
    "TIDEWATCH_METRICS_LISTEN=127.0.0.1:$(metrics_of "$name")" \
    "TIDEWATCH_LOG_LEVEL=${TIDEWATCH_LOG_LEVEL:-info}"
}

# proc_start PID: the process's start time, in seconds since the epoch.
proc_start() {
  local btime ticks hz
  btime=$(awk '$1 == "btime" { print $2 }' /proc/stat)
  # field 22 of /proc/PID/stat, counted after the command name in parentheses
  ticks=$(sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $20 }')
  hz=$(getconf CLK_TCK)
  echo $((btime + ticks / hz))
}

# stale_reason NAME PID: why the running daemon must be restarted to run
# what `up` would start now; prints nothing when it is current.
stale_reason() {
  local name=$1 pid=$2 exe bin=$BIN_DIR/tidewatch-$1 envfile
  envfile=$(envfile_of "$name")
  if exe=$(readlink "/proc/$pid/exe" 2>/dev/null); then
    case $exe in
      *" (deleted)") echo "its binary was replaced (rebuilt)"; return ;;
    esac
    if [ -e "$bin" ] && [ "$exe" != "$(readlink -f "$bin")" ]; then
      echo "it runs $exe, not $bin"
      return
    fi
  fi
  if [ -e "$bin" ] && [ "$(stat -c %Y "$bin")" -gt "$(proc_start "$pid")" ]; then
    echo "its binary is newer than the process"
    return
  fi
  if [ ! -f "$envfile" ] || [ "$(cat "$envfile")" != "$(service_env "$name")" ]; then
    echo "its settings changed"
  fi
}

start_service() {
  local name=$1 bin=$BIN_DIR/tidewatch-$1 port pid log envs
  port=$(port_of "$name")
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
  mapfile -t envs < <(service_env "$name")
  (umask 077 && printf '%s\n' "${envs[@]}" >"$(envfile_of "$name")")
  printf '\n--- %s start %s ---\n' "$(date '+%F %T')" "$name" >>"$log"
  # setsid: the daemon leaves our session, so ^C in this terminal spares it.
  (
    cd "$ROOT"
    exec env "${envs[@]}" setsid "$bin"
  ) >>"$log" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$(pidfile_of "$name")"
  echo "  $name started (pid $pid), 127.0.0.1:$port"
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
    rm -f "$(pidfile_of "$name")" "$(envfile_of "$name")"
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
  rm -f "$(pidfile_of "$name")" "$(envfile_of "$name")"
}

# check_started NAME...: fail loudly when a daemon exited or is not healthy.
check_started() {
  local name failed=0 out
  echo "waiting for health (up to ${HEALTH_TIMEOUT}s)"
  out=$(wait_healthy "$@") || failed=1
  for name in "$@"; do
    if ! pid_of "$name" >/dev/null; then
      echo "  $name exited; last lines of var/log/$name.log:" >&2
      tail -n 15 "$LOG_DIR/$name.log" | sed 's/^/    /' >&2
      failed=1
    fi
  done
  [ "$failed" = 0 ] || { [ -z "$out" ] || echo "$out" >&2; tw_die "not every service is healthy (logs: deploy/local.sh logs)"; }
}

services_up() {
  local name failed=0 missing=() pid why
  for name in "${SERVICES[@]}"; do
    [ -x "$BIN_DIR/tidewatch-$name" ] || missing+=("tidewatch-$name")
  done
  [ "${#missing[@]}" = 0 ] ||
    tw_die "not built yet: ${missing[*]} (expected in $BIN_DIR; run cmake --build build)"
  echo "starting services"
  for name in "${SERVICES[@]}"; do
    if pid=$(pid_of "$name"); then
      why=$(stale_reason "$name" "$pid")
      if [ -n "$why" ]; then
        echo "  $name (pid $pid): restarting, $why"
        stop_service "$name"
      fi
    fi
    start_service "$name" || failed=1
  done
  [ "$failed" = 0 ] || tw_die "some services could not be started (see above; logs in var/log)"
  check_started "${SERVICES[@]}"
}

demo() {
  # The demo scenario (deploy/demo/load.sh): once, on an empty log.
  local loader=$ROOT/deploy/demo/load.sh
  if [ -x "$loader" ]; then
    echo "loading the demo scenario (a simulated season; log: var/log/demo.log)"
    PATH="$(tw_pg_bindir):$PATH" TIDEWATCH_INGEST=127.0.0.1:$(port_of ingest) \
      TIDEWATCH_QUERY=127.0.0.1:$(port_of query) TIDEWATCH_ALERTS=127.0.0.1:$(port_of alerts) \
      TW_BIN_DIR=$BIN_DIR TW_DB_URL="$DB_URL" TW_DEMO_DIR="$VAR/demo" \
      "$loader" >>"$LOG_DIR/demo.log" 2>&1 </dev/null ||
      tw_die "loading the demo scenario failed (log: var/log/demo.log)"
    tail -n 2 "$LOG_DIR/demo.log"
  fi
}

# table: one line per daemon and one for PostgreSQL. Returns 0 when every
# daemon is running and serving and PostgreSQL accepts connections.
table() {
  local name pid hl port rc=0 pg why
  printf '\n%-11s %-8s %-18s %-16s %s\n' SERVICE PID GRPC METRICS HEALTH
  for name in "${SERVICES[@]}"; do
    port=$(port_of "$name")
    if pid=$(pid_of "$name"); then
      hl=$(health_of "$name") || rc=3
      why=$(stale_reason "$name" "$pid")
      [ -z "$why" ] || hl="$hl; stale: $why (deploy/local.sh restart $name)"
    else
      pid=- hl="not running" rc=3
    fi
    printf '%-11s %-8s %-18s %-16s %s\n' "$name" "$pid" \
      "127.0.0.1:$port" "127.0.0.1:$(metrics_of "$name")" "$hl"
  done
  pg=$(pg_state) || rc=3
  printf '%-11s %s\n' postgres "$pg (socket var/run, db $DB_NAME)"
  return "$rc"
}

next_steps() {
  local buf=buf bin=$BIN_DIR
  [ "$bin" = "$BUILD/bin" ] && bin=build/bin
  [ -x "$BUILD/tools/node_modules/.bin/buf" ] && buf=build/tools/node_modules/.bin/buf
  cat <<EOF

Database:   psql "$DB_URL"
            (superuser, for $(id -un) only; the daemons log in as tw_<service>
            with the passwords in var/pgpass)
Logs:       deploy/local.sh logs [-f] [service]      (files in var/log)

Try:
  # health of every service
  deploy/local.sh status
  # the demo season's alerts (var/demo holds its records and ground truth)
  $bin/tidewatch alerts --severity high
  $bin/tidewatch alerts show 1                       # explanation, evidence, history
  $bin/tidewatch alerts --watch                      # new and updated alerts as they come
  $bin/tidewatch hubs --kind coast
  $bin/tidewatch jobs                                # scheduled jobs and their runs
  $bin/tidewatch jobs run bulk_acquisition --as-of $(date -u +%F)
  # a provenance scenario (five records arriving out of order), then its chain
  deploy/demo/chain_scenario.py --target 127.0.0.1:$(port_of ingest)
  $bin/tidewatch chain 6E5X1094417                  # also --json, --dot, --geojson
  $bin/tidewatch chain '6E5-X-10?44?7'              # a half-ground serial: candidates
  $bin/tidewatch party 2049      # the buyer (#2049 on an empty log): its cluster, tied by a phone
  # the CLI (--target: which daemon; query's port by default)
  $bin/tidewatch health --target 127.0.0.1:$(port_of query)
  $bin/tidewatch health --target 127.0.0.1:$(port_of ingest) tidewatch.v1.IngestService
  $bin/tidewatch info --target 127.0.0.1:$(port_of ingest)
  # any stock gRPC client, through server reflection (no .proto files needed)
  $buf curl --protocol grpc --http2-prior-knowledge --list-methods http://127.0.0.1:$(port_of query)
  $buf curl --protocol grpc --http2-prior-knowledge http://127.0.0.1:$(port_of ingest)/grpc.health.v1.Health/Check
  # grpcio (Debian's python3), raw bytes: b'\\x08\\x01' is SERVING
  $PY -c 'import grpc; c=grpc.insecure_channel("127.0.0.1:$(port_of ingest)"); print(c.unary_unary("/grpc.health.v1.Health/Check")(b"", timeout=2))'
  # the event log's horizon and the consumers' lag
  curl -s http://127.0.0.1:$(metrics_of ingest)/metrics | grep -E 'oldest|lag'
Restart:    deploy/local.sh restart [service]       (after a rebuild, \`up\` does it)
Stop:       deploy/local.sh down        (keeps the database; --purge deletes var/)
EOF
}

# --------------------------------------------------------------- commands --
cmd_up() {
  local no_install=0 no_build=0 mode=durable
  while [ $# -gt 0 ]; do
    case $1 in
      --fast) mode=fast ;;
      --no-install) no_install=1 ;;
      --no-build) no_build=1 ;;
      *) tw_die "up: unknown option $1 (see --help)" ;;
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
  pg_up "$mode"
  tw_section "migrate"
  migrate
  service_logins
  tw_section "services"
  services_up
  demo
  table || true
  next_steps
  [ "$mode" = durable ] || announce_mode fast
}

cmd_restart() {
  local name names=() pg=0
  for name in "$@"; do
    case $name in
      postgres) pg=1 ;;
      -*) tw_die "restart: unknown option $name" ;;
      *) index_of "$name" >/dev/null && names+=("$name") ;;
    esac
  done
  [ $# -gt 0 ] || names=("${SERVICES[@]}")
  if [ "$pg" = 1 ]; then
    [ -f "$PGDATA_DIR/PG_VERSION" ] || tw_die "no PostgreSQL cluster yet: deploy/local.sh up"
    prepare_var
    echo "restarting PostgreSQL"
    tw_pg_stop "$PGDATA_DIR" fast || tw_die "cannot stop PostgreSQL"
    tw_pg_start "$PGDATA_DIR" "$RUN_DIR" "$LOG_DIR/postgres.log" || tw_die "PostgreSQL did not start"
  fi
  [ "${#names[@]}" -gt 0 ] || return 0
  echo "restarting ${names[*]}"
  for name in "${names[@]}"; do stop_service "$name"; done
  for name in "${names[@]}"; do start_service "$name" || tw_die "$name could not be started"; done
  check_started "${names[@]}"
  table || true
}

cmd_down() {
  local purge=0 name names=()
  for name in "$@"; do
    case $name in
      --purge) purge=1 ;;
      -*) tw_die "down: unknown option $name" ;;
      *) index_of "$name" >/dev/null && names+=("$name") ;;
    esac
  done
  if [ "${#names[@]}" -gt 0 ]; then # only these daemons; PostgreSQL stays
    [ "$purge" = 0 ] || tw_die "down: --purge stops everything; name no service with it"
    echo "stopping ${names[*]}"
    for name in "${names[@]}"; do stop_service "$name"; done
    return 0
  fi
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
  table
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
    restart) cmd_restart "$@" ;;
    down) cmd_down "$@" ;;
    status) cmd_status ;;
    logs) cmd_logs "$@" ;;
    -h|--help|help) usage ;;
    *) echo "unknown command: $cmd" >&2; usage >&2; return 2 ;;
  esac
}

main "$@"
exit
