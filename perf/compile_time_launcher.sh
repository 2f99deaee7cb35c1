#!/bin/bash
# A compiler launcher that times each compile: appends "SECONDS OUTPUT" to
# $BT_LOG (default ./compile-times.txt). Use it on an empty build directory:
#   cmake -S . -B DIR <cache variables> -DCMAKE_CXX_COMPILER_LAUNCHER=$PWD/perf/compile_time_launcher.sh
#   BT_LOG=$PWD/times.txt cmake --build DIR -j2
#   sort -rn times.txt | head
# perf/baselines/build-times-2026-12-02.txt was made with it.
out=""; prev=""
for a in "$@"; do if [ "$prev" = "-o" ]; then out="$a"; fi; prev="$a"; done
s=$(date +%s.%N)
"$@"; rc=$?
e=$(date +%s.%N)
awk -v s="$s" -v e="$e" -v o="$out" 'BEGIN { printf "%.3f %s\n", e - s, o }' >> "${BT_LOG:-compile-times.txt}"
exit $rc
