"""The tmr Python module: configuration, plug-ins, NumPy arguments, dtypes, Python
orchestrations and kernels, results, trace outputs and error mapping."""
import numpy as np
import pytest

import tmr

PLATFORMS = ["threads", "sim"]


def small_runtime(platform="threads", **fields):
    return tmr.Runtime(platform=platform, clusters=2, scheduler_threads=1, **fields)


def test_every_config_field_round_trips():
    config = tmr.RuntimeConfig()
    config.platform = "sim"
    config.clusters = 3
    config.scheduler_threads = 2
    ring = tmr.RingConfig()
    ring.task_window, ring.heap_bytes, ring.dep_pool = 256, 1 << 20, 1024
    config.ring = ring
    dual = tmr.DualSlotPolicy()
    assert dual.mix is None  # unset: the platform decides (staged on the sim, not on threads)
    dual.aic, dual.aiv, dual.mix, dual.mix_take_back = False, True, True, False
    config.dual_slot = dual
    config.spin_before_park = 4
    config.tensor_wait_timeout_s = 5.0
    config.stall_timeout_s = 9.0
    config.record_events = True
    config.timing_only = True
    sim = config.sim
    sim.chip = "a2a3"
    sim.timing_only = True
    sim.costs.submit_ns = 123.0
    sim.costs.kernel_ns = {"k": 42.0}
    config.sim = sim
    config.validate()
    assert (config.platform, config.clusters, config.scheduler_threads) == ("sim", 3, 2)
    assert (config.ring.task_window, config.ring.heap_bytes, config.ring.dep_pool) == (
        256, 1 << 20, 1024)
    assert (config.dual_slot.aic, config.dual_slot.aiv, config.dual_slot.mix,
            config.dual_slot.mix_take_back) == (False, True, True, False)
    assert config.spin_before_park == 4
    assert config.tensor_wait_timeout_s == 5.0 and config.stall_timeout_s == 9.0
    assert config.record_events and config.timing_only
    assert config.sim.timing_only and config.sim.costs.submit_ns == 123.0
    assert config.sim.costs.kernel_ns == {"k": 42.0}
    runtime = tmr.Runtime(config)
    assert runtime.config.clusters == 3


def test_cost_model_reads_json_and_names_bad_keys(tmp_path):
    costs = tmr.SimCostModel()
    costs.apply_json_text('{"doorbell_ns": 7, "kernel_ns": {"qk": 900}}')
    assert costs.doorbell_ns == 7 and costs.kernel_ns == {"qk": 900.0}
    with pytest.raises(tmr.Error) as caught:
        costs.apply_json_text('{"no_such_cost": 1}', "test.json")
    assert caught.value.code == 12 and "no_such_cost" in caught.value.message
    path = tmp_path / "costs.json"
    path.write_text('{"pickup_ns": 11}')
    config = tmr.make_config(platform="sim", cost_model=str(path), clusters=1)
    assert config.sim.costs.pickup_ns == 11


def test_cost_model_binds_every_cost_a_file_can_set():
    names = tmr.SimCostModel.field_names
    # The parallel_for charges and the jitter are among them, not only the per-step costs.
    for name in ("submit_ns", "analysed_submit_ratio", "wide_submit_ratio", "pattern_submit_ratio",
                 "loop_setup_ratio", "kept_setup_ratio", "quiet_read_ratio", "tile_ns",
                 "kernel_jitter"):
        assert name in names
    costs = tmr.SimCostModel()
    for i, name in enumerate(names):
        value = 0.25 + i / 256  # distinct, below 1 (kernel_jitter's limit), exact in binary
        costs.apply_json_text('{"%s": %r}' % (name, value))
        assert getattr(costs, name) == value, name
        setattr(costs, name, value + 1 if name != "kernel_jitter" else value / 2)
    config = tmr.make_config(platform="sim", clusters=1)
    config.sim.costs = costs
    assert config.sim.costs.wide_submit_ratio == costs.wide_submit_ratio


