#!/usr/bin/env bash
# Measures Dovecot's dsync beside mbxmove on identical content: generates a
# dataset (or uses --org), exports it to Maildir++ with mbxmove, then
#   1. mbxmove import of that tree into a new organisation,
#   2. `doveadm backup` (dsync) of every user's Maildir into a new Maildir,
#      one user after another,
# and prints messages/s for each. Needs doveadm (dovecot-core). As root,
# doveadm runs the mail access as `nobody`, so the work folder is given to it.
#
#   perf/dsync_compare.sh [PRESET] [WORKDIR]      (default: small, /tmp/mbx-dsync)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PRESET="${1:-small}"
WORK="${2:-/tmp/mbx-dsync}"
MBX="${MBXMOVE:-$ROOT/build/release/cli/mbxmove}"
[ -x "$MBX" ] || { echo "error: $MBX not built (tools/dev.sh build release mbxmove)" >&2; exit 1; }
command -v doveadm >/dev/null || { echo "error: doveadm not installed (apt-get install dovecot-core)" >&2; exit 1; }
if [ -e "$WORK" ]; then echo "error: $WORK exists; give another folder or remove it" >&2; exit 1; fi
mkdir -p "$WORK"

rate() { python3 -c "import sys; n, s = int(sys.argv[1]), float(sys.argv[2]); print(f'{n} messages in {s:.2f} s: {n / s:.0f} messages/s')" "$@"; }

"$MBX" gen --org "$WORK/src" --store S1 --preset "$PRESET" >/dev/null
"$MBX" export --org "$WORK/src" --all --maildir "$WORK/md" | tail -n 1
"$MBX" store create --org "$WORK/dst" --store S1 >/dev/null
"$MBX" import --org "$WORK/dst" --store S1 --maildir-root "$WORK/md" | tail -n 1
messages=$(find "$WORK/md" -type f \( -path '*/cur/*' -o -path '*/new/*' \) | wc -l)

uid_conf=""
if [ "$(id -u)" -eq 0 ]; then
  chown -R 65534:65534 "$WORK/md"
  mkdir -p "$WORK/dsync" && chown 65534:65534 "$WORK/dsync"
  chmod 755 "$WORK"
  uid_conf=$'mail_uid = 65534\nmail_gid = 65534'
  user=nobody
else
  mkdir -p "$WORK/dsync"
  user="$(id -un)"
fi
start=$(date +%s.%N)
for u in $(ls "$WORK/md"); do
  printf 'mail_location = maildir:%s/md/%s\n%s\n' "$WORK" "$u" "$uid_conf" > "$WORK/$u.conf"
  HOME="$WORK" USER="$user" doveadm -c "$WORK/$u.conf" backup "maildir:$WORK/dsync/$u"
done
end=$(date +%s.%N)
echo -n "dsync (doveadm backup, one user at a time): "
rate "$messages" "$(echo "$end - $start" | bc)"
copied=$(find "$WORK/dsync" -type f \( -path '*/cur/*' -o -path '*/new/*' \) | wc -l)
[ "$copied" -eq "$messages" ] || { echo "error: dsync copied $copied of $messages messages" >&2; exit 1; }
