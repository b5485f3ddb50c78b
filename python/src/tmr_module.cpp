// The `tmr._tmr` extension module: runtimes built from a full RuntimeConfig, kernel plug-ins,
// kernels and orchestrations written in Python, NumPy arrays as run arguments (no copy when
// C-contiguous), RunStats, and the trace exporters. tmr::Error becomes tmr.Error (code, message).
//
// Threads: Runtime.run releases the GIL for the whole run; a Python orchestration or kernel takes
// it back while it executes (kernels run on the runtime's core threads).
#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "tmr/profile/chrome_trace.hpp"
#include "tmr/profile/swimlane_svg.hpp"
#include "tmr/profile/task_graph_dot.hpp"
#include "tmr/profile/trace_stats.hpp"
#include "tmr/sim_cost_fields.hpp"
#include "tmr/tmr.hpp"

namespace py = pybind11;

namespace tmr::python {

namespace {

// ---------------------------------------------------------------- names <-> enums

DType dtype_from_name(const std::string& name) {
  for (const DType t : {DType::f32, DType::f16, DType::bf16, DType::i32, DType::i8, DType::u8}) {
    if (dtype_name(t) == name) return t;
  }
  throw Error(ErrorCode::invalid_args,
              "unknown dtype '" + name + "'; use one of f32, f16, bf16, i32, i8, u8");
}

CoreType core_type_from_name(const std::string& name) {
  if (name == "aic") return CoreType::aic;
  if (name == "aiv") return CoreType::aiv;
  throw Error(ErrorCode::invalid_args, "unknown core type '" + name + "'; use 'aic' or 'aiv'");
}

PlatformKind platform_from_name(const std::string& name) {
  if (name == "threads") return PlatformKind::threads;
  if (name == "sim") return PlatformKind::sim;
  throw Error(ErrorCode::invalid_config, "unknown platform '" + name + "'; use 'threads' or 'sim'");
}

std::string platform_name(PlatformKind kind) {
  return kind == PlatformKind::sim ? "sim" : "threads";
}

RunArgs::Direction direction_from_name(const std::string& name) {
  if (name == "in") return RunArgs::Direction::in;
  if (name == "out") return RunArgs::Direction::out;
  if (name == "inout") return RunArgs::Direction::inout;
  throw Error(ErrorCode::invalid_args,
              "unknown direction '" + name + "'; use 'in', 'out' or 'inout'");
}

// The NumPy element type that holds a tmr dtype (bf16 travels as its uint16 bit pattern).
py::dtype numpy_dtype(DType type) {
  switch (type) {
    case DType::f32:
      return py::dtype::of<float>();
    case DType::f16:
      return py::dtype("float16");
    case DType::bf16:
      return py::dtype::of<std::uint16_t>();
    case DType::i32:
      return py::dtype::of<std::int32_t>();
    case DType::i8:
      return py::dtype::of<std::int8_t>();
    case DType::u8:
      return py::dtype::of<std::uint8_t>();
  }
  return py::dtype::of<std::uint8_t>();
}

Shape shape_from(const std::vector<std::int64_t>& dims) {
  return Shape(dims);
}

std::vector<std::uint32_t> dims_of(const Shape& shape) {
  return {shape.begin(), shape.end()};
}

// A NumPy view (no copy) of a tensor's elements, strided as the tensor is. `owner` keeps the
// memory alive from Python's point of view; the caller guarantees the memory outlives the view.
py::array numpy_view(const Tensor& tensor, py::handle owner) {
  std::vector<py::ssize_t> shape;
  std::vector<py::ssize_t> strides;
  const auto element = static_cast<py::ssize_t>(tensor.element_size());
  for (int d = 0; d < tensor.ndims(); ++d) {
    shape.push_back(tensor.dim(d));
    strides.push_back(static_cast<py::ssize_t>(tensor.stride(d)) * element);
  }
  return py::array(numpy_dtype(tensor.dtype()), shape, strides, tensor.data(), owner);
}

// tmr.Error, set when the module initialises.
py::handle g_error_type;

// Runs `body` with the GIL held and turns a Python exception into a C++ one (the pybind11
// exception must not outlive the GIL, and the runtime catches std::exception at its boundaries).
// A tmr.Error keeps its code; any other exception names where it was raised.
template <class Body>
void with_gil(const char* where, Body&& body) {
  py::gil_scoped_acquire gil;
  try {
    body();
  } catch (py::error_already_set& e) {
    if (g_error_type && e.matches(g_error_type) && py::hasattr(e.value(), "code")) {
      const auto code = static_cast<ErrorCode>(e.value().attr("code").cast<int>());
      const auto message = e.value().attr("message").cast<std::string>();
      throw Error(code, message);
    }
    throw std::runtime_error(std::string(where) + " raised " + e.what());
  }
}

// ---------------------------------------------------------------- trace outputs

struct TraceOutputs {
  std::shared_ptr<const Trace> trace;
  std::shared_ptr<const KernelRegistry> kernels;  // a copy: names outlive the runtime

