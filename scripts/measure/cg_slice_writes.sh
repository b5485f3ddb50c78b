#!/usr/bin/env bash
# Usage: scripts/measure/cg_slice_writes.sh BUILD_DIR [ARGS=4]
# Callgrind instructions a task of BM_SliceWrites (bench/micro/bench_parallel_for.cpp) with ARGS
# tensor arguments, analysed (parallel_for:1) and plain loop (parallel_for:0): the orchestration
# lambda collected, one dump per run (each run is 16,384 slice-write tasks), Ir of a run / 16,384,
# median of runs 3-8 (runs 1-2 build the runtime's tables). Prints both, per run and the median,
# and analysed / plain (docs/performance.md's "BM_SliceWrites analysed/plain 4 args" rows); with
# a build that has the pattern form (parallel_for:2, parallel_for(n, TaskPattern)) also that, and
# pattern / plain and pattern / analysed. The
# plain loop's runs take one of a few levels, by how many times it met the full ring (a timing
# matter: 1,176 / 1,227 / 1,320 on 448faa4), so its median of 6 runs can land on any level; the
# docs' "steady value" is the lowest level, the least of runs 3 and later, printed beside it.
# BM_SliceWrites is slice_writes<false> (slice_writes<true> is BM_SliceWritesViewArgs): the
# orchestration lambda and its std::function invoker are named after the template, so the
# toggle and dump patterns name it, not BM_SliceWrites (whose name those symbols do not hold).
set -euo pipefail
USAGE="scripts/measure/cg_slice_writes.sh BUILD_DIR [ARGS=4]"
source "$(dirname "$0")/lib.sh"
[[ $# -eq 1 || $# -eq 2 ]] || usage_error "expected 1 or 2 arguments, got $#"
build=$1
args=${2:-4}
[[ $args == 2 || $args == 4 ]] || usage_error "ARGS must be 2 or 4 (the benchmark's cases), got '$args'"
need_build "$build"
need_tool valgrind "callgrind counts the instructions"
need_tool python3 "the medians"
bench=$(build_bin "$build" tmr_bench_micro)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "# $bench, callgrind, BM_SliceWrites/parallel_for:P/args:$args, Ir a run / 16384, median of runs 3-8"
forms="1 0"
if LD_LIBRARY_PATH=$build "$bench" --benchmark_list_tests=true 2>/dev/null |
  grep -q "^BM_SliceWrites/parallel_for:2/args:$args/"; then
  forms="1 0 2"
fi
for p in $forms; do
  out=$work/sw$p
  LD_LIBRARY_PATH=$build valgrind --tool=callgrind \
    --toggle-collect='*slice_writes<false>*OrchestrationArgs const&) const [clone*' \
    --dump-after='*_Function_handler*slice_writes<false>*_M_invoke*' --callgrind-out-file="$out" \
    "$bench" --benchmark_filter="BM_SliceWrites/parallel_for:$p/args:$args/" \
    --benchmark_min_time=0.2 >"$work/log$p" 2>&1 ||
    die "valgrind $bench (parallel_for:$p) failed: $(tail -3 "$work/log$p")"
  : >"$work/runs$p"
  for n in $(seq 1 1000); do
    [[ -f $out.$n ]] || break
    cg_total "$out.$n" >>"$work/runs$p"
  done
done
python3 - "$work" <<'PY'
import os, statistics, sys
work = sys.argv[1]
medians, lows = {}, {}
names = {"1": "analysed (parallel_for:1)", "0": "plain (parallel_for:0)",
         "2": "pattern (parallel_for:2)"}
for p in ("1", "0", "2"):
    path = os.path.join(work, "runs" + p)
    if not os.path.exists(path):
        continue
    runs = [int(line) / 16384 for line in open(path)]
    if len(runs) < 8:
        sys.exit(f"cg_slice_writes.sh: error: {names[p]}: {len(runs)} dumps, need 8 (runs 3-8)")
    medians[p] = statistics.median(runs[2:8])
    lows[p] = min(runs[2:])
    print(f"{names[p]}: median {medians[p]:.1f}, steady {lows[p]:.1f} Ir a task "
          f"(runs 3-8: {', '.join(f'{r:.1f}' for r in runs[2:8])}; {len(runs)} runs)")
print(f"analysed / plain: medians {medians['1'] / medians['0']:.3f}, steady {lows['1'] / lows['0']:.3f}")
if "2" in medians:
    print(f"pattern / plain: medians {medians['2'] / medians['0']:.3f}, steady {lows['2'] / lows['0']:.3f}")
    print(f"pattern / analysed: medians {medians['2'] / medians['1']:.3f}, steady {lows['2'] / lows['1']:.3f}")
PY
