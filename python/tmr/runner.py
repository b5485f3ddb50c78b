"""`python3 -m tmr run`: a user's kernels (a plug-in .so, or a folder of C++ sources built
against this tmr) checked against a golden.py, printing what `tmr run` prints.

golden.py defines:
  ALL_CASES      {case name: params dict}; DEFAULT_CASE names the case run by default
  generate_inputs(params) -> [(name, value), ...] in the orchestration's argument order: NumPy
                 arrays (tmr.bf16(...) for bf16) are tensors, then Python/NumPy scalars
  __outputs__    names of the arrays the run writes (optional __inouts__: read and written)
  compute_golden(tensors, params)  fills the expected outputs in `tensors` (name -> array copy),
                 or returns {name: expected}
  RTOL, ATOL     tolerances: |actual - expected| <= ATOL + RTOL * |expected|
"""

import argparse
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

import tmr

EXIT_PASS, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    pass


# ------------------------------------------------------------------------------------ kernels

def _newest_mtime(paths):
    return max((p.stat().st_mtime for p in paths), default=0.0)


def build_kernel_folder(folder, out=sys.stdout):
    """Compiles every .cpp under `folder` into one plug-in against this tmr's headers and
    library; rebuilt only when a source or header is newer. Returns the .so path."""
    from . import _paths
    folder = Path(folder).resolve()
    build_dir = folder / ".tmr-build"
    sources = sorted(p for p in folder.rglob("*.cpp") if build_dir not in p.parents)
    if not sources:
        raise UsageError("kernel folder '%s' has no .cpp files; put the kernels and the "
                         "orchestration (exporting tmr_plugin_orchestrate) there" % folder)
    headers = [p for p in folder.rglob("*.h*") if build_dir not in p.parents]
    plugin = build_dir / "libtmr_user_plugin.so"
    if plugin.exists() and plugin.stat().st_mtime >= _newest_mtime(sources + headers):
        return plugin
    build_dir.mkdir(exist_ok=True)
    compiler = os.environ.get("CXX", "c++")
    command = [compiler, "-std=c++20", "-O2", "-fPIC", "-shared", "-I" + _paths.INCLUDE_DIR,
               "-I" + str(folder)] + [str(s) for s in sources] + [
        "-L" + _paths.LIBRARY_DIR, "-Wl,-rpath," + _paths.LIBRARY_DIR, "-ltmr",
        "-o", str(plugin)]
    print("building %s from %d source(s) in %s" % (plugin.name, len(sources), folder), file=out)
    completed = subprocess.run(command, capture_output=True, text=True)
    if completed.returncode != 0:
        raise UsageError("building the kernel folder failed:\n  %s\n%s" %
                         (" ".join(command), completed.stderr.strip()))
    return plugin


def resolve_kernels(kernels, out=sys.stdout):
    path = Path(kernels)
    if path.is_dir():
        return build_kernel_folder(path, out)
    if path.is_file():
        return path
    raise UsageError("kernels '%s' is neither a plug-in .so nor a folder of sources" % kernels)


# ------------------------------------------------------------------------------------ golden.py

def load_golden(path):
    path = Path(path)
    if not path.is_file():
        raise UsageError("golden file '%s' does not exist" % path)
    spec = importlib.util.spec_from_file_location("tmr_golden_" + path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent.resolve()))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.pop(0)
    for name in ("generate_inputs", "compute_golden"):
        if not callable(getattr(module, name, None)):
            raise UsageError("%s does not define %s()" % (path, name))
    if not getattr(module, "__outputs__", None):
        raise UsageError("%s does not list its outputs in __outputs__" % path)
    return module


def golden_cases(golden):
    cases = getattr(golden, "ALL_CASES", None) or {"Default": getattr(golden, "PARAMS", {})}
    default = getattr(golden, "DEFAULT_CASE", None) or next(iter(cases))
    if default not in cases:
        raise UsageError("DEFAULT_CASE '%s' is not in ALL_CASES (%s)" %
                         (default, ", ".join(cases)))
    return cases, default


def select_cases(cases, default, case_name, run_all):
    if run_all:
        return list(cases)
    if case_name:
        if case_name not in cases:
            raise UsageError("no case '%s'; the cases are: %s" % (case_name, ", ".join(cases)))
        return [case_name]
    return [default]


def describe(params):
    return " ".join("%s=%s" % (k, v) for k, v in params.items()) or "(no parameters)"


# ------------------------------------------------------------------------------------ checks

def as_float(array):
    if isinstance(array, tmr.BF16Array):
        return tmr.bf16_to_f32(array).astype(np.float64)
    return np.asarray(array).astype(np.float64)


