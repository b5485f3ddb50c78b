#!/usr/bin/env python3
"""Locked instructions a thread executed, per task, from a callgrind profile.

    valgrind --tool=callgrind --separate-threads=yes --dump-instr=yes \
        --callgrind-out-file=/tmp/cg.%p tmr_bench_peers --graphs chain --systems tmr \
        --no-metg --reps 1 --no-table
    bench/peers/callgrind_locked.py /tmp/cg.PID-03 200000   # a worker; tasks = 2 x graph size

Callgrind counts instructions, not their kind: this matches each executed address against
objdump's disassembly of libtmr and the bench binary and counts the lock-prefixed ones and
`xchg` with memory (an implicit lock: what GCC emits for a seq_cst store). Prints them by
function and instruction, most frequent first, and the total per task.
"""
import collections
import re
import subprocess
import sys

OBJECTS = ('libtmr.so.0.1.0', 'libtmr.so.0', 'tmr_bench_peers')
ADDR = r'(?:0x[0-9a-f]+|\+\d+|-\d+|\*)'


def locked_addresses(path, cache={}):
    if path not in cache:
        out = subprocess.run(['objdump', '-d', '--no-show-raw-insn', '-C', path],
                             capture_output=True, text=True, check=True).stdout
        found, func = {}, None
        for line in out.splitlines():
            m = re.match(r'^([0-9a-f]+) <(.*)>:$', line)
            if m:
                func = m.group(2)
                continue
            m = re.match(r'^\s+([0-9a-f]+):\s+(.*)$', line)
            if m:
                ins = m.group(2)
                if ins.startswith('lock ') or (ins.startswith('xchg') and '(' in ins):
                    found[int(m.group(1), 16)] = (func, ins)
        cache[path] = found
    return cache[path]


def main():
    profile, tasks = sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
    counts = collections.Counter()
    names, obj, last, skip = {}, None, 0, False
    for line in open(profile):
        m = re.match(r'^(c?ob)=\((\d+)\)(?: (.*))?$', line.strip())
        if m:
            if m.group(3):
                names[m.group(2)] = m.group(3)
            if m.group(1) == 'ob':
                obj = names.get(m.group(2))
            continue
        if line.startswith('calls='):
            skip = True  # the next cost line is the call's inclusive cost
            continue
        # With --dump-instr=yes a cost line is: instruction address, source line, cost.
        m = re.match(r'^(' + ADDR + r')\s+(?:0x[0-9a-f]+|[+-]?\d+|\*)\s+(\d+)', line)
        if not m:
            continue
        a = m.group(1)
        if a.startswith('0x'):
            last = int(a, 16)
        elif a[0] in '+-':
            last += int(a)
        if skip:
            skip = False
            continue
        if obj and obj.endswith(OBJECTS):
            hit = locked_addresses(obj).get(last)
            if hit:
                counts[hit] += int(m.group(2))
    total = 0
    for (func, ins), n in counts.most_common():
        print(f'{n / tasks:8.3f}  {func[:90]}  {ins}')
        total += n
    print(f'{total / tasks:8.3f}  locked instructions per task')


if __name__ == '__main__':
    main()
