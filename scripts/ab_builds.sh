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
  # Rotate the order every round: whichever build runs first in a round can look faster (sub27
  # measured ~12% at BM_Submit 4/16,384), so no build may always go first.
  dirs=("$@")
  n=${#dirs[@]}
  for k in $(seq 0 $((n - 1))); do
    i=$(((k + r - 1) % n))
    dir=${dirs[$i]}
    LD_LIBRARY_PATH=$dir "$dir/bench/micro/tmr_bench_micro" --benchmark_filter="$filter" \
      --benchmark_format=json >"$out/build${i}_micro_$r.json" 2>/dev/null
    if [[ ${PEERS:-0} == 1 ]]; then
      LD_LIBRARY_PATH=$dir taskset -c 0,1 "$dir/bench/peers/tmr_bench_peers" --systems tmr \
        --no-metg --reps 3 >"$out/build${i}_peers_$r.txt" 2>&1
    fi
  done
  uptime >>"$out/uptime_rounds"
done
printf '%s\n' "$@" >"$out/builds"
uptime >"$out/uptime_after"
