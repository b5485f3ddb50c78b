#!/usr/bin/env python3
"""Markdown table of an ab_builds.sh run: per benchmark and counter, every round's value per
build and the ratio of each build's median to the first build's."""
import glob
import json
import os
import re
import statistics
import sys

out = sys.argv[1]
builds = open(os.path.join(out, "builds")).read().split()
data = [{} for _ in builds]
for i in range(len(builds)):
    for path in sorted(glob.glob(os.path.join(out, f"build{i}_micro_*.json"))):
        for b in json.load(open(path)).get("benchmarks", []):
            name = re.sub(r"/min_time:[0-9.]+", "", b["name"])
            for key in ("cpu_ns_per_submit", "orch_ns_per_task", "wall_ns_per_task"):
                if key in b:
                    data[i].setdefault((name, key), []).append(b[key])
    for path in sorted(glob.glob(os.path.join(out, f"build{i}_peers_*.txt"))):
        for m in re.finditer(r"^\[(\w+)\] tmr: \d+ tasks\n\s+wall (\d+) ns/task", open(path).read(), re.M):
            data[i].setdefault((f"peers {m.group(1)}", "wall_ns_per_task"), []).append(int(m.group(2)))
keys = sorted({k for d in data for k in d})
print("| benchmark | counter | " + " | ".join(f"build {i}" for i in range(len(builds))) + " | " +
      " | ".join(f"{i}/0" for i in range(1, len(builds))) + " |")
print("|---|---|" + "---:|" * (2 * len(builds) - 1))
for k in keys:
    vals = [d.get(k, []) for d in data]
    med = [statistics.median(v) if v else float("nan") for v in vals]
    cells = [", ".join(f"{x:,.0f}" for x in v) or "-" for v in vals]
    ratios = [f"{m / med[0]:.2f}" if med[0] else "-" for m in med[1:]]
    print(f"| {k[0]} | {k[1]} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
for i, b in enumerate(builds):
    print(f"\nbuild {i}: {b}", end="")
print()
