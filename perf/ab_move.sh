#!/usr/bin/env bash
# Alternates moves of one generated dataset between binaries, in one run, so
# that their figures share the machine's state (this machine's page cache and
# disk change speed from minute to minute: compare within a run only).
#
#   perf/ab_move.sh DATASET ROUNDS "C1 C2 ..." BIN1 BIN2 ...
#
# DATASET: an organisation made by `mbxmove gen --org DATASET --store SOURCE
# --preset small` (it is copied for every move, never changed). For each
# round, each C and each binary in turn: a fresh copy, a target store (sync
# batch, backup-flush), `move --concurrency C --json`. One line per move:
#   BIN C=N mib MiB/s cpu USER+SYS-seconds rss PEAK-MiB lock_sum S groups N
# (lock_sum: the mailboxes' lock phases summed; groups: the target's commit
# groups). perf/baselines/writepath-locks-logcache-ab.txt was made with it.
set -euo pipefail
[ $# -ge 4 ] || { sed -n '2,16p' "$0" >&2; exit 2; }
DATA="$1"; ROUNDS="$2"; LEVELS="$3"; shift 3
[ -d "$DATA/stores/SOURCE" ] || { echo "no store SOURCE in $DATA" >&2; exit 2; }
WORK="$(mktemp -d "${TMPDIR:-/tmp}/mbx-ab-XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
for r in $(seq "$ROUNDS"); do
  for c in $LEVELS; do
    for b in "$@"; do
      rm -rf "$WORK/o"
      cp -a "$DATA" "$WORK/o"
      rm -f "$WORK/o/stores/SOURCE/LOCK"
      sync
      "$b" store create --org "$WORK/o" --store T --sync batch --log-mode backup-flush >/dev/null
      /usr/bin/time -f "%U %S %M" -o "$WORK/time" "$b" move --org "$WORK/o" --from SOURCE --to T \
        --concurrency "$c" --json >"$WORK/report.json"
      python3 - "$b" "$c" "$WORK/report.json" "$WORK/time" <<'PY'
import json, os, sys
d = json.load(open(sys.argv[3]))
u, s, m = open(sys.argv[4]).read().split()
lock = sum(x["phase_seconds"].get("lock", 0) for x in d["mailboxes"])
print(f"{os.path.basename(sys.argv[1])} C={sys.argv[2]} mib {d['totals']['mib_per_s']:.1f} cpu {float(u) + float(s):.2f} "
      f"rss {int(m) // 1024} lock_sum {lock:.2f} groups {d['target']['groups']}")
PY
    done
  done
done
