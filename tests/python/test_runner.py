"""`python3 -m tmr run`: paged attention against its golden.py, a user-style kernels folder built
against this tmr, a golden that disagrees, and bad command lines."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import HERE, REPO

ATTENTION_GOLDEN = REPO / "examples" / "paged_attention" / "golden.py"


def run_tmr(env, *arguments, timeout=240):
    completed = subprocess.run([sys.executable, "-m", "tmr", "run", *map(str, arguments)],
                               env=env, capture_output=True, text=True, timeout=timeout)
    return completed.returncode, completed.stdout + completed.stderr


@pytest.mark.parametrize("platform", ["threads", "sim"])
def test_paged_attention_all_cases_pass(platform, attention_plugin, python_env):
    code, output = run_tmr(python_env, "-k", attention_plugin, "-g", ATTENTION_GOLDEN, "-p",
                           platform, "--all", "-n", "2", "--clusters", "4")
    assert code == 0, output
    # Task counts as the reference: per (request, head tile) 1 alloc + 4 tasks per KV block.
    for case, tasks in (("Case1", 13), ("Case2", 33), ("VarSeq2", 22), ("VarSeq4", 68)):
        assert "=== paged_attention / %s:" % case in output
        assert "tasks submitted: %d (" % tasks in output
    assert output.count("result: PASS") == 4
    assert "trimmed(2/2)" in output and "golden out" in output
    assert "4/4 cases passed" in output


def test_paged_attention_writes_profile_outputs(tmp_path, attention_plugin, python_env):
    code, output = run_tmr(python_env, "-k", attention_plugin, "-g", ATTENTION_GOLDEN,
                           "--trace", tmp_path / "t.json", "--swimlane", tmp_path / "s.svg",
                           "--graph", tmp_path / "g.dot", "--clusters", "2")
    assert code == 0, output
    for name in ("t.json", "s.svg", "g.dot"):
        assert (tmp_path / name).stat().st_size > 0


@pytest.fixture
def user_folder(tmp_path):
    folder = tmp_path / "my_kernels"
    shutil.copytree(HERE / "user_kernels", folder)
    return folder


def test_user_kernel_folder_is_built_and_passes(user_folder, python_env):
    code, output = run_tmr(python_env, "-k", user_folder, "-g", user_folder / "golden.py",
                           "--all", "-n", "3", "--clusters", "2")
    assert code == 0, output
    assert "building libtmr_user_plugin.so from 1 source(s)" in output
    assert "tasks submitted: 16 (0 hidden alloc, 16 kernel tasks)" in output  # Small: 8 tiles
    assert "golden z          PASS: 0/1024 mismatched" in output
    assert "2/2 cases passed" in output
    # The second run reuses the build.
    code, output = run_tmr(python_env, "-k", user_folder, "-g", user_folder / "golden.py",
                           "-p", "sim", "--clusters", "2")
    assert code == 0, output
    assert "building" not in output


def test_golden_that_disagrees_fails_with_the_mismatch_count(user_folder, python_env):
    code, output = run_tmr(python_env, "-k", user_folder, "-g", user_folder / "wrong_golden.py",
                           "-n", "2", "--clusters", "2")
    assert code == 1, output
    assert "golden z          FAIL: 100/1024 mismatched" in output
    assert "first mismatch at flat index 0" in output
    assert "result: FAIL (2 of 2 rounds did not match the golden)" in output
    assert "0/1 cases passed; FAILED: Small" in output


def test_skip_golden_passes_without_checking(user_folder, python_env):
    code, output = run_tmr(python_env, "-k", user_folder, "-g", user_folder / "wrong_golden.py",
                           "--skip-golden", "--clusters", "2")
    assert code == 0, output
    assert "golden: skipped" in output


def test_compile_error_is_reported(user_folder, python_env):
    (user_folder / "broken.cpp").write_text("this is not C++\n")
    code, output = run_tmr(python_env, "-k", user_folder, "-g", user_folder / "golden.py")
    assert code == 2 and "building the kernel folder failed" in output


@pytest.mark.parametrize("arguments, message", [
    (["--case", "Nope"], "no case 'Nope'; the cases are: Case1, Case2, VarSeq2, VarSeq4"),
    (["-n", "0"], "--rounds must be at least 1"),
    (["--cost-model", "x.json"], "--cost-model needs --platform sim"),
    (["--case", "Case1", "--all"], "not allowed with argument"),
])
def test_bad_command_lines_exit_2(arguments, message, attention_plugin, python_env):
    code, output = run_tmr(python_env, "-k", attention_plugin, "-g", ATTENTION_GOLDEN, *arguments)
    assert code == 2 and message in output, output


def test_missing_kernels_and_golden(tmp_path, python_env):
    code, output = run_tmr(python_env, "-k", tmp_path / "none.so", "-g", ATTENTION_GOLDEN)
    assert code == 2 and "neither a plug-in .so nor a folder" in output
    code, output = run_tmr(python_env, "-k", tmp_path, "-g", tmp_path / "golden.py")
    assert code == 2 and "does not exist" in output
