#!/bin/bash
# Interleaved A/B of BM_SliceWrites (docs/performance.md): plain loop vs parallel_for, 4 and 2
# arguments, alternating, N rounds; prints "parallel_for/args cpu_ns_per_task" per run.
B=${B:-build/release/bench/micro/tmr_bench_micro}  # run from the repository root
N=${1:-7}
for r in $(seq $N); do
  for cfg in "0/args:4" "1/args:4" "0/args:2" "1/args:2"; do
    v=$(taskset -c 0,1 $B --benchmark_filter="BM_SliceWrites/parallel_for:${cfg}/" --benchmark_min_time=0.3 2>/dev/null | grep -o "cpu_ns_per_task=[0-9.k]*" | sed 's/cpu_ns_per_task=//')
    echo "$cfg $v"
  done
done