def test_bad_config_raises_with_code_and_message():
    with pytest.raises(tmr.Error) as caught:
        tmr.Runtime(platform="threads", clusters=0)
    assert caught.value.code == 12
    assert caught.value.code_name == "invalid_config"
    assert "clusters" in caught.value.message
    with pytest.raises(tmr.Error) as caught:
        tmr.make_config(platform="gpu")
    assert "threads" in caught.value.message
    with pytest.raises(tmr.Error, match="no field 'colour'"):
        tmr.make_config(colour=3)


def test_missing_plugin_raises_plugin_error(tmp_path):
    with pytest.raises(tmr.Error) as caught:
        small_runtime().load_plugin(tmp_path / "nope.so")
    assert caught.value.code == 15 and "nope.so" in caught.value.message


@pytest.mark.parametrize("platform", PLATFORMS)
def test_plugin_run_writes_numpy_output(platform, scale_plugin):
    runtime = small_runtime(platform)
    plugin = runtime.load_plugin(scale_plugin)
    assert "scale_plugin.scale" in runtime.kernel_names()
    x = np.arange(1024, dtype=np.float32)
    y = np.zeros_like(x)
    result = runtime.run(plugin, [x, tmr.out(y), 2.5])
    assert result.ok and result.code == 0
    np.testing.assert_array_equal(y, 2.5 * x)
    stats = result.stats
    assert stats.tasks_submitted == 32 and stats.inline_tasks == 0
    assert stats.subtasks_executed == 32
    assert stats.wall_us > 0 and stats.orchestration_us > 0 and stats.scheduler_us >= 0
    assert stats.orchestrator_blocked_us >= 0
    # Ring-room waits are part of the blocked time; a run without them spent none in them.
    assert stats.orchestrator_ring_wait_us <= stats.orchestrator_blocked_us + 1e-6
    if stats.orchestrator_ring_waits == 0:
        assert stats.orchestrator_ring_wait_us == 0 and stats.orchestrator_ring_wait_cpu_us == 0
    assert stats.orchestrator_wait_steps_progress <= stats.orchestrator_wait_steps
    # Placements that found a scheduler thread's step gate held: the sim's steps take no gate.
    assert stats.orchestrator_placements_gate_held >= 0
    if platform == "sim":
        assert stats.orchestrator_placements_gate_held == 0
        assert stats.orchestrator_placement_steps == 0
    # The plugin submits no parallel_for: every loop counter is zero, the reason lists empty.
    assert (stats.loops, stats.loop_iterations, stats.loop_tasks_analysed, stats.loop_fallbacks) == (
        0, 0, 0, 0)
    assert stats.loop_fallback_reasons == [] and stats.loop_template_rejections == []
    assert stats.mix_blocks_taken_back == 0
    assert result.trace is None  # not recording


@pytest.mark.parametrize("platform", PLATFORMS)
def test_timing_only_schedules_every_task_and_runs_no_kernel(platform, scale_plugin):
    # A property of the run on both platforms, not only the sim's (RuntimeConfig.timing_only).
    runtime = tmr.Runtime(tmr.make_config(platform=platform, clusters=2, scheduler_threads=1,
                                          timing_only=True))
    assert runtime.config.timing_only and not runtime.config.sim.timing_only
    plugin = runtime.load_plugin(scale_plugin)
    x = np.arange(1024, dtype=np.float32)
    y = np.full_like(x, -7.0)
    result = runtime.run(plugin, [x, tmr.out(y), 2.5])
    assert result.ok
    assert result.stats.tasks_submitted == 32 and result.stats.subtasks_executed == 32
    np.testing.assert_array_equal(y, np.full_like(x, -7.0))  # no kernel wrote the output


def test_non_contiguous_output_is_copied_back(scale_plugin):
    runtime = small_runtime()
    plugin = runtime.load_plugin(scale_plugin)
    x = np.arange(2048, dtype=np.float32)[::2]  # strided input: passed as a contiguous copy
    backing = np.zeros(2048, dtype=np.float32)
    y = backing[::2]  # strided output: run on a copy, then copied back into the view
    runtime.run(plugin, [x, tmr.out(y), 3.0])
    np.testing.assert_array_equal(backing[::2], 3.0 * x)
    np.testing.assert_array_equal(backing[1::2], 0.0)


