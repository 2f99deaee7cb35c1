#!/usr/bin/env bash
# mbxmove developer entry point: installs what is missing (Debian 12), builds
# with CMake, and runs the demo or the test suite.
#
#   tools/dev.sh demo   # set up, build Release, run the default job
#   tools/dev.sh demo-remote   # the same across emulated network links
#   tools/dev.sh demo-ldap     # the same move with the directory embedded and in OpenLDAP
#   tools/dev.sh slapd start|stop DIR   # a private slapd for LDAP-backed organisations
#   tools/dev.sh test   # set up, build Release, ASan+UBSan and TSan, run the tests
#   tools/dev.sh deps   # only install the Debian packages
#   tools/dev.sh build [preset]   # only build (release, debug, asan, tsan, fuzz)
#   tools/dev.sh fuzz [SECONDS]   # run the libFuzzer targets (default 60 s each)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
JOBS="${JOBS:-2}"
# ctest runs more tests at once than there are cores: most of the suite waits
# on fsync and on the mbxmove children it spawns (the release run uses well
# under one core at -j2). The sanitizer runs use more CPU per test.
TEST_JOBS="${TEST_JOBS:-6}"
SAN_TEST_JOBS="${SAN_TEST_JOBS:-4}"

PACKAGES=(
  build-essential cmake pkg-config
  liblmdb-dev lmdb-utils libzstd-dev libtbb-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  nlohmann-json3-dev libcli11-dev libxxhash-dev
  gnuplot-nox
  libgmime-3.0-dev dovecot-core
  clang libclang-rt-14-dev
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  libssl-dev libasio-dev
  libldap-dev slapd ldap-utils
)

log() { printf '==> %s\n' "$*" >&2; }

deps() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    log "all Debian packages present"
    return
  fi
  log "installing: ${missing[*]}"
  local SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null; then SUDO="sudo"; else
      echo "error: packages missing (${missing[*]}) and not root; run as root or install them" >&2
      exit 1
    fi
  fi
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  # slapd's package would start (and enable) the system's LDAP service; the
  # tests run private servers of their own (net/slapd.h). A policy-rc.d that
  # answers 101 ("action forbidden") stops the maintainer scripts from
  # starting any service while the packages install; one already present is
  # the administrator's and is left alone.
  local policy=/usr/sbin/policy-rc.d placed=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# placed by mbxmove tools/dev.sh deps for the duration of apt-get install\nexit 101\n' |
      $SUDO tee "$policy" >/dev/null
    $SUDO chmod 755 "$policy"
    placed=1
  fi
  local rc=0
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null || rc=$?
  if [ -n "$placed" ]; then $SUDO rm -f "$policy"; fi
  return $rc
}

configure() {
  local preset="$1"
  local extra=()
  if [ "${MBX_WERROR:-}" = "ON" ] || [ "${CI:-}" = "true" ]; then extra+=(-DMBX_WERROR=ON); fi
  log "configuring ($preset)"
  cmake --preset "$preset" "${extra[@]}" >/dev/null
}

# build PRESET [TARGET...]: every target of the preset when none is named.
build() {
  local preset="${1:-release}"
  shift || true
  local targets=()
  if [ $# -gt 0 ]; then targets=(--target "$@"); fi
  configure "$preset"
  log "building ($preset${*:+: $*}, -j$JOBS)"
  cmake --build --preset "$preset" -j "$JOBS" "${targets[@]}"
}

# run_tests PRESET JOBS [CTEST ARGS...]
run_tests() {
  local preset="$1" jobs="$2"; shift 2
  log "testing ($preset, -j$jobs)"
  ctest --preset "$preset" -j "$jobs" "$@"
}

# test_targets PRESET REGEX: the test executables that hold the tests whose
# names match REGEX, so that a run selecting only those builds only them (and
# mbxmove, which the tests spawn). The names come from the release build's
# test list (it builds every test executable, and gtest_discover_tests names
# tests only once their executable is built), kept to the executables that
# PRESET defines; nothing is left out by a stale list.
test_targets() {
  local preset="$1" regex="$2"
  configure "$preset"
  local defined
  defined="$(grep -oE '[A-Za-z0-9_]+\[1\]_include\.cmake' "build/$preset/tests/CTestTestfile.cmake" |
             sed 's/\[1\]_include\.cmake$//' | sort -u)"
  ctest --test-dir build/release -N -R "$regex" --show-only=json-v1 |
    grep -oE '"[^"]*/tests/[A-Za-z0-9_]+",?$' | sed -E 's#^.*/##; s#",?$##' | sort -u |
    comm -12 - <(printf '%s\n' "$defined")
}

# Runs each libFuzzer target for $1 seconds on a copy of its corpus
# (tests/fuzz/corpus/<target>); a crash fails the run and keeps the input.
fuzz() {
  local seconds="$1"
  build fuzz
  # libFuzzer refuses an -artifact_prefix whose folder is missing (a fresh
  # clone has no out/), so make it first.
  mkdir -p "$ROOT/out"
  for t in item_codec txlog mbox store_request; do
    local work
    work="$(mktemp -d "${TMPDIR:-/tmp}/mbx-fuzz-XXXXXX")"
    cp -r "tests/fuzz/corpus/$t/." "$work/"
    log "fuzzing $t for ${seconds}s"
    local out
    if ! out="$(./build/fuzz/tests/fuzz/${t}_fuzz -max_total_time="$seconds" -print_final_stats=1 \
                -artifact_prefix="$ROOT/out/fuzz-$t-" "$work" 2>&1)"; then
      printf '%s\n' "$out" | tail -n 40
      echo "fuzz target $t failed; the input is in out/fuzz-$t-*" >&2
      rm -rf "$work"
      return 1
    fi
    printf '%s\n' "$out" | grep -E 'stat::number_of_executed_units' | sed "s/^/fuzz $t: /"
    rm -rf "$work"
  done
}

