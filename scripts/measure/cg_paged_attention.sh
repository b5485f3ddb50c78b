#!/usr/bin/env bash
# Usage: scripts/measure/cg_paged_attention.sh BUILD_DIR [CASE=B16_ctx4096] [EXAMPLE=paged_attention]
# Callgrind instructions of the example's orchestration (its `orchestrate` collected) in round 3,
# as `tmr run EXAMPLE --case CASE --skip-golden --rounds 3` less `--rounds 2`, with
# --parallel-for on and off, and on / off (docs/performance.md's "paged attention B16 round 3"
# rows). Then pa_split.py: round 3 split into the example's code, the kept template's start, the
# element reads and the rest, and the "cats factor" (its docstring defines the parts). Set
# KEEP=DIR to keep the four callgrind files there. Takes 8-10 minutes at load 7-20.
set -euo pipefail
USAGE="scripts/measure/cg_paged_attention.sh BUILD_DIR [CASE=B16_ctx4096] [EXAMPLE=paged_attention]"
source "$(dirname "$0")/lib.sh"
[[ $# -ge 1 && $# -le 3 ]] || usage_error "expected 1 to 3 arguments, got $#"
build=$1
case_name=${2:-B16_ctx4096}
example=${3:-paged_attention}
[[ $example =~ ^[a-z_]+$ ]] || usage_error "EXAMPLE must be an example's name, got '$example'"
need_build "$build"
need_tool valgrind "callgrind counts the instructions"
need_tool callgrind_annotate "the per-function split"
need_tool python3 "the per-function split"
tmr=$(build_bin "$build" tmr)
examples=$(LD_LIBRARY_PATH=$build "$tmr" list 2>&1) || die "'$tmr list' failed: $examples"
grep -q "^$example - " <<<"$examples" ||
  usage_error "'$tmr list' has no example '$example'"
if [[ -n ${KEEP:-} ]]; then
  mkdir -p "$KEEP"
  work=$KEEP
else
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
fi
fn="tmr::examples::$example::orchestrate(tmr::Orchestrator&, tmr::OrchestrationArgs const&)"
echo "# $tmr run $example --case $case_name --skip-golden, callgrind on $example::orchestrate, round 3 = R3 - R2"
declare -A total
for pf in on off; do
  for r in 2 3; do
    out=$work/pa.$pf.R$r.cg
    LD_LIBRARY_PATH=$build valgrind --tool=callgrind --toggle-collect="$fn" \
      --callgrind-out-file="$out" "$tmr" run "$example" --case "$case_name" --skip-golden \
      --rounds "$r" --parallel-for "$pf" >"$work/pa.$pf.R$r.log" 2>&1 ||
      die "valgrind tmr run $example --case $case_name --rounds $r --parallel-for $pf failed: $(tail -3 "$work/pa.$pf.R$r.log")"
    total[$pf$r]=$(cg_total "$out")
    [[ ${total[$pf$r]} -gt 0 ]] || die "nothing collected in $out: is '$fn' the orchestration?"
  done
done
on=$((total[on3] - total[on2]))
off=$((total[off3] - total[off2]))
echo "round 3 on: $on Ir (R3 ${total[on3]} - R2 ${total[on2]})"
echo "round 3 off: $off Ir (R3 ${total[off3]} - R2 ${total[off2]})"
awk -v a="$on" -v b="$off" 'BEGIN {printf "on / off: %.3f\n", a / b}'
python3 "$here/pa_split.py" "$work" "$example"
