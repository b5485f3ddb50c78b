#!/usr/bin/env bash
# Usage: scripts/measure/peers_syscalls.sh BUILD_DIR GRAPH SYSTEM [SPIN=4000]
# futex waits, futex wakes and sched_yield calls a task per thread of one peers system at one METG
# point, and the process's context switches a task: `perf trace -e futex,sched_yield` and
# `perf stat -e context-switches` of
# `taskset -c 0,1 tmr_bench_peers --graphs GRAPH --systems SYSTEM --reps 1 --no-wall --no-table
# --spins SPIN` (the METG point's 3 runs only; the process's set-up is in the counts, its few
# calls spread over the tasks). Counts of blocking events, not times; they still move with what
# else runs on the host (give the load). KEEP=DIR keeps the raw output.
set -euo pipefail
USAGE="scripts/measure/peers_syscalls.sh BUILD_DIR GRAPH SYSTEM [SPIN=4000]"
source "$(dirname "$0")/lib.sh"
[[ $# -ge 3 && $# -le 4 ]] || usage_error "expected 3 or 4 arguments, got $#"
build=$1 graph=$2 system=$3 spin=${4:-4000}
need_build "$build"
need_count SPIN "$spin"
need_tool perf "perf trace counts the system calls"
bin=$(build_bin "$build" tmr_bench_peers)
work=${KEEP:-$(mktemp -d)}
mkdir -p "$work"
LD_LIBRARY_PATH=$build perf stat -e context-switches -x, -o "$work/stat" \
  perf trace -e futex,sched_yield -o "$work/trace" -- taskset -c 0,1 "$bin" --graphs "$graph" --systems "$system" \
  --reps 1 --no-table --no-wall --spins "$spin" >"$work/log" 2>&1 ||
  die "perf trace $bin failed: $(tail -3 "$work/log")"
tasks=$(awk '/spin .* tasks/ {print 3 * $5; exit}' "$work/log")
[[ -n $tasks ]] || die "no METG point in $work/log"
echo "# $bin $graph $system spin $spin: $tasks METG tasks (3 runs), load $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$work" "$tasks" <<'PY'
import re, sys
work, tasks = sys.argv[1], float(sys.argv[2])
def threads(tag):
    out = {}
    for line in open(f"{work}/{tag}"):
        m = re.search(r"\): (\S+)/(\d+) (futex|sched_yield)\((.*)", line)
        if not m or "[continued]" in line:
            continue
        name, tid, call, rest = m.groups()
        t = out.setdefault(int(tid), {"name": name, "wait": 0, "wake": 0, "yield": 0})
        t["name"] = name  # the main thread shows as taskset until its exec
        if call == "sched_yield":
            t["yield"] += 1
        elif "op: WAIT" in rest:
            t["wait"] += 1
        elif "op: WAKE" in rest:
            t["wake"] += 1
    rows = [out[k] for k in sorted(out)]
    if rows:
        rows[0]["name"] = "main"  # the first thread: the orchestrator / the graph's owner
    return rows
def cs(tag):
    for line in open(f"{work}/{tag}"):
        f = line.split(",")
        if len(f) > 2 and "context-switches" in f[2]:
            return int(f[0])
    return 0
print(f"{'thread':<18} {'waits/task':>10} {'wakes/task':>10} {'yield/task':>10}")
sums = [0.0, 0.0, 0.0]
for t in threads("trace"):
    row = [t["wait"] / tasks, t["wake"] / tasks, t["yield"] / tasks]
    sums = [a + b for a, b in zip(sums, row)]
    print(f"{t['name'][:18]:<18} {row[0]:>10.4f} {row[1]:>10.4f} {row[2]:>10.4f}")
print(f"{'all':<18} {sums[0]:>10.4f} {sums[1]:>10.4f} {sums[2]:>10.4f}")
print(f"context switches a task (process): {cs('stat') / tasks:.4f}")
# Each word waited on: whose it is, the wake calls made on it (by anyone), and how many of them
# returned 0 (woke nobody: the waiter was not asleep, e.g. already woken and not yet running).
owner, calls, idle = {}, {}, {}
lines = open(f"{work}/trace").read().splitlines()
for line in lines:
    m = re.search(r"\): (\S+)/\d+ futex\(uaddr: (0x[0-9a-f]+), op: WAIT", line)
    if m and "[continued]" not in line:
        owner.setdefault(m.group(2), m.group(1))
for line in lines:
    m = re.search(r"futex\(uaddr: (0x[0-9a-f]+), op: WAKE.*\)\s*=\s*(-?\d+)\s*$", line)
    if m and m.group(1) in owner:
        calls[m.group(1)] = calls.get(m.group(1), 0) + 1
        idle[m.group(1)] = idle.get(m.group(1), 0) + (m.group(2) == "0")
for ua, name in sorted(owner.items(), key=lambda kv: kv[1]):
    waits = sum(1 for line in lines if f"uaddr: {ua}, op: WAIT" in line and "[continued]" not in line)
    print(f"word of {name[:15]:<15} {waits:>6} waits, {calls.get(ua, 0):>6} wake calls "
          f"({calls.get(ua, 0) / max(waits, 1):.2f} a wait), {idle.get(ua, 0):>6} woke nobody")

PY
