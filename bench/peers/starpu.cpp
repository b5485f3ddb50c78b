// StarPU: sequential task flow with one data handle per cell and R / W / RW access modes; the
// runtime infers the edges per handle. CPU workers only (2), default scheduler (lws).
//
// StarPU has no byte-range analysis: partially overlapping regions are expressed by registering
// each cell as its own handle (the finest partition), which every graph here uses.
#include <starpu.h>

#include <stdexcept>

#include "harness.hpp"

namespace peers {
namespace {

// What the codelet needs besides its buffers; StarPU codelets are plain C functions.
struct RunContext {
  const Graph* graph = nullptr;
  std::uint64_t spin_ns = 0;
};
RunContext g_run;

void cpu_body(void* buffers[], void* cl_arg) {
  const std::uint32_t t = *static_cast<const std::uint32_t*>(cl_arg);
  const Task& task = g_run.graph->tasks[t];
  CellRef cells[kMaxCells];
  int n = 0;
  for (int a = 0; a < task.accesses; ++a) {
    for (int c = 0; c < task.access[a].count; ++c, ++n) {
      cells[n] = {reinterpret_cast<Cell*>(STARPU_VARIABLE_GET_PTR(buffers[n])),
                  task.access[a].mode};
    }
  }
  run_body(t, g_run.spin_ns, cells, n);
}

starpu_data_access_mode starpu_mode(Mode m) {
  switch (m) {
    case Mode::read:
      return STARPU_R;
    case Mode::write:
      return STARPU_W;
    case Mode::read_write:
      return STARPU_RW;
  }
  return STARPU_RW;
}

class StarpuSystem final : public System {
 public:
  StarpuSystem() {
    starpu_conf conf;
    starpu_conf_init(&conf);
    conf.ncpus = kWorkers;
    conf.ncuda = 0;
    conf.nopencl = 0;
    conf.nmic = 0;
    conf.nmpi_ms = 0;
    if (starpu_init(&conf) != 0) throw std::runtime_error("starpu_init failed");
    starpu_codelet_init(&codelet_);
    codelet_.cpu_funcs[0] = cpu_body;
    codelet_.nbuffers = STARPU_VARIABLE_NBUFFERS;  // modes and handles come with each task
    codelet_.name = "body";
  }
  ~StarpuSystem() override { starpu_shutdown(); }
  StarpuSystem(const StarpuSystem&) = delete;
  StarpuSystem& operator=(const StarpuSystem&) = delete;

  std::string name() const override { return "starpu"; }

  // Registering handles is set-up a StarPU program does once per data item: untimed.
  void prepare(const Graph& graph, Data& data) override {
    handles_.assign(graph.buffers.size(), {});
    for (std::size_t b = 0; b < graph.buffers.size(); ++b) {
      handles_[b].resize(graph.buffers[b].cells);
      for (std::uint32_t c = 0; c < graph.buffers[b].cells; ++c) {
        starpu_variable_data_register(&handles_[b][c], STARPU_MAIN_RAM,
                                      reinterpret_cast<uintptr_t>(data.buffer(b) + c),
                                      sizeof(Cell));
      }
    }
    if (ids_.size() < graph.size()) {
      ids_.resize(graph.size());
      for (std::uint32_t t = 0; t < ids_.size(); ++t)
        ids_[t] = t;
    }
  }

  std::uint64_t execute(const Graph& graph, Data&, std::uint64_t spin_ns) override {
    g_run = {&graph, spin_ns};
    for (std::uint32_t t = 0; t < graph.size(); ++t) {
      starpu_task* const task = starpu_task_create();  // destroyed by StarPU when done
      task->cl = &codelet_;
      task->cl_arg = &ids_[t];
      int n = 0;
      const Task& gt = graph.tasks[t];
      for (int a = 0; a < gt.accesses; ++a) {
        const Access& acc = gt.access[a];
        for (int c = 0; c < acc.count; ++c, ++n) {
          task->handles[n] = handles_[acc.buffer][acc.begin + c];
          task->modes[n] = starpu_mode(acc.mode);
        }
      }
      task->nbuffers = n;
      if (starpu_task_submit(task) != 0) throw std::runtime_error("starpu_task_submit failed");
    }
    starpu_task_wait_for_all();
    return 0;
  }

  void finish() override {
    for (auto& buffer : handles_) {
      for (starpu_data_handle_t h : buffer)
        starpu_data_unregister(h);
    }
    handles_.clear();
  }

 private:
  starpu_codelet codelet_{};
  std::vector<std::vector<starpu_data_handle_t>> handles_;
  std::vector<std::uint32_t> ids_;  // task indices the codelet receives as cl_arg
};

}  // namespace

std::unique_ptr<System> make_starpu_system() {
  return std::make_unique<StarpuSystem>();
}

}  // namespace peers