  template <class Writer>
  void write(const std::string& path, const char* what, Writer&& writer) const {
    std::ofstream file(path, std::ios::binary);
    if (file) writer(file);
    file.close();
    if (!file) {
      throw Error(ErrorCode::invalid_args, std::string("cannot write the ") + what + " to '" +
                                               path +
                                               "'; check that the folder exists and is "
                                               "writable");
    }
  }
};

// ---------------------------------------------------------------- the runtime

struct RunOutcome {
  Status status;
  RunStats stats;
  std::optional<TraceOutputs> trace;
};

class PyRuntime {
 public:
  explicit PyRuntime(const RuntimeConfig& config) : runtime_(std::make_unique<Runtime>(config)) {}

  KernelRegistry& kernels() { return runtime_->kernels(); }
  const RuntimeConfig& config() const { return runtime_->config(); }

  RunOutcome run(const Orchestration& orchestration, const py::list& tensors,
                 const std::vector<std::uint64_t>& scalars) {
    RunArgs args;
    std::vector<py::array> keep;  // the arrays stay referenced while the run reads/writes them
    for (const py::handle item : tensors) {
      const auto entry = item.cast<py::tuple>();
      if (entry.size() != 3) {
        throw Error(ErrorCode::invalid_args, "a run tensor is a tuple (array, dtype, direction)");
      }
      auto array = entry[0].cast<py::array>();
      const DType dtype = dtype_from_name(entry[1].cast<std::string>());
      const RunArgs::Direction direction = direction_from_name(entry[2].cast<std::string>());
      check_array(array, dtype, direction, keep.size());
      std::vector<std::int64_t> dims(array.shape(), array.shape() + array.ndim());
      const Shape shape = shape_from(dims);
      switch (direction) {
        case RunArgs::Direction::in:
          args.input(array.data(), shape, dtype);
          break;
        case RunArgs::Direction::out:
          args.output(array.mutable_data(), shape, dtype);
          break;
        case RunArgs::Direction::inout:
          args.inout(array.mutable_data(), shape, dtype);
          break;
      }
      keep.push_back(std::move(array));
    }
    for (const std::uint64_t bits : scalars)
      args.scalar(bits);

    RunResult result;
    {
      py::gil_scoped_release release;
      result = runtime_->run(orchestration, args);
    }
    RunOutcome outcome{result.status, result.stats, std::nullopt};
    if (result.trace) {
      outcome.trace =
          TraceOutputs{result.trace, std::make_shared<const KernelRegistry>(runtime_->kernels())};
    }
    return outcome;
  }

