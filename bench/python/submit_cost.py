"""What a submit costs from a Python orchestration, against the same graph submitted by the C++
plug-in orchestration, in the same process and runtime (A vs B, alternating, medians).

    PYTHONPATH=build/release/python /usr/bin/python3 bench/python/submit_cost.py \
        build/release/tests/libtmr_scale_plugin.so [tiles] [repeats]

Graph (the scale plug-in's): per 64-element tile one scope with two AIV tasks, the first with a
fresh `out` tensor, the second writing a view of y. Prints orchestration microseconds per task.
"""
import statistics
import sys

import numpy as np

import tmr


def main():
    plugin_path = sys.argv[1]
    tiles = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
    repeats = int(sys.argv[3]) if len(sys.argv) > 3 else 7
    runtime = tmr.Runtime(platform="threads", clusters=4, scheduler_threads=2)
    plugin = runtime.load_plugin(plugin_path)
    kernel = runtime.kernel_id("scale_plugin.scale")
    x = np.ones(64 * tiles, dtype=np.float32)
    y = np.zeros_like(x)

    def python_orchestration(o, a):
        src, dst = a.tensor(0), a.tensor(1)
        factor = a.scalar_f32(0)
        for start in range(0, 64 * tiles, 64):
            o.scope_begin()
            (tmp,) = o.submit_aiv(kernel, tmr.Args().input(src.view([64], [start]))
                                  .out([64], "f32").scalar(factor))
            o.submit_aiv(kernel, tmr.Args().input(tmp).out_existing(dst.view([64], [start]))
                         .scalar(1.0))
            o.scope_end()

    per_task = {"C++ plug-in": [], "Python": []}
    for _ in range(repeats):
        for name, orchestration in (("C++ plug-in", plugin), ("Python", python_orchestration)):
            result = runtime.run(orchestration, [x, tmr.out(y), 2.0])
            assert result.stats.tasks_submitted == 2 * tiles
            per_task[name].append(result.stats.orchestration_us / (2 * tiles))
    cpp = statistics.median(per_task["C++ plug-in"])
    python = statistics.median(per_task["Python"])
    print("tasks per run: %d, runs per side: %d" % (2 * tiles, repeats))
    print("C++ plug-in orchestration: %.3f us per task (median)" % cpp)
    print("Python orchestration:      %.3f us per task (median)" % python)
    print("ratio Python / C++:        %.1fx" % (python / cpp))


if __name__ == "__main__":
    main()
