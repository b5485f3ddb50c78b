#!/usr/bin/env python3
"""Where a worker core's wall time goes in one tmr run of the peers benchmark.

Input: the CSV that `PEERS_TMR_DUMP=PATH tmr_bench_peers ...` writes (every subtask of tmr's last
run: task, core, submit, ready, dispatch, start, end, retire, early, staged, producers; times in
ns on one clock). Optional second argument: the spin of that run in ns (the task's own work).

Every core that ran a task is either inside a kernel (start..end) or between two kernels. A gap
from one kernel's end to the next kernel's start on that core is split by what the next task (B)
was doing meanwhile:

  not ready, another ready  B was not ready yet, but some other task was ready and not started
                            (the core could have run it: a ready task waited while it idled);
                            "unplaced" when one such task was on no core yet (a queue), "placed
                            elsewhere" when every such task was placed on another core (staged
                            behind its kernel, or placed on a core that has not latched it)
  not ready, orchestrator   B not ready, no task ready, and B was not submitted yet
  not ready, producers      B not ready, no task ready, B submitted: its producers were running
  ready -> placed           B ready, not yet placed on a core (by its route: own step = early
                            hand-off, staged = the pending slot, other = another thread's step)
  placed -> started         B placed on this core, the core not running it yet (its latch,
                            the rest of its own step, or a parked core's wake)

The first run-up (before the core's first kernel) and the tail after its last are reported apart.
A task taken back from another core (RunStats::unlatched_taken_back) carries
its last dispatch only: the time it spent placed on the core that did not run it counts as
"unplaced" here (the stats line of PEERS_TMR_STATS gives how many were taken back).
"""
import bisect
import csv
import sys
from collections import defaultdict


def load(path):
    with open(path) as f:
        rows = list(csv.DictReader(f))
    tasks = []
    for r in rows:
        tasks.append({
            "task": int(r["task"]),
            "core": int(r["core"]),
            "submit": int(r["submit"]),
            "ready": int(r["ready"]),
            "dispatch": int(r["dispatch"]),
            "start": int(r["start"]),
            "end": int(r["end"]),
            "early": r["early"] == "1",
            "staged": r["staged"] == "1",
        })
    return tasks


class PositiveTime:
    """Measure of {u in [a, b) : count of tasks ready and not started (or not placed, with
    until="dispatch") at u > 0}."""

    def __init__(self, tasks, until="start"):
        deltas = defaultdict(int)
        for t in tasks:
            end = min(t[until], t["start"])
            if end > t["ready"]:
                deltas[t["ready"]] += 1
                deltas[end] -= 1
        self.times = sorted(deltas)
        self.prefix = [0]  # positive time up to self.times[i]
        self.count = []  # count on [times[i], times[i+1])
        c = 0
        for i, time in enumerate(self.times):
            c += deltas[time]
            self.count.append(c)
            if i + 1 < len(self.times):
                width = self.times[i + 1] - time
                self.prefix.append(self.prefix[-1] + (width if c > 0 else 0))

    def upto(self, x):
        i = bisect.bisect_right(self.times, x) - 1
        if i < 0:
            return 0
        return self.prefix[i] + ((x - self.times[i]) if self.count[i] > 0 else 0)

    def within(self, a, b):
        return self.upto(b) - self.upto(a) if b > a else 0


def route(t):
    return "own step" if t["early"] else "staged" if t["staged"] else "other"


