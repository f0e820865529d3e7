#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR/..
# shellcheck disable=SC2317  # phase functions are called indirectly
# tests/run.sh: the one command that tests Tidewatch (CI runs it via .ci/run).
#
# Installs what is missing (Debian packages, the buf gRPC client from npm),
# starts a throwaway PostgreSQL 15 on a private unix socket, then:
#   1. build/       -DTW_WERROR=ON, every CTest suite
#   2. build-asan/  -DTW_WERROR=ON -DTW_SANITIZE=ON, labels unit|integration
#   3. build-fuzz/  clang -DTW_FUZZ=ON -DTW_SANITIZE=ON, each fuzz_* binary for
#                   a bounded time over a copy of its seed corpus
# and exits non-zero if anything failed. See --help.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=SCRIPTDIR/../deploy/lib/packages.sh
. "$ROOT/deploy/lib/packages.sh"
# shellcheck source=SCRIPTDIR/../deploy/lib/pg.sh
. "$ROOT/deploy/lib/pg.sh"

usage() {
  cat <<EOF
usage: tests/run.sh [options]

  --quick            only the main pass (skip the ASan and fuzz passes)
  --no-asan          skip the ASan/UBSan pass
  --no-fuzz          skip the fuzz pass
  --fuzz-seconds N   time per fuzz target (default: ${TW_FUZZ_SECONDS:-20})
  --no-install       do not install anything; fail if something is missing
  -R REGEX           only run tests matching REGEX (passed to ctest; also
                     filters fuzz targets by name)
  -j N               parallel build and test jobs (default: 2)
  -h, --help         this text

Build dirs: build, build-asan, build-fuzz (under the repo root). The buf
client is installed under build/tools.

Exported to the tests:
  TW_TEST_DATABASE_URL  libpq string of the throwaway database tidewatch_test
  TW_TEST_PG_HOST       the directory of its unix socket (host= in libpq)
  TW_PG_BINDIR          PostgreSQL server binaries (also prepended to PATH)
  TW_BUF                the buf executable (buf curl --protocol grpc ...)
  TW_PYTHON             /usr/bin/python3 (Debian's, with grpcio)
EOF
}

QUICK=0 NO_ASAN=0 NO_FUZZ=0 NO_INSTALL=0 JOBS=2 REGEX=
FUZZ_SECONDS=${TW_FUZZ_SECONDS:-20}
while [ $# -gt 0 ]; do
  case $1 in
    --quick) QUICK=1 ;;
    --no-asan) NO_ASAN=1 ;;
    --no-fuzz) NO_FUZZ=1 ;;
    --no-install) NO_INSTALL=1 ;;
    --fuzz-seconds) FUZZ_SECONDS=${2:?--fuzz-seconds needs a value}; shift ;;
    --fuzz-seconds=*) FUZZ_SECONDS=${1#*=} ;;
    -R) REGEX=${2:?-R needs a regex}; shift ;;
    -R*) REGEX=${1#-R} ;;
    -j) JOBS=${2:?-j needs a number}; shift ;;
    -j*) JOBS=${1#-j} ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
case $JOBS in ''|*[!0-9]*) echo "-j needs a number" >&2; exit 2 ;; esac
case $FUZZ_SECONDS in ''|*[!0-9]*) echo "--fuzz-seconds needs a number" >&2; exit 2 ;; esac
[ "$QUICK" = 1 ] && { NO_ASAN=1; NO_FUZZ=1; }

BUILD=$ROOT/build
BUILD_ASAN=$ROOT/build-asan
BUILD_FUZZ=$ROOT/build-fuzz
ulimit -c 0 2>/dev/null || true   # abort_on_error must not leave core files

# ---------------------------------------------------------------- phases --
PHASES=() STATUSES=() TIMES=()
FAILED=0
START_ALL=$SECONDS

# run_phase NAME FUNCTION: runs FUNCTION, records its status and duration.
run_phase() {
  local name=$1 fn=$2 t0=$SECONDS rc=0
  tw_section "$name"
  "$fn" || rc=$?
  PHASES+=("$name") TIMES+=("$((SECONDS - t0))")
  if [ "$rc" = 0 ]; then
    STATUSES+=(ok)
  else
    STATUSES+=(FAILED) FAILED=1
    echo ">>> phase '$name' FAILED (exit $rc)"
  fi
  return "$rc"
}

skip_phase() {
  PHASES+=("$1") TIMES+=(0) STATUSES+=("skipped: $2")
}

