#!/usr/bin/env python3
"""Usage: scripts/measure/peers_sum.py DIR

Summarises peers_ab.sh's DIR/{base,new}_ROUND.json (tmr_bench_peers --json): per graph, the
median over rounds of tmr / best peer (the fastest non-tmr system's wall in the same run) for each
build, with its range and the best peer's own median wall, and the median of the per-round
new / base tmr wall. Each tmr run's CPU mode (its orchestrator_wait_share: below
SHARED_CPU_WAIT_SHARE it had a CPU to itself, as on a quiet host) splits the rounds once more:
the medians per mode, so two tables that caught different modes are not compared as one."""
import glob
import json
import os
import re
import statistics
import sys

SHARED_CPU_WAIT_SHARE = 0.15  # bench/peers/harness.hpp, kSharedCpuWaitShare


def mode_of(figures):
    share = figures.get("orchestrator_wait_share")
    if share is None:
        return "unknown"
    return "shared" if share >= SHARED_CPU_WAIT_SHARE else "own"


def load(directory):
    data = {}  # (build, round) -> results
    for path in glob.glob(os.path.join(directory, "*.json")):
        m = re.fullmatch(r"(base|new)_(\d+)\.json", os.path.basename(path))
        if m:
            with open(path) as f:
                data[(m.group(1), int(m.group(2)))] = json.load(f)
    return data


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__.splitlines()[0], file=sys.stderr)
        print("peers_sum.py: error: expected 1 argument (peers_ab.sh's folder)", file=sys.stderr)
        return 2
    data = load(sys.argv[1])
    if not data:
        print(f"peers_sum.py: error: no base_N.json / new_N.json in {sys.argv[1]}", file=sys.stderr)
        return 2
    graphs = []
    for results in data.values():
        graphs += [g for g in results if g not in graphs]
    rounds = sorted({r for _, r in data})
    print("graph        build  tmr/best median (range)   best peer median ns   tmr median ns")
    for g in graphs:
        for build in ("base", "new"):
            ratios, peers, tmrs, by_mode = [], [], [], {}
            for r in rounds:
                row = data.get((build, r), {}).get(g, {})
                if "tmr" not in row:
                    continue
                others = [(f["wall_ns_per_task"], s) for s, f in row.items() if not s.startswith("tmr")]
                if not others:
                    continue
                best = min(others)
                ratios.append(row["tmr"]["wall_ns_per_task"] / best[0])
                peers.append(best[0])
                tmrs.append(row["tmr"]["wall_ns_per_task"])
                by_mode.setdefault(mode_of(row["tmr"]), []).append(ratios[-1])
            if ratios:
                print(f"{g:12} {build:5}  {statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})"
                      f"{'':12}{statistics.median(peers):8.0f}{'':14}{statistics.median(tmrs):8.0f}")
                print(f"{'':19}by CPU mode: " + "; ".join(
                    f"{mode} {len(v)} round{'s' if len(v) != 1 else ''} median {statistics.median(v):.2f}"
                    for mode, v in sorted(by_mode.items())))
        per_round = []
        for r in rounds:
            b = data.get(("base", r), {}).get(g, {}).get("tmr")
            n = data.get(("new", r), {}).get(g, {}).get("tmr")
            if b and n:
                per_round.append(n["wall_ns_per_task"] / b["wall_ns_per_task"])
        if per_round:
            print(f"{g:12} new / base tmr wall per round: median {statistics.median(per_round):.2f}"
                  f" ({', '.join(f'{v:.2f}' for v in per_round)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
