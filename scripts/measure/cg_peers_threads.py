#!/usr/bin/env python3
"""Per-thread instructions a task of one peers system, outside the task body (cg_peers_threads.sh).

Usage: cg_peers_threads.py DIR TASKS
DIR holds one run's callgrind files (--separate-threads=yes) of `tmr_bench_peers --no-wall`: only
the METG point's TASKS tasks ran on the system's threads. A thread's cost is its total less
run_body's inclusive cost (the task's own work: the spin and the cells' hash); the main thread's
is only its `System::execute` (the orchestration, or oneTBB's graph building and waiting), less
the task bodies it ran. "idle" is the self cost of the idle loops' out-of-line functions (yield,
futex, pause, sleep; tmr's back-off is inlined into its loops, so it shows there); valgrind runs
one thread at a time, so idle polling counts little and depends on valgrind's scheduling.
"""
import glob
import re
import subprocess
import sys

# clock_gettime is left out: the spin's clock reads are its; the back-off's are few (one a yield).
IDLE = re.compile(r"idle_and_should_park|sched_yield|cpu_relax|futex|syscall|steady_clock::now|"
                  r"prolonged_pause|machine_pause|spin_wait|sleep|EventCount::(?:prepare_)?wait|"
                  r"waiter|pause")
ROLES = [("scheduler_main", "scheduler"), ("core_main", "core"), ("run_main", "main"),
         ("tbb", "tbb worker")]
COST = re.compile(r"\s*([\d,]+) \(\s*[\d.]+%\)\s+([*<>])\s+(.*)")


def annotate(path, *opts):
    return subprocess.run(["callgrind_annotate", "--threshold=100", *opts, path],
                          capture_output=True, text=True, check=True).stdout.splitlines()


def thread_costs(path):
    total = idle = 0
    for line in annotate(path, "--inclusive=no"):
        m = re.match(r"\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*)", line)
        if not m:
            continue
        n = int(m.group(1).replace(",", ""))
        if "PROGRAM TOTALS" in m.group(2):
            total = n
        elif IDLE.search(m.group(2)):
            idle += n
    body = body_outside = execute = ran = 0
    callers = []  # --tree=caller lists a function's callers before its own line
    for line in annotate(path, "--inclusive=yes", "--tree=caller"):
        m = COST.match(line)
        if not m:
            continue
        n, kind, name = int(m.group(1).replace(",", "")), m.group(2), m.group(3)
        if kind == "<":
            callers.append((n, name))
            continue
        if kind != "*":
            continue
        if "run_body(" in name:
            body = n
            for cn, caller in callers:
                # The reference checksum and the harness's own calls, outside any system.
                if re.search(r"run_main|MetgSweep|reference_checksum", caller):
                    body_outside += cn
                else:
                    calls = re.search(r"\(([\d,]+)x\) \[", caller)
                    ran += int(calls.group(1).replace(",", "")) if calls else 0
        if re.match(r"[^:]*:peers::\(anonymous namespace\)::\w+System::execute\(", name):
            execute = max(execute, n)
        callers = []
    with open(path, errors="replace") as f:
        text = f.read()
    role = next((r for key, r in ROLES if key in text), "other")
    if role == "main":
        return execute - (body - body_outside), idle, role, ran
    return total - body, idle, role, ran


def main():
    d, tasks = sys.argv[1], float(sys.argv[2])
    files = sorted(glob.glob(d + "/cg.out-*"), key=lambda p: int(p.rsplit("-", 1)[1]))
    print(f"{'thread':>6} {'role':<11} {'Ir/task':>9} {'idle/task':>9} {'rest/task':>9} "
          f"{'tasks run':>9} {'Ir/own task':>11}")
    sums = [0.0, 0.0]
    for p in files:
        cost, idle, role, ran = thread_costs(p)
        if cost == 0:
            continue
        sums[0] += cost / tasks
        sums[1] += idle / tasks
        t = int(p.rsplit("-", 1)[1])
        print(f"{t:>6} {role:<11} {cost / tasks:>9.1f} {idle / tasks:>9.1f} "
              f"{(cost - idle) / tasks:>9.1f} {ran:>9} "
              f"{(cost / ran if ran else 0):>11.1f}")
    print(f"{'all':>6} {'':<11} {sums[0]:>9.1f} {sums[1]:>9.1f} {sums[0] - sums[1]:>9.1f}")


main()
