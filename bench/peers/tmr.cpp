// tmr on its threads platform: the orchestration submits one AIV task per graph task; tmr infers
// the edges from the tensor regions (one view per region, so a 3-cell stencil read is one
// argument) and allocates the attention intermediates from its rings (`out`).
//
// Topology: the host's (RuntimeConfig::fit_host), which under `taskset -c 0,1` is 1 cluster =
// 1 AIC + 2 AIV worker threads, 1 scheduler thread, and the orchestrator (the calling thread).
// All kernels are AIV, so exactly 2 worker threads run tasks, like the peers' 2 workers; the AIC
// thread only idles (it parks). A worker that finishes a task places a successor that became
// ready on itself (early hand-off); the scheduler thread is mostly parked.
#include <tmr/tmr.hpp>

#include <dirent.h>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>

#include <sched.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "harness.hpp"

namespace peers {
namespace {

// Tasks per scope: a scope must hold fewer tasks than a ring's window (16384 by default), and
// closing scopes lets the rings reclaim finished tasks.
constexpr std::uint32_t kScopeTasks = 4096;

const Graph* g_graph = nullptr;  // kernels are plain functions; the graph gives the modes

// PEERS_TMR_STATS: when the run's first kernel started (steady clock ns; 0 until one did), to
// tell how long the first ready tasks waited for a core while the orchestrator kept submitting.
bool g_watch_first_start = false;
std::atomic<std::int64_t> g_first_start_ns{0};

// PEERS_TMR_LAG: how far the workers trail the orchestrator (plain submits only, not tmr-pf).
// Each worker stores the index of the task it last ran, and its CPU, into a line of its own; the
// orchestrator reads those lines every kLagEvery submits (a line transfer each, hundreds of tasks
// apart) and keeps submitted - latest done. Session 52 (att52): in the runs where the
// orchestrator had a CPU to itself, its CPU a task followed this lag, ~400 ns at a lag under 10
// tasks against ~155 ns at a lag over 1,000 (docs/performance.md, "Session 52, branch att52").
constexpr std::uint32_t kLagEvery = 256;
constexpr int kLagSlots = 8;
struct alignas(64) LastDone {
  std::atomic<std::uint32_t> task{0};
  std::atomic<bool> used{false};
  std::atomic<int> cpu{-1};  // where its last task ran
};
LastDone g_last_done[kLagSlots];
std::atomic<int> g_lag_slots{0};
bool g_watch_lag = false;

// A C stdio file closed when it goes out of scope (the /proc readers parse with fscanf).
struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using File = std::unique_ptr<std::FILE, FileCloser>;
File open_file(const std::string& path, const char* mode) {
  return File(std::fopen(path.c_str(), mode));
}

std::int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Scalars: the task index, the spin. Tensor i is access i of the task.
void body_kernel(const tmr::KernelArgs& args) {
  if (g_watch_first_start && g_first_start_ns.load(std::memory_order_relaxed) == 0) {
    std::int64_t none = 0;
    g_first_start_ns.compare_exchange_strong(none, steady_ns(), std::memory_order_relaxed);
  }
  const auto t = args.scalar<std::uint32_t>(0);
  const Task& task = g_graph->tasks[t];
  CellRef cells[kMaxCells];
  int n = 0;
  for (int a = 0; a < task.accesses; ++a) {
    Cell* const base = static_cast<Cell*>(args.tensor(a).data());
    for (int c = 0; c < task.access[a].count; ++c)
      cells[n++] = {base + c, task.access[a].mode};
  }
  run_body(t, args.scalar<std::uint64_t>(1), cells, n);
}

// body_kernel with PEERS_TMR_LAG: notes the task this worker finished and where, after it ran.
// A kernel of its own, so the plain body has no test for it.
void body_kernel_lagged(const tmr::KernelArgs& args) {
  body_kernel(args);
  thread_local const int slot = g_lag_slots.fetch_add(1, std::memory_order_relaxed) % kLagSlots;
  g_last_done[slot].task.store(args.scalar<std::uint32_t>(0), std::memory_order_relaxed);
  g_last_done[slot].used.store(true, std::memory_order_relaxed);
  g_last_done[slot].cpu.store(sched_getcpu(), std::memory_order_relaxed);
}

// The host-fitted default configuration. TMR_* variables (TMR_DUAL_SLOT, TMR_PARALLEL_FOR, ...)
// still apply, for experiments.
tmr::RuntimeConfig two_core_config() {
  tmr::RuntimeConfig cfg;
  cfg.fit_host();
  // PEERS_TMR_DUMP needs the recorded events too, so it turns recording on by itself.
  cfg.record_events =
      std::getenv("PEERS_TMR_TRACE") != nullptr || std::getenv("PEERS_TMR_DUMP") != nullptr;
  if (const char* spin = std::getenv("PEERS_TMR_SPIN")) {  // polls before an idle thread parks
    cfg.spin_before_park = static_cast<std::uint32_t>(std::strtoul(spin, nullptr, 10));
  }
  return cfg.apply_env();
}

// CPU time of the calling thread (the orchestrator's, inside the orchestration).
double thread_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return 1e9 * static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec);
}