def main():
    if len(sys.argv) < 2:
        print("usage: peers_gaps.py DUMP.csv [SPIN_NS]", file=sys.stderr)
        sys.exit(2)
    tasks = load(sys.argv[1])
    spin = int(sys.argv[2]) if len(sys.argv) > 2 else None
    n = len(tasks)
    positive = PositiveTime(tasks)
    unplaced = PositiveTime(tasks, "dispatch")
    t0 = min(t["submit"] for t in tasks)
    t1 = max(t["end"] for t in tasks)
    wall = t1 - t0
    by_core = defaultdict(list)
    for t in tasks:
        by_core[t["core"]].append(t)
    cats = defaultdict(float)
    per_core = {}
    for core, mine in sorted(by_core.items()):
        mine.sort(key=lambda t: t["start"])
        run = sum(t["end"] - t["start"] for t in mine)
        cats["kernel (start..end)"] += run
        cats["before the core's first kernel"] += mine[0]["start"] - t0
        cats["after the core's last kernel"] += t1 - mine[-1]["end"]
        for a, b in zip(mine, mine[1:]):
            e, s = a["end"], b["start"]
            if s <= e:
                continue
            not_ready_end = min(s, max(e, b["ready"]))
            if not_ready_end > e:
                other = positive.within(e, not_ready_end)
                queued = min(other, unplaced.within(e, not_ready_end))
                cats["not ready, another ready, unplaced"] += queued
                cats["not ready, another ready, placed elsewhere"] += other - queued
                rest = (not_ready_end - e) - other
                # The rest: nothing ready. Was B submitted before the gap's not-ready part ended?
                if b["submit"] >= not_ready_end:
                    cats["not ready, orchestrator"] += rest
                elif b["submit"] > e:
                    cats["not ready, orchestrator"] += rest * (b["submit"] - e) / (not_ready_end - e)
                    cats["not ready, producers"] += rest * (not_ready_end - b["submit"]) / (
                        not_ready_end - e)
                else:
                    cats["not ready, producers"] += rest
            placed = min(s, max(not_ready_end, b["dispatch"]))
            if placed > not_ready_end:
                cats["ready -> placed (" + route(b) + ")"] += placed - not_ready_end
            if s > placed:
                cats["placed -> started (" + route(b) + ")"] += s - placed
        per_core[core] = (len(mine), run)
    cores = len(by_core)
    print(f"{sys.argv[1]}: {n} tasks on {cores} cores, wall {wall / 1e3:.1f} us "
          f"({wall / n:.0f} ns a task; x{cores} cores = {cores * wall / n:.0f} core-ns a task)")
    if spin is not None:
        print(f"  spin {spin} ns: efficiency (spin x n / cores / wall) {spin * n / cores / wall:.3f}")
    for core, (count, run) in per_core.items():
        print(f"  core {core}: {count} tasks, kernels {run / max(count, 1):.0f} ns each")
    print(f"  {'where a core-ns goes':40s} {'ns a task':>10s} {'share':>7s}")
    total = sum(cats.values())
    for k in sorted(cats, key=lambda k: -cats[k]):
        print(f"  {k:40s} {cats[k] / n:10.0f} {cats[k] / total:7.3f}")
    print(f"  {'(sum; = cores x wall up to gaps < 0)':40s} {total / n:10.0f}")
    # Share of the wall (first submit .. last end) with k cores inside a kernel at once.
    deltas = defaultdict(int)
    for t in tasks:
        deltas[t["start"]] += 1
        deltas[t["end"]] -= 1
    running = defaultdict(int)
    level, last = 0, t0
    for time in sorted(deltas):
        running[level] += time - last
        level += deltas[time]
        last = time
    print("  cores in a kernel at once, share of the wall: " +
          ", ".join(f"{k} {running[k] / wall:.3f}" for k in sorted(running)))
    # The same split at the last submit: while the orchestrator submits (it holds a CPU) and the
    # drain after it.
    last_submit = max(t["submit"] for t in tasks)
    for name, lo, hi in (("submitting", t0, last_submit), ("drain", last_submit, t1)):
        if hi <= lo:
            continue
        share = defaultdict(int)
        level, last = 0, lo
        for time in sorted(deltas):
            clipped = min(max(time, lo), hi)
            share[level] += clipped - last
            last = clipped
            level += deltas[time]
        share[level] += hi - last
        ran = sum(1 for t in tasks if lo <= t["start"] < hi)
        print(f"  {name}: {(hi - lo) / 1e3:.1f} us, {ran} kernels started, cores in a kernel: " +
              ", ".join(f"{k} {share[k] / (hi - lo):.3f}" for k in sorted(share)))
    routes = defaultdict(int)
    for t in tasks:
        routes[route(t)] += 1
    print("  routes: " + ", ".join(f"{k} {v / n:.3f}" for k, v in sorted(routes.items())))


if __name__ == "__main__":
    main()
