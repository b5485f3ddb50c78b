"""Deliberately disagrees with the kernels: expects z = a * x + y + 1 on the first 100 elements."""
import numpy as np

from golden import ALL_CASES, DEFAULT_CASE, RTOL, ATOL, __outputs__, generate_inputs  # noqa: F401


def compute_golden(tensors, params):
    tensors["z"][:] = tensors["a"] * tensors["x"] + tensors["y"]
    tensors["z"][:100] += 1.0
