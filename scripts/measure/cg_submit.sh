#!/usr/bin/env bash
# Usage: scripts/measure/cg_submit.sh BUILD_DIR
# Callgrind instructions (Ir) a submit of the plain submit harness (bench/profile/submit_profile.cpp,
# BM_Submit's workload): only `measured_loop` is collected, 3 runs of 4,096 submits, so a submit is
# Ir / 12,288. One line per case: 4 args / 16 live views, 1 / 16, 4 / 16,384 (docs/performance.md's
# "submit harness" rows). Load-independent; takes about a minute.
set -euo pipefail
USAGE="scripts/measure/cg_submit.sh BUILD_DIR"
source "$(dirname "$0")/lib.sh"
[[ $# -eq 1 ]] || usage_error "expected 1 argument, got $#"
build=$1
need_build "$build"
need_tool valgrind "callgrind counts the instructions"
prof=$(build_bin "$build" tmr_submit_profile)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
runs=3
echo "# $prof, callgrind, toggle measured_loop*, Ir / ($runs x 4096) submits"
for c in "4 16" "1 16" "4 16384"; do
  read -r args views <<<"$c"
  out=$work/cg.$args.$views
  LD_LIBRARY_PATH=$build valgrind --tool=callgrind --toggle-collect='measured_loop*' \
    --callgrind-out-file="$out" "$prof" "$args" "$views" "$runs" >"$work/log" 2>&1 ||
    die "valgrind $prof $args $views $runs failed: $(tail -3 "$work/log")"
  ir=$(cg_total "$out")
  awk -v a="$args" -v v="$views" -v ir="$ir" -v n="$runs" \
    'BEGIN {printf "submit harness %s args / %s views: %.1f Ir a submit (total %d)\n", a, v, ir / (n * 4096), ir}'
done
