#!/usr/bin/env bash
# Usage: scripts/measure/cg_peers_threads.sh BUILD_DIR GRAPH SYSTEM [SPIN=4000]
# Callgrind instructions a task per thread of one peers system (tmr, tbb, ...) at one METG point,
# outside the task body: `tmr_bench_peers --graphs GRAPH --systems SYSTEM --no-wall --no-table
# --spins SPIN` (the point's 3 runs only), each thread's total less run_body's inclusive cost, the
# main thread's `System::execute` only (cg_peers_threads.py). KEEP=DIR keeps the files.
# Valgrind runs one thread at a time, so idle polling counts little: the figures are the threads'
# work a task, not their waiting. Load-independent.
set -euo pipefail
USAGE="scripts/measure/cg_peers_threads.sh BUILD_DIR GRAPH SYSTEM [SPIN=4000]"
source "$(dirname "$0")/lib.sh"
[[ $# -ge 3 && $# -le 4 ]] || usage_error "expected 3 or 4 arguments, got $#"
build=$1 graph=$2 system=$3 spin=${4:-4000}
need_build "$build"
need_count SPIN "$spin"
need_tool valgrind "callgrind counts the instructions"
bin=$(build_bin "$build" tmr_bench_peers)
work=${KEEP:-$(mktemp -d)}
mkdir -p "$work"
LD_LIBRARY_PATH=$build valgrind --tool=callgrind --separate-threads=yes \
  --callgrind-out-file="$work/cg.out" "$bin" --graphs "$graph" --systems "$system" --reps 1 \
  --no-table --no-wall --spins "$spin" >"$work/log" 2>&1 ||
  die "valgrind $bin failed: $(tail -3 "$work/log")"
tasks=$(awk '/spin .* tasks/ {print 3 * $5; exit}' "$work/log")
[[ -n $tasks ]] || die "no METG point in $work/log"
echo "# $bin $graph $system spin $spin: $tasks tasks (3 runs), Ir a task per thread"
python3 "$here/cg_peers_threads.py" "$work" "$tasks"
