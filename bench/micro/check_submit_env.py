"""BM_Submit's own settings change what it does (run by CTest: bench.submit_env).

TMR_BENCH_GATE=poll (default) makes the gate task look every 50 us, =block makes it sleep until
opened (no looks); TMR_BENCH_THREADS=1 reports what the process's other threads ran during the
timed loops. With the blocking gate nothing of the runtime runs then (its idle cores and
scheduler thread are parked), and the counters do not count the orchestrator itself. Anything
else is refused with the setting named. Usage: check_submit_env.py <tmr_bench_micro>."""
import json
import os
import subprocess
import sys

BENCH = sys.argv[1]
CASE = "^BM_Submit/args:1/live_views:16/"
MEASURED = 4096  # submits a run (bench_submit.cpp's kMeasured)


def run(gate=None, threads=None):
    env = dict(os.environ)
    for name, value in (("TMR_BENCH_GATE", gate), ("TMR_BENCH_THREADS", threads)):
        env.pop(name, None)
        if value is not None:
            env[name] = value
    done = subprocess.run([BENCH, "--benchmark_filter=" + CASE, "--benchmark_format=json"],
                          env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    (bench,) = json.loads(done.stdout)["benchmarks"]
    return bench


for gate in (None, "poll", "block"):
    bench = run(gate, "1")
    assert "error_message" not in bench, bench
    polls = bench["gate_polls_per_run"]
    assert (polls == 0) if gate == "block" else (polls > 0), (gate, polls)
    others_ns = bench["others_cpu_ns_per_run"]
    loop_ns = bench["cpu_ns_per_submit"] * MEASURED
    # Not the orchestrator's own time (that is the whole loop's CPU).
    assert 0 <= others_ns < 0.5 * loop_ns, (gate, others_ns, loop_ns)
    if gate == "block":
        # Nobody wakes: at most a rare 50 ms re-check of a parked thread falls into a loop.
        assert bench["others_slices_per_run"] < 0.2, bench

plain = run()
assert "others_cpu_ns_per_run" not in plain and plain["gate_polls_per_run"] > 0, plain
for gate, threads, name in (("blok", None, "TMR_BENCH_GATE"), (None, "yes", "TMR_BENCH_THREADS")):
    bad = run(gate, threads)
    assert bad.get("error_occurred") and name in bad.get("error_message", ""), bad
print("bench.submit_env: poll and block gates, the thread probe and the refused values checked")
