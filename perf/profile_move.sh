#!/usr/bin/env bash
# Profiles one whole move of a generated dataset and prints the top functions.
#
#   perf/profile_move.sh [PRESET] [CONCURRENCY]     (defaults: small 4)
#
# Uses `perf record` where the kernel allows it (perf_event_paranoid, a
# container without perf events...), otherwise `valgrind --tool=callgrind`
# (instruction counts: repeatable whatever else the machine is doing, but
# ~50x slower, so prefer the tiny preset there). Needs a Release build
# (tools/dev.sh build release).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MBX="${MBX:-$ROOT/build/release/cli/mbxmove}"
PRESET="${1:-small}"
C="${2:-4}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/mbx-profile-XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

[ -x "$MBX" ] || { echo "no mbxmove at $MBX: run tools/dev.sh build release first" >&2; exit 1; }
"$MBX" gen --org "$WORK/org" --store SOURCE --preset "$PRESET" >/dev/null
"$MBX" store create --org "$WORK/org" --store TARGET >/dev/null
MOVE=("$MBX" move --org "$WORK/org" --from SOURCE --to TARGET --concurrency "$C" --json)

if command -v perf >/dev/null && perf record -o "$WORK/probe.data" -q true >/dev/null 2>&1; then
  echo "== perf record: move of '$PRESET' at concurrency $C" >&2
  perf record -F 2000 -g -o "$WORK/perf.data" "${MOVE[@]}" >"$WORK/report.json" 2>/dev/null
  echo "== top functions (self time, all threads, user and kernel)"
  perf report -i "$WORK/perf.data" --no-children --sort dso,symbol --stdio 2>/dev/null \
    | grep -E '^ +[0-9]' | sed 's/ \{2,\}/ /g' | cut -c1-120 | head -25 || true
else
  command -v valgrind >/dev/null || { echo "neither perf nor valgrind is usable" >&2; exit 1; }
  echo "== callgrind: move of '$PRESET' at concurrency $C (perf is not usable here)" >&2
  valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out" "${MOVE[@]}" >"$WORK/report.json" 2>/dev/null
  echo "== top functions (instructions, inclusive of nothing: self cost)"
  callgrind_annotate "$WORK/callgrind.out" 2>/dev/null | sed -n '1,40p' | cut -c1-140  || true
fi
echo "== the move's own breakdown (seconds summed over threads) and the target writer"
python3 - "$WORK/report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
t = r["totals"]
print(f"moved {t['mailboxes_completed']} mailboxes, {t['bytes_copied']/2**20:.1f} MiB in {t['seconds']:.2f} s: {t['mib_per_s']:.1f} MiB/s")
print("engine:", {k: round(v, 3) for k, v in r["time"].items()})
print("writer:", {k: (round(v, 3) if isinstance(v, float) else v) for k, v in r["target"].items()})
PY
