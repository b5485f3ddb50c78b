#!/usr/bin/env bash
# Interleaved A/B/... of release builds (e.g. a worktree of an older commit against this one):
# per round, each build's micro benchmarks (JSON) and, with PEERS=1, its peers benchmark pinned
# to cores 0-1. Summarise with scripts/ab_builds_table.py OUT.
# Usage: scripts/ab_builds.sh OUT ROUNDS BUILD_DIR... (a build dir holds libtmr.so.0 and
# bench/micro/tmr_bench_micro, bench/peers/tmr_bench_peers as a release build does)
set -euo pipefail
out=$1
rounds=$2
shift 2
filter=${FILTER:-'^BM_Submit/|^BM_SubmitWhileExecuting/|^BM_Throughput/'}
mkdir -p "$out"
uptime >"$out/uptime_before"
for r in $(seq 1 "$rounds"); do
  i=0
  for dir in "$@"; do
    LD_LIBRARY_PATH=$dir "$dir/bench/micro/tmr_bench_micro" --benchmark_filter="$filter" \
      --benchmark_format=json >"$out/build${i}_micro_$r.json" 2>/dev/null
    if [[ ${PEERS:-0} == 1 ]]; then
      LD_LIBRARY_PATH=$dir taskset -c 0,1 "$dir/bench/peers/tmr_bench_peers" --systems tmr \
        --no-metg --reps 3 >"$out/build${i}_peers_$r.txt" 2>&1
    fi
    i=$((i + 1))
  done
  uptime >>"$out/uptime_rounds"
done
printf '%s\n' "$@" >"$out/builds"
uptime >"$out/uptime_after"
