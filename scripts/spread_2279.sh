#!/usr/bin/env bash
# The reference's #2279 shape on the sim (issue 12): run-to-run makespan spread of MIX-heavy cases
# on identical input when kernel durations carry +-10% noise (kernel_jitter, one seed per run, so
# placements differ run to run), cores kept busy (min_kernel_ns 20 us). Per case and policy:
# min / median / max makespan over the seeds and the spread (max - min) / min.
# Usage: scripts/spread_2279.sh [TMR_BINARY] [SEEDS] [JITTER, default 0.1]
set -euo pipefail
tmr=${1:-build/release/tmr}
seeds=${2:-10}
jitter=${3:-0.1}
model=$(mktemp --suffix=.json)
trap 'rm -f "$model"' EXIT
policies=("TMR_DUAL_SLOT=aic" "TMR_DUAL_SLOT=aic,aiv,mix TMR_MIX_TAKE_BACK=off"
          "TMR_DUAL_SLOT=aic,aiv,mix TMR_MIX_TAKE_BACK=on")
cases=("spmd_multiblock_mix Default |" "spmd_starvation Default |"
       "paged_attention_mix B16_ctx4096 |TMR_CLUSTERS=4 TMR_SCHED_THREADS=2 "
       "mixed_example case1 |TMR_CLUSTERS=2 TMR_SCHED_THREADS=2 ")
printf '%-40s %-48s %10s %10s %10s %8s\n' case policy "min us" "median us" "max us" spread
for c in "${cases[@]}"; do
  read -r example case_name <<<"${c%%|*}"
  topology=${c#*|}
  for p in "${policies[@]}"; do
    values=()
    for seed in $(seq 1 "$seeds"); do
      echo "{\"min_kernel_ns\": 20000, \"kernel_jitter\": $jitter, \"jitter_seed\": $seed}" >"$model"
      v=$("$tmr" ab "$example" --case "$case_name" --cost-model "$model" \
            --setting "${topology}$p" | awk '/^TMR_/ {for (i = 1; i <= NF; ++i) if ($i ~ /^[0-9.]+$/) {print $i; exit}}')
      values+=("$v")
    done
    printf '%s\n' "${values[@]}" | sort -g | awk -v c="$example/$case_name ${topology}" -v p="$p" '
      {v[NR] = $1} END {med = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2;
        printf "%-40s %-48s %10.1f %10.1f %10.1f %7.1f%%\n", c, p, v[1], med, v[NR], 100 * (v[NR] - v[1]) / v[1]}'
  done
done