def test_failed_run_raises_or_returns_the_status(scale_plugin):
    runtime = small_runtime()
    plugin = runtime.load_plugin(scale_plugin)
    x = np.ones(100, dtype=np.float32)  # not a multiple of the 64-element tile: bad view
    y = np.zeros_like(x)
    with pytest.raises(tmr.Error) as caught:
        runtime.run(plugin, [x, tmr.out(y), 1.0])
    assert caught.value.code == 5  # invalid_args
    result = runtime.run(plugin, [x, tmr.out(y), 1.0], check=False)
    assert not result.ok and result.code_name == "invalid_args" and result.message
    # The runtime stays usable after a failed run.
    x, y = np.ones(64, dtype=np.float32), np.zeros(64, dtype=np.float32)
    assert runtime.run(plugin, [x, tmr.out(y), 2.0]).ok
    np.testing.assert_array_equal(y, 2.0)


def test_bad_arguments_are_named():
    runtime = small_runtime()
    with pytest.raises(tmr.Error, match="float64 has no tmr dtype"):
        runtime.run(lambda o, a: None, [np.zeros(4)])
    with pytest.raises(tmr.Error, match="tensors come before scalars"):
        runtime.run(lambda o, a: None, [1.0, np.zeros(4, dtype=np.float32)])
    with pytest.raises(tmr.Error, match="only arrays can be outputs"):
        runtime.run(lambda o, a: None, [tmr.out(3.0)])


def test_bf16_conversion_rounds_to_nearest_even():
    values = np.array([1.0, 1.00390625, 1.01171875, -2.5, np.inf, 0.0], dtype=np.float32)
    bits = tmr.f32_to_bf16_bits(values)
    # 1 + 2^-8 is a tie: rounds to even (1.0); 1 + 3*2^-8 rounds up to 1 + 2^-6.
    np.testing.assert_array_equal(tmr.bf16_to_f32(bits),
                                  [1.0, 1.0, 1.015625, -2.5, np.inf, 0.0])
    assert np.isnan(tmr.bf16_to_f32(tmr.f32_to_bf16_bits(np.float32(np.nan))))
    assert isinstance(tmr.bf16([1.0]), tmr.BF16Array)


def _copy_kernel(args):
    assert args.tag(0) == "in" and args.tag(1) == "out_existing"
    args.tensor(1)[...] = args.tensor(0)


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("make", [
    lambda v: v.astype(np.float32), lambda v: v.astype(np.float16), lambda v: tmr.bf16(v),
    lambda v: v.astype(np.int32), lambda v: v.astype(np.int8), lambda v: v.astype(np.uint8)],
    ids=["f32", "f16", "bf16", "i32", "i8", "u8"])
def test_dtype_round_trip_through_a_python_kernel(platform, make):
    runtime = small_runtime(platform)
    copy = runtime.add_kernel("copy", "aiv", _copy_kernel)
    source = make(np.arange(48).reshape(6, 8) % 100)
    target = np.zeros_like(source)

    def orchestrate(o, a):
        with tmr.scope(o):
            o.submit_aiv(copy, tmr.Args().input(a.tensor(0)).out_existing(a.tensor(1)))

    runtime.run(orchestrate, [source, tmr.out(target)])
    np.testing.assert_array_equal(target.view(np.ndarray), source.view(np.ndarray))
    assert tmr.tmr_dtype(target) == tmr.tmr_dtype(source)


@pytest.mark.parametrize("platform", PLATFORMS)
def test_python_orchestration_with_alloc_scopes_and_plugin_kernel(platform, scale_plugin):
    runtime = small_runtime(platform, record_events=True)
    runtime.load_plugin(scale_plugin)
    x = np.arange(256, dtype=np.float32)
    y = np.zeros_like(x)

    def orchestrate(o, a):
        src, dst = a.tensor(0), a.tensor(1)
        assert src.shape == [256] and src.dtype == "f32" and a.scalar_f32(0) == 4.0
        for start in range(0, 256, 64):
            with tmr.scope(o):
                assert o.scope_depth == 1
                (scratch,) = o.alloc(tmr.Args().out([64], "f32"))
                o.submit_aiv("scale_plugin.scale", tmr.Args().input(src.view([64], [start]))
                             .out_existing(scratch).scalar(a.scalar_f32(0)))
                o.submit_aiv("scale_plugin.scale", tmr.Args().input(scratch)
                             .out_existing(dst.view([64], [start])).scalar(0.5))

    result = runtime.run(orchestrate, [x, tmr.out(y), 4.0])
    np.testing.assert_array_equal(y, 2.0 * x)
    assert result.stats.tasks_submitted == 12 and result.stats.inline_tasks == 4
    assert result.trace is not None and result.trace.tasks == 12