// Page faults of the calling thread so far (minor: a first touch of fresh memory; Linux
// RUSAGE_THREAD, 0 elsewhere), to tell the first touch of the rings from the submits' own work.
double thread_page_faults() {
#ifdef RUSAGE_THREAD
  rusage usage{};
  if (getrusage(RUSAGE_THREAD, &usage) != 0) return 0;
  return static_cast<double>(usage.ru_minflt + usage.ru_majflt);
#else
  return 0;
#endif
}

// Time the calling thread spent runnable but waiting for a CPU (Linux schedstat; 0 elsewhere).
double thread_run_delay_ns() {
  const File f = open_file("/proc/thread-self/schedstat", "r");
  if (f == nullptr) return 0;
  unsigned long long on_cpu = 0, waiting = 0;
  const int n = std::fscanf(f.get(), "%llu %llu", &on_cpu, &waiting);
  return n == 2 ? static_cast<double>(waiting) : 0;
}

// PEERS_TMR_THREADS: CPU time (schedstat, ns) and context switches of every thread of this
// process, by thread name, so a run's CPU can be split among the orchestrator, the core threads
// and the scheduler threads. Threads of one name are summed.
struct ThreadCpu {
  double cpu_ns = 0;
  double run_delay_ns = 0;  // runnable, waiting for a CPU (schedstat's second field)
  double switches = 0;
  double parks = 0;  // voluntary context switches (a futex wait that slept)
  int threads = 0;
  int last_cpu = -1;      // the CPU it last ran on (/proc stat field 39); -2: several threads
  double migrations = 0;  // se.nr_migrations (/proc sched, where the kernel has it)
};
std::map<std::string, ThreadCpu> threads_cpu() {
  std::map<std::string, ThreadCpu> out;
  const std::unique_ptr<DIR, int (*)(DIR*)> dir(opendir("/proc/self/task"), &closedir);
  if (dir == nullptr) return out;
  while (const dirent* e = readdir(dir.get())) {
    if (e->d_name[0] == '.') continue;
    const std::string base = std::string("/proc/self/task/") + e->d_name;
    char name[64] = {};
    if (const File f = open_file(base + "/comm", "r")) {
      if (std::fgets(name, sizeof name, f.get()) == nullptr) name[0] = 0;
    }
    std::string comm(name);
    while (!comm.empty() && comm.back() == '\n')
      comm.pop_back();
    unsigned long long on_cpu = 0, waiting = 0, slices = 0;
    if (const File f = open_file(base + "/schedstat", "r")) {
      if (std::fscanf(f.get(), "%llu %llu %llu", &on_cpu, &waiting, &slices) != 3)
        on_cpu = waiting = slices = 0;
    }
    unsigned long long voluntary = 0;
    if (const File f = open_file(base + "/status", "r")) {
      char line[128];
      while (std::fgets(line, sizeof line, f.get()) != nullptr) {
        if (std::sscanf(line, "voluntary_ctxt_switches: %llu", &voluntary) == 1) break;
      }
    }
    if (const File f = open_file(base + "/stat", "r")) {
      char buf[1024];
      const std::size_t n = std::fread(buf, 1, sizeof buf - 1, f.get());
      buf[n] = 0;
      // Fields after the command's closing parenthesis: state is field 3, processor field 39.
      if (const char* p = std::strrchr(buf, ')')) {
        int field = 2, cpu = -1;
        for (const char* q = p + 1; *q != 0; ++q) {
          if (*q == ' ' && ++field == 39) {
            cpu = std::atoi(q + 1);
            break;
          }
        }
        ThreadCpu& t = out[comm];
        t.last_cpu = ++t.threads == 1 ? cpu : -2;
      }
    }
    if (const File f = open_file(base + "/sched", "r")) {
      char line[160];
      while (std::fgets(line, sizeof line, f.get()) != nullptr) {
        double m = 0;
        if (std::sscanf(line, "se.nr_migrations : %lf", &m) == 1) {
          out[comm].migrations += m;
          break;
        }
      }
    }
    out[comm].cpu_ns += static_cast<double>(on_cpu);
    out[comm].run_delay_ns += static_cast<double>(waiting);
    out[comm].switches += static_cast<double>(slices);
    out[comm].parks += static_cast<double>(voluntary);
  }
  return out;
}

