#!/usr/bin/env python3
"""Usage: scripts/measure/timing_sum.py RAW

Summarises ab_timing_only.sh's lines "round build pf ns [faults [mean]]" (other lines are skipped): per
round and build on / off, then per build the medians of on, off and of the per-round ratios, their
range, the fastest on over the fastest off (the least disturbed runs), and new / base of the medians.
Where the lines carry a run's mean of its steady rounds (the sixth field), the same summary follows
for the means."""
import statistics
import sys


def summarise(runs: dict, what: str) -> None:
    rounds = sorted({r for r, _, _ in runs})
    builds = [b for b in ("base", "new") if any(k[1] == b for k in runs)]
    ratios = {b: [] for b in builds}
    print(f"# {what}")
    for r in rounds:
        cells = []
        for b in builds:
            on, off = runs.get((r, b, "on")), runs.get((r, b, "off"))
            if on is None or off is None:
                continue
            ratios[b].append(on / off)
            cells.append(f"{b} {on:.0f} / {off:.0f} = {on / off:.3f}")
        print(f"round {r}: " + "; ".join(cells))
    med = {}
    for b in builds:
        on = statistics.median(v for (r, bb, pf), v in runs.items() if bb == b and pf == "on")
        off = statistics.median(v for (r, bb, pf), v in runs.items() if bb == b and pf == "off")
        m = statistics.median(ratios[b])
        med[b] = m
        lo_on = min(v for (r, bb, pf), v in runs.items() if bb == b and pf == "on")
        lo_off = min(v for (r, bb, pf), v in runs.items() if bb == b and pf == "off")
        print(f"{b}: on / off median of rounds {m:.3f} (range {min(ratios[b]):.3f}-"
              f"{max(ratios[b]):.3f}, {len(ratios[b])} rounds); median on {on:.0f}, off {off:.0f} ns"
              f" a task; fastest on {lo_on:.0f} / fastest off {lo_off:.0f} = {lo_on / lo_off:.3f}")
    if len(builds) == 2:
        print(f"new / base of the median on / off: {med['new'] / med['base']:.3f}")


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__.splitlines()[0], file=sys.stderr)
        print("timing_sum.py: error: expected 1 argument (the raw file)", file=sys.stderr)
        return 2
    runs = {}  # (round, build, pf) -> ns (a run's median of its steady rounds)
    means = {}  # (round, build, pf) -> the same run's mean of its steady rounds, where given
    with open(sys.argv[1]) as f:
        for line in f:
            parts = line.split()
            if len(parts) in (4, 5, 6) and parts[0].isdigit() and parts[2] in ("on", "off"):
                key = (int(parts[0]), parts[1], parts[2])
                runs[key] = float(parts[3])
                if len(parts) == 6:
                    means[key] = float(parts[5])
    if not runs or not any(k[1] in ("base", "new") for k in runs):
        print("timing_sum.py: error: no 'round build pf ns' lines", file=sys.stderr)
        return 2
    summarise(runs, "each run's median of its steady rounds (the figure before session 55)")
    if means and len(means) == len(runs):
        summarise(means, "each run's mean of its steady rounds (its CPU over its tasks)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
