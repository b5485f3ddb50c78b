#!/usr/bin/env bash
# Usage: scripts/measure/ab_timing_only.sh N BASE_BUILD NEW_BUILD [CASE=B16_ctx4096] [EXAMPLE=paged_attention]
# N interleaved rounds of `tmr run EXAMPLE --case CASE --platform threads --timing-only --rounds R
# --parallel-for on|off` on each build (R = $RUN_ROUNDS, default 12) (no kernel body runs, so the orchestrator does not share
# the CPUs with the kernels). Each run's figure is the orchestrator thread's CPU ns a task
# ("orchestrator CPU ... ns per task") of the steady rounds: the median of rounds 3..R and their
# largest minor-fault count, and beside them the mean of rounds 3..R (their CPU over their tasks:
# unlike the median it keeps the slow rounds, which the plain path has more of, docs/performance.md
# "Session 55, branch gap55") (on 448faa4 round 2 of `off` still takes 75-134 minor faults (its
# tables grow) and 750-1,200 ns a task, round 3 4-8 faults and ~300 ns). A B16 round is ~2 ms, so
# one round alone spread 6x between runs on the 2-vCPU host of session 44; with RUN_ROUNDS=3 the
# figure is round 3 alone, as before session 45. The four runs of a round (base on, base off, new on, new off) go in an order rotated
# each round. Prints one line per run ("round build pf ns faults mean"), then timing_sum.py's per-round
# on / off and medians: the measurement behind the sim's wide_submit_ratio (docs/sim.md), and the
# same for the means.
# BASE_BUILD may equal NEW_BUILD (a noise run).
set -euo pipefail
USAGE="scripts/measure/ab_timing_only.sh N BASE_BUILD NEW_BUILD [CASE=B16_ctx4096] [EXAMPLE=paged_attention]"
source "$(dirname "$0")/lib.sh"
[[ $# -ge 3 && $# -le 5 ]] || usage_error "expected 3 to 5 arguments, got $#"
need_count N "$1"
rounds=$1
base=$2
new=$3
case_name=${4:-B16_ctx4096}
example=${5:-paged_attention}
run_rounds=${RUN_ROUNDS:-12}
need_count RUN_ROUNDS "$run_rounds"
((run_rounds >= 3)) || usage_error "RUN_ROUNDS must be at least 3 (rounds 1-2 are not steady), got $run_rounds"
need_build "$base"
need_build "$new"
need_tool python3 "the summary"
base_tmr=$(build_bin "$base" tmr)
new_tmr=$(build_bin "$new" tmr)
examples=$(LD_LIBRARY_PATH=$new "$new_tmr" list 2>&1) || die "'$new_tmr list' failed: $examples"
grep -q "^$example - " <<<"$examples" ||
  usage_error "'$new_tmr list' has no example '$example'"
raw=$(mktemp)
trap 'rm -f "$raw"' EXIT
echo "# $example --case $case_name --timing-only --rounds $run_rounds, orchestrator CPU ns a task: median of rounds 3-$run_rounds, their most minor faults, their mean"
echo "# base $base, new $new; load: $(cut -d' ' -f1-3 /proc/loadavg)"
labels=(base base new new)
dirs=("$base" "$base" "$new" "$new")
bins=("$base_tmr" "$base_tmr" "$new_tmr" "$new_tmr")
pfs=(on off on off)
for r in $(seq 1 "$rounds"); do
  for k in 0 1 2 3; do
    i=$(((k + r - 1) % 4))
    log=$(LD_LIBRARY_PATH=${dirs[$i]} "${bins[$i]}" run "$example" --case "$case_name" \
      --platform threads --timing-only --rounds "$run_rounds" --parallel-for "${pfs[$i]}" 2>&1) ||
      die "tmr run $example --case $case_name (${labels[$i]}, ${pfs[$i]}) failed: $(tail -3 <<<"$log")"
    # The median of the steady rounds 3..R, their largest minor-fault count and their mean.
    fig=$(awk '/orchestrator CPU .* ns per task/ {if (++n >= 3) {ns[n - 2] = $(NF-3); sum += $(NF-3)}}
               /orchestrator thread: .* minor faults/ {if (++m >= 3 && $3 > f) f = $3}
               END {k = n - 2; if (k < 1) exit
                    for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++)
                      if (ns[j] + 0 < ns[i] + 0) {t = ns[i]; ns[i] = ns[j]; ns[j] = t}
                    med = k % 2 ? ns[(k + 1) / 2] : (ns[k / 2] + ns[k / 2 + 1]) / 2
                    printf "%.1f %d %.1f", med, f, sum / k}' <<<"$log")
    [[ -n $fig ]] || die "no steady round's 'orchestrator CPU ... ns per task' in tmr run's report"
    echo "$r ${labels[$i]} ${pfs[$i]} $fig" | tee -a "$raw"
  done
done
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 "$here/timing_sum.py" "$raw"
