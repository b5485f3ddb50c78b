#!/usr/bin/env bash
# Dual-slot policy A/B on the threads platform (issue 12), small cases. Policies are interleaved
# (A B C A B C ...): per case, ROUNDS batches of one `tmr run --rounds 5` per policy; a batch gives
# the median of its 5 elapsed times; the table shows the median over batches and the ratio to aic.
# Usage: scripts/ab_dual_slot_threads.sh [TMR_BINARY] [ROUNDS]
# AB_POLICIES="none aic aic,mix aic,aiv,mix" chooses the policies (aic and aic,aiv,mix are needed).
set -euo pipefail
tmr=${1:-build/release/tmr}
rounds=${2:-5}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
read -r -a policies <<<"${AB_POLICIES:-none aic aic,aiv,mix}"
cases=("mixed_example case1" "paged_attention_mix Case1" "paged_attention Case1"
       "paged_attention_unroll Small1" "alternating_matmul_add Small" "spmd_multiblock_mix Default"
       "spmd_multiblock_aiv Default" "spmd_starvation Default" "spmd_sync_start_stress Default")
printf '%-36s' case; for p in "${policies[@]}"; do printf ' %14s' "$p us"; done
printf ' %12s\n' "mix / aic"
for c in "${cases[@]}"; do
  read -r example case_name <<<"$c"
  for r in $(seq 1 "$rounds"); do
    for p in "${policies[@]}"; do
      TMR_DUAL_SLOT=$p "$tmr" run "$example" --case "$case_name" --rounds 5 --skip-golden \
        --json "$out/$p.$r.json" >/dev/null
    done
  done
  python3 - "$out" "$example/$case_name" "$rounds" "${policies[@]}" <<'PY'
import json, statistics, sys
out, name, rounds, policies = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
med = {}
for p in policies:
    batches = []
    for r in range(1, rounds + 1):
        rs = json.load(open(f"{out}/{p}.{r}.json"))["cases"][0]["rounds"]
        batches.append(statistics.median(x["elapsed_us"] for x in rs))
    med[p] = statistics.median(batches)
print(f"{name:<36}" + "".join(f" {med[p]:14.1f}" for p in policies) +
      f" {med['aic,aiv,mix'] / med['aic']:12.3f}")
PY
done