// PEERS_TMR_THREADS: each CPU this process may run on, as /proc/stat counts it (ns, from
// USER_HZ ticks: 10 ms on Linux), to tell a CPU that sat idle during a run (tmr's threads waiting
// on each other) from one other processes held (a loaded host).
struct CpuTime {
  double idle_ns = 0;  // idle and iowait
  double busy_ns = 0;  // user, nice, system, irq, softirq, steal
};
std::map<int, CpuTime> allowed_cpus_time() {
  std::map<int, CpuTime> out;
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) return out;
  const double tick_ns = 1e9 / static_cast<double>(sysconf(_SC_CLK_TCK));
  std::ifstream stat("/proc/stat");
  std::string line;
  while (std::getline(stat, line)) {
    int cpu = -1;
    unsigned long long v[8] = {};  // user nice system idle iowait irq softirq steal
    if (std::sscanf(line.c_str(), "cpu%d %llu %llu %llu %llu %llu %llu %llu %llu", &cpu, &v[0],
                    &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) != 9 ||
        cpu < 0 || cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, &allowed)) {
      continue;
    }
    out[cpu] = {static_cast<double>(v[3] + v[4]) * tick_ns,
                static_cast<double>(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) * tick_ns};
  }
  return out;
}

double quantile_of(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  const auto k = static_cast<std::size_t>(q * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}
double median_of(std::vector<double> v) {
  if (v.empty()) return 0;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
  return v[v.size() / 2];
}

// PEERS_TMR_TRACE: where a task's time goes, as medians over the run (for docs/peers.md).
void print_latencies(const tmr::Trace& trace) {
  std::vector<double> wait_dispatch, to_start, run, to_retire, core_gap;
  std::vector<std::uint64_t> last_end(64, 0);
  for (const tmr::SubtaskEvent& s : trace.subtasks) {
    wait_dispatch.push_back(double(s.dispatch_ns) - double(trace.tasks[s.task_sequence].ready_ns));
    to_start.push_back(double(s.start_ns) - double(s.dispatch_ns));
    run.push_back(double(s.end_ns) - double(s.start_ns));
    to_retire.push_back(double(s.retire_ns) - double(s.end_ns));
  }
  std::vector<tmr::SubtaskEvent> by_start = trace.subtasks;
  std::sort(by_start.begin(), by_start.end(),
            [](const auto& a, const auto& b) { return a.start_ns < b.start_ns; });
  for (const tmr::SubtaskEvent& s : by_start) {
    if (last_end[s.core % 64] != 0)
      core_gap.push_back(double(s.start_ns) - double(last_end[s.core % 64]));
    last_end[s.core % 64] = s.end_ns;
  }
  std::fprintf(stderr,
               "    tmr latencies (median ns): ready->dispatch %.0f, dispatch->start %.0f, "
               "run %.0f, end->retire %.0f, core idle between tasks %.0f\n",
               median_of(wait_dispatch), median_of(to_start), median_of(run), median_of(to_retire),
               median_of(core_gap));
  // By how each subtask reached its core: the finishing core's own step (early hand-off), a
  // pending slot (staged), or another thread's step (the other worker's, the orchestrator's or
  // the scheduler thread's): their share and ready->start median / 90th percentile.
  std::vector<double> by_kind[3], placed[3], noticed[3];
  for (const tmr::SubtaskEvent& s : trace.subtasks) {
    const int kind = s.early_handoff ? 0 : s.staged ? 1 : 2;
    const double ready = double(trace.tasks[s.task_sequence].ready_ns);
    by_kind[kind].push_back(double(s.start_ns) - ready);
    placed[kind].push_back(double(s.dispatch_ns) - ready);
    noticed[kind].push_back(double(s.start_ns) - double(s.dispatch_ns));
  }
  const double n = std::max<double>(1.0, double(trace.subtasks.size()));
  std::fprintf(stderr,
               "    tmr ready->start by route (share, median / p90 ns): early hand-off %.2f %.0f / "
               "%.0f, staged %.2f %.0f / %.0f, another thread's step %.2f %.0f / %.0f\n",
               double(by_kind[0].size()) / n, median_of(by_kind[0]), quantile_of(by_kind[0], 0.9),
               double(by_kind[1].size()) / n, median_of(by_kind[1]), quantile_of(by_kind[1], 0.9),
               double(by_kind[2].size()) / n, median_of(by_kind[2]), quantile_of(by_kind[2], 0.9));
  // The same routes split at the dispatch: ready -> dispatch (waiting to be placed) and dispatch ->
  // start (a staged task waiting behind the running one, or a placed core noticing its word).
  std::fprintf(
      stderr,
      "    tmr by route, median ready->dispatch / dispatch->start ns: early hand-off %.0f / "
      "%.0f, staged %.0f / %.0f, another thread's step %.0f / %.0f\n",
      median_of(placed[0]), median_of(noticed[0]), median_of(placed[1]), median_of(noticed[1]),
      median_of(placed[2]), median_of(noticed[2]));
}

// PEERS_TMR_DUMP=PATH: every subtask of the last run as CSV, for offline
// analysis of the schedule (who ran what when, and how it got there).
void dump_trace(const tmr::Trace& trace, const char* path) {
  const File f = open_file(path, "w");
  if (f == nullptr) {
    throw std::runtime_error(std::string("PEERS_TMR_DUMP: cannot write ") + path +
                             "; give a path in a writable folder");
  }
  std::fprintf(f.get(),
               "task,core,submit,ready,dispatch,start,end,retire,early,staged,producers\n");
  for (const tmr::SubtaskEvent& s : trace.subtasks) {
    const tmr::TaskEvent& t = trace.tasks[s.task_sequence];
    std::string producers;
    for (const std::uint64_t p : t.producers)
      producers += (producers.empty() ? "" : " ") + std::to_string(p);
    std::fprintf(
        f.get(), "%llu,%u,%llu,%llu,%llu,%llu,%llu,%llu,%d,%d,%s\n",
        static_cast<unsigned long long>(s.task_sequence), unsigned{s.core},
        static_cast<unsigned long long>(t.submit_ns), static_cast<unsigned long long>(t.ready_ns),
        static_cast<unsigned long long>(s.dispatch_ns), static_cast<unsigned long long>(s.start_ns),
        static_cast<unsigned long long>(s.end_ns), static_cast<unsigned long long>(s.retire_ns),
        int{s.early_handoff}, int{s.staged}, producers.c_str());
  }
}

class TmrSystem final : public System {
 public:
  // `loops`: write the graph's regular loop as a parallel_for (tmr-pf), as a user would; the
  // runtime still infers every edge, from a proven loop template instead of per-task lookups.
  explicit TmrSystem(bool loops)
      : runtime_(two_core_config()), name_(loops ? "tmr-pf" : "tmr"), loops_(loops) {
    g_watch_lag = std::getenv("PEERS_TMR_LAG") != nullptr;
    kernel_ = runtime_.kernels().add("body", tmr::CoreType::aiv,
                                     g_watch_lag ? &body_kernel_lagged : &body_kernel);
    // Recording takes the orchestrator off its plain submit path (submit_plain) and stamps every
    // task on every thread: session 47 measured 2-3x the orchestrator's CPU a task at a 1 us spin
    // on attention, and a far lower efficiency. Say so where the figures are printed.
    if (two_core_config().record_events) {
      std::fprintf(stderr,
                   "tmr: recording events (PEERS_TMR_DUMP or PEERS_TMR_TRACE): submits take the "
                   "recording path, so tmr's times and efficiencies are not those of a plain "
                   "run\n");
    }
  }

  std::string name() const override { return name_; }
  double last_submit_ns() const override { return last_submit_ns_; }
  double last_orchestrator_wait_share() const override { return last_wait_share_; }

  void prepare(const Graph& graph, Data&) override {
    transient_.assign(graph.buffers.size(), {});
    for (std::size_t b = 0; b < graph.buffers.size(); ++b) {
      if (graph.buffers[b].transient) transient_[b].resize(graph.buffers[b].cells);
    }
  }

  std::uint64_t execute(const Graph& graph, Data& data, std::uint64_t spin_ns) override {
    g_graph = &graph;
    double orchestrator_cpu_ns = 0;
    double orchestrator_delay_ns = 0;
    double orchestrator_faults = 0;
    std::int64_t orchestration_start_ns = 0;
    std::int64_t orchestration_end_ns = 0;
    g_watch_first_start = show_stats_;
    g_first_start_ns.store(0, std::memory_order_relaxed);
    const std::map<std::string, ThreadCpu> threads_before =
        show_threads_ ? threads_cpu() : std::map<std::string, ThreadCpu>{};
    const std::map<int, CpuTime> cpus_before =
        show_threads_ ? allowed_cpus_time() : std::map<int, CpuTime>{};
    const tmr::RunResult result =
        runtime_.run([&](tmr::Orchestrator& o, const tmr::OrchestrationArgs&) {
          struct CpuTimer {  // also when a submit throws
            double* cpu;
            double* delay;
            double* faults;
            double cpu_start = thread_cpu_ns();
            double delay_start = thread_run_delay_ns();
            double faults_start = thread_page_faults();
            ~CpuTimer() {
              *cpu = thread_cpu_ns() - cpu_start;
              *delay = thread_run_delay_ns() - delay_start;
              *faults = thread_page_faults() - faults_start;
            }
          } timer{&orchestrator_cpu_ns, &orchestrator_delay_ns, &orchestrator_faults};
          orchestration_start_ns = steady_ns();
          struct EndStamp {  // also when a submit throws
            std::int64_t* end;
            ~EndStamp() { *end = steady_ns(); }
          } end_stamp{&orchestration_end_ns};
          std::vector<tmr::Tensor> buffers;
          for (std::size_t b = 0; b < graph.buffers.size(); ++b) {
            buffers.push_back(
                graph.buffers[b].transient
                    ? tmr::Tensor()
                    : tmr::Tensor::wrap(data.buffer(b), {graph.buffers[b].cells}, tmr::DType::i32));
          }
          if (g_watch_lag) lags_.reserve(graph.size() / kLagEvery + 1);  // no growth while timed
          if (loops_ && graph.loops.iterations > 0) {
            submit_loops(o, graph, buffers, spin_ns);
            return;
          }
          for (std::uint32_t first = 0; first < graph.size(); first += kScopeTasks) {
            TMR_SCOPE(o);
            const std::uint32_t last = std::min<std::uint32_t>(graph.size(), first + kScopeTasks);
            for (std::uint32_t t = first; t < last; ++t) {
              submit(o, graph, buffers, t, spin_ns);
              if (g_watch_lag && t % kLagEvery == 0) sample_lag(t);
            }
          }
        });
    if (!result.ok()) throw std::runtime_error("tmr run failed: " + result.status.to_string());
    if (g_watch_lag) print_lag(graph.size(), orchestrator_cpu_ns);
    last_submit_ns_ = 1e3 * (result.stats.orchestration_us - result.stats.orchestrator_blocked_us);
    const double runnable_ns = orchestrator_cpu_ns + orchestrator_delay_ns;
    last_wait_share_ = runnable_ns > 0 ? orchestrator_delay_ns / runnable_ns : -1;
    if (result.trace) {
      print_latencies(*result.trace);
      if (const char* path = std::getenv("PEERS_TMR_DUMP")) dump_trace(*result.trace, path);
    }
    if (show_threads_) {
      const double n = static_cast<double>(graph.size());
      std::fprintf(stderr,
                   "    tmr threads (CPU ns / waiting for a CPU ns / switches / of which sleeps, "
                   "per task):");
      double process_cpu_ns = 0;
      for (const auto& [comm, after] : threads_cpu()) {
        const auto before = threads_before.find(comm);
        const ThreadCpu b = before == threads_before.end() ? ThreadCpu{} : before->second;
        process_cpu_ns += after.cpu_ns - b.cpu_ns;
        std::fprintf(stderr, " %s %.0f / %.0f / %.3f / %.3f", comm.c_str(),
                     (after.cpu_ns - b.cpu_ns) / n, (after.run_delay_ns - b.run_delay_ns) / n,
                     (after.switches - b.switches) / n, (after.parks - b.parks) / n);
      }
      std::fprintf(stderr, "\n    tmr threads' last CPU (migrations in the run):");
      for (const auto& [comm, after] : threads_cpu()) {
        const auto before = threads_before.find(comm);
        const double m0 = before == threads_before.end() ? 0 : before->second.migrations;
        std::fprintf(stderr, " %s cpu%d (%.0f)", comm.c_str(), after.last_cpu,
                     after.migrations - m0);
      }
      std::fprintf(stderr, "\n");
      // Whole ticks: a run shorter than a few hundred ms gives a coarse split.
      double busy_ns = 0;
      std::fprintf(stderr, "    tmr CPUs (ns a task, /proc/stat ticks): idle");
      for (const auto& [cpu, after] : allowed_cpus_time()) {
        const auto before = cpus_before.find(cpu);
        const CpuTime b = before == cpus_before.end() ? CpuTime{} : before->second;
        busy_ns += after.busy_ns - b.busy_ns;
        std::fprintf(stderr, " cpu%d %.0f", cpu, (after.idle_ns - b.idle_ns) / n);
      }
      std::fprintf(stderr, ", busy with other processes %.0f\n",
                   std::max(0.0, busy_ns - process_cpu_ns) / n);
    }
    if (show_stats_) {
      const tmr::RunStats& s = result.stats;
      std::fprintf(
          stderr,
          "    tmr stats: wall %.0f us, orchestration %.0f us, orchestrator blocked "
          "%.0f us, orchestrator CPU %.0f us, orchestrator waiting for a CPU %.0f us, "
          "scheduler busy %.0f us, taken back from a core that had not latched %llu, "
          "orchestrator steps placing work %llu (gate held %llu), waiting %llu, orchestrator page "
          "faults %.0f\n",
          s.wall_us, s.orchestration_us, s.orchestrator_blocked_us, orchestrator_cpu_ns / 1e3,
          orchestrator_delay_ns / 1e3, s.scheduler_us,
          static_cast<unsigned long long>(s.unlatched_taken_back),
          static_cast<unsigned long long>(s.orchestrator_placement_steps),
          static_cast<unsigned long long>(s.orchestrator_placements_gate_held),
          static_cast<unsigned long long>(s.orchestrator_wait_steps), orchestrator_faults);
      const std::int64_t first = g_first_start_ns.load(std::memory_order_relaxed);
      std::fprintf(stderr,
                   "    tmr first kernel started %.1f us into the orchestration, which took "
                   "%.1f us\n",
                   first == 0 ? -1.0 : 1e-3 * static_cast<double>(first - orchestration_start_ns),
                   1e-3 * static_cast<double>(orchestration_end_ns - orchestration_start_ns));
      if (s.loops != 0) {
        std::fprintf(stderr,
                     "    tmr parallel_for: %llu loops (%llu analysed), %llu of %llu iterations "
                     "and %llu tasks from the template, %llu fallbacks\n",
                     static_cast<unsigned long long>(s.loops),
                     static_cast<unsigned long long>(s.loops_analysed),
                     static_cast<unsigned long long>(s.loop_iterations_analysed),
                     static_cast<unsigned long long>(s.loop_iterations),
                     static_cast<unsigned long long>(s.loop_tasks_analysed),
                     static_cast<unsigned long long>(s.loop_fallbacks));
        for (const auto& [reason, count] : s.loop_fallback_reasons)
          std::fprintf(stderr, "      fallback: %s (%llu)\n", reason.c_str(),
                       static_cast<unsigned long long>(count));
      }
    }
    return 0;
  }

 private:
  // PEERS_TMR_LAG: submitted - the latest task any worker finished (graph order), at submit t.
  void sample_lag(std::uint32_t t) {
    std::uint32_t done = 0;
    bool any = false;
    const int mine = sched_getcpu();
    for (int k = 0; k < kLagSlots; ++k) {
      const LastDone& d = g_last_done[k];
      if (!d.used.load(std::memory_order_relaxed)) continue;
      any = true;
      if (d.cpu.load(std::memory_order_relaxed) == mine) ++same_cpu_[k];
      ++seen_[k];
      done = std::max(done, d.task.load(std::memory_order_relaxed));
    }
    lags_.push_back(any && done <= t ? static_cast<double>(t - done) : static_cast<double>(t));
  }
  void print_lag(std::size_t tasks, double orchestrator_cpu_ns) {
    // tmr-pf submits through parallel_for, which this loop does not sample: say so rather than
    // print a lag of 0, which would read as lockstep.
    if (lags_.empty()) {
      std::fprintf(stderr, "    tmr lag: not sampled (only tmr's plain submits are)\n");
      return;
    }
    std::fprintf(stderr,
                 "    tmr lag (tasks submitted ahead of the latest finished one, %zu samples): "
                 "p10 %.0f median %.0f p90 %.0f; orchestrator CPU %.0f ns a task\n",
                 lags_.size(), quantile_of(lags_, 0.1), median_of(lags_), quantile_of(lags_, 0.9),
                 orchestrator_cpu_ns / static_cast<double>(tasks));
    std::fprintf(stderr,
                 "    tmr workers' last task on the orchestrator's CPU (share of samples):");
    bool any_worker = false;
    for (int k = 0; k < kLagSlots; ++k) {
      if (seen_[k] != 0) std::fprintf(stderr, " w%d %.2f", k, same_cpu_[k] / seen_[k]);
      any_worker = any_worker || seen_[k] != 0;
      same_cpu_[k] = seen_[k] = 0;
    }
    // A short run on a busy host can reach every sample before any worker finished a task.
    std::fprintf(stderr, "%s\n", any_worker ? "" : " none (no worker had finished a task)");
    // Transparent huge pages backing this process's anonymous memory now (the rings' records
    // ask for them: Ring::Ring), and its mappings that have any.
    if (const File f = open_file("/proc/self/smaps", "r")) {
      char line[256], range[64] = {};
      unsigned long long total_kb = 0, kb = 0;
      std::fprintf(stderr, "    tmr huge pages:");
      while (std::fgets(line, sizeof line, f.get()) != nullptr) {
        if ((line[0] >= '0' && line[0] <= '9') || (line[0] >= 'a' && line[0] <= 'f')) {
          std::sscanf(line, "%63s", range);
        } else if (std::sscanf(line, "AnonHugePages: %llu kB", &kb) == 1 && kb != 0) {
          total_kb += kb;
          std::fprintf(stderr, " %s %llu kB", range, kb);
        }
      }
      std::fprintf(stderr, "; total %llu kB\n", total_kb);
    }
    lags_.clear();
    for (LastDone& d : g_last_done) {
      d.used.store(false, std::memory_order_relaxed);
      d.task.store(0, std::memory_order_relaxed);
    }
  }

  // The graph's loop nest with its `iterations` loop as a parallel_for. One scope per outer
  // iteration holds that iteration's fresh outputs (the attention intermediates); graphs without
  // fresh outputs need no scope, their tasks retire as soon as they and their consumers are done.
  void submit_loops(tmr::Orchestrator& o, const Graph& graph,
                    const std::vector<tmr::Tensor>& buffers, std::uint64_t spin_ns) {
    const LoopNest& nest = graph.loops;
    for (std::uint32_t outer = 0; outer < nest.outer; ++outer) {
      TMR_SCOPE(o);
      o.parallel_for(nest.iterations, [&](tmr::Orchestrator& lo, std::int64_t i) {
        const auto first =
            (outer * nest.iterations + static_cast<std::uint32_t>(i)) * nest.per_iteration;
        for (std::uint32_t k = 0; k < nest.per_iteration; ++k)
          submit(lo, graph, buffers, first + k, spin_ns);
      });
    }
  }

  void submit(tmr::Orchestrator& o, const Graph& graph, const std::vector<tmr::Tensor>& buffers,
              std::uint32_t t, std::uint64_t spin_ns) {
    const Task& task = graph.tasks[t];
    tmr::Args args;
    const Access* fresh[kMaxAccesses];  // accesses that are `out`, in argument order
    int nfresh = 0;
    for (int a = 0; a < task.accesses; ++a) {
      const Access& acc = task.access[a];
      if (graph.buffers[acc.buffer].transient) {
        if (acc.mode == Mode::read) {
          args.in(transient_[acc.buffer][acc.begin]);
        } else {
          args.out(tmr::TensorSpec({acc.count}, tmr::DType::i32));
          fresh[nfresh++] = &acc;
        }
        continue;
      }
      // The view built straight in its argument slot (Args' view overloads): one copy of the
      // 104-byte descriptor, not two (a view, then the argument).
      const tmr::Tensor& whole = buffers[acc.buffer];
      const std::uint32_t count = acc.count;
      switch (acc.mode) {
        case Mode::read:
          args.in(whole, {count}, {acc.begin});
          break;
        case Mode::write:
          args.out_existing(whole, {count}, {acc.begin});
          break;
        case Mode::read_write:
          args.inout(whole, {count}, {acc.begin});
          break;
      }
    }
    args.scalar(t).scalar(spin_ns);
    const tmr::TaskOutputs outputs = o.submit_aiv(kernel_, args);
    for (int i = 0; i < nfresh && i < outputs.size(); ++i) {
      transient_[fresh[i]->buffer][fresh[i]->begin] = outputs[i];
    }
  }

  tmr::Runtime runtime_;
  const std::string name_;
  const bool loops_;
  double last_submit_ns_ = -1;
  double last_wait_share_ = -1;
  const bool show_stats_ = std::getenv("PEERS_TMR_STATS") != nullptr;      // per-run RunStats
  const bool show_threads_ = std::getenv("PEERS_TMR_THREADS") != nullptr;  // per-thread CPU
  std::vector<double> lags_;
  double same_cpu_[kLagSlots] = {};
  double seen_[kLagSlots] = {};
  tmr::KernelId kernel_ = tmr::kNoKernel;
  // The ring-allocated tensor holding each cell of a transient buffer, once written.
  std::vector<std::vector<tmr::Tensor>> transient_;
};

}  // namespace

std::unique_ptr<System> make_tmr_system() {
  return std::make_unique<TmrSystem>(false);
}
std::unique_ptr<System> make_tmr_loops_system() {
  return std::make_unique<TmrSystem>(true);
}

}  // namespace peers
