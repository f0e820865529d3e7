# shellcheck shell=bash
# Shared install logic for tests/run.sh and deploy/local.sh (sourced, not run).
#
#   tw_ensure_packages [--no-install]
#       Makes sure every Debian package Tidewatch needs to build, test and run
#       locally is installed. Checks each with dpkg-query; when something is
#       missing and we are root, runs `apt-get update` once and installs it
#       non-interactively. When not root (or with --no-install) it prints the
#       command to run and returns 1. Returns 0 when everything is present.
#
#   tw_ensure_buf TOOLS_DIR [--no-install]
#       Installs the stock gRPC client `buf` (npm package @bufbuild/buf, pinned
#       to TW_BUF_VERSION) under TOOLS_DIR unless it is already there, checks
#       that it runs, and exports TW_BUF with the path of the executable.
#       Returns 1 (loudly) when npm or the registry is unreachable.

TW_BUF_VERSION=${TW_BUF_VERSION:-1.75.0}

# Build, test and local-run dependencies (Debian 12 package names).
TW_DEB_PACKAGES=(
  build-essential cmake pkg-config clang libclang-rt-14-dev
  libnghttp2-dev libevent-dev libprotobuf-c-dev protobuf-c-compiler
  protobuf-compiler libprotobuf-dev libcriterion-dev libpq-dev
  postgresql postgresql-contrib
  python3 python3-grpcio python3-protobuf grpc-proto
  nghttp2-client nghttp2-server graphviz
  libjansson-dev libssl-dev zlib1g-dev libcsv-dev libunistring-dev
  nodejs npm
)

# Packages that must be at least a given version (security fixes the code
# relies on): an older installed one counts as missing, so the install step
# upgrades it. libnghttp2-14: rapid reset (CVE-2023-44487), CONTINUATION
# flood (CVE-2024-28182) and CVE-2026-27135 (CMake and every daemon check).
TW_DEB_MIN_VERSIONS=(
  "libnghttp2-14 1.52.0-1+deb12u3"
)

tw_log()  { printf '%s\n' "$*" >&2; }
tw_die()  { printf 'error: %s\n' "$*" >&2; exit 1; }

# tw_section TITLE: a visible header in logs.
tw_section() {
  printf '\n==== %s ====\n' "$*"
}

# tw_pkg_installed PKG: true when dpkg knows PKG as installed.
tw_pkg_installed() {
  local status
  status=$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null) || return 1
  [ "$status" = installed ]
}

# tw_missing_packages: prints the missing packages, one per line.
tw_missing_packages() {
  local p
  for p in "${TW_DEB_PACKAGES[@]}"; do
    case $p in
      # Node.js may come from elsewhere (NodeSource ships npm inside its
      # nodejs package and conflicts with Debian's npm): the commands count.
      nodejs) command -v node >/dev/null 2>&1 && continue ;;
      npm)    command -v npm  >/dev/null 2>&1 && continue ;;
    esac
    tw_pkg_installed "$p" || printf '%s\n' "$p"
  done
  local pin name min have
  for pin in "${TW_DEB_MIN_VERSIONS[@]}"; do
    name=${pin%% *} min=${pin#* }
    have=$(dpkg-query -W -f='${Version}' "$name" 2>/dev/null) || have=
    if [ -z "$have" ] || ! dpkg --compare-versions "$have" ge "$min"; then
      printf '%s\n' "$name"
    fi
  done
}

tw_ensure_packages() {
  local no_install=0
  [ "${1:-}" = --no-install ] && no_install=1
  if ! command -v dpkg-query >/dev/null 2>&1; then
    tw_log "dpkg-query not found: not a Debian system; assuming dependencies are present"
    return 0
  fi
  local missing
  missing=$(tw_missing_packages | tr '\n' ' ')
  missing=${missing% }
  if [ -z "$missing" ]; then
    tw_log "packages: all ${#TW_DEB_PACKAGES[@]} present"
    return 0
  fi
  local cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing"
  if [ "$no_install" = 1 ] || [ "$(id -u)" != 0 ]; then
    tw_log "missing Debian packages: $missing"
    tw_log "install them with (as root):"
    tw_log "  $cmd"
    return 1
  fi
  tw_log "installing missing Debian packages: $missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q </dev/null || return 1
  # shellcheck disable=SC2086  # word splitting of the package list is intended
  apt-get install -y -q --no-install-recommends $missing </dev/null || return 1
  missing=$(tw_missing_packages | tr '\n' ' ')
  if [ -n "${missing// /}" ]; then
    tw_log "still missing after apt-get install: $missing"
    return 1
  fi
}

# tw_buf_path TOOLS_DIR: prints the buf executable under TOOLS_DIR, preferring
# the native binary of the platform package over the node launcher.
tw_buf_path() {
  local dir=$1 native
  for native in "$dir"/node_modules/@bufbuild/buf-linux-*/bin/buf; do
    [ -x "$native" ] && { printf '%s\n' "$native"; return 0; }
  done
  [ -x "$dir/node_modules/.bin/buf" ] && { printf '%s\n' "$dir/node_modules/.bin/buf"; return 0; }
  return 1
}

tw_ensure_buf() {
  local dir=$1 no_install=0 buf version
  [ "${2:-}" = --no-install ] && no_install=1
  if buf=$(tw_buf_path "$dir") && version=$("$buf" --version 2>/dev/null) \
      && [ "$version" = "$TW_BUF_VERSION" ]; then
    export TW_BUF=$buf
    tw_log "buf $version present: $TW_BUF"
    return 0
  fi
  if [ "$no_install" = 1 ]; then
    tw_log "buf $TW_BUF_VERSION is not installed under $dir (and --no-install was given)"
    tw_log "  npm install --prefix $dir @bufbuild/buf@$TW_BUF_VERSION"
    return 1
  fi
  command -v npm >/dev/null 2>&1 || { tw_log "npm not found: cannot install buf"; return 1; }
  mkdir -p "$dir"
  tw_log "installing @bufbuild/buf@$TW_BUF_VERSION into $dir"
  if ! npm install --prefix "$dir" --no-audit --no-fund --loglevel=error \
      "@bufbuild/buf@$TW_BUF_VERSION" </dev/null >&2; then
    tw_log "npm install @bufbuild/buf@$TW_BUF_VERSION failed (is the npm registry reachable?)"
    return 1
  fi
  buf=$(tw_buf_path "$dir") || { tw_log "buf not found under $dir after npm install"; return 1; }
  version=$("$buf" --version 2>&1) || { tw_log "buf does not run: $version"; return 1; }
  if [ "$version" != "$TW_BUF_VERSION" ]; then
    tw_log "buf reports version '$version', expected $TW_BUF_VERSION"
    return 1
  fi
  export TW_BUF=$buf
  tw_log "buf $version installed: $TW_BUF"
}