def compare(name, actual, expected, rtol, atol):
    """The same numbers `tmr run` prints: mismatches, largest errors, first mismatch."""
    a = as_float(actual).ravel()
    e = as_float(expected).ravel()
    if a.shape != e.shape:
        raise UsageError("golden '%s' has %d elements, the output %d" % (name, e.size, a.size))
    diff = np.abs(a - e)
    bad = ~(diff <= atol + rtol * np.abs(e))  # NaN counts as a mismatch
    nonzero = e != 0
    rel = diff[nonzero] / np.abs(e[nonzero])
    check = {
        "name": name, "elements": int(a.size), "mismatched": int(bad.sum()),
        "max_abs": float(np.nanmax(diff)) if a.size else 0.0,
        "max_rel": float(np.nanmax(rel)) if rel.size else 0.0, "atol": atol, "rtol": rtol,
    }
    if check["mismatched"]:
        first = int(np.argmax(bad))
        check.update(first=first, first_actual=float(a[first]), first_expected=float(e[first]))
    return check


def print_check(check, out):
    out.write("  golden %-10s %s: %d/%d mismatched, max abs err %.3g, max rel err %.3g "
              "(atol %g, rtol %g)\n" % (
                  check["name"], "FAIL" if check["mismatched"] else "PASS", check["mismatched"],
                  check["elements"], check["max_abs"], check["max_rel"], check["atol"],
                  check["rtol"]))
    if check["mismatched"]:
        out.write("    first mismatch at flat index %d: got %.9g, expected %.9g\n" %
                  (check["first"], check["first_actual"], check["first_expected"]))