 private:
  static void check_array(const py::array& array, DType dtype, RunArgs::Direction direction,
                          std::size_t index) {
    const std::string which = "run tensor " + std::to_string(index);
    if (!(array.flags() & py::array::c_style)) {
      throw Error(ErrorCode::invalid_args,
                  which + " is not C-contiguous; pass numpy.ascontiguousarray(a) (tmr.run does)");
    }
    if (direction != RunArgs::Direction::in && !array.writeable()) {
      throw Error(ErrorCode::invalid_args, which + " is an output but its array is read-only");
    }
    if (static_cast<std::size_t>(array.itemsize()) != dtype_size(dtype)) {
      throw Error(ErrorCode::invalid_args, which + " has " + std::to_string(array.itemsize()) +
                                               "-byte elements but dtype " +
                                               std::string(dtype_name(dtype)) + " needs " +
                                               std::to_string(dtype_size(dtype)));
    }
    if (array.ndim() > kMaxDims) {
      throw Error(ErrorCode::invalid_args, which + " has " + std::to_string(array.ndim()) +
                                               " dimensions; tmr supports at most " +
                                               std::to_string(kMaxDims));
    }
  }

  std::unique_ptr<Runtime> runtime_;
};

// ---------------------------------------------------------------- Python orchestrations

// The orchestrator handed to a Python orchestration: valid only during that call.
struct PyOrchestrator {
  Orchestrator* orchestrator = nullptr;
  Orchestrator& get() const {
    if (orchestrator == nullptr) {
      throw Error(ErrorCode::invalid_args,
                  "this Orchestrator belongs to a finished run; use it only inside the "
                  "orchestration function");
    }
    return *orchestrator;
  }
};

KernelId kernel_id(PyOrchestrator& o, const py::object& kernel) {
  if (kernel.is_none()) return kNoKernel;
  if (py::isinstance<py::str>(kernel)) return o.get().kernel(kernel.cast<std::string>());
  return kernel.cast<KernelId>();
}

std::vector<Tensor> outputs_list(const TaskOutputs& outputs) {
  std::vector<Tensor> list;
  for (int i = 0; i < outputs.size(); ++i)
    list.push_back(outputs[i]);
  return list;
}

std::uint64_t scalar_bits(const py::handle& value, const std::string& kind) {
  std::uint64_t bits = 0;
  if (kind == "f32") {
    const float f = value.cast<float>();
    std::memcpy(&bits, &f, sizeof f);
  } else if (kind == "f64") {
    const double d = value.cast<double>();
    std::memcpy(&bits, &d, sizeof d);
  } else if (kind == "i32") {
    const std::int32_t i = value.cast<std::int32_t>();
    std::uint32_t u = 0;
    std::memcpy(&u, &i, sizeof i);
    bits = u;
  } else if (kind == "i64") {
    const std::int64_t i = value.cast<std::int64_t>();
    std::memcpy(&bits, &i, sizeof i);
  } else if (kind == "u64") {
    bits = value.cast<std::uint64_t>();
  } else {
    throw Error(ErrorCode::invalid_args,
                "unknown scalar kind '" + kind + "'; use f32, f64, i32, i64 or u64");
  }
  return bits;
}

// ---------------------------------------------------------------- Python kernels

struct PyKernelArgs {
  const KernelArgs* args = nullptr;
  const KernelArgs& get() const {
    if (args == nullptr) {
      throw Error(ErrorCode::invalid_args, "KernelArgs used after its kernel returned");
    }
    return *args;
  }
};

}  // namespace

PYBIND11_MODULE(_tmr, m) {
  m.doc() = "tmr task runtime: runtimes, plug-ins, NumPy run arguments, Python orchestrations";

  static py::exception<Error> error_type(m, "Error", PyExc_RuntimeError);
  g_error_type = error_type;
  py::register_exception_translator([](std::exception_ptr pointer) {
    try {
      if (pointer) std::rethrow_exception(pointer);
    } catch (const Error& e) {
      const auto type = py::reinterpret_borrow<py::object>(error_type);
      py::object instance = type(std::string(error_code_name(e.code())) + " (" +
                                 std::to_string(static_cast<int>(e.code())) + "): " + e.what());
      instance.attr("code") = static_cast<int>(e.code());
      instance.attr("code_name") = std::string(error_code_name(e.code()));
      instance.attr("message") = std::string(e.what());
      PyErr_SetObject(error_type.ptr(), instance.ptr());
    }
  });
  m.def(
      "error_code_name", [](int code) { return std::string(error_code_name(ErrorCode(code))); },
      "The name of a tmr error code");
  m.def(
      "raise_error",
      [](int code, const std::string& message) { throw Error(ErrorCode(code), message); },
      "Raises tmr.Error with this code and message (how a failed run reports)");

  // ---- configuration
  py::class_<RingConfig>(m, "RingConfig")
      .def(py::init<>())
      .def_readwrite("task_window", &RingConfig::task_window)
      .def_readwrite("heap_bytes", &RingConfig::heap_bytes)
      .def_readwrite("dep_pool", &RingConfig::dep_pool);
  py::class_<DualSlotPolicy>(m, "DualSlotPolicy")
      .def(py::init<>())
      .def_readwrite("aic", &DualSlotPolicy::aic)
      .def_readwrite("aiv", &DualSlotPolicy::aiv)
      .def_readwrite("mix", &DualSlotPolicy::mix)  // None: the platform's default
      .def_readwrite("mix_take_back", &DualSlotPolicy::mix_take_back);
  auto costs = py::class_<SimCostModel>(m, "SimCostModel").def(py::init<>());
  // Every cost by the one list cost files go by (tmr/sim_cost_fields.hpp), and that list's names.
  std::vector<std::string> cost_names;
  for (const SimCostField& field : sim_cost_fields()) {
    costs.def_readwrite(field.name, field.member);
    cost_names.emplace_back(field.name);
  }
  costs.def_readwrite("kernel_ns", &SimCostModel::kernel_ns)
      .def_property_readonly_static("field_names",
                                    [cost_names](const py::object&) { return cost_names; });
  costs.def("apply_json_file", &SimCostModel::apply_json_file, py::arg("path"))
      .def("apply_json_text", &SimCostModel::apply_json_text, py::arg("text"),
           py::arg("origin") = "<python>");
  py::class_<SimConfig>(m, "SimConfig")
      .def(py::init<>())
      .def_readwrite("chip", &SimConfig::chip)
      .def_readwrite("costs", &SimConfig::costs)
      .def_readwrite("timing_only", &SimConfig::timing_only);
  py::class_<RuntimeConfig>(m, "RuntimeConfig")
      .def(py::init<>())
      .def_property(
          "platform", [](const RuntimeConfig& c) { return platform_name(c.platform); },
          [](RuntimeConfig& c, const std::string& name) { c.platform = platform_from_name(name); })
      .def_readwrite("clusters", &RuntimeConfig::clusters)
      .def_readwrite("scheduler_threads", &RuntimeConfig::scheduler_threads)
      .def_readwrite("ring", &RuntimeConfig::ring)
      .def_readwrite("dual_slot", &RuntimeConfig::dual_slot)
      .def_readwrite("spin_before_park", &RuntimeConfig::spin_before_park)
      .def_readwrite("tensor_wait_timeout_s", &RuntimeConfig::tensor_wait_timeout_s)
      .def_readwrite("stall_timeout_s", &RuntimeConfig::stall_timeout_s)
      .def_readwrite("record_events", &RuntimeConfig::record_events)
      .def_readwrite("timing_only", &RuntimeConfig::timing_only)
      .def_readwrite("sim", &RuntimeConfig::sim)
      .def("apply_env", [](RuntimeConfig& c) { c.apply_env(); })
      .def("validate", &RuntimeConfig::validate);

  // ---- results
  py::class_<RunStats>(m, "RunStats")
      .def_readonly("tasks_submitted", &RunStats::tasks_submitted)
      .def_readonly("inline_tasks", &RunStats::inline_tasks)
      .def_readonly("subtasks_executed", &RunStats::subtasks_executed)
      .def_readonly("wall_us", &RunStats::wall_us)
      .def_readonly("orchestration_us", &RunStats::orchestration_us)
      .def_readonly("scheduler_us", &RunStats::scheduler_us)
      .def_readonly("orchestrator_blocked_us", &RunStats::orchestrator_blocked_us)
      .def_readonly("orchestrator_ring_waits", &RunStats::orchestrator_ring_waits)
      .def_readonly("orchestrator_ring_wait_us", &RunStats::orchestrator_ring_wait_us)
      .def_readonly("orchestrator_ring_wait_cpu_us", &RunStats::orchestrator_ring_wait_cpu_us)
      .def_readonly("orchestrator_wait_steps", &RunStats::orchestrator_wait_steps)
      .def_readonly("orchestrator_wait_steps_progress", &RunStats::orchestrator_wait_steps_progress)
      .def_readonly("orchestrator_placement_steps", &RunStats::orchestrator_placement_steps)
      .def_readonly("orchestrator_placements_gate_held",
                    &RunStats::orchestrator_placements_gate_held)
      .def_readonly("mix_blocks_taken_back", &RunStats::mix_blocks_taken_back)
      .def_readonly("unlatched_taken_back", &RunStats::unlatched_taken_back)
      .def_readonly("loops", &RunStats::loops)
      .def_readonly("loops_analysed", &RunStats::loops_analysed)
      .def_readonly("loop_iterations", &RunStats::loop_iterations)
      .def_readonly("loop_iterations_analysed", &RunStats::loop_iterations_analysed)
      .def_readonly("loop_tasks_analysed", &RunStats::loop_tasks_analysed)
      .def_readonly("loop_tasks_replayed_wide", &RunStats::loop_tasks_replayed_wide)
      .def_readonly("loop_tasks_named", &RunStats::loop_tasks_named)
      .def_readonly("loop_fallbacks", &RunStats::loop_fallbacks)
      .def_readonly("loop_fallback_reasons", &RunStats::loop_fallback_reasons)
      .def_readonly("loop_templates_reused", &RunStats::loop_templates_reused)
      .def_readonly("loop_plans_reused", &RunStats::loop_plans_reused)
      .def_readonly("loop_templates_rejected", &RunStats::loop_templates_rejected)
      .def_readonly("loop_template_rejections", &RunStats::loop_template_rejections);
  py::class_<TraceOutputs>(m, "Trace")
      .def_property_readonly("tasks", [](const TraceOutputs& t) { return t.trace->tasks.size(); })
      .def_property_readonly("subtasks",
                             [](const TraceOutputs& t) { return t.trace->subtasks.size(); })
      .def(
          "write_trace",
          [](const TraceOutputs& t, const std::string& path) {
            t.write(path, "trace",
                    [&](std::ostream& o) { profile::write_chrome_trace(o, *t.trace, *t.kernels); });
          },
          py::arg("path"), "Chrome/Perfetto trace-event JSON")
      .def(
          "write_swimlane",
          [](const TraceOutputs& t, const std::string& path, const std::string& title) {
            profile::SwimlaneOptions options;
            options.title = title;
            t.write(path, "swimlane", [&](std::ostream& o) {
              profile::write_swimlane_svg(o, *t.trace, *t.kernels, options);
            });
          },
          py::arg("path"), py::arg("title") = "tmr swimlane", "SVG swimlane (cores x time)")
      .def(
          "write_graph",
          [](const TraceOutputs& t, const std::string& path) {
            t.write(path, "graph", [&](std::ostream& o) {
              profile::write_task_graph_dot(o, *t.trace, *t.kernels);
            });
          },
          py::arg("path"), "task dependency graph (Graphviz DOT)")
      .def("stats_text", [](const TraceOutputs& t) {
        std::ostringstream text;
        profile::print_trace_stats(text, profile::compute_trace_stats(*t.trace, *t.kernels));
        return text.str();
      });
  py::class_<RunOutcome>(m, "RunResult")
      .def_property_readonly("ok", [](const RunOutcome& r) { return r.status.ok(); })
      .def_property_readonly("code", [](const RunOutcome& r) { return int(r.status.code); })
      .def_property_readonly(
          "code_name",
          [](const RunOutcome& r) { return std::string(error_code_name(r.status.code)); })
      .def_property_readonly("message", [](const RunOutcome& r) { return r.status.message; })
      .def_property_readonly("status_text",
                             [](const RunOutcome& r) { return r.status.to_string(); })
      .def_readonly("stats", &RunOutcome::stats)
      .def_readonly("trace", &RunOutcome::trace);

  // ---- tensors and arguments (for Python orchestrations)
  py::class_<Tensor>(m, "Tensor")
      .def_property_readonly("shape", [](const Tensor& t) { return dims_of(t.shape()); })
      .def_property_readonly("dtype",
                             [](const Tensor& t) { return std::string(dtype_name(t.dtype())); })
      .def_property_readonly("ndims", &Tensor::ndims)
      .def_property_readonly("valid", &Tensor::valid)
      .def(
          "view",
          [](const Tensor& t, const std::vector<std::int64_t>& shape,
             const std::vector<std::int64_t>& offsets) {
            return t.view(shape_from(shape), shape_from(offsets));
          },
          py::arg("shape"), py::arg("offsets"))
      .def(
          "reshape",
          [](const Tensor& t, const std::vector<std::int64_t>& shape) {
            return t.reshape(shape_from(shape));
          },
          py::arg("shape"))
      .def("transpose", &Tensor::transpose, py::arg("a"), py::arg("b"))
      .def("__repr__", &Tensor::to_string);

  py::class_<Args>(m, "Args")
      .def(py::init<>())
      .def(
          "input", [](Args& a, const Tensor& t) -> Args& { return a.in(t); },
          py::return_value_policy::reference_internal)
      .def(
          "inout", [](Args& a, const Tensor& t) -> Args& { return a.inout(t); },
          py::return_value_policy::reference_internal)
      .def(
          "out_existing", [](Args& a, const Tensor& t) -> Args& { return a.out_existing(t); },
          py::return_value_policy::reference_internal)
      .def(
          "no_dep", [](Args& a, const Tensor& t) -> Args& { return a.no_dep(t); },
          py::return_value_policy::reference_internal)
      .def(
          "out",
          [](Args& a, const std::vector<std::int64_t>& shape, const std::string& dtype) -> Args& {
            return a.out(TensorSpec(shape_from(shape), dtype_from_name(dtype)));
          },
          py::arg("shape"), py::arg("dtype") = "f32", py::return_value_policy::reference_internal)
      .def(
          "scalar",
          [](Args& a, const py::object& value, const std::string& kind) -> Args& {
            return a.scalar_bits(scalar_bits(value, kind));
          },
          py::arg("value"), py::arg("kind") = "f32", py::return_value_policy::reference_internal)
      .def(
          "blocks", [](Args& a, std::uint32_t n) -> Args& { return a.blocks(n); },
          py::return_value_policy::reference_internal)
      .def(
          "sync_start", [](Args& a, bool value) -> Args& { return a.sync_start(value); },
          py::arg("value") = true, py::return_value_policy::reference_internal)
      .def_property_readonly("tensor_count", &Args::tensor_count)
      .def_property_readonly("scalar_count", &Args::scalar_count);

  py::class_<OrchestrationArgs>(m, "OrchestrationArgs")
      .def_property_readonly("tensor_count", &OrchestrationArgs::tensor_count)
      .def_property_readonly("scalar_count", &OrchestrationArgs::scalar_count)
      .def("tensor", &OrchestrationArgs::tensor, py::arg("i"))
      .def("scalar_bits", &OrchestrationArgs::scalar_bits, py::arg("i"))
      .def("scalar_f32", [](const OrchestrationArgs& a, int i) { return a.scalar<float>(i); })
      .def("scalar_i32",
           [](const OrchestrationArgs& a, int i) { return a.scalar<std::int32_t>(i); });

  py::class_<PyOrchestrator>(m, "Orchestrator")
      .def(
          "submit",
          [](PyOrchestrator& o, const Args& args, const py::object& aic, const py::object& aiv0,
             const py::object& aiv1) {
            const MixKernels kernels{kernel_id(o, aic), kernel_id(o, aiv0), kernel_id(o, aiv1)};
            const py::gil_scoped_release release;  // may wait for kernels (Python ones too)
            return outputs_list(o.get().submit(kernels, args));
          },
          py::arg("args"), py::arg("aic") = py::none(), py::arg("aiv0") = py::none(),
          py::arg("aiv1") = py::none(),
          "Submits a task; kernels by id or name. Returns the fresh `out` tensors.")
      .def(
          "submit_aic",
          [](PyOrchestrator& o, const py::object& kernel, const Args& args) {
            const KernelId id = kernel_id(o, kernel);
            const py::gil_scoped_release release;
            return outputs_list(o.get().submit_aic(id, args));
          },
          py::arg("kernel"), py::arg("args"))
      .def(
          "submit_aiv",
          [](PyOrchestrator& o, const py::object& kernel, const Args& args) {
            const KernelId id = kernel_id(o, kernel);
            const py::gil_scoped_release release;
            return outputs_list(o.get().submit_aiv(id, args));
          },
          py::arg("kernel"), py::arg("args"))
      .def(
          "alloc",
          [](PyOrchestrator& o, const Args& args) {
            const py::gil_scoped_release release;
            return outputs_list(o.get().alloc(args));
          },
          py::arg("args"))
      .def("scope_begin", [](PyOrchestrator& o) { o.get().scope_begin(); })
      .def("scope_end",
           [](PyOrchestrator& o) {
             const py::gil_scoped_release release;
             o.get().scope_end();
           })
      .def_property_readonly("scope_depth", [](PyOrchestrator& o) { return o.get().scope_depth(); })
      .def(
          "kernel", [](PyOrchestrator& o, const std::string& name) { return o.get().kernel(name); },
          py::arg("name"))
      .def(
          "get_f32",
          [](PyOrchestrator& o, const Tensor& t, const std::vector<std::int64_t>& index) {
            const Shape at = shape_from(index);
            const py::gil_scoped_release release;
            return o.get().get_tensor_data<float>(t, at);
          },
          py::arg("tensor"), py::arg("index"))
      .def(
          "get_i32",
          [](PyOrchestrator& o, const Tensor& t, const std::vector<std::int64_t>& index) {
            const Shape at = shape_from(index);
            const py::gil_scoped_release release;
            return o.get().get_tensor_data<std::int32_t>(t, at);
          },
          py::arg("tensor"), py::arg("index"))
      .def(
          "set_f32",
          [](PyOrchestrator& o, const Tensor& t, const std::vector<std::int64_t>& index,
             float value) {
            const Shape at = shape_from(index);
            const py::gil_scoped_release release;
            o.get().set_tensor_data(t, at, value);
          },
          py::arg("tensor"), py::arg("index"), py::arg("value"))
      .def(
          "set_i32",
          [](PyOrchestrator& o, const Tensor& t, const std::vector<std::int64_t>& index,
             std::int32_t value) {
            const Shape at = shape_from(index);
            const py::gil_scoped_release release;
            o.get().set_tensor_data(t, at, value);
          },
          py::arg("tensor"), py::arg("index"), py::arg("value"))
      .def(
          "report_fatal",
          [](PyOrchestrator& o, const std::string& message) {
            o.get().report_fatal(ErrorCode::explicit_fatal, message);
          },
          py::arg("message"));

  // ---- kernels seen from Python
  py::class_<PyKernelArgs>(m, "KernelArgs")
      .def_property_readonly("tensor_count",
                             [](const PyKernelArgs& a) { return a.get().tensor_count(); })
      .def_property_readonly("scalar_count",
                             [](const PyKernelArgs& a) { return a.get().scalar_count(); })
      .def_property_readonly("block_index",
                             [](const PyKernelArgs& a) { return a.get().block_index(); })
      .def_property_readonly("block_count",
                             [](const PyKernelArgs& a) { return a.get().block_count(); })
      .def_property_readonly("sub_block_id",
                             [](const PyKernelArgs& a) { return a.get().sub_block_id(); })
      .def(
          "tag",
          [](const PyKernelArgs& a, int i) { return std::string(arg_tag_name(a.get().tag(i))); },
          py::arg("i"))
      .def(
          "tensor",
          [](const PyKernelArgs& a, int i) {
            if (i < 0 || i >= a.get().tensor_count()) {
              throw Error(ErrorCode::invalid_args,
                          "KernelArgs.tensor(" + std::to_string(i) + "): the task has " +
                              std::to_string(a.get().tensor_count()) + " tensors");
            }
            // A view of the runtime's memory, valid while the kernel runs.
            return numpy_view(a.get().tensor(i), py::capsule(&a, [](void*) {}));
          },
          py::arg("i"), "NumPy view (no copy) of tensor i; valid only while the kernel runs")
      .def("scalar_bits", [](const PyKernelArgs& a, int i) { return a.get().scalar_bits(i); })
      .def("scalar_f32", [](const PyKernelArgs& a, int i) { return a.get().scalar<float>(i); })
      .def("scalar_i32",
           [](const PyKernelArgs& a, int i) { return a.get().scalar<std::int32_t>(i); });

  // ---- plug-ins and the runtime
  py::class_<Plugin, std::shared_ptr<Plugin>>(m, "Plugin")
      .def_static(
          "load",
          [](const std::string& path) { return std::make_shared<Plugin>(Plugin::load(path)); },
          py::arg("path"));

  py::class_<PyRuntime>(m, "Runtime")
      .def(py::init<const RuntimeConfig&>(), py::arg("config"))
      .def_property_readonly("config", &PyRuntime::config)
      .def("kernel_names",
           [](PyRuntime& r) {
             std::vector<std::string> names;
             for (const KernelInfo& k : r.kernels().all())
               names.push_back(k.name);
             return names;
           })
      .def(
          "kernel_id", [](PyRuntime& r, const std::string& name) { return r.kernels().id(name); },
          py::arg("name"))
      .def(
          "register_plugin",
          [](PyRuntime& r, const std::shared_ptr<Plugin>& plugin) {
            plugin->register_kernels(r.kernels());
          },
          py::arg("plugin"))
      .def(
          "add_kernel",
          [](PyRuntime& r, const std::string& name, const std::string& core_type, py::function fn) {
            // The registry shares the callable with runs on core threads: take the GIL to call
            // it and to drop the reference when the last registry copy goes.
            auto holder =
                std::shared_ptr<py::function>(new py::function(std::move(fn)), [](py::function* f) {
                  py::gil_scoped_acquire gil;
                  delete f;
                });
            return r.kernels().add(
                name, core_type_from_name(core_type), [holder](const KernelArgs& args) {
                  with_gil("a Python kernel", [&] {
                    PyKernelArgs view{&args};
                    py::object handle = py::cast(&view, py::return_value_policy::reference);
                    try {
                      (*holder)(handle);
                    } catch (...) {
                      view.args = nullptr;
                      throw;
                    }
                    view.args = nullptr;
                  });
                });
          },
          py::arg("name"), py::arg("core_type"), py::arg("fn"),
          "Registers a Python function kernel(KernelArgs); it runs on core threads under the GIL")
      .def(
          "run_plugin",
          [](PyRuntime& r, const std::shared_ptr<Plugin>& plugin, const py::list& tensors,
             const std::vector<std::uint64_t>& scalars) {
            // The plug-in stays loaded for the run: the orchestration holds a reference.
            Orchestration base = plugin->orchestration();
            Orchestration orchestration =
                [plugin, base](Orchestrator& o, const OrchestrationArgs& a) { base(o, a); };
            return r.run(orchestration, tensors, scalars);
          },
          py::arg("plugin"), py::arg("tensors"), py::arg("scalars"))
      .def(
          "run_python",
          [](PyRuntime& r, py::function fn, const py::list& tensors,
             const std::vector<std::uint64_t>& scalars) {
            Orchestration orchestration = [&fn](Orchestrator& o, const OrchestrationArgs& a) {
              PyOrchestrator handle{&o};
              with_gil("the Python orchestration", [&] {
                try {
                  fn(py::cast(&handle, py::return_value_policy::reference),
                     py::cast(&a, py::return_value_policy::reference));
                } catch (...) {
                  handle.orchestrator = nullptr;  // a kept reference must not reach a dead run
                  throw;
                }
                handle.orchestrator = nullptr;
              });
            };
            return r.run(orchestration, tensors, scalars);
          },
          py::arg("fn"), py::arg("tensors"), py::arg("scalars"));
}

}  // namespace tmr::python
