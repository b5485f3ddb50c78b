#!/usr/bin/env bash
# Dual-slot policy A/B on the sim with cores kept busy (docs/performance.md, issue 12): every kernel
# at least 20 us ({"min_kernel_ns": 20000}), whole a2a3 chip and 2 clusters / 1 scheduler thread.
# Usage: scripts/ab_dual_slot_kernel_bound.sh [TMR_BINARY]
set -euo pipefail
tmr=${1:-build/release/tmr}
model=$(mktemp --suffix=.json)
trap 'rm -f "$model"' EXIT
echo '{"min_kernel_ns": 20000}' >"$model"
policies=(none aic aic,aiv aic,mix aic,aiv,mix)
cases=(
  "paged_attention_mix B16_ctx4096" "mixed_example case1" "spmd_multiblock_mix Default"
  "spmd_starvation Default" "spmd_sync_start_stress Default" "spmd_multiblock_aiv Default"
  "paged_attention B16_ctx4096" "paged_attention_unroll Case2" "alternating_matmul_add Case1")
for topology in "" "TMR_CLUSTERS=2 TMR_SCHED_THREADS=1 "; do
  for c in "${cases[@]}"; do
    read -r example case_name <<<"$c"
    args=()
    for p in "${policies[@]}"; do args+=(--setting "${topology}TMR_DUAL_SLOT=$p"); done
    "$tmr" ab "$example" --case "$case_name" --cost-model "$model" "${args[@]}"
  done
done
