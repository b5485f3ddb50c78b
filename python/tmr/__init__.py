"""tmr from Python: runtimes, kernel plug-ins, NumPy run arguments and Python orchestrations.

    import numpy as np, tmr
    rt = tmr.Runtime(platform="threads", clusters=4, scheduler_threads=2)
    plugin = rt.load_plugin("libmy_kernels.so")        # registers its kernels
    x = np.arange(1024, dtype=np.float32); y = np.zeros_like(x)
    result = rt.run(plugin, [x, tmr.out(y), 2.5])       # arrays in argument order, then scalars
    print(result.stats.wall_us)

Arrays are passed without a copy when they are C-contiguous (outputs must also be writable;
otherwise a contiguous copy is made and copied back). NumPy dtypes map to tmr's: float32 f32,
float16 f16, int32 i32, int8 i8, uint8 u8; bf16 travels as its uint16 bit pattern in a
`BF16Array` (make one with tmr.bf16(values)). Python floats become f32 scalars, ints i64 (use
numpy.float64 / numpy.int32 ... for other widths). A failed run raises tmr.Error with the error
`code`, `code_name` and `message` (pass check=False to get the failed RunResult instead).
"""

import numpy as _np

from ._tmr import (  # noqa: F401  (re-exported)
    Args,
    DualSlotPolicy,
    Error,
    KernelArgs,
    Orchestrator,
    OrchestrationArgs,
    Plugin,
    RingConfig,
    RunResult,
    RunStats,
    RuntimeConfig,
    SimConfig,
    SimCostModel,
    Tensor,
    Trace,
    error_code_name,
)
from . import _tmr

__all__ = [
    "Args", "BF16Array", "Error", "Plugin", "Runtime", "RuntimeConfig", "RunResult", "RunStats",
    "SimCostModel", "Tensor", "bf16", "bf16_to_f32", "f32_to_bf16_bits", "inout", "make_config",
    "out", "scope", "tmr_dtype",
]


# ------------------------------------------------------------------------------------ bf16

class BF16Array(_np.ndarray):
    """bfloat16 values held as their uint16 bit patterns (NumPy has no bf16 type)."""

    def to_f32(self):
        return bf16_to_f32(_np.asarray(self))


def f32_to_bf16_bits(values):
    """Rounds float32 values to bf16 (nearest even; NaN stays a quiet NaN) -> uint16 bits."""
    bits = _np.asarray(values, dtype=_np.float32).view(_np.uint32)
    nan = (bits & 0x7F800000) == 0x7F800000
    nan &= (bits & 0x007FFFFF) != 0
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(_np.uint16)
    quiet = ((bits >> 16) | 0x0040).astype(_np.uint16)
    return _np.where(nan, quiet, rounded).astype(_np.uint16)


def bf16(values):
    """A BF16Array of `values` (any float array-like), rounded to nearest even."""
    return f32_to_bf16_bits(values).view(BF16Array)


def bf16_to_f32(bits):
    """float32 values of bf16 bit patterns (a BF16Array or a uint16 array)."""
    bits = _np.asarray(bits, dtype=_np.uint16)
    widened = _np.ascontiguousarray(bits.astype(_np.uint32) << _np.uint32(16), _np.uint32).reshape(-1)
    return widened.view(_np.float32).reshape(bits.shape)


_NUMPY_TO_TMR = {
    _np.dtype(_np.float32): "f32",
    _np.dtype(_np.float16): "f16",
    _np.dtype(_np.int32): "i32",
    _np.dtype(_np.int8): "i8",
    _np.dtype(_np.uint8): "u8",
}


def tmr_dtype(array):
    """tmr's dtype name for a NumPy array; raises tmr.Error for one tmr has no type for."""
    if isinstance(array, BF16Array):
        return "bf16"
    name = _NUMPY_TO_TMR.get(_np.asarray(array).dtype)
    if name is None:
        _tmr.raise_error(5, "NumPy dtype %s has no tmr dtype; use float32, float16, int32, int8, "
                            "uint8, or tmr.bf16(values) for bf16" % _np.asarray(array).dtype)
    return name


# ------------------------------------------------------------------------------------ arguments

class _Tagged:
    __slots__ = ("array", "direction")

    def __init__(self, array, direction):
        self.array = array
        self.direction = direction


def input(array):  # noqa: A001  (the tag reads as a word)
    """Marks an array as an input (the default for a bare array)."""
    return _Tagged(array, "in")


def out(array):
    """Marks an array as an output: the run writes it (its contents are not read)."""
    return _Tagged(array, "out")


def inout(array):
    """Marks an array as read and written by the run."""
    return _Tagged(array, "inout")


def _scalar_bits(value):
    if isinstance(value, (bool, _np.bool_)):
        return int(bool(value))
    if isinstance(value, _np.floating):
        if value.dtype == _np.float64:
            return int(_np.array(value, dtype=_np.float64).view(_np.uint64))
        return int(_np.array(value, dtype=_np.float32).view(_np.uint32))
    if isinstance(value, float):
        return int(_np.array(value, dtype=_np.float32).view(_np.uint32))
    if isinstance(value, _np.integer):
        width = value.dtype.itemsize
        unsigned = {1: _np.uint8, 2: _np.uint16, 4: _np.uint32, 8: _np.uint64}[width]
        return int(_np.array(value).view(unsigned))
    if isinstance(value, int):
        return int(_np.array(value, dtype=_np.int64).view(_np.uint64))
    _tmr.raise_error(5, "run argument %r is neither an array nor a scalar (float, int, NumPy "
                        "scalar)" % (value,))