# The summary of `test`: the release run's campaign figures ($1, one line
# each) and the fuzz targets' executions (the "fuzz <target>:" lines of $2).
print_figures() {
  printf '\n==== figures: campaigns (release build), fuzz executions ====\n'
  if [ -s "$1" ]; then cat "$1"; else echo "(no campaign figures were recorded)"; fi
  grep -E '^fuzz [^ ]+: ' "$2" || echo "(no fuzz executions were recorded)"
}

cmd="${1:-}"
case "$cmd" in
  deps) deps ;;
  build) deps; build "${2:-release}" ;;
  demo)
    deps
    build release mbxmove
    OUT="${MBX_DEMO_DIR:-$ROOT/out/demo}"
    log "benchmark: 'small' preset, concurrency 1,2,4,8, 3 repeats -> $OUT"
    ./build/release/cli/mbxmove bench --preset small --concurrency 1,2,4,8 --repeat 3 --out "$OUT"
    ;;
  demo-remote)
    deps
    build release mbxmove
    OUT="${MBX_DEMO_DIR:-$ROOT/out/demo-remote}"
    log "remote benchmark: 'small' preset, RTT 0,10,50 ms x concurrency 1,4,16 -> $OUT"
    ./build/release/cli/mbxmove bench --remote --preset small --rtt 0,10,50 --concurrency 1,4,16 --out "$OUT"
    ;;
  demo-ldap)
    deps
    build release mbxmove
    OUT="${MBX_DEMO_DIR:-$ROOT/out/demo-ldap}"
    mkdir -p "$(dirname "$OUT")"
    log "directory benchmark: 'small' preset, concurrency 1,4,16, 3 repeats, LMDB vs LDAP directory -> $OUT"
    ./build/release/cli/mbxmove bench --directory ldap --preset small --concurrency 1,4,16 --repeat 3 --out "$OUT" |
      tee "$OUT.txt"
    # The ratio per level, in one line.
    awk '$1 ~ /^[0-9]+$/ { printf "C=%s: LDAP/LMDB %s  ", $1, $4 } END { print "" }' "$OUT.txt"
    ;;
  slapd)
    case "${2:-}" in
      start|stop) ;;
      *) echo "usage: tools/dev.sh slapd start|stop DIR" >&2; exit 2 ;;
    esac
    if [ -z "${3:-}" ]; then echo "usage: tools/dev.sh slapd $2 DIR" >&2; exit 2; fi
    deps
    build release mbxmove
    ./build/release/cli/mbxmove dev slapd "$2" "$3"
    ;;
  test)
    deps
    build release
    # The campaigns (crash, disk fault, LMDB fault, bad input) append their
    # figures here; printed at the end, since ctest hides a passing test's output.
    mkdir -p "$ROOT/out"
    FIGURES="$ROOT/out/figures-release.txt"
    rm -f "$FIGURES"
    MBX_FIGURES_FILE="$FIGURES" run_tests release "$TEST_JOBS"
    build asan
    # The random-kill and power-loss campaigns run in full in the release build above; under
    # the sanitizers a shorter run checks the same code paths for memory errors.
    MBX_CRASH_RUNS="${MBX_CRASH_RUNS:-12}" MBX_SERVER_KILL_RUNS="${MBX_SERVER_KILL_RUNS:-2}" \
    MBX_POWERLOSS_RUNS="${MBX_POWERLOSS_RUNS:-6}" \
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
      run_tests asan "$SAN_TEST_JOBS"
    # ThreadSanitizer for the concurrent parts: the store's writer, the
    # engine, the crash campaign, parallel import/export and GMime from many
    # threads (their mbxmove children run under TSan too), and both directory
    # backends under concurrent guarded writes (DirectoryContractTest). The
    # engine's second run with the directory in slapd ('.ldap') is left to the
    # release and ASan runs: under TSan it would repeat the engine's cases at
    # twice the cost with no new threads of ours.
    TSAN_TESTS='Store|TxLog|Move|Directory|MailTransfer|MimeProps|Remote'
    mapfile -t tsan_targets < <(test_targets tsan "$TSAN_TESTS")
    if [ ${#tsan_targets[@]} -eq 0 ]; then
      echo "error: no test executable holds tests matching '$TSAN_TESTS'" >&2
      exit 1
    fi
    build tsan mbxmove "${tsan_targets[@]}"
    MBX_CRASH_RUNS="${MBX_CRASH_RUNS:-12}" \
    TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$ROOT/tools/tsan-suppressions.txt" \
      run_tests tsan "$SAN_TEST_JOBS" -R "$TSAN_TESTS" -E '\.ldap$'
    fuzz "${MBX_FUZZ_SECONDS:-30}" | tee "$ROOT/out/fuzz-output.txt"
    print_figures "$FIGURES" "$ROOT/out/fuzz-output.txt"
    ;;
  fuzz)
    deps
    fuzz "${2:-60}"
    ;;
  *)
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
    exit 2 ;;
esac