def trimmed(values):
    """Mean without the lowest and highest tenth (at least one each way from 3 values on)."""
    values = sorted(values)
    drop = 0 if len(values) < 3 else max(1, len(values) // 10)
    kept = values[drop:len(values) - drop]
    return sum(kept) / len(kept), len(kept)


def print_row(out, label, elapsed, orch, sched):
    out.write("  %-14s %12.1f %12.1f %12.1f\n" % (label, elapsed, orch, sched))


# ------------------------------------------------------------------------------------ one case

def run_case(runtime, plugin, golden, name, params, options, out):
    out.write("\n=== %s / %s: %s ===\n" % (options.example, name, describe(params)))
    named = list(golden.generate_inputs(params))
    outputs = set(golden.__outputs__)
    inouts = set(getattr(golden, "__inouts__", ()))
    missing = (outputs | inouts) - {n for n, _ in named}
    if missing:
        raise UsageError("__outputs__/__inouts__ name %s, which generate_inputs does not return" %
                         ", ".join(sorted(missing)))
    arrays = {n: v for n, v in named if isinstance(v, np.ndarray)}
    initial = {n: arrays[n].copy() for n in outputs | inouts}
    arguments = []
    for n, v in named:
        if n in outputs:
            arguments.append(tmr.out(v))
        elif n in inouts:
            arguments.append(tmr.inout(v))
        else:
            arguments.append(v)

    expected = None
    if not options.skip_golden:
        copies = {n: (v.copy() if isinstance(v, np.ndarray) else v) for n, v in named}
        returned = golden.compute_golden(copies, params)
        source = returned if isinstance(returned, dict) else copies
        expected = {n: source[n] for n in sorted(outputs | inouts)}
    rtol = float(getattr(golden, "RTOL", 1e-5))
    atol = float(getattr(golden, "ATOL", 1e-5))

    timings, failed_rounds, shown_checks, error = [], 0, None, None
    for round_index in range(options.rounds):
        for n in initial:
            arrays[n][...] = initial[n]
        result = runtime.run(plugin, arguments, check=False)
        if not result.ok:
            error = result.status_text
            break
        stats = result.stats
        if round_index == 0:
            out.write("tasks submitted: %d (%d hidden alloc, %d kernel tasks)\n" % (
                stats.tasks_submitted, stats.inline_tasks,
                stats.tasks_submitted - stats.inline_tasks))
            out.write("  %-14s %12s %12s %12s\n" % ("round", "elapsed_us", "orch_us", "sched_us"))
            write_profile(result, options, name, out)
        timings.append((stats.wall_us, stats.orchestration_us, stats.scheduler_us))
        print_row(out, str(round_index + 1), *timings[-1])
        if expected is None:
            continue
        checks = [compare(n, arrays[n], expected[n], rtol, atol) for n in expected]
        if any(c["mismatched"] for c in checks):
            if failed_rounds == 0:
                shown_checks = checks
            failed_rounds += 1
        elif failed_rounds == 0:
            shown_checks = checks

    if timings:
        columns = list(zip(*timings))
        print_row(out, "mean", *(sum(c) / len(c) for c in columns))
        means = [trimmed(c) for c in columns]
        print_row(out, "trimmed(%d/%d)" % (means[0][1], len(timings)), *(m for m, _ in means))
    if error is not None:
        out.write("  ERROR %s\n  result: FAIL (runtime error)\n" % error)
        return False
    if expected is None:
        out.write("  golden: skipped (--skip-golden)\n")
        return True
    for check in shown_checks:
        print_check(check, out)
    if failed_rounds:
        out.write("  result: FAIL (%d of %d rounds did not match the golden)\n" %
                  (failed_rounds, len(timings)))
        return False
    out.write("  result: PASS\n")
    return True


def profile_path(path, case, per_case):
    if not per_case:
        return path
    p = Path(path)
    return str(p.with_name("%s.%s%s" % (p.stem, case, p.suffix)))


def write_profile(result, options, case, out):
    trace = result.trace
    if trace is None:
        return
    for path, what, write in ((options.trace, "trace", trace.write_trace),
                              (options.swimlane, "swimlane", trace.write_swimlane),
                              (options.graph, "graph", trace.write_graph)):
        if path:
            target = profile_path(path, case, options.per_case)
            write(target)
            out.write("  %s: %s\n" % (what, target))


# ------------------------------------------------------------------------------------ command

def parser():
    p = argparse.ArgumentParser(prog="python3 -m tmr run",
                                description="Run a user's kernels against a golden.py")
    p.add_argument("-k", "--kernels", required=True,
                   help="a plug-in .so, or a folder of C++ sources (kernels + orchestration)")
    p.add_argument("-g", "--golden", required=True, help="the golden.py file")
    p.add_argument("-p", "--platform", choices=("threads", "sim"), default="threads")
    p.add_argument("-n", "--rounds", type=int, default=1, help="runs per case (default 1)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--case", help="run only this case of ALL_CASES")
    which.add_argument("--all", action="store_true", help="run every case of ALL_CASES")
    p.add_argument("--skip-golden", action="store_true", help="do not check against the golden")
    p.add_argument("--clusters", type=int, help="clusters (1 AIC + 2 AIV each)")
    p.add_argument("--sched-threads", type=int, help="scheduler threads")
    p.add_argument("--cost-model", help="with -p sim: a JSON file overriding the cost model")
    p.add_argument("--trace", help="write the first round's Chrome/Perfetto trace here")
    p.add_argument("--swimlane", help="write the first round's SVG swimlane here")
    p.add_argument("--graph", help="write the first round's dependency graph (DOT) here")
    return p


def run_command(argv, out=sys.stdout, err=sys.stderr):
    options = parser().parse_args(argv)
    if options.rounds < 1:
        err.write("tmr run: --rounds must be at least 1\n")
        return EXIT_USAGE
    if options.cost_model and options.platform != "sim":
        err.write("tmr run: --cost-model needs --platform sim\n")
        return EXIT_USAGE
    try:
        golden = load_golden(options.golden)
        cases, default = golden_cases(golden)
        selected = select_cases(cases, default, options.case, options.all)
        plugin_path = resolve_kernels(options.kernels, out)
        options.example = Path(options.golden).resolve().parent.name
        options.per_case = len(selected) > 1
        profiling = bool(options.trace or options.swimlane or options.graph)
        config = tmr.make_config(platform=options.platform, clusters=options.clusters,
                                 scheduler_threads=options.sched_threads,
                                 record_events=profiling, cost_model=options.cost_model, env=True)
        runtime = tmr.Runtime(config)
        plugin = runtime.load_plugin(plugin_path)
    except (UsageError, tmr.Error) as e:
        err.write("tmr run: %s\n" % e)
        return EXIT_USAGE

    out.write("tmr run %s: platform %s, %d clusters (%d AIC + %d AIV), %d scheduler threads, "
              "%d %s%s\n" % (options.example, config.platform, config.clusters, config.clusters,
                             2 * config.clusters, config.scheduler_threads, options.rounds,
                             "round" if options.rounds == 1 else "rounds",
                             ", golden check skipped" if options.skip_golden else ""))
    results = []
    for name in selected:
        try:
            passed = run_case(runtime, plugin, golden, name, cases[name], options, out)
        except UsageError as e:
            out.write("  ERROR %s\n  result: FAIL\n" % e)
            passed = False
        results.append((name, passed))
    failed = [n for n, ok in results if not ok]
    out.write("\n%d/%d cases passed%s\n" % (len(results) - len(failed), len(results),
                                           "; FAILED: " + ", ".join(failed) if failed else ""))
    return EXIT_FAIL if failed else EXIT_PASS


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] != "run":
        sys.stderr.write("usage: python3 -m tmr run -k KERNELS -g golden.py [-p threads|sim] "
                         "[-n ROUNDS] [--case NAME | --all] [--skip-golden] [--trace FILE] "
                         "[--swimlane FILE] [--graph FILE]\n")
        return EXIT_USAGE
    return run_command(argv[1:])