def _marshal(arguments):
    """(tensors for _tmr, scalars as bits, copy-backs to do after the run)."""
    tensors, scalars, copy_back = [], [], []
    for argument in arguments:
        direction = "in"
        if isinstance(argument, _Tagged):
            direction, argument = argument.direction, argument.array
        if not isinstance(argument, _np.ndarray):
            if direction != "in":
                _tmr.raise_error(5, "only arrays can be outputs; got %r" % (argument,))
            scalars.append(_scalar_bits(argument))
            continue
        if scalars:
            _tmr.raise_error(5, "tensors come before scalars in a run's arguments")
        dtype = tmr_dtype(argument)
        plain = argument.view(_np.ndarray) if isinstance(argument, BF16Array) else argument
        usable = plain.flags.c_contiguous and (direction == "in" or plain.flags.writeable)
        passed = plain if usable else _np.ascontiguousarray(plain).copy()
        if not usable and direction != "in":
            copy_back.append((plain, passed))
        tensors.append((passed, dtype, direction))
    return tensors, scalars, copy_back


# ------------------------------------------------------------------------------------ runtime

def make_config(platform="threads", clusters=None, scheduler_threads=None, record_events=False,
                cost_model=None, timing_only=False, env=False, **fields):
    """A RuntimeConfig. Keyword arguments name RuntimeConfig fields (ring=RingConfig(...),
    dual_slot=..., spin_before_park=..., tensor_wait_timeout_s=..., stall_timeout_s=..., sim=...);
    cost_model is a JSON file for the sim cost model; timing_only=True runs every task without its
    kernel body (threads and sim); env=True applies TMR_* variables first."""
    config = RuntimeConfig()
    if env:
        config.apply_env()
    config.platform = platform
    if clusters is not None:
        config.clusters = clusters
        if scheduler_threads is None:
            config.scheduler_threads = min(config.scheduler_threads, clusters)
    if scheduler_threads is not None:
        config.scheduler_threads = scheduler_threads
    config.record_events = record_events
    for name, value in fields.items():
        if not hasattr(config, name):
            _tmr.raise_error(12, "RuntimeConfig has no field '%s'" % name)
        setattr(config, name, value)
    if timing_only:
        config.timing_only = True  # both platforms: every task is scheduled, no kernel body runs
    if cost_model is not None:
        sim = config.sim
        sim.costs.apply_json_file(cost_model)
        config.sim = sim
    config.validate()
    return config


class Runtime:
    """A tmr runtime: its worker and scheduler threads live as long as this object."""

    def __init__(self, config=None, **kwargs):
        if config is None:
            config = make_config(**kwargs)
        elif kwargs:
            _tmr.raise_error(12, "pass either a RuntimeConfig or keyword fields, not both")
        self._runtime = _tmr.Runtime(config)
        self._plugins = []

    @property
    def config(self):
        return self._runtime.config

    def kernel_names(self):
        return self._runtime.kernel_names()

    def kernel_id(self, name):
        return self._runtime.kernel_id(name)

    def load_plugin(self, path):
        """Loads a plug-in shared library and registers its kernels; returns the Plugin."""
        plugin = Plugin.load(str(path))
        self._runtime.register_plugin(plugin)
        self._plugins.append(plugin)
        return plugin

    def add_kernel(self, name, core_type, fn):
        """Registers a Python kernel fn(KernelArgs) for 'aic' or 'aiv' cores; returns its id.
        It runs on the runtime's core threads, one at a time (it holds the GIL)."""
        return self._runtime.add_kernel(name, core_type, fn)

    def run(self, orchestration, arguments=(), check=True):
        """Runs a plug-in's orchestration (a Plugin) or a Python function fn(Orchestrator,
        OrchestrationArgs) on `arguments`: arrays (bare = input, tmr.out(a), tmr.inout(a)) in
        argument order, then scalars. Returns a RunResult; raises tmr.Error on failure unless
        check=False."""
        tensors, scalars, copy_back = _marshal(arguments)
        if isinstance(orchestration, Plugin):
            result = self._runtime.run_plugin(orchestration, tensors, scalars)
        elif callable(orchestration):
            result = self._runtime.run_python(orchestration, tensors, scalars)
        else:
            _tmr.raise_error(5, "run needs a Plugin or a Python function (Orchestrator, args)")
        if result.ok:
            for target, source in copy_back:
                target[...] = source
        elif check:
            _tmr.raise_error(result.code, result.message)
        return result


class scope:
    """`with tmr.scope(o):` opens a scope in a Python orchestration and closes it on exit."""

    def __init__(self, orchestrator):
        self._orchestrator = orchestrator

    def __enter__(self):
        self._orchestrator.scope_begin()
        return self._orchestrator

    def __exit__(self, *exc):
        self._orchestrator.scope_end()
        return False