summary() {
  local i
  tw_section summary
  for i in "${!PHASES[@]}"; do
    printf '  %-22s %-28s %5ss\n' "${PHASES[$i]}" "${STATUSES[$i]}" "${TIMES[$i]}"
  done
  printf '  %-22s %-28s %5ss\n' total "$([ "$FAILED" = 0 ] && echo ok || echo FAILED)" \
    "$((SECONDS - START_ALL))"
  echo
  echo "tests: $PASSED passed, $FAILED_TESTS failed"
}

# -------------------------------------------------------------- postgres --
PG_TMP=
cleanup() {
  local rc=$?
  if [ -n "$PG_TMP" ] && [ -d "$PG_TMP" ]; then
    tw_pg_stop "$PG_TMP/data" immediate >/dev/null 2>&1 || true
    rm -rf "$PG_TMP"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'echo "interrupted" >&2; exit 130' INT
trap 'echo "terminated" >&2; exit 143' TERM

phase_postgres() {
  TW_PG_BINDIR=$(tw_pg_bindir) || { echo "PostgreSQL server binaries not found"; return 1; }
  PG_TMP=$(mktemp -d /tmp/tw-test-pg.XXXXXX) || return 1
  chmod 700 "$PG_TMP" && tw_pg_chown "$PG_TMP" || return 1
  # fast: fsync off, trust: a throwaway cluster behind a private socket directory
  tw_pg_init "$PG_TMP/data" fast trust || return 1
  tw_pg_start "$PG_TMP/data" "$PG_TMP" "$PG_TMP/postgres.log" || return 1
  tw_pg_createdb "$PG_TMP" tidewatch_test || return 1
  export TW_PG_BINDIR
  export TW_TEST_PG_HOST=$PG_TMP
  export TW_TEST_DATABASE_URL="host=$PG_TMP dbname=tidewatch_test user=postgres"
  export PATH="$TW_PG_BINDIR:$PATH"
  echo "PostgreSQL $("$TW_PG_BINDIR/postgres" --version | awk '{print $3}') on $PG_TMP"
  echo "TW_TEST_DATABASE_URL=$TW_TEST_DATABASE_URL"
}

# ------------------------------------------------------------- the passes --
phase_packages() {
  if [ "$NO_INSTALL" = 1 ]; then tw_ensure_packages --no-install; else tw_ensure_packages; fi
}

phase_buf() {
  if [ "$NO_INSTALL" = 1 ]; then
    tw_ensure_buf "$BUILD/tools" --no-install
  else
    tw_ensure_buf "$BUILD/tools"
  fi || { echo "cannot provide the buf client (TW_BUF): failing"; return 1; }
  export TW_BUF
}

CTEST_ARGS=()
[ -n "$REGEX" ] && CTEST_ARGS+=(-R "$REGEX")

phase_build() {
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTW_WERROR=ON &&
    cmake --build "$BUILD" -j"$JOBS"
}

# tally LOG: add ctest's "N% tests passed, F tests failed out of T" to the
# run's totals (printed last, as "N passed, F failed").
PASSED=0 FAILED_TESTS=0
tally() {
  local line total failed
  line=$(grep -E 'tests passed, [0-9]+ tests? failed out of [0-9]+' "$1" | tail -n 1) || return 0
  failed=$(sed -E 's/.* ([0-9]+) tests? failed out of.*/\1/' <<<"$line")
  total=$(sed -E 's/.*out of ([0-9]+).*/\1/' <<<"$line")
  PASSED=$((PASSED + total - failed)) FAILED_TESTS=$((FAILED_TESTS + failed))
}

phase_test() {
  local rc=0
  ctest --test-dir "$BUILD" --output-on-failure -j"$JOBS" --no-tests=error \
    "${CTEST_ARGS[@]}" 2>&1 | tee "$BUILD/ctest.log" || rc=$?
  tally "$BUILD/ctest.log"
  return "$rc"
}

phase_build_asan() {
  cmake -S "$ROOT" -B "$BUILD_ASAN" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DTW_WERROR=ON -DTW_SANITIZE=ON &&
    cmake --build "$BUILD_ASAN" -j"$JOBS"
}

phase_test_asan() {
  local no_tests=error
  [ -n "$REGEX" ] && no_tests=ignore   # -R may select only other labels
  local rc=0
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir "$BUILD_ASAN" --output-on-failure -j"$JOBS" --no-tests="$no_tests" \
      -L 'unit|integration|interop' "${CTEST_ARGS[@]}" 2>&1 | tee "$BUILD_ASAN/ctest.log" || rc=$?
  tally "$BUILD_ASAN/ctest.log"
  return "$rc"
}

FUZZ_TARGETS=()
find_fuzz_targets() {
  local src name
  FUZZ_TARGETS=()
  for src in "$ROOT"/tests/fuzz/fuzz_*.c; do
    [ -e "$src" ] || continue
    name=$(basename "$src" .c)
    if [ -n "$REGEX" ] && ! [[ $name =~ $REGEX ]]; then continue; fi
    FUZZ_TARGETS+=("$name")
  done
}

phase_build_fuzz() {
  find_fuzz_targets
  if [ "${#FUZZ_TARGETS[@]}" = 0 ]; then
    echo "no fuzz targets (tests/fuzz/fuzz_*.c)"
    return 0
  fi
  CC=clang cmake -S "$ROOT" -B "$BUILD_FUZZ" -DCMAKE_C_COMPILER=clang \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTW_FUZZ=ON -DTW_SANITIZE=ON &&
    cmake --build "$BUILD_FUZZ" -j"$JOBS" --target "${FUZZ_TARGETS[@]}"
}

phase_fuzz() {
  local name short bin corpus work log rc failed=0
  if [ "${#FUZZ_TARGETS[@]}" = 0 ]; then
    echo "no fuzz targets"
    return 0
  fi
  mkdir -p "$BUILD_FUZZ/logs" "$BUILD_FUZZ/artifacts"
  for name in "${FUZZ_TARGETS[@]}"; do
    short=${name#fuzz_}
    bin=$BUILD_FUZZ/fuzz/$name
    corpus=$ROOT/tests/fuzz/corpus/$short
    log=$BUILD_FUZZ/logs/$name.log
    if [ ! -x "$bin" ]; then
      echo "  $name: binary missing ($bin)"
      failed=1
      continue
    fi
    work=$BUILD_FUZZ/corpus-work/$short
    rm -rf "$work"
    mkdir -p "$work" "$BUILD_FUZZ/artifacts/$short"
    if [ -d "$corpus" ]; then
      cp -R "$corpus"/. "$work"/
    else
      echo "  $name: warning: no seed corpus at tests/fuzz/corpus/$short"
    fi
    rc=0
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
      "$bin" -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=0 -artifact_prefix="$BUILD_FUZZ/artifacts/$short/" \
        "$work" >"$log" 2>&1 </dev/null || rc=$?
    if [ "$rc" = 0 ]; then
      printf '  %-28s ok   %s (corpus %s -> %s files)\n' "$name" \
        "$(grep -E '^Done [0-9]+ runs' "$log" | tail -n 1)" \
        "$(find "$corpus" -type f 2>/dev/null | wc -l)" "$(find "$work" -type f | wc -l)"
    else
      printf '  %-28s FAILED (exit %s); log: %s\n' "$name" "$rc" "$log"
      tail -n 60 "$log"
      find "$BUILD_FUZZ/artifacts/$short" -type f 2>/dev/null | sed 's/^/    artifact: /'
      failed=1
    fi
  done
  return "$failed"
}

# ------------------------------------------------------------------- main --
# (one function, parsed whole before it runs: editing this file during a run is safe)
main() {
  cd "$ROOT"
  echo "tidewatch tests: root $ROOT, jobs $JOBS$([ "$QUICK" = 1 ] && echo ', quick')"

  # Setup failures stop the run: nothing after them can mean anything.
  run_phase packages phase_packages || { summary; exit 1; }
  run_phase buf phase_buf || { summary; exit 1; }
  run_phase postgres phase_postgres || { summary; exit 1; }
  export TW_PYTHON=/usr/bin/python3

  if run_phase build phase_build; then
    run_phase test phase_test || true
  else
    skip_phase test "build failed"
  fi

  if [ "$NO_ASAN" = 1 ]; then
    skip_phase "build-asan" "--quick/--no-asan"
    skip_phase "test-asan" "--quick/--no-asan"
  elif run_phase build-asan phase_build_asan; then
    run_phase test-asan phase_test_asan || true
  else
    skip_phase test-asan "build failed"
  fi

  if [ "$NO_FUZZ" = 1 ]; then
    skip_phase "build-fuzz" "--quick/--no-fuzz"
    skip_phase "fuzz" "--quick/--no-fuzz"
  elif run_phase build-fuzz phase_build_fuzz; then
    run_phase "fuzz (${FUZZ_SECONDS}s each)" phase_fuzz || true
  else
    skip_phase fuzz "build failed"
  fi

  summary
}

main "$@"
exit "$FAILED"
