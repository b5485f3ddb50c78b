#!/usr/bin/env bash
# Usage: scripts/measure/sim_fit.sh BUILD_DIR
# The sim figures quoted with every re-fit of its charges (docs/sim.md, docs/performance.md):
# round 3's elapsed µs (row "3" of the report) of `tmr run EXAMPLE --case CASE --platform sim
# --timing-only --rounds 3 --parallel-for on|off` for paged_attention and paged_attention_mix at
# B256_ctx8192 and B16_ctx4096, with on / off. Deterministic: one run each.
set -euo pipefail
USAGE="scripts/measure/sim_fit.sh BUILD_DIR"
source "$(dirname "$0")/lib.sh"
[[ $# -eq 1 ]] || usage_error "expected 1 argument, got $#"
build=$1
need_build "$build"
tmr=$(build_bin "$build" tmr)
echo "# $tmr run EXAMPLE --case CASE --platform sim --timing-only --rounds 3: round 3 elapsed us"
for example in paged_attention paged_attention_mix; do
  for case_name in B256_ctx8192 B16_ctx4096; do
    declare -A us=()
    for pf in on off; do
      log=$(LD_LIBRARY_PATH=$build "$tmr" run "$example" --case "$case_name" --platform sim \
        --timing-only --rounds 3 --parallel-for "$pf" 2>&1) ||
        die "tmr run $example --case $case_name --platform sim ($pf) failed: $(tail -3 <<<"$log")"
      us[$pf]=$(awk '$1 == "3" && NF == 4 {print $2; exit}' <<<"$log")
      [[ -n ${us[$pf]} ]] || die "no row '3' in the report of $example $case_name ($pf)"
    done
    awk -v e="$example" -v c="$case_name" -v a="${us[on]}" -v b="${us[off]}" \
      'BEGIN {printf "%-20s %-13s on %10.1f  off %10.1f  on / off %.3f\n", e, c, a, b, a / b}'
  done
done
