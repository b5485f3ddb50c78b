// oneTBB flow graph: one continue_node per task and one make_edge per dependency. oneTBB infers
// nothing, so it is told the edges the harness derived from the regions (outside the timing);
// building the nodes and edges is timed and reported separately and as part of the total.
#include <tbb/flow_graph.h>
#include <tbb/global_control.h>
#include <tbb/task_arena.h>

#include <deque>

#include "harness.hpp"

namespace peers {
namespace {

using Node = tbb::flow::continue_node<tbb::flow::continue_msg>;

class TbbSystem final : public System {
 public:
  std::string name() const override { return "tbb"; }

  std::uint64_t execute(const Graph& graph, Data& data, std::uint64_t spin_ns) override {
    std::uint64_t build_ns = 0;
    // The graph is created inside the arena so that its tasks run on the arena's 2 slots.
    arena_.execute([&] {
      const std::uint64_t t0 = now_ns();
      flow_ = std::make_unique<tbb::flow::graph>();
      nodes_ = std::make_unique<std::deque<Node>>();  // a deque never moves its nodes
      const Graph* const g = &graph;
      Data* const d = &data;
      for (std::uint32_t t = 0; t < g->size(); ++t) {
        nodes_->emplace_back(*flow_, [g, d, t, spin_ns](const tbb::flow::continue_msg&) {
          CellRef cells[kMaxCells];
          const int n = cells_of(*g, t, *d, cells);
          run_body(t, spin_ns, cells, n);
        });
        for (std::uint32_t e = g->pred_begin[t]; e < g->pred_begin[t + 1]; ++e) {
          tbb::flow::make_edge((*nodes_)[g->preds[e]], nodes_->back());
        }
      }
      build_ns = now_ns() - t0;
      for (std::uint32_t t = 0; t < g->size(); ++t) {
        if (g->pred_begin[t] == g->pred_begin[t + 1])
          (*nodes_)[t].try_put(tbb::flow::continue_msg());
      }
      flow_->wait_for_all();
    });
    return build_ns;
  }

  // Destruction is untimed, as for the other systems' teardown.
  void finish() override {
    nodes_.reset();
    flow_.reset();
  }

 private:
  tbb::global_control limit_{tbb::global_control::max_allowed_parallelism, kWorkers};
  tbb::task_arena arena_{kWorkers};
  std::unique_ptr<tbb::flow::graph> flow_;
  std::unique_ptr<std::deque<Node>> nodes_;
};

}  // namespace

std::unique_ptr<System> make_tbb_system() {
  return std::make_unique<TbbSystem>();
}

}  // namespace peers
