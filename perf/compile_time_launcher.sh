#!/bin/bash
# A compiler launcher that times each compile: appends "SECONDS OUTPUT" to
# $BT_LOG (default ${TMPDIR:-/tmp}/mbx-compile-times.txt; make calls it from
# each target's own folder, so a relative path would scatter the lines).
# Use it on an empty build directory:
#   cmake -S . -B DIR <cache variables> -DCMAKE_CXX_COMPILER_LAUNCHER=$PWD/perf/compile_time_launcher.sh
#   BT_LOG=$PWD/times.txt cmake --build DIR -j2
#   sort -rn times.txt | head
# perf/baselines/build-times-2026-12-02.txt was made with it.
out=""; prev=""
for a in "$@"; do if [ "$prev" = "-o" ]; then out="$a"; fi; prev="$a"; done
s=$(date +%s.%N)
"$@"; rc=$?
e=$(date +%s.%N)
awk -v s="$s" -v e="$e" -v o="$out" 'BEGIN { printf "%.3f %s\n", e - s, o }' >> "${BT_LOG:-${TMPDIR:-/tmp}/mbx-compile-times.txt}"
exit $rc
