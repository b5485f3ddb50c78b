// OpenMP tasks with `depend` clauses: the sequential loop creates one task per graph task inside
// `single`; the runtime (libgomp with GCC, libomp with clang) infers the edges from addresses.
//
// OpenMP forbids partially overlapping list items (they must be identical or disjoint), so each
// region is passed cell by cell through the `iterator` modifier, as the OpenMP Examples do
// (task_dep.11.c). That makes the random graph expressible too, at a cost per cell.
#include <omp.h>

#include "harness.hpp"

namespace peers {
namespace {

class OmpSystem final : public System {
 public:
  OmpSystem() { omp_set_dynamic(0); }

  std::string name() const override {
#ifdef __clang__
    return "libomp";
#else
    return "gomp";
#endif
  }

  std::uint64_t execute(const Graph& graph, Data& data, std::uint64_t spin_ns) override {
    const Graph* const g = &graph;
    Data* const d = &data;
#pragma omp parallel num_threads(kWorkers) firstprivate(g, d, spin_ns)
#pragma omp single
    for (std::uint32_t t = 0; t < g->size(); ++t) {
      // Read cells are `in`; written cells `inout` (`out` orders the same way in OpenMP).
      Cell* reads[kMaxCells];
      Cell* writes[kMaxCells];
      int nr = 0, nw = 0;
      const Task& task = g->tasks[t];
      for (int a = 0; a < task.accesses; ++a) {
        const Access& acc = task.access[a];
        Cell* const base = d->buffer(acc.buffer) + acc.begin;
        for (int c = 0; c < acc.count; ++c) {
          (acc.mode == Mode::read ? reads[nr++] : writes[nw++]) = base + c;
        }
      }
      Cell** const r = reads;
      Cell** const w = writes;
#pragma omp task firstprivate(t) depend(iterator(k = 0                  \
                                                 : nr),                 \
                                        in                              \
                                        : *r[k]) depend(iterator(k = 0  \
                                                                 : nw), \
                                                        inout           \
                                                        : *w[k])
      {
        CellRef cells[kMaxCells];
        const int n = cells_of(*g, t, *d, cells);
        run_body(t, spin_ns, cells, n);
      }
    }
    return 0;  // the implicit barrier of `parallel` waited for every task
  }
};

}  // namespace

std::unique_ptr<System> make_omp_system() {
  return std::make_unique<OmpSystem>();
}

}  // namespace peers
