#!/usr/bin/env bash
# Usage: scripts/measure/setup_fit.sh BUILD_DIR
# The sim's loop set-up constants (docs/sim.md: loop_setup_ratio, loop_setup_fixed,
# loop_setup_square, kept_setup_ratio, kept_setup_base_ratio) from callgrind instructions of
# paged attention on the threads platform (`--skip-golden`, `orchestrate` collected):
#   unit  an ordinary submit: inclusive tmr::Orchestrator::submit of B16_ctx4096
#         `--parallel-for off --rounds 1` over its calls
#   L1    B16_ctx4096 with batch=1: one request, so only its block loop (4 tasks) learns
#   T4    B16_ctx4096 with context_lens 4096,3968 alternating: the request loop falls back, the
#         16 block loops learn (R1) and are kept (R3)
#   T129  B16_ctx4096: the request template (129 tasks) and two block loops (4)
#   T257  B256_ctx8192 with batch=4: the request template (257) and two block loops (4)
# A learned set-up is the inclusive LoopDriver::try_template of `--rounds 1`; a kept one the
# inclusive LoopDriver::try_kept plus LoopDriver::try_kept_from_start of `--rounds 3` less
# `--rounds 2` (parallel_for on). setup_fit.py DIR re-summarises. KEEP=DIR keeps the files.
# Takes ~6 minutes.
set -euo pipefail
USAGE="scripts/measure/setup_fit.sh BUILD_DIR"
source "$(dirname "$0")/lib.sh"
[[ $# -eq 1 ]] || usage_error "expected 1 argument, got $#"
build=$1
need_build "$build"
need_tool valgrind "callgrind counts the instructions"
need_tool callgrind_annotate "the inclusive costs"
need_tool python3 "the fit"
tmr=$(build_bin "$build" tmr)
if [[ -n ${KEEP:-} ]]; then
  mkdir -p "$KEEP"
  work=$KEEP
else
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
fi
alternating=4096$(printf ',3968,4096%.0s' $(seq 7)),3968
declare -A case_args=(
  [L1]="--case B16_ctx4096 --param batch=1"
  [T4]="--case B16_ctx4096 --param context_lens=$alternating"
  [T129]="--case B16_ctx4096"
  [T257]="--case B256_ctx8192 --param batch=4"
)
fn="tmr::examples::paged_attention::orchestrate(tmr::Orchestrator&, tmr::OrchestrationArgs const&)"
run() {  # run NAME ROUNDS PF ARGS...
  local name=$1 rounds=$2 pf=$3
  shift 3
  LD_LIBRARY_PATH=$build valgrind --tool=callgrind --toggle-collect="$fn" \
    --callgrind-out-file="$work/$name.cg" "$tmr" run paged_attention "$@" --skip-golden \
    --rounds "$rounds" --parallel-for "$pf" >"$work/$name.log" 2>&1 ||
    die "valgrind tmr run paged_attention $* --rounds $rounds --parallel-for $pf failed: $(tail -3 "$work/$name.log")"
}
run unit 1 off --case B16_ctx4096
# shellcheck disable=SC2086
run setup.L1.R1 1 on ${case_args[L1]}
for c in T4 T129 T257; do
  for r in 1 2 3; do
    # shellcheck disable=SC2086
    run "setup.$c.R$r" "$r" on ${case_args[$c]}
  done
done
python3 "$here/setup_fit.py" "$work"
