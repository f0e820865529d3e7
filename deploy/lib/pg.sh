# shellcheck shell=bash
# Private PostgreSQL clusters for tests/run.sh (throwaway) and deploy/local.sh
# (kept under var/). Sourced, not run. Every cluster listens on a unix socket
# in a directory of ours only (listen_addresses = ''), trusts local users and
# has the superuser `postgres`. As root the server runs as the `postgres` OS
# user (PostgreSQL refuses to run as root), so its directories are chowned.
#
#   tw_pg_bindir              prints the server bindir (initdb, pg_ctl, postgres)
#   tw_pg_as_owner CMD...     runs CMD as the cluster owner (postgres when root)
#   tw_pg_chown PATH...       gives PATHs to the cluster owner (no-op unless root)
#   tw_pg_init DATADIR        initdb with our settings (DATADIR must not exist
#                             or be empty; its parent owned by the cluster owner)
#   tw_pg_start DATADIR SOCKDIR LOGFILE
#                             starts the server, waits until it accepts connections
#   tw_pg_running DATADIR     true when a server runs on DATADIR
#   tw_pg_stop DATADIR [MODE] stops it (MODE: fast (default) or immediate)
#   tw_pg_createdb SOCKDIR NAME   creates database NAME unless it exists

tw_pg_bindir() {
  local d cand=()
  if command -v pg_config >/dev/null 2>&1; then
    cand+=("$(pg_config --bindir 2>/dev/null)")
  fi
  cand+=(/usr/lib/postgresql/15/bin)
  for d in /usr/lib/postgresql/*/bin; do cand+=("$d"); done
  for d in "${cand[@]}"; do
    if [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ]; then
      printf '%s\n' "$d"
      return 0
    fi
  done
  return 1
}

tw_pg_as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

tw_pg_chown() {
  if [ "$(id -u)" = 0 ]; then
    chown postgres:postgres "$@"
  fi
}

tw_pg_init() {
  local datadir=$1 bindir locale=C.UTF-8
  bindir=$(tw_pg_bindir) || { echo "PostgreSQL server binaries not found" >&2; return 1; }
  if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
    echo "running as root but there is no 'postgres' user to run the server as" >&2
    return 1
  fi
  locale -a 2>/dev/null | grep -qix 'c\.utf-\?8' || locale=C
  tw_pg_as_owner "$bindir/initdb" -D "$datadir" -U postgres -A trust -E UTF8 \
    --locale="$locale" >/dev/null || return 1
  # Only our socket; no TCP. Small and quick: this cluster holds test or demo data.
  cat >>"$datadir/postgresql.conf" <<'CONF' || return 1

# --- tidewatch private cluster ---
listen_addresses = ''
max_connections = 200
shared_buffers = 128MB
fsync = off
synchronous_commit = off
full_page_writes = off
log_min_messages = warning
log_checkpoints = off
log_line_prefix = '%m [%p] %q%u@%d '
CONF
}

tw_pg_running() {
  local bindir
  bindir=$(tw_pg_bindir) || return 1
  [ -f "$1/PG_VERSION" ] || return 1
  tw_pg_as_owner "$bindir/pg_ctl" -D "$1" status >/dev/null 2>&1
}

tw_pg_start() {
  local datadir=$1 sockdir=$2 logfile=$3 bindir sock
  bindir=$(tw_pg_bindir) || { echo "PostgreSQL server binaries not found" >&2; return 1; }
  sock="$sockdir/.s.PGSQL.5432"
  if [ "${#sock}" -gt 107 ]; then
    echo "socket path too long for a unix socket (${#sock} > 107): $sock" >&2
    return 1
  fi
  case $sockdir in *"'"*) echo "socket directory must not contain a quote: $sockdir" >&2; return 1 ;; esac
  tw_pg_as_owner "$bindir/pg_ctl" -D "$datadir" -l "$logfile" -w -t 60 \
    -o "-k '$sockdir'" start >/dev/null || {
      echo "PostgreSQL did not start; last lines of $logfile:" >&2
      tail -n 20 "$logfile" >&2 || true
      return 1
    }
  "$bindir/pg_isready" -q -h "$sockdir" -U postgres -d postgres -t 30 ||
    "$bindir/pg_isready" -h "$sockdir" -U postgres -d postgres -t 30
}

tw_pg_stop() {
  local datadir=$1 mode=${2:-fast} bindir
  bindir=$(tw_pg_bindir) || return 1
  tw_pg_running "$datadir" || return 0
  tw_pg_as_owner "$bindir/pg_ctl" -D "$datadir" -m "$mode" -w -t 60 stop >/dev/null
}

tw_pg_createdb() {
  local sockdir=$1 name=$2 bindir exists
  bindir=$(tw_pg_bindir) || return 1
  exists=$("$bindir/psql" -h "$sockdir" -U postgres -d postgres -XtAq \
    -c "SELECT 1 FROM pg_database WHERE datname = '$name'") || return 1
  [ "$exists" = 1 ] && return 0
  "$bindir/createdb" -h "$sockdir" -U postgres "$name"
}
