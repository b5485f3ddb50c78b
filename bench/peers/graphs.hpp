// The task graphs every system runs, the task body they all execute, and the sequential
// reference that their results are checked against.
//
// A graph is a list of tasks in submission order. Each task names up to three regions
// (buffer, first cell, cell count) with an access mode; dependencies follow from the regions
// (RAW, WAW, WAR per cell), exactly what a sequential program touching the same cells implies.
// Systems that infer dependencies (tmr, OpenMP, StarPU) are given the regions; oneTBB is given
// the edges computed here.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <ctime>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace peers {

// Cells are 32-bit because tmr's widest integer dtype is i32.
using Cell = std::int32_t;

enum class Mode : std::uint8_t { read, write, read_write };

struct Access {
  std::uint32_t begin = 0;  // first cell
  std::uint16_t buffer = 0;
  std::uint8_t count = 1;  // cells
  Mode mode = Mode::read;
};

inline constexpr int kMaxAccesses = 3;
// StarPU keeps up to 8 handles inline in a task; per-cell systems stay within that.
inline constexpr int kMaxCells = 8;

struct Task {
  std::array<Access, kMaxAccesses> access{};
  std::uint8_t accesses = 0;
  int cells() const {
    int n = 0;
    for (int a = 0; a < accesses; ++a)
      n += access[a].count;
    return n;
  }
};

struct BufferInfo {
  std::uint32_t cells = 0;
  // Written once and read by later tasks only: tmr allocates these from its rings (`out`),
  // peers from a preallocated array. Not part of the checksum.
  bool transient = false;
};

enum class GraphKind { independent, chain, stencil, attention, random };

// The loop nest a generator wrote: task (o, i, k) = tasks[(o * iterations + i) * per_iteration + k]
// for o < outer, i < iterations, k < per_iteration. A system with a loop construct (tmr's
// parallel_for) runs the `iterations` loop as one; `iterations == 0` means no regular loop.
struct LoopNest {
  std::uint32_t outer = 1;
  std::uint32_t iterations = 0;
  std::uint32_t per_iteration = 1;
};

struct Graph {
  GraphKind kind = GraphKind::independent;
  std::string name;
  std::vector<BufferInfo> buffers;
  std::vector<Task> tasks;
  // Dependency edges (CSR over tasks): task t depends on preds[pred_begin[t] .. pred_begin[t+1]).
  std::vector<std::uint32_t> pred_begin;
  std::vector<std::uint32_t> preds;
  std::uint32_t critical_path = 0;  // longest dependency chain, in tasks
  LoopNest loops;
  std::size_t size() const { return tasks.size(); }
};

// ---- the task body -------------------------------------------------------------------------

// splitmix64 finaliser: order-sensitive, so a missed dependency changes the checksum.
constexpr std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

inline std::uint64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ull +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

// Busy-waits: the task's "work" for the METG sweep.
inline void spin_for(std::uint64_t ns) {
  if (ns == 0) return;
  const std::uint64_t end = now_ns() + ns;
  while (now_ns() < end) {
  }
}

struct CellRef {
  Cell* ptr;
  Mode mode;
};

// Every system runs this with the cells of one task, in access order then cell order.
// Out of line so that callgrind can leave the task's own work out of a system's instructions
// (--toggle-collect='*run_body*'; docs/performance.md, "Session 37, branch metg43").
[[gnu::noinline]] inline void run_body(std::uint32_t task, std::uint64_t spin_ns,
                                       const CellRef* cells, int n) {
  std::uint64_t h = mix(task);
  for (int c = 0; c < n; ++c) {
    if (cells[c].mode != Mode::write) h = mix(h ^ static_cast<std::uint32_t>(*cells[c].ptr));
  }
  spin_for(spin_ns);
  for (int c = 0; c < n; ++c) {
    if (cells[c].mode != Mode::read) *cells[c].ptr = static_cast<Cell>(mix(h + c));
  }
}

// ---- data ------------------------------------------------------------------------------------

class Data {
 public:
  explicit Data(const Graph& graph) : graph_(&graph) {
    buffers_.reserve(graph.buffers.size());
    for (const BufferInfo& b : graph.buffers)
      buffers_.emplace_back(b.cells);
    reset();
  }
  // Deterministic initial contents, restored before every run.
  void reset() {
    for (std::size_t b = 0; b < buffers_.size(); ++b) {
      for (std::size_t c = 0; c < buffers_[b].size(); ++c) {
        buffers_[b][c] = static_cast<Cell>(mix((b << 32) | c));
      }
    }
  }
  Cell* buffer(std::size_t b) { return buffers_[b].data(); }
  std::size_t buffer_count() const { return buffers_.size(); }
  // Hash of every non-transient buffer.
  std::uint64_t checksum() const {
    std::uint64_t h = 0;
    for (std::size_t b = 0; b < buffers_.size(); ++b) {
      if (graph_->buffers[b].transient) continue;
      for (const Cell v : buffers_[b])
        h = mix(h ^ static_cast<std::uint32_t>(v));
    }
    return h;
  }

