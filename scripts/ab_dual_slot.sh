#!/usr/bin/env bash
# Dual-slot policy A/B on the sim (issue 12): one `tmr ab` per case, every policy in one run,
# calibrated (default) costs. Usage: scripts/ab_dual_slot.sh [TMR_BINARY] [extra tmr ab args...]
set -euo pipefail
tmr=${1:-build/release/tmr}
shift || true
policies=(none aic aic,aiv aic,mix aic,aiv,mix)
cases=(
  "paged_attention_mix B16_ctx4096" "paged_attention_mix B256_ctx8192" "mixed_example case1"
  "spmd_basic Default" "spmd_multiblock_aiv Default" "spmd_multiblock_mix Default"
  "spmd_starvation Default" "spmd_sync_start Default" "spmd_sync_start_aiv Default"
  "spmd_sync_start_edge Default" "spmd_sync_start_stress Default"
  "paged_attention B16_ctx4096" "paged_attention_unroll Case1" "paged_attention_unroll Case2"
  "alternating_matmul_add Case1")
for c in "${cases[@]}"; do
  read -r example case_name <<<"$c"
  "$tmr" ab "$example" --case "$case_name" --dual-slot "${policies[@]}" "$@"
done
