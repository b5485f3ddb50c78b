#!/usr/bin/env python3
"""Summarises scripts/ab_parallel_for.sh output: per build, medians and per-round ratios
(parallel_for / plain loop) of BM_SliceWrites CPU ns per task, and paged attention on/off."""
import statistics as st
import sys


def value(text):
    return float(text[:-1]) * 1000 if text.endswith("k") else float(text)


data = {}
for line in open(sys.argv[1]):
    parts = line.split()
    if len(parts) < 4 or not parts[0].isdigit():
        continue
    data.setdefault((parts[1], parts[2]), []).append([value(v) for v in parts[3:]])
for build in dict.fromkeys(b for b, _ in data):
    for args in ("4", "2"):
        plain = [v[0] for v in data[(build, f"0/args:{args}")]]
        loop = [v[0] for v in data[(build, f"1/args:{args}")]]
        ratios = [b / a for a, b in zip(plain, loop)]
        print(f"{build} slice writes, {args} args: plain {[round(x) for x in plain]} "
              f"(median {st.median(plain):.0f}), parallel_for {[round(x) for x in loop]} "
              f"(median {st.median(loop):.0f}); ratio per round {[round(x, 2) for x in ratios]}, "
              f"median {st.median(ratios):.2f}")
    if (build, "pa_off") in data:
        off = [x for v in data[(build, "pa_off")] for x in v]
        on = [x for v in data[(build, "pa_on")] for x in v]
        print(f"{build} paged attention B16: off {[round(x) for x in off]}, on "
              f"{[round(x) for x in on]}; median on/off {st.median(on) / st.median(off):.2f}")