def test_python_orchestration_errors_keep_their_code():
    runtime = small_runtime()

    def unknown_kernel(o, a):
        o.submit_aiv("no_such_kernel", tmr.Args())

    with pytest.raises(tmr.Error) as caught:
        runtime.run(unknown_kernel)
    assert caught.value.code == 10 and "no_such_kernel" in caught.value.message

    def bad_view(o, a):
        a.tensor(0).view([8], [4])  # past the end: tmr.Error inside Python, code kept

    with pytest.raises(tmr.Error) as caught:
        runtime.run(bad_view, [np.zeros(4, dtype=np.float32)])
    assert caught.value.code == 5

    def python_bug(o, a):
        raise ValueError("boom")

    with pytest.raises(tmr.Error) as caught:
        runtime.run(python_bug)
    assert caught.value.code == 13 and "ValueError: boom" in caught.value.message

    def fatal(o, a):
        o.report_fatal("user says stop")

    with pytest.raises(tmr.Error) as caught:
        runtime.run(fatal)
    assert caught.value.code == 9 and "user says stop" in caught.value.message


def test_python_kernel_exception_is_a_kernel_error():
    runtime = small_runtime()
    failing = runtime.add_kernel("failing", "aic", lambda args: 1 / 0)
    with pytest.raises(tmr.Error) as caught:
        runtime.run(lambda o, a: o.submit_aic(failing, tmr.Args()))
    assert caught.value.code == 14 and "ZeroDivisionError" in caught.value.message


def test_trace_swimlane_and_graph_are_written(tmp_path, scale_plugin):
    runtime = small_runtime(record_events=True)
    plugin = runtime.load_plugin(scale_plugin)
    x = np.ones(128, dtype=np.float32)
    result = runtime.run(plugin, [x, tmr.out(np.zeros_like(x)), 1.0])
    trace = result.trace
    assert trace.tasks == 4 and trace.subtasks == 4
    trace.write_trace(str(tmp_path / "t.json"))
    trace.write_swimlane(str(tmp_path / "s.svg"), "title")
    trace.write_graph(str(tmp_path / "g.dot"))
    assert '"traceEvents"' in (tmp_path / "t.json").read_text()
    assert (tmp_path / "s.svg").read_text().lstrip().startswith("<")
    assert "digraph" in (tmp_path / "g.dot").read_text()
    assert "scale_plugin.scale" in trace.stats_text()
    with pytest.raises(tmr.Error, match="cannot write the trace"):
        trace.write_trace(str(tmp_path / "missing" / "t.json"))


def test_orchestrator_is_unusable_after_its_run():
    runtime = small_runtime()
    kept = []
    runtime.run(lambda o, a: kept.append(o))
    with pytest.raises(tmr.Error, match="finished run"):
        kept[0].scope_begin()


@pytest.mark.parametrize("platform", PLATFORMS)
def test_python_orchestration_blocking_on_python_kernels_does_not_deadlock(platform):
    # A 4-task window: submits wait for Python kernels, which need the GIL the orchestration
    # must have released while it waits.
    ring = tmr.RingConfig()
    ring.task_window = 4
    runtime = small_runtime(platform, ring=ring)
    add_one = runtime.add_kernel("add_one", "aiv", lambda k: k.tensor(0).__iadd__(1))
    counter = np.zeros(8, dtype=np.int32)

    def orchestrate(o, a):
        for _ in range(40):
            with tmr.scope(o):
                o.submit_aiv(add_one, tmr.Args().inout(a.tensor(0)))
        assert o.get_i32(a.tensor(0), [3]) == 40

    result = runtime.run(orchestrate, [tmr.inout(counter)])
    np.testing.assert_array_equal(counter, 40)
    assert result.stats.tasks_submitted == 40
