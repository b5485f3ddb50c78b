#!/bin/bash
# Interleaved A/B of parallel_for between two builds (docs/performance.md): per round, for each
# BM_SliceWrites configuration (plain loop / parallel_for, 4 and 2 arguments) each build in turn;
# with PATTERN=1 also the pattern form (parallel_for:2, 4 and 2 arguments; a build without it
# prints an empty value); then, with PA=1, paged attention B16_ctx4096 on threads (orchestrator CPU ns per task, rounds 2-3
# of 3) with --parallel-for off and on. Output lines: "round build config value".
# Usage: scripts/ab_parallel_for.sh ROUNDS BUILD_A BUILD_B  (a build dir: release build layout, or
# a flat folder holding libtmr.so.0, tmr_bench_micro and tmr). Summary: scripts/ab_parallel_for.py
set -euo pipefail
rounds=$1
shift
bin() {  # bin DIR NAME -> the binary in a build dir or a flat folder
  if [[ -x $1/$2 ]]; then echo "$1/$2"; elif [[ $2 == tmr ]]; then echo "$1/tmr";
  else echo "$1/bench/micro/$2"; fi
}
uptime
for r in $(seq 1 "$rounds"); do
  # Rotate the builds' order every round: whichever runs first in a round can look faster.
  builds=("$@")
  n=${#builds[@]}
  order=()
  for k in $(seq 0 $((n - 1))); do order+=("${builds[$(((k + r - 1) % n))]}"); done
  cfgs=("0/args:4" "1/args:4" "0/args:2" "1/args:2")
  [[ ${PATTERN:-0} == 1 ]] && cfgs+=("2/args:4" "2/args:2")
  for cfg in "${cfgs[@]}"; do
    for dir in "${order[@]}"; do
      v=$(LD_LIBRARY_PATH=$dir "$(bin "$dir" tmr_bench_micro)" \
            --benchmark_filter="BM_SliceWrites/parallel_for:${cfg}/" --benchmark_min_time=0.3 \
            2>/dev/null | grep -o "cpu_ns_per_task=[0-9.k]*" | sed 's/cpu_ns_per_task=//' || true)
      echo "$r $dir $cfg $v"
    done
  done
  if [[ ${PA:-0} == 1 ]]; then
    for dir in "${order[@]}"; do
      for pf in off on; do
        v=$(LD_LIBRARY_PATH=$dir "$(bin "$dir" tmr)" run paged_attention --case B16_ctx4096 \
              --skip-golden --rounds 3 --parallel-for $pf 2>&1 | grep "ns per task" |
            awk '{print $(NF-3)}' | tail -2 | tr '\n' ' ')
        echo "$r $dir pa_$pf $v"
      done
    done
  fi
done
uptime