 private:
  const Graph* graph_;
  std::vector<std::vector<Cell>> buffers_;
};

// The cells of task `t` as pointers into `data` (what OpenMP and oneTBB bodies see).
inline int cells_of(const Graph& g, std::uint32_t t, Data& data, CellRef* out) {
  int n = 0;
  const Task& task = g.tasks[t];
  for (int a = 0; a < task.accesses; ++a) {
    const Access& acc = task.access[a];
    Cell* const base = data.buffer(acc.buffer) + acc.begin;
    for (int c = 0; c < acc.count; ++c)
      out[n++] = {base + c, acc.mode};
  }
  return n;
}

// Runs the graph in submission order: the reference result.
inline std::uint64_t reference_checksum(const Graph& g) {
  Data data(g);
  CellRef cells[kMaxCells];
  for (std::uint32_t t = 0; t < g.size(); ++t) {
    const int n = cells_of(g, t, data, cells);
    run_body(t, 0, cells, n);
  }
  return data.checksum();
}

// ---- construction ----------------------------------------------------------------------------

namespace detail {

inline Task make_task(std::initializer_list<Access> accesses) {
  Task t;
  for (const Access& a : accesses)
    t.access[t.accesses++] = a;
  return t;
}

// Derives the edges and the critical path from the regions (per-cell last writer and readers).
inline void add_edges(Graph& g) {
  struct CellState {
    std::int64_t writer = -1;
    std::vector<std::uint32_t> readers;  // since the last write
  };
  std::vector<std::vector<CellState>> state(g.buffers.size());
  for (std::size_t b = 0; b < g.buffers.size(); ++b)
    state[b].resize(g.buffers[b].cells);
  std::vector<std::uint32_t> depth(g.size(), 0);
  g.pred_begin.assign(1, 0);
  g.preds.clear();
  std::vector<std::uint32_t> mine;
  for (std::uint32_t t = 0; t < g.size(); ++t) {
    mine.clear();
    const Task& task = g.tasks[t];
    for (int a = 0; a < task.accesses; ++a) {
      const Access& acc = task.access[a];
      for (std::uint32_t c = acc.begin; c < acc.begin + acc.count; ++c) {
        const CellState& s = state[acc.buffer][c];
        if (s.writer >= 0) mine.push_back(static_cast<std::uint32_t>(s.writer));
        if (acc.mode != Mode::read) mine.insert(mine.end(), s.readers.begin(), s.readers.end());
      }
    }
    std::sort(mine.begin(), mine.end());
    mine.erase(std::unique(mine.begin(), mine.end()), mine.end());
    std::uint32_t d = 0;
    for (const std::uint32_t p : mine)
      d = std::max(d, depth[p]);
    depth[t] = d + 1;
    g.critical_path = std::max(g.critical_path, depth[t]);
    g.preds.insert(g.preds.end(), mine.begin(), mine.end());
    g.pred_begin.push_back(static_cast<std::uint32_t>(g.preds.size()));
    for (int a = 0; a < task.accesses; ++a) {
      const Access& acc = task.access[a];
      for (std::uint32_t c = acc.begin; c < acc.begin + acc.count; ++c) {
        CellState& s = state[acc.buffer][c];
        if (acc.mode == Mode::read) {
          s.readers.push_back(t);
        } else {
          s.writer = t;
          s.readers.clear();
        }
      }
    }
  }
}

inline Graph independent(std::uint32_t n) {
  Graph g{GraphKind::independent, "independent", {{n, false}}, {}, {}, {}, 0, {}};
  g.tasks.reserve(n);
  for (std::uint32_t i = 0; i < n; ++i)
    g.tasks.push_back(make_task({{i, 0, 1, Mode::write}}));
  g.loops = {1, n, 1};
  return g;
}

inline Graph chain(std::uint32_t n) {
  Graph g{GraphKind::chain, "chain", {{1, false}}, {}, {}, {}, 0, {}};
  g.tasks.assign(n, make_task({{0, 0, 1, Mode::read_write}}));
  g.loops = {1, n, 1};
  return g;
}

// Row t of a (steps + 1) x width grid; task (t, i) reads row t-1 at i-1..i+1 (clipped).
inline Graph stencil(std::uint32_t width, std::uint32_t steps) {
  Graph g{GraphKind::stencil, "stencil", {{width * (steps + 1), false}}, {}, {}, {}, 0, {}};
  g.tasks.reserve(std::size_t{width} * steps);
  for (std::uint32_t t = 1; t <= steps; ++t) {
    for (std::uint32_t i = 0; i < width; ++i) {
      const std::uint32_t lo = i == 0 ? 0 : i - 1;
      const std::uint32_t hi = std::min(width - 1, i + 1);
      const auto count = static_cast<std::uint8_t>(hi - lo + 1);
      g.tasks.push_back(make_task(
          {{(t - 1) * width + lo, 0, count, Mode::read}, {t * width + i, 0, 1, Mode::write}}));
    }
  }
  g.loops = {1, steps, width};  // the sweep is the loop; a row is one iteration
  return g;
}

// Paged attention: per request r and KV block b, QK -> SF -> PV -> UP, where UP accumulates
// into the request's output (a chain over b). Buffers: q, kv, acc (persistent), s, p, o.
inline Graph attention(std::uint32_t requests, std::uint32_t blocks) {
  enum : std::uint16_t { q, kv, acc, s, p, o };
  const std::uint32_t rb = requests * blocks;
  Graph g{GraphKind::attention,
          "attention",
          {{requests, false}, {rb, false}, {requests, false}, {rb, true}, {rb, true}, {rb, true}},
          {},
          {},
          {},
          0,
          {}};
  g.tasks.reserve(std::size_t{rb} * 4);
  for (std::uint32_t r = 0; r < requests; ++r) {
    for (std::uint32_t b = 0; b < blocks; ++b) {
      const std::uint32_t i = r * blocks + b;
      g.tasks.push_back(
          make_task({{r, q, 1, Mode::read}, {i, kv, 1, Mode::read}, {i, s, 1, Mode::write}}));
      g.tasks.push_back(make_task({{i, s, 1, Mode::read}, {i, p, 1, Mode::write}}));
      g.tasks.push_back(
          make_task({{i, p, 1, Mode::read}, {i, kv, 1, Mode::read}, {i, o, 1, Mode::write}}));
      g.tasks.push_back(make_task({{i, o, 1, Mode::read}, {r, acc, 1, Mode::read_write}}));
    }
  }
  g.loops = {requests, blocks, 4};  // the KV-block loop of each request
  return g;
}

// Seeded: 1-3 disjoint regions of 1-4 cells over four 1024-cell buffers, at least one written.
// Regions of different tasks overlap partially, which is the point of this graph.
inline Graph random(std::uint32_t n, std::uint64_t seed = 42) {
  constexpr std::uint32_t kBuffers = 4, kCells = 1024;
  Graph g{GraphKind::random,
          "random",
          std::vector<BufferInfo>(kBuffers, {kCells, false}),
          {},
          {},
          {},
          0,
          {}};
  std::mt19937_64 rng(seed);
  auto pick = [&rng](std::uint32_t bound) { return static_cast<std::uint32_t>(rng() % bound); };
  g.tasks.reserve(n);
  while (g.tasks.size() < n) {
    Task t;
    const std::uint32_t wanted = 1 + pick(kMaxAccesses);
    for (std::uint32_t a = 0; a < wanted; ++a) {
      Access acc;
      acc.buffer = static_cast<std::uint16_t>(pick(kBuffers));
      acc.count = static_cast<std::uint8_t>(1 + pick(4));
      acc.begin = pick(kCells - acc.count + 1);
      const std::uint32_t m = pick(10);
      acc.mode = m < 5 ? Mode::read : m < 7 ? Mode::write : Mode::read_write;
      const bool clash =
          std::any_of(t.access.begin(), t.access.begin() + t.accesses, [&](const Access& o) {
            return o.buffer == acc.buffer && o.begin < acc.begin + acc.count &&
                   acc.begin < o.begin + o.count;
          });
      if (!clash && t.cells() + acc.count <= kMaxCells) t.access[t.accesses++] = acc;
    }
    // Every task writes something, so every task shows up in the checksum.
    if (t.accesses > 0 && t.access[0].mode == Mode::read) t.access[0].mode = Mode::read_write;
    if (t.accesses > 0) g.tasks.push_back(t);
  }
  return g;
}

}  // namespace detail

