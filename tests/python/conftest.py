"""Paths the tests need, given by CTest (see tests/python/CMakeLists.txt) through the environment."""
import os
import sys
from pathlib import Path

import pytest

BUILD_PYTHON = os.environ.get("TMR_PYTHON_BUILD_DIR")
if BUILD_PYTHON:
    sys.path.insert(0, BUILD_PYTHON)

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def _required(name):
    value = os.environ.get(name)
    if not value:
        pytest.fail("environment variable %s is not set; run these tests through ctest" % name)
    return value


@pytest.fixture(scope="session")
def scale_plugin():
    return _required("TMR_SCALE_PLUGIN")


@pytest.fixture(scope="session")
def attention_plugin():
    return _required("TMR_ATTENTION_PLUGIN")


@pytest.fixture(scope="session")
def python_env():
    """Environment for `python3 -m tmr` subprocesses: the build's package first on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (BUILD_PYTHON, env.get("PYTHONPATH")) if p)
    return env
