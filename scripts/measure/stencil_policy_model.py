#!/usr/bin/env python3
"""A model of the threads platform's completion path on the peers' stencil (rows of 4 cells, each
reading the 1-3 cells around it in the row before), 2 AIV cores, every task already submitted (the
drain). It asks what the placement policy alone costs when both cores have a CPU, apart from the
host: how long a core waits for its dispatch to be seen is a parameter.

A core that finishes a kernel (its FIN) releases the consumers that now have every producer done
(pushed on a local stack, taken last-in first-out). Then, as Scheduler::core_step does:
  - a task staged in its pending slot starts after `--latch` ns; it stages one more ready task
    there when the other core is busy (stage_into_own_pending);
  - otherwise it starts one ready task itself after `--step` ns (the early hand-off), or a queued
    one, or takes back a task its own step placed on the other core that has not latched it yet
    (take_back_unlatched), or, with `--take-staged`, the task staged in the other core's pending
    slot (take_back_staged); once running it stages a ready task when the other core is busy;
  - ready tasks left go to the other core when it is idle (it starts them after `--wake` ns, or
    `--parked-wake` ns once it has been idle longer than `--awake` ns), else to the queue.
An idle core takes nothing by itself: only a placement or its own FIN moves it.

Prints the efficiency of the harness (spin x tasks / 2 cores / wall) for each spin.
"""
import argparse
import heapq
from collections import deque


def run(spin, step, latch, wake, parked_wake, awake, take_staged, rows=400, width=4):
    def producers(r, i):
        return [] if r == 0 else [(r - 1, k) for k in range(max(0, i - 1), min(width - 1, i + 1) + 1)]

    consumers, missing = {}, {}
    for r in range(rows):
        for i in range(width):
            missing[(r, i)] = len(producers(r, i))
            for p in producers(r, i):
                consumers.setdefault(p, []).append((r, i))
    queue = deque((0, i) for i in range(width))

    class Core:
        def __init__(self, n):
            self.n, self.run, self.pending, self.placed, self.idle_since = n, None, None, None, 0.0

    cores = [Core(0), Core(1)]
    events = []

    def start(core, task, at):
        core.run = task
        heapq.heappush(events, (at + spin, "fin", core.n, task))

    start(cores[0], queue.popleft(), 0.0)
    start(cores[1], queue.popleft(), 0.0)
    now = 0.0
    while events:
        now, kind, n, task = heapq.heappop(events)
        core, other = cores[n], cores[1 - n]
        if kind == "latch":
            if core.placed is not None and core.placed[0] == task and core.run is None:
                core.placed = None
                start(core, task, now)
            continue
        core.run = None
        core.idle_since = now
        ready = []
        for c in consumers.get(task, []):
            missing[c] -= 1
            if missing[c] == 0:
                ready.append(c)
        other_busy = other.run is not None or other.placed is not None
        if core.pending is not None:
            task_next, core.pending = core.pending, None
            start(core, task_next, now + latch)
            if other_busy and (ready or queue):
                core.pending = ready.pop() if ready else queue.popleft()
        else:
            if ready:
                start(core, ready.pop(), now + step)
            elif queue:
                start(core, queue.popleft(), now + step)
            elif other.placed is not None and other.placed[2] == n and other.placed[1] > now:
                start(core, other.placed[0], now + step)
                other.placed = None
                other.idle_since = now
            elif take_staged and other.pending is not None:
                start(core, other.pending, now + step)
                other.pending = None
            if core.run is not None and other_busy and (ready or queue) and core.pending is None:
                core.pending = ready.pop() if ready else queue.popleft()
        while ready:
            c = ready.pop()
            if other.run is None and other.placed is None:
                latency = wake if now + step - other.idle_since < awake else parked_wake
                other.placed = (c, now + step + latency, n)
                heapq.heappush(events, (now + step + latency, "latch", other.n, c))
            else:
                queue.append(c)
    return spin * rows * width / 2 / now


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--spins", default="100,250,500,1000,2000,4000,8000")
    ap.add_argument("--step", type=float, default=400, help="FIN to the next own start, ns")
    ap.add_argument("--latch", type=float, default=100, help="FIN to a staged task's start, ns")
    ap.add_argument("--wake", type=float, default=300, help="placement to start, awake core, ns")
    ap.add_argument("--parked-wake", type=float, default=300, help="same, parked core, ns")
    ap.add_argument("--awake", type=float, default=50000, help="idle ns before a core parks")
    args = ap.parse_args()
    print(f"step {args.step:.0f}, latch {args.latch:.0f}, wake {args.wake:.0f} / parked "
          f"{args.parked_wake:.0f} ns: efficiency, base -> with take_back_staged")
    for spin in (float(s) for s in args.spins.split(",")):
        base = run(spin, args.step, args.latch, args.wake, args.parked_wake, args.awake, False)
        new = run(spin, args.step, args.latch, args.wake, args.parked_wake, args.awake, True)
        print(f"  spin {spin:6.0f} ns: {base:.3f} -> {new:.3f}")


if __name__ == "__main__":
    main()
