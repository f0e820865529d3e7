# shellcheck shell=bash
# Private PostgreSQL clusters for tests/run.sh (throwaway) and deploy/local.sh
# (kept under var/). Sourced, not run. Every cluster listens on a unix socket
# only (listen_addresses = ''), in a directory that must be private to the
# cluster owner (mode 0700; the socket itself is 0700 too), and has the
# superuser `postgres`. As root the server runs as the `postgres` OS user
# (PostgreSQL refuses to run as root), so its directories are chowned; root
# can still connect.
#
# Our settings live in DATADIR/tidewatch.conf, included at the end of
# postgresql.conf and rewritten by tw_pg_configure (so a later `up` can make
# a cluster durable again); settings appended to postgresql.conf after
# tw_pg_init still win.
#
#   tw_pg_bindir              prints the server bindir (initdb, pg_ctl, postgres)
#   tw_pg_as_owner CMD...     runs CMD as the cluster owner (postgres when root)
#   tw_pg_chown PATH...       gives PATHs to the cluster owner (no-op unless root)
#   tw_pg_init DATADIR [MODE [AUTH]]
#                             initdb, then tw_pg_configure (DATADIR must not
#                             exist or be empty; its parent owned by the
#                             cluster owner)
#   tw_pg_configure DATADIR MODE AUTH
#                             writes tidewatch.conf, pg_hba.conf, pg_ident.conf:
#       MODE durable (default): fsync, full_page_writes, synchronous_commit on
#            fast: all three off: a crash of the machine can corrupt the
#            cluster; for test data only
#       AUTH trust (default): any local user that reaches the socket is
#            anyone (throwaway test clusters: the private socket directory
#            is the only gate)
#            peer: the superuser `postgres` by peer authentication for the
#            invoking OS user and the cluster owner only; every other role
#            by scram-sha-256 password
#   tw_pg_mode DATADIR        prints durable or fast (what the config says)
#   tw_pg_start DATADIR SOCKDIR LOGFILE
#                             starts the server, waits until it accepts connections
#   tw_pg_reload DATADIR      makes a running server re-read its configuration
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

tw_pg_owner() {
  if [ "$(id -u)" = 0 ]; then echo postgres; else id -un; fi
}

tw_pg_init() {
  local datadir=$1 mode=${2:-durable} auth=${3:-trust} bindir locale=C.UTF-8 a=trust
  bindir=$(tw_pg_bindir) || { echo "PostgreSQL server binaries not found" >&2; return 1; }
  if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
    echo "running as root but there is no 'postgres' user to run the server as" >&2
    return 1
  fi
  locale -a 2>/dev/null | grep -qix 'c\.utf-\?8' || locale=C
  # Never trust by accident: the real pg_hba.conf is written just after.
  [ "$auth" = trust ] || a=reject
  tw_pg_as_owner "$bindir/initdb" -D "$datadir" -U postgres -A "$a" -E UTF8 \
    --locale="$locale" >/dev/null || return 1
  tw_pg_configure "$datadir" "$mode" "$auth"
}

# tw_pg_write_owned FILE: stdin into FILE, written as the cluster owner
# (mode 0600), so the server can read it and nobody else can.
tw_pg_write_owned() {
  # shellcheck disable=SC2016  # $1 is the inner shell's
  tw_pg_as_owner sh -c 'umask 077 && cat >"$1"' sh "$1"
}

tw_pg_configure() {
  local datadir=$1 mode=${2:-durable} auth=${3:-trust} conf durability
  conf=$datadir/postgresql.conf
  case $mode in
    durable) durability='fsync = on
full_page_writes = on
synchronous_commit = on' ;;
    fast) durability='fsync = off
full_page_writes = off
synchronous_commit = off' ;;
    *) echo "tw_pg_configure: mode must be durable or fast, not '$mode'" >&2; return 1 ;;
  esac
  case $auth in trust|peer) ;; *) echo "tw_pg_configure: auth must be trust or peer" >&2; return 1 ;; esac
  [ -f "$conf" ] || { echo "no $conf" >&2; return 1; }
  # Clusters made before tidewatch.conf existed carry our settings in a
  # block at the end of postgresql.conf: drop it (it turned fsync off).
  if grep -qx '# --- tidewatch private cluster ---' "$conf"; then
    sed '/^# --- tidewatch private cluster ---$/,$d' "$conf" | tw_pg_write_owned "$conf.new" &&
      tw_pg_as_owner mv "$conf.new" "$conf" || return 1
  fi
  if ! grep -qx "include_if_exists = 'tidewatch.conf'" "$conf"; then
    # shellcheck disable=SC2016  # $1 is the inner shell's
    printf "\n# Tidewatch's settings (deploy/lib/pg.sh rewrites that file)\ninclude_if_exists = 'tidewatch.conf'\n" |
      tw_pg_as_owner sh -c 'cat >>"$1"' sh "$conf" || return 1
  fi
  tw_pg_write_owned "$datadir/tidewatch.conf" <<CONF || return 1
# Written by deploy/lib/pg.sh (tw_pg_configure): rewritten at each start.
# Only our socket, in a directory private to the cluster owner; no TCP.
listen_addresses = ''
unix_socket_permissions = 0700
max_connections = 200
shared_buffers = 128MB
password_encryption = scram-sha-256
log_min_messages = warning
log_checkpoints = off
log_line_prefix = '%m [%p] %q%u@%d '
# durability: $mode
$durability
CONF
  if [ "$auth" = trust ]; then
    tw_pg_write_owned "$datadir/pg_hba.conf" <<'HBA' || return 1
# Written by deploy/lib/pg.sh: a throwaway cluster; the private socket
# directory is the only gate.
local   all   all   trust
HBA
  else
    tw_pg_write_owned "$datadir/pg_hba.conf" <<'HBA' || return 1
# Written by deploy/lib/pg.sh (rewritten at each start).
# The superuser: only the OS users in pg_ident.conf's map (the invoking
# user, the cluster owner). Everyone else: a scram-sha-256 password.
local   all   postgres   peer map=tidewatch
local   all   all        scram-sha-256
HBA
    { echo "# Written by deploy/lib/pg.sh: OS users allowed to log in as postgres."
      echo "# MAPNAME   SYSTEM-USERNAME   PG-USERNAME"
      printf 'tidewatch   %s   postgres\n' "$(id -un)"
      [ "$(tw_pg_owner)" = "$(id -un)" ] || printf 'tidewatch   %s   postgres\n' "$(tw_pg_owner)"
    } | tw_pg_write_owned "$datadir/pg_ident.conf" || return 1
  fi
}

tw_pg_mode() {
  local datadir=$1
  if [ -f "$datadir/tidewatch.conf" ] && grep -qx 'fsync = on' "$datadir/tidewatch.conf"; then
    echo durable
  elif [ -f "$datadir/tidewatch.conf" ] || grep -qx 'fsync = off' "$datadir/postgresql.conf" 2>/dev/null; then
    echo fast
  else
    echo durable
  fi
}

tw_pg_reload() {
  local bindir
  bindir=$(tw_pg_bindir) || return 1
  tw_pg_as_owner "$bindir/pg_ctl" -D "$1" reload >/dev/null
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
  # Whoever can write in the socket's directory can talk to the server.
  tw_pg_as_owner chmod 700 "$sockdir" || {
    echo "cannot make $sockdir private to the cluster owner ($(tw_pg_owner))" >&2
    return 1
  }
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
