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
#   tools/dev.sh campaign [--minutes M]   # kills, power losses, fuzzing and the soak for M minutes (default 60)
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

log() { printf '==> [%d:%02d] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*" >&2; }

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
# (tests/fuzz/corpus/<target>, plus the campaigns' findings in
# tests/fuzz/regressions/<target>, which libFuzzer runs first); a crash fails
# the run and keeps the input.
fuzz() {
  local seconds="$1"
  build fuzz
  # libFuzzer refuses an -artifact_prefix whose folder is missing (a fresh
  # clone has no out/), so make it first.
  mkdir -p "$ROOT/out"
  for t in item_codec txlog mbox store_request server_reply; do
    local work
    work="$(mktemp -d "${TMPDIR:-/tmp}/mbx-fuzz-XXXXXX")"
    cp -r "tests/fuzz/corpus/$t/." "$work/"
    # What a campaign found (tools/dev.sh campaign) is replayed with the corpus.
    if [ -d "tests/fuzz/regressions/$t" ]; then cp -r "tests/fuzz/regressions/$t/." "$work/"; fi
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

# campaign [--minutes M]: the reliability campaign at scale, outside CI (see
# perf/README.md). For M minutes (default 60) four lanes run side by side:
#   soak       `mbxmove bench --soak M` (moves back and forth, transient read
#              faults, deliveries to the mailboxes not moving; checked at the end)
#   kills      batches of MoveCrashTest.KilledAtRandomMomentsThenRecover, each
#              with its own seed (SIGKILL at a random moment, recover, invariant)
#   power      batches of PowerLossTest (power lost at random sync boundaries
#              and writes, in every sync mode) and FailedSyncTest (a random
#              sync fails and drops its pages, the move goes on, recover on
#              the same boot), each batch with its own seed
#   fuzz       every libFuzzer target in turn, those short of the floor first
#              (the one with the fewest executions first), on a working copy
#              of its kept corpus; what it finds is saved under
#              tests/fuzz/regressions/<target>/ (CI replays those), and at
#              the end the inputs that add coverage are merged
#              into tests/fuzz/corpus/<target>/
# A lane starts a batch only when the last one would still end before the
# deadline. Each fuzz target must reach a floor of executions
# ($MBX_CAMPAIGN_FUZZ_EXECS, default 10 million): when one is short at the
# deadline, two fuzzers go on, on the cores the other lanes freed, until it
# is reached or for at most half as long again ($MBX_CAMPAIGN_FUZZ_GRACE_MINUTES
# sets that grace instead). Per batch:
# $MBX_CAMPAIGN_KILLS_PER_BATCH (25), $MBX_CAMPAIGN_POWERLOSS_PER_BATCH (20
# per sync mode); a fuzz slice is $MBX_CAMPAIGN_FUZZ_SLICE seconds (300), a
# target's first one a minute, and one near the floor only the seconds it
# still needs at the rate measured so far. The figures are printed as one
# block and written to $OUT/figures.json (OUT: $MBX_CAMPAIGN_DIR, default
# out/campaign). Exit 0 when nothing broke, 3 when something did (the block
# lists it, logs are kept).
campaign() {
  local minutes=60
  while [ $# -gt 0 ]; do
    case "$1" in
      --minutes) minutes="${2:-}"; shift 2 || { echo "error: --minutes needs a value" >&2; exit 2; } ;;
      --minutes=*) minutes="${1#--minutes=}"; shift ;;
      -h|--help) sed -n '/^# campaign \[/,/^campaign()/p' "$0" | sed '$d; s/^# \{0,1\}//'; return 0 ;;
      *) echo "error: unknown campaign option '$1' (usage: tools/dev.sh campaign [--minutes M])" >&2; exit 2 ;;
    esac
  done
  if ! [[ "$minutes" =~ ^[0-9]+([.][0-9]+)?$ ]] || [ "$(awk -v m="$minutes" 'BEGIN { print (m > 0) }')" != 1 ]; then
    echo "error: --minutes must be a positive number of minutes, not '$minutes'" >&2
    exit 2
  fi
  local OUT="${MBX_CAMPAIGN_DIR:-$ROOT/out/campaign}"
  # The folder is emptied first: only when it is an earlier campaign's (or
  # empty), never whatever else MBX_CAMPAIGN_DIR happens to name.
  if [ -e "$OUT" ] && [ ! -e "$OUT/.mbx-campaign" ] && [ ! -e "$OUT/figures.json" ] &&
     [ -n "$(ls -A "$OUT" 2>/dev/null || echo x)" ]; then
    echo "error: $OUT is not an earlier campaign's folder and not empty; set MBX_CAMPAIGN_DIR to a new folder" >&2
    exit 2
  fi
  deps
  build release mbxmove move_crash_test powerloss_test mbx_powerloss
  build fuzz
  rm -rf "$OUT"
  mkdir -p "$OUT"/{soak,kills,power,fuzz,corpus}
  touch "$OUT/.mbx-campaign"
  chmod 700 "$OUT"
  local start deadline
  start="$(date +%s)"
  deadline=$((start + $(awk -v m="$minutes" 'BEGIN { printf "%d", m * 60 }')))
  local targets=(item_codec txlog mbox store_request server_reply)
  # Each fuzz target's floor of executions: past the deadline the fuzzers go
  # on (two at once, on the cores the other lanes freed) until every target
  # has it, for at most half as long again.
  local floor="${MBX_CAMPAIGN_FUZZ_EXECS:-10000000}"
  # A target short of the floor at the deadline may go on for half as long
  # again, or for MBX_CAMPAIGN_FUZZ_GRACE_MINUTES.
  local hard=$((deadline + (deadline - start) / 2))
  if [ -n "${MBX_CAMPAIGN_FUZZ_GRACE_MINUTES:-}" ]; then
    hard=$((deadline + $(awk -v m="$MBX_CAMPAIGN_FUZZ_GRACE_MINUTES" 'BEGIN { printf "%d", m * 60 }')))
  fi
  if ! [[ "$floor" =~ ^[0-9]+$ ]]; then echo "error: MBX_CAMPAIGN_FUZZ_EXECS must be a count, not '$floor'" >&2; exit 2; fi
  log "campaign: $minutes min, until $(date -d "@$deadline" '+%H:%M:%S'); lanes: soak, kills, power, fuzz -> $OUT"

  # Lines in a file (0 when there is none yet).
  lines() { if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi; }
  # A lane's loop: run "$@" SEED while one more batch (as long as the last)
  # still ends before the deadline.
  lane() {
    local name="$1"; shift
    local seed=1 last=0 t0 rc
    while [ $(( $(date +%s) + last )) -lt "$deadline" ]; do
      t0="$(date +%s)"
      rc=0
      "$@" "$seed" >"$OUT/$name/batch-$seed.log" 2>&1 || rc=$?
      last=$(( $(date +%s) - t0 ))
      if [ "$rc" -eq 0 ]; then rm -f "$OUT/$name/batch-$seed.log"; else echo "$seed" >>"$OUT/$name/failed"; fi
      echo "$name batch $seed: exit $rc, ${last}s" >>"$OUT/$name/batches"
      seed=$((seed + 1))
    done
  }
  kill_batch() {
    MBX_CAMPAIGN_SEED="$((20261200 + $1))" MBX_CRASH_RUNS="${MBX_CAMPAIGN_KILLS_PER_BATCH:-25}" \
    MBX_FIGURES_FILE="$OUT/kills/figures.txt" \
      ./build/release/tests/move_crash_test --gtest_filter='MoveCrashTest.KilledAtRandomMomentsThenRecover'
  }
  power_batch() {
    MBX_CAMPAIGN_SEED="$((20261300 + $1))" MBX_POWERLOSS_RUNS="${MBX_CAMPAIGN_POWERLOSS_PER_BATCH:-20}" \
    MBX_FIGURES_FILE="$OUT/power/figures.txt" \
      ./build/release/tests/powerloss_test --gtest_filter='SyncModes/PowerLossTest.*:SyncModes/FailedSyncTest.*'
  }
  # Executions of target $1 so far.
  fuzz_execs() { awk '{ s += $2 } END { printf "%d", s }' "$OUT/fuzz/execs-$1" 2>/dev/null || echo 0; }
  # The targets to fuzz next, in order: those still short of the floor
  # (fewest executions first), then, until the deadline, the others (fewest
  # first). A target past the floor gets no slice while another is short.
  fuzz_order() {
    local t n past=0
    if [ "$(date +%s)" -ge "$deadline" ]; then past=1; fi
    for t in "${targets[@]}"; do
      n="$(fuzz_execs "$t")"
      if [ "$n" -lt "$floor" ]; then echo "0 $n $t"; elif [ "$past" -eq 0 ]; then echo "1 $n $t"; fi
    done | sort -k1,1n -k2,2n | awk '{ print $3 }'
  }
  # Seconds of fuzzing target $1 still needs to reach the floor at the rate
  # its slices so far ran (empty when it has not run yet or is past it).
  fuzz_seconds_to_floor() {
    awk -v floor="$floor" '{ n += $2; s += $3 } END {
      if (s > 0 && n > 0 && n < floor) printf "%d", (floor - n) / (n / s) * 1.05 + 10 }' "$OUT/fuzz/execs-$1" 2>/dev/null || true
  }
  # Fuzz lane $1 (0, 1): slices of the first target in fuzz_order that the
  # other lane is not fuzzing at the time, until the deadline and then, while
  # a target is short of the floor, until the hard deadline.
  fuzz_lane() {
    local idx="$1" slice_no=0 order best end left slice need rc out f t
    while :; do
      mapfile -t order < <(fuzz_order)
      if [ "$(date +%s)" -lt "$deadline" ]; then end="$deadline"; elif [ ${#order[@]} -gt 0 ]; then end="$hard"; else break; fi
      left=$(( end - $(date +%s) ))
      if [ "$left" -lt 5 ] || [ ${#order[@]} -eq 0 ]; then break; fi
      # The first target in that order the other lane is not fuzzing (both
      # take the same one when it is the only one left).
      best="${order[0]}"
      for t in "${order[@]}"; do
        if [ "$t" != "$(cat "$OUT/fuzz/running-$((1 - idx))" 2>/dev/null || true)" ]; then best="$t"; break; fi
      done
      echo "$best" >"$OUT/fuzz/running-$idx"
      slice="${MBX_CAMPAIGN_FUZZ_SLICE:-300}"
      # A target's first slice is a minute at most (it measures the rate); a
      # target near its floor gets only the seconds it still needs.
      need="$(fuzz_seconds_to_floor "$best")"
      if [ ! -s "$OUT/fuzz/execs-$best" ] && [ "$slice" -gt 60 ]; then slice=60; fi
      if [ -n "$need" ] && [ "$need" -lt "$slice" ]; then slice="$need"; fi
      if [ "$left" -lt "$slice" ]; then slice="$left"; fi
      slice_no=$((slice_no + 1))
      rc=0
      out="$(./build/fuzz/tests/fuzz/${best}_fuzz -max_total_time="$slice" -print_final_stats=1 -print_funcs=0 \
             -artifact_prefix="$OUT/fuzz/$best-" "$OUT/corpus/$best" 2>&1)" || rc=$?
      printf '%s\n' "$out" | awk -v t="$best" -v s="$slice" '/stat::number_of_executed_units/ { print t, $2, s }' >>"$OUT/fuzz/execs-$best"
      rm -f "$OUT/fuzz/running-$idx"
      echo "fuzz lane $idx slice $slice_no: $best ${slice}s, exit $rc" >>"$OUT/fuzz/batches"
      if [ "$rc" -ne 0 ]; then
        printf '%s\n' "$out" | tail -n 60 >"$OUT/fuzz/failed-$idx-$slice_no.log"
        echo "$idx $slice_no $best" >>"$OUT/fuzz/failed"
        mkdir -p "tests/fuzz/regressions/$best"
        for f in "$OUT/fuzz/$best-"*; do
          [ -e "$f" ] || continue
          cp "$f" "tests/fuzz/regressions/$best/$(basename "$f")"
          echo "$best $(basename "$f")" >>"$OUT/fuzz/findings"
          rm -f "$f"
        done
      fi
    done
  }
  local t
  for t in "${targets[@]}"; do cp -r "tests/fuzz/corpus/$t/." "$OUT/corpus/$t/"; done

  # The lanes share the cores: the fuzzers, whose figure is executions, run
  # at normal priority; the kills, the power losses and the soak (counted in
  # runs, or only having to last) in the idle scheduling class, so that they
  # take what the fuzzer leaves, a core of two, and never its own. (Nice
  # values were not enough: with the kill lanes' short-lived processes waking
  # from fsync all the time, a fuzzer at nice 0 got half a core.)
  local soak_pid soak_rc=0 pids=()
  # (A lane, the soak too, runs at its old priority where the idle class is refused.)
  to_idle_class() { chrt --idle -p 0 "$BASHPID" >/dev/null 2>&1 || true; }
  (to_idle_class; exec ./build/release/cli/mbxmove bench --soak "$minutes" --json --out "$OUT/soak/run") \
    >"$OUT/soak/figures.json" 2>"$OUT/soak/log" &
  soak_pid=$!
  (to_idle_class; lane kills kill_batch) & pids+=($!)
  (to_idle_class; lane power power_batch) & pids+=($!)
  fuzz_lane 0 & local fuzz0=$!
  # Progress once a minute until the lanes are done. Once the others have
  # ended, a second fuzz lane takes their core if a target is short of the
  # floor.
  local fuzz1="" progress
  progress() {
    local t f=""
    for t in "${targets[@]}"; do f+=" $t $(( $(fuzz_execs "$t") / 1000000 ))M"; done
    log "campaign: $(( ($(date +%s) - start) / 60 )) min; batches done: kills $(lines "$OUT/kills/batches")," \
        "power $(lines "$OUT/power/batches"); fuzz:$f; failed: $(( $(lines "$OUT/kills/failed") + $(lines "$OUT/power/failed") + $(lines "$OUT/fuzz/failed") ))"
  }
  # (Checked every 5 s, so that a short campaign ends when its lanes do.)
  local last_progress
  last_progress="$(date +%s)"
  while kill -0 "${pids[@]}" "$soak_pid" "$fuzz0" ${fuzz1:+"$fuzz1"} 2>/dev/null; do
    sleep 5 &
    wait $! || true
    if [ $(( $(date +%s) - last_progress )) -ge 60 ]; then
      progress
      last_progress="$(date +%s)"
    fi
    if [ -z "$fuzz1" ] && ! kill -0 "${pids[@]}" "$soak_pid" 2>/dev/null && [ -n "$(fuzz_order)" ]; then
      fuzz_lane 1 & fuzz1=$!
    fi
  done
  wait "${pids[@]}" "$fuzz0" ${fuzz1:+"$fuzz1"} || true
  wait "$soak_pid" || soak_rc=$?

  # Inputs that add coverage join the kept corpus (of the targets that ran),
  # unless MBX_CAMPAIGN_MERGE=0 (the test run's short campaign).
  for t in "${targets[@]}"; do
    [ "${MBX_CAMPAIGN_MERGE:-1}" != 0 ] || break
    [ -s "$OUT/fuzz/execs-$t" ] || continue
    ./build/fuzz/tests/fuzz/${t}_fuzz -merge=1 "tests/fuzz/corpus/$t" "$OUT/corpus/$t" >"$OUT/fuzz/merge-$t.log" 2>&1 ||
      echo "warning: merging the $t corpus failed, see $OUT/fuzz/merge-$t.log" >&2
  done

  MBX_FUZZ_FLOOR="$floor" campaign_figures "$OUT" "$minutes" "$start" "$soak_rc" "${targets[@]}"
}

# check_campaign_figures FILE: the short campaign passed and counted kills,
# power losses, fuzz executions and a soak.
check_campaign_figures() {
  local f="$1" problem=""
  grep -q '"passed": true$' "$f" || problem="it did not pass"
  grep -qE '"kills": \{"runs": [1-9]' "$f" || problem+=" no kills counted;"
  grep -qE '"power_losses": \{"runs": [1-9]' "$f" || problem+=" no power losses counted;"
  grep -qE '"failed_syncs": \{"runs": [1-9]' "$f" || problem+=" no failed syncs counted;"
  grep -qE '"item_codec": [1-9]' "$f" || problem+=" no fuzz executions counted;"
  grep -qE '"soak": \{.*"passed": *true' "$f" || problem+=" the soak did not pass;"
  if [ -n "$problem" ]; then
    echo "error: the short campaign: $problem (see $f)" >&2
    return 1
  fi
  log "short campaign passed: $f"
}

# campaign_figures OUT MINUTES START SOAK_RC TARGET...: the block and figures.json.
campaign_figures() {
  local OUT="$1" minutes="$2" start="$3" soak_rc="$4"; shift 4
  local kills power soak fuzz_json="" fuzz_text="" t n findings broken=0
  # "crash runs: N (K killed mid-move), invariant held: H, seed S"
  kills="$(awk '/^crash runs:/ { gsub(/[(),]/, " "); runs += $3; killed += $4; held += $9 }
                END { printf "%d %d %d", runs, killed, held }' "$OUT/kills/figures.txt" 2>/dev/null || echo "0 0 0")"
  # "power losses (sync M): N runs (L lost power mid-move; ...), invariant held: H"
  # or, for sync none, "..., consistent: C, refused with restore-from-backup: R"
  power="$(awk '/^power losses/ {
                  line = $0; gsub(/[(),;:]/, " ", line); split(line, w, " ")
                  runs += w[5]; lost += w[7]
                  if (match($0, /invariant held: [0-9]+/)) { h = substr($0, RSTART + 16, RLENGTH - 16); held += h; bad += w[5] - h }
                  if (match($0, /consistent: [0-9]+/)) { c = substr($0, RSTART + 12, RLENGTH - 12); cons += c }
                  if (match($0, /backup: [0-9]+/)) { r = substr($0, RSTART + 8, RLENGTH - 8); refused += r }
                  if (index($0, "none)") && index($0, "consistent")) { bad += w[5] - c - r }
                }
                END { printf "%d %d %d %d %d %d", runs, lost, held, cons, refused, bad }' \
              "$OUT/power/figures.txt" 2>/dev/null || echo "0 0 0 0 0 0")"
  # "failed syncs that dropped their pages (sync M): P of S sync points (H hit), F moves ..., invariant held after reopen: N"
  local failed_syncs fs_hit fs_held
  failed_syncs="$(awk '/^failed syncs that dropped/ {
                  if (match($0, /[0-9]+ hit/)) hit += substr($0, RSTART, RLENGTH - 4)
                  if (match($0, /after reopen: [0-9]+/)) held += substr($0, RSTART + 14, RLENGTH - 14)
                }
                END { printf "%d %d", hit, held }' "$OUT/power/figures.txt" 2>/dev/null || echo "0 0")"
  read -r fs_hit fs_held <<<"$failed_syncs"
  read -r k_runs k_killed k_held <<<"$kills"
  read -r p_runs p_lost p_held p_cons p_refused p_bad <<<"$power"
  local k_failed p_failed
  k_failed="$(lines "$OUT/kills/failed")"
  p_failed="$(lines "$OUT/power/failed")"
  findings="$(lines "$OUT/fuzz/findings")"
  local f_failed
  f_failed="$(lines "$OUT/fuzz/failed")"
  for t in "$@"; do
    n="$(awk '{ s += $2 } END { printf "%d", s }' "$OUT/fuzz/execs-$t" 2>/dev/null || echo 0)"
    fuzz_json+="${fuzz_json:+, }\"$t\": $n"
    fuzz_text+="$(printf '\n  fuzz %-14s %12d executions%s' "$t" "$n" \
                  "$([ "$n" -lt "${MBX_FUZZ_FLOOR:-0}" ] && echo " (short of the floor of ${MBX_FUZZ_FLOOR})")")"
  done
  soak="$(tr -d '\n' <"$OUT/soak/figures.json" 2>/dev/null)"
  if [ -z "$soak" ] || [ "${soak:0:1}" != "{" ]; then soak='{"passed": false, "error": "the soak printed no figures"}'; fi
  local soak_passed
  soak_passed="$(printf '%s' "$soak" | grep -q '"passed": *true' && echo true || echo false)"
  if [ "$k_held" -ne "$k_runs" ] || [ "$k_failed" -ne 0 ] || [ "$p_bad" -ne 0 ] || [ "$p_failed" -ne 0 ] ||
     [ "$fs_held" -ne "$fs_hit" ] ||
     [ "$findings" -ne 0 ] || [ "$f_failed" -ne 0 ] || [ "$soak_passed" != true ] || [ "$soak_rc" -ne 0 ]; then broken=1; fi
  local elapsed=$(( $(date +%s) - start ))
  cat >"$OUT/figures.json" <<JSON
{
  "date": "$(date -u '+%Y-%m-%dT%H:%M:%SZ')",
  "commit": "$(git rev-parse HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo '+changes')",
  "machine": {"cpu": "$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //; s/"//g')", "cores": $(nproc), "memory_gib": $(awk '/MemTotal/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo), "kernel": "$(uname -r)"},
  "minutes_asked": $minutes,
  "minutes_run": $(awk -v s="$elapsed" 'BEGIN { printf "%.1f", s / 60 }'),
  "kills": {"runs": $k_runs, "killed_mid_move": $k_killed, "invariant_held": $k_held, "failed_batches": $k_failed},
  "power_losses": {"runs": $p_runs, "lost_power_mid_move": $p_lost, "invariant_held": $p_held, "none_mode_consistent": $p_cons, "none_mode_refused_restore_from_backup": $p_refused, "violations": $p_bad, "failed_batches": $p_failed},
  "failed_syncs": {"runs": $fs_hit, "invariant_held": $fs_held},
  "fuzz_executions": {$fuzz_json},
  "fuzz_executions_floor": ${MBX_FUZZ_FLOOR:-0},
  "fuzz_findings": $findings,
  "fuzz_failed_slices": $f_failed,
  "soak": $soak,
  "passed": $([ "$broken" -eq 0 ] && echo true || echo false)
}
JSON
  printf '\n==== campaign figures (%s min asked, %s run) ====\n' "$minutes" \
    "$(awk -v s="$elapsed" 'BEGIN { printf "%.1f", s / 60 }')"
  printf '  kills          %d runs, %d killed mid-move, invariant held %d, failed batches %d\n' \
    "$k_runs" "$k_killed" "$k_held" "$k_failed"
  printf '  power losses   %d runs, %d lost power mid-move, invariant held %d (full, batch), sync none: %d consistent, %d refused naming restore from backup; violations %d; failed batches %d\n' \
    "$p_runs" "$p_lost" "$p_held" "$p_cons" "$p_refused" "$p_bad" "$p_failed"
  printf '  failed syncs   %d runs (a sync failed and dropped its pages, the move went on), invariant held after reopen %d\n' \
    "$fs_hit" "$fs_held"
  printf '%s\n' "${fuzz_text#$'\n'}"
  printf '  fuzz findings  %d (saved under tests/fuzz/regressions/), failed slices %d\n' "$findings" "$f_failed"
  printf '  soak           %s\n' "$(printf '%s' "$soak" | sed -E 's/.*"rounds": *([0-9]+).*/\1 rounds/;t;s/.*/see soak\/log/') ($soak_passed)"
  printf '  figures: %s\n' "$OUT/figures.json"
  if [ "$broken" -ne 0 ]; then
    echo "campaign: something broke; logs of failed batches are kept in $OUT/{kills,power}/batch-*.log" >&2
    return 3
  fi
}

# The dispatch is one function, called on the script's last line, so that bash
# has read the whole script before it runs any of it: a long run (campaign)
# is not derailed by an edit of this file (bash reads a script as it goes).
main() {
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
    # The engine's second run with the directory in slapd ('.ldap') is left to
    # the release run: the LDAP backend's own code runs under ASan in
    # LdapDirectory*, DirectoryContractTest and LdapCliTest, and the engine's
    # in the first run.
    MBX_CRASH_RUNS="${MBX_CRASH_RUNS:-12}" MBX_SERVER_KILL_RUNS="${MBX_SERVER_KILL_RUNS:-2}" \
    MBX_POWERLOSS_RUNS="${MBX_POWERLOSS_RUNS:-6}" \
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    LSAN_OPTIONS="suppressions=$ROOT/tools/lsan-suppressions.txt:print_suppressions=0" \
      run_tests asan "$SAN_TEST_JOBS" -E '\.ldap$'

    # ThreadSanitizer for the concurrent parts: the store's writer, the
    # engine, the crash campaign, parallel import/export and GMime from many
    # threads (their mbxmove children run under TSan too), the queue movers
    # (processes with renewal, worker and watcher threads), and both directory
    # backends under concurrent guarded writes (DirectoryContractTest). The
    # engine's second run with the directory in slapd ('.ldap') is left to the
    # release and ASan runs: under TSan it would repeat the engine's cases at
    # twice the cost with no new threads of ours. RemoteTlsTest (handshakes
    # refused: expired, foreign or missing client certificates) is left to
    # them too: its threads are all gRPC's, which synchronise inside the
    # uninstrumented libgrpc while calling our binary's instrumented
    # std::string and shared_ptr code, so TSan reports gRPC's own frees as
    # races (seen once in 20+ runs, under ctest -j4, every frame below ours
    # in libgrpc); the served-store tests that run our threads stay here.
    TSAN_EXCLUDE='\.ldap$|^RemoteTlsTest\.'
    TSAN_TESTS='Store|TxLog|Move|Directory|MailTransfer|MimeProps|Remote|Queue|Online|ChangeIndex|Batch'
    mapfile -t tsan_targets < <(test_targets tsan "$TSAN_TESTS")
    if [ ${#tsan_targets[@]} -eq 0 ]; then
      echo "error: no test executable holds tests matching '$TSAN_TESTS'" >&2
      exit 1
    fi
    build tsan mbxmove "${tsan_targets[@]}"
    MBX_CRASH_RUNS="${MBX_CRASH_RUNS:-12}" \
    TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$ROOT/tools/tsan-suppressions.txt" \
      run_tests tsan "$SAN_TEST_JOBS" -R "$TSAN_TESTS" -E "$TSAN_EXCLUDE"
    fuzz "${MBX_FUZZ_SECONDS:-20}" | tee "$ROOT/out/fuzz-output.txt"
    # The long campaign's short version: every lane for 20 seconds with
    # small batches; it must pass, and its figures must count what it ran.
    MBX_CAMPAIGN_DIR="$ROOT/out/campaign-short" MBX_CAMPAIGN_KILLS_PER_BATCH=2 \
    MBX_CAMPAIGN_POWERLOSS_PER_BATCH=3 MBX_CAMPAIGN_FUZZ_EXECS=1 MBX_CAMPAIGN_MERGE=0 \
      campaign --minutes 0.34
    check_campaign_figures "$ROOT/out/campaign-short/figures.json"
    print_figures "$FIGURES" "$ROOT/out/fuzz-output.txt"
    ;;
  fuzz)
    deps
    fuzz "${2:-60}"
    ;;
  campaign)
    shift
    campaign "$@"
    ;;
  *)
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
    exit 2 ;;
esac
}

main "$@"; exit $?
