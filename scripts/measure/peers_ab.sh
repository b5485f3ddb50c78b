#!/usr/bin/env bash
# Usage: scripts/measure/peers_ab.sh N BASE_BUILD NEW_BUILD
# N interleaved rounds of `taskset -c 0,1 tmr_bench_peers --no-metg --reps 3 --json` per build,
# the builds' order swapped each round; every system the build has (tmr, tmr-pf, the peers).
# Raw JSON in OUT (default: a new temporary folder, printed). Then peers_sum.py: per graph, the
# median of the per-round tmr / best peer (each round's own fastest non-tmr wall) for each build,
# and of the per-round new / base tmr wall (docs/peers.md's "tmr / best peer per round" rows).
set -euo pipefail
USAGE="scripts/measure/peers_ab.sh N BASE_BUILD NEW_BUILD"
source "$(dirname "$0")/lib.sh"
[[ $# -eq 3 ]] || usage_error "expected 3 arguments, got $#"
need_count N "$1"
rounds=$1
base=$2
new=$3
need_build "$base"
need_build "$new"
need_tool taskset "the runs are pinned to cores 0-1"
need_tool python3 "the summary"
base_bin=$(build_bin "$base" tmr_bench_peers)
new_bin=$(build_bin "$new" tmr_bench_peers)
bins=("$base_bin" "$new_bin")
dirs=("$base" "$new")
labels=(base new)
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
echo "# raw JSON in $out; base $base, new $new; load: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq 1 "$rounds"); do
  for k in 0 1; do
    i=$(((k + r - 1) % 2))
    json=$out/${labels[$i]}_$r.json
    LD_LIBRARY_PATH=${dirs[$i]} taskset -c 0,1 "${bins[$i]}" --no-metg --reps 3 --json "$json" \
      >"$out/${labels[$i]}_$r.txt" 2>&1 ||
      die "${bins[$i]} failed in round $r: $(tail -3 "$out/${labels[$i]}_$r.txt")"
    echo "round $r: ${labels[$i]} done (load $(cut -d' ' -f1 /proc/loadavg))"
  done
done
python3 "$here/peers_sum.py" "$out"