inline constexpr std::string_view kGraphNames[] = {"independent", "chain", "stencil", "attention",
                                                   "random"};

// The sizes.
inline std::uint32_t full_tasks(GraphKind kind) {
  switch (kind) {
    case GraphKind::independent:
      return 200'000;
    case GraphKind::chain:
    case GraphKind::stencil:
    case GraphKind::random:
      return 100'000;
    case GraphKind::attention:
      return 64 * 128 * 4;
  }
  return 0;
}

inline GraphKind graph_kind(std::string_view name) {
  for (int k = 0; k < 5; ++k) {
    if (kGraphNames[k] == name) return static_cast<GraphKind>(k);
  }
  throw std::invalid_argument("unknown graph '" + std::string(name) +
                              "' (independent, chain, stencil, attention, random)");
}

// A graph of `kind` with about `tasks` tasks (rounded to the graph's shape).
inline Graph make_graph(GraphKind kind, std::uint32_t tasks) {
  Graph g;
  switch (kind) {
    case GraphKind::independent:
      g = detail::independent(tasks);
      break;
    case GraphKind::chain:
      g = detail::chain(tasks);
      break;
    case GraphKind::stencil:
      g = detail::stencil(4, std::max(1u, tasks / 4));
      break;
    case GraphKind::attention:
      g = detail::attention(std::max(1u, tasks / (128 * 4)), 128);
      break;
    case GraphKind::random:
      g = detail::random(tasks);
      break;
  }
  detail::add_edges(g);
  return g;
}

}  // namespace peers
