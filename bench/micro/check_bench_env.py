"""The slice-write benchmark's own settings change what it does (run by CTest: bench.env).

TMR_BENCH_GATE=poll (default) makes the gate task look every 50 us, =block makes it sleep until
opened (no looks), anything else is refused with the error named; TMR_BENCH_RUNS=<file> appends
one line per run. Usage: check_bench_env.py <tmr_bench_micro> <scratch dir>."""
import json
import os
import subprocess
import sys

BENCH, SCRATCH = sys.argv[1], sys.argv[2]
CASE = "^BM_SliceWrites/parallel_for:1/args:2/"


def run(gate, runs_file=None):
    env = dict(os.environ)
    env.pop("TMR_BENCH_GATE", None)
    env.pop("TMR_BENCH_RUNS", None)
    if gate is not None:
        env["TMR_BENCH_GATE"] = gate
    if runs_file is not None:
        env["TMR_BENCH_RUNS"] = runs_file
    done = subprocess.run([BENCH, "--benchmark_filter=" + CASE, "--benchmark_format=json"],
                          env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    (bench,) = json.loads(done.stdout)["benchmarks"]
    return bench


def run_lines(path, bench):
    # One block a call of the benchmark function (Google Benchmark's estimate calls first): a
    # header with the run count, then one line a run; the last block is the reported one.
    blocks = []
    for line in open(path).read().splitlines():
        if line.startswith("#"):
            assert line.startswith("# analysed=1 args=2 runs="), line
            blocks.append((int(line.rsplit("=", 1)[1]), []))
        else:
            blocks[-1][1].append(line.split())
    assert blocks and blocks[-1][0] == bench["iterations"], (blocks[-1][0], bench["iterations"])
    for runs, rows in blocks:
        assert len(rows) == runs and all(len(r) == 7 for r in rows), rows[:3]
        assert [int(r[0]) for r in rows] == list(range(runs))


os.makedirs(SCRATCH, exist_ok=True)
for gate in (None, "poll", "block"):
    path = os.path.join(SCRATCH, "runs_%s.txt" % gate)
    if os.path.exists(path):
        os.remove(path)
    bench = run(gate, path)
    assert "error_message" not in bench, bench
    assert bench["analysed_share"] > 0.99, bench  # all but the learning iterations
    polls = bench["gate_polls_per_run"]
    # The polling gate looks while the orchestrator submits 16,384 tasks; the blocking one never.
    assert (polls == 0) if gate == "block" else (polls > 0), (gate, polls)
    run_lines(path, bench)

bad = run("blok")
assert bad.get("error_occurred") and "TMR_BENCH_GATE" in bad.get("error_message", ""), bad
print("bench.env: poll and block gates, per-run lines and the refused value checked")
