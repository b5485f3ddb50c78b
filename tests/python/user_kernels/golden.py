"""Golden of the user-style AXPY folder: z = a * x + y."""
import numpy as np

ALL_CASES = {
    "Small": {"n": 1024, "tile": 128, "a": 2.0},
    "Wide": {"n": 8192, "tile": 512, "a": -0.5},
}
DEFAULT_CASE = "Small"
RTOL = 1e-6
ATOL = 1e-6
__outputs__ = ["z"]


def generate_inputs(params):
    rng = np.random.default_rng(7)
    n = params["n"]
    return [
        ("x", rng.standard_normal(n).astype(np.float32)),
        ("y", rng.standard_normal(n).astype(np.float32)),
        ("z", np.zeros(n, dtype=np.float32)),
        ("a", np.float32(params["a"])),
        ("tile", params["tile"]),
    ]


def compute_golden(tensors, params):
    tensors["z"][:] = tensors["a"] * tensors["x"] + tensors["y"]
