#include "harness.hpp"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string_view>

extern char** environ;

namespace peers {
namespace {

using nlohmann::ordered_json;

// Column order of the table and the JSON.
constexpr std::string_view kSystemOrder[] = {"tmr", "tmr-pf", "gomp", "libomp", "tbb", "starpu"};

bool is_tmr(std::string_view system) {
  return system.starts_with("tmr");
}

struct Options {
  bool quick = false;
  bool metg = true;
  bool wall = true;  // --no-wall: the METG points only, sized by their spin alone
  bool table = true;
  int reps = 5;
  std::string json_path;
  std::vector<std::string> graphs;   // empty: all
  std::vector<std::string> systems;  // empty: all
  std::vector<std::uint64_t> spins;  // the METG sweep's spins; empty: the standard sweep
};

std::vector<std::string> split(std::string_view list) {
  std::vector<std::string> out;
  std::stringstream in{std::string(list)};
  for (std::string item; std::getline(in, item, ',');) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

bool selected(const std::vector<std::string>& filter, std::string_view name) {
  return filter.empty() || std::find(filter.begin(), filter.end(), name) != filter.end();
}

void usage() {
  std::fprintf(stderr,
               "usage: tmr_bench_peers [--quick] [--reps N] [--no-metg] [--no-wall] [--json PATH]\n"
               "                       [--graphs independent,chain,stencil,attention,random]\n"
               "                       [--systems tmr,tmr-pf,gomp,libomp,tbb,starpu] [--no-table]\n"
               "                       [--spins NS,NS,...] (METG sweep points, ascending)\n"
               "Run it pinned to two cores: taskset -c 0,1 tmr_bench_peers\n");
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    auto value = [&]() -> std::string_view {
      if (i + 1 >= argc) throw std::invalid_argument(std::string(arg) + " needs a value");
      return argv[++i];
    };
    if (arg == "--quick") {
      o.quick = true;
    } else if (arg == "--no-metg") {
      o.metg = false;
    } else if (arg == "--no-wall") {
      o.wall = false;
    } else if (arg == "--no-table") {
      o.table = false;
    } else if (arg == "--reps") {
      o.reps = std::max(1, std::atoi(std::string(value()).c_str()));
    } else if (arg == "--json") {
      o.json_path = value();
    } else if (arg == "--graphs") {
      o.graphs = split(value());
      for (const std::string& g : o.graphs)
        graph_kind(g);  // validates
    } else if (arg == "--systems") {
      o.systems = split(value());
    } else if (arg == "--spins") {
      // The sweep interpolates between neighbours and stops past 50%: spins must ascend.
      for (const std::string& v : split(value())) {
        const bool digits =
            !v.empty() && v.size() <= 12 &&
            std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; });
        const std::uint64_t spin = digits ? std::stoull(v) : 0;
        if (spin == 0 || (!o.spins.empty() && spin <= o.spins.back())) {
          throw std::invalid_argument("--spins: '" + v +
                                      "' is not a positive number of ns above the one before it; "
                                      "give ascending spins, e.g. --spins 1000,4000,16000");
        }
        o.spins.push_back(spin);
      }
    } else {
      throw std::invalid_argument("unknown option " + std::string(arg));
    }
  }
  if (o.quick) o.reps = std::min(o.reps, 2);
  // Without the zero-work runs there is no wall to tabulate, and nothing left without METG. For
  // per-task counts of the METG runs alone (scripts/measure/cg_peers_threads.sh).
  if (!o.wall && (o.table || !o.metg)) {
    throw std::invalid_argument("--no-wall needs --no-table and the METG sweep");
  }
  return o;
}

std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string one, five, fifteen;
  in >> one >> five >> fifteen;
  return one + " " + five + " " + fifteen;
}

std::uint64_t cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ull +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

struct Sample {
  double wall_ns = 0, cpu_ns = 0, build_ns = 0, submit_ns = -1, wait_share = -1;
  bool ok = true;
};

// A graph with its reference checksum.
struct Workload {
  Graph graph;
  std::uint64_t reference = 0;
  explicit Workload(Graph g) : graph(std::move(g)), reference(reference_checksum(graph)) {}
};

Sample run_once(System& system, const Workload& w, Data& data, std::uint64_t spin_ns) {
  data.reset();
  system.prepare(w.graph, data);
  const std::uint64_t cpu0 = cpu_ns();
  const std::uint64_t t0 = now_ns();
  const std::uint64_t build = system.execute(w.graph, data, spin_ns);
  const std::uint64_t t1 = now_ns();
  const std::uint64_t cpu1 = cpu_ns();
  system.finish();
  Sample s{static_cast<double>(t1 - t0),
           static_cast<double>(cpu1 - cpu0),
           static_cast<double>(build),
           system.last_submit_ns(),
           system.last_orchestrator_wait_share(),
           data.checksum() == w.reference};
  if (!s.ok) {
    std::fprintf(stderr, "CHECKSUM MISMATCH: %s on %s (%zu tasks, spin %llu ns)\n",
                 system.name().c_str(), w.graph.name.c_str(), w.graph.size(),
                 static_cast<unsigned long long>(spin_ns));
  }
  return s;
}

// One warm-up, then the median of `reps` runs with empty bodies.
Figures measure_overhead(System& system, const Workload& w, int reps) {
  Data data(w.graph);
  Figures f;
  f.tasks = w.graph.size();
  f.checksum_ok = run_once(system, w, data, 0).ok;
  std::vector<double> wall, cpu, build, submit, wait_share;
  for (int r = 0; r < reps; ++r) {
    const Sample s = run_once(system, w, data, 0);
    f.checksum_ok = f.checksum_ok && s.ok;
    wall.push_back(s.wall_ns);
    cpu.push_back(s.cpu_ns);
    build.push_back(s.build_ns);
    submit.push_back(s.submit_ns);
    wait_share.push_back(s.wait_share);
  }
  const double n = static_cast<double>(f.tasks);
  f.wall_ns_per_task = median(wall) / n;
  f.cpu_ns_per_task = median(cpu) / n;
  if (system.name() == "tbb") f.build_ns_per_task = median(build) / n;
  if (submit.front() >= 0) f.submit_ns_per_task = median(submit) / n;
  if (wait_share.front() >= 0) f.orchestrator_wait_share = median(wait_share);
  return f;
}

// Parallelism the graph allows on kWorkers cores: tasks / lower bound on the makespan in tasks.
double effective_workers(const Graph& g) {
  const double n = static_cast<double>(g.size());
  return n / std::max(std::ceil(n / kWorkers), static_cast<double>(g.critical_path));
}

// The METG(50%) sweep of Task Bench (Slaughter et al., SC'20), on kWorkers cores.
//   efficiency  = ideal / wall, ideal = spin x max(ceil(tasks / workers), critical path)
//   granularity = wall x effective workers / tasks  (core time per task; = spin when e = 1)
// METG is the granularity where efficiency crosses 50%, interpolated linearly between the last
// point below and the first at or above. Spins ascend; the sweep stops two points past 50%.
class MetgSweep {
 public:
  MetgSweep(GraphKind kind, std::uint32_t full_tasks, bool quick,
            const std::vector<std::uint64_t>& spins)
      : kind_(kind),
        full_(full_tasks),
        quick_(quick),
        workers_(effective_workers(make_graph(kind, std::min(full_tasks, 4096u)))) {
    spins_ = quick ? std::vector<std::uint64_t>{2'000, 64'000}
                   : std::vector<std::uint64_t>{100,   250,    500,    1'000,  2'000,   4'000,
                                                8'000, 16'000, 32'000, 64'000, 128'000, 256'000};
    if (!spins.empty()) spins_ = spins;  // a part of the sweep, to study one granularity
  }

  void run(System& system, Figures& f) {
    struct Point {
      double granularity, efficiency;
    };
    std::vector<Point> points;
    int above = 0;
    for (const std::uint64_t spin : spins_) {
      const Workload& w = workload(spin, f.wall_ns_per_task);
      Data data(w.graph);
      std::vector<double> wall;
      for (int r = 0; r < (quick_ ? 1 : 3); ++r) {
        const Sample s = run_once(system, w, data, spin);
        f.checksum_ok = f.checksum_ok && s.ok;
        wall.push_back(s.wall_ns);
      }
      const double t = median(wall);
      const double n = static_cast<double>(w.graph.size());
      const double ideal = static_cast<double>(spin) *
                           std::max(std::ceil(n / kWorkers), double(w.graph.critical_path));
      points.push_back({t * effective_workers(w.graph) / n, ideal / t});
      std::fprintf(stderr, "    spin %7llu ns  tasks %6zu  efficiency %5.1f%%\n",
                   static_cast<unsigned long long>(spin), w.graph.size(),
                   100 * points.back().efficiency);
      if (points.back().efficiency >= 0.5 && ++above >= 2) break;
    }
    const auto first = std::find_if(points.begin(), points.end(),
                                    [](const Point& p) { return p.efficiency >= 0.5; });
    if (first == points.end()) {
      f.metg_ns = points.back().granularity;
      f.metg_bound = "at_least";
    } else if (first == points.begin()) {
      f.metg_ns = first->granularity;
      f.metg_bound = "at_most";
    } else {
      const Point lo = *(first - 1), hi = *first;
      const double a = (0.5 - lo.efficiency) / (hi.efficiency - lo.efficiency);
      f.metg_ns = lo.granularity + a * (hi.granularity - lo.granularity);
      f.metg_bound = "exact";
    }
  }

 private:
  // Sized so that a run lasts 20-40 ms given the system's measured overhead per task (the
  // issue's sizes at most, 2048 tasks at least): long enough to amortise start-up, short enough
  // to sweep every system in minutes, and the same run length for every system.
  const Workload& workload(std::uint64_t spin, double overhead_ns_per_task) {
    const double target_ns = quick_ ? 2e6 : 40e6;
    const double per_task = std::max(static_cast<double>(spin) / workers_, overhead_ns_per_task);
    // Rounded down to a power of two so that systems of similar cost share graphs.
    const auto n = std::min(full_, std::bit_floor(static_cast<std::uint32_t>(std::clamp(
                                       target_ns / std::max(per_task, 1.0), quick_ ? 256.0 : 2048.0,
                                       static_cast<double>(full_)))));
    auto it = cache_.find(n);
    if (it == cache_.end()) it = cache_.emplace(n, Workload(make_graph(kind_, n))).first;
    return it->second;
  }

  GraphKind kind_;
  std::uint32_t full_;
  bool quick_;
  double workers_;  // effective workers of this graph shape
  std::vector<std::uint64_t> spins_;
  std::map<std::uint32_t, Workload> cache_;
};

ordered_json to_json(const Figures& f) {
  ordered_json j;
  j["wall_ns_per_task"] = f.wall_ns_per_task;
  j["cpu_ns_per_task"] = f.cpu_ns_per_task;
  j["metg_ns"] = f.metg_ns >= 0 ? ordered_json(f.metg_ns) : ordered_json(nullptr);
  j["metg_bound"] = f.metg_bound;
  j["tasks"] = f.tasks;
  if (f.build_ns_per_task >= 0) j["build_ns_per_task"] = f.build_ns_per_task;
  if (f.submit_ns_per_task >= 0) j["submit_ns_per_task"] = f.submit_ns_per_task;
  if (f.orchestrator_wait_share >= 0) j["orchestrator_wait_share"] = f.orchestrator_wait_share;
  j["checksum_ok"] = f.checksum_ok;
  return j;
}

Figures from_json(const ordered_json& j) {
  Figures f;
  f.wall_ns_per_task = j.at("wall_ns_per_task").get<double>();
  f.cpu_ns_per_task = j.at("cpu_ns_per_task").get<double>();
  f.metg_ns = j.at("metg_ns").is_null() ? -1 : j.at("metg_ns").get<double>();
  f.metg_bound = j.value("metg_bound", std::string("exact"));
  f.tasks = j.value("tasks", std::uint64_t{0});
  f.build_ns_per_task = j.value("build_ns_per_task", -1.0);
  f.submit_ns_per_task = j.value("submit_ns_per_task", -1.0);
  f.orchestrator_wait_share = j.value("orchestrator_wait_share", -1.0);
  f.checksum_ok = j.value("checksum_ok", false);
  return f;
}

ordered_json to_json(const Results& results) {
  ordered_json j = ordered_json::object();
  for (const std::string_view g : kGraphNames) {
    const auto row = results.find(std::string(g));
    if (row == results.end()) continue;
    ordered_json& jr = j[std::string(g)];
    for (const std::string_view s : kSystemOrder) {
      const auto cell = row->second.find(std::string(s));
      if (cell != row->second.end()) jr[std::string(s)] = to_json(cell->second);
    }
  }
  return j;
}

// Runs the helper program (the libomp build) with our options; merges what it measured.
bool run_helper(const std::string& helper, const Options& o, Results& results) {
  if (helper.empty() || access(helper.c_str(), X_OK) != 0) {
    std::fprintf(stderr, "libomp: helper %s not built; skipped\n", helper.c_str());
    return true;
  }
  char path[] = "/tmp/tmr_bench_peers_libomp_XXXXXX";
  const int fd = mkstemp(path);
  if (fd < 0) return false;
  close(fd);
  std::vector<std::string> args = {helper, "--no-table", "--json",
                                   path,   "--reps",     std::to_string(o.reps)};
  if (o.quick) args.emplace_back("--quick");
  if (!o.metg) args.emplace_back("--no-metg");
  if (!o.wall) args.emplace_back("--no-wall");
  if (!o.graphs.empty()) {
    std::string list;
    for (const std::string& g : o.graphs)
      list += g + ",";
    args.insert(args.end(), {"--graphs", list});
  }
  std::vector<char*> argv;
  for (std::string& a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  int status = 0;
  const bool ran = posix_spawn(&pid, helper.c_str(), nullptr, nullptr, argv.data(), environ) == 0 &&
                   waitpid(pid, &status, 0) == pid;
  bool ok = ran && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  try {
    std::ifstream in(path);
    const ordered_json j = ordered_json::parse(in);
    for (const auto& [graph, row] : j.items()) {
      for (const auto& [system, cell] : row.items())
        results[graph][system] = from_json(cell);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "libomp: no results from %s: %s\n", helper.c_str(), e.what());
    ok = false;
  }
  std::remove(path);
  return ok;
}

std::string fmt_ns(double ns) {
  char buf[32];
  if (ns < 0) return "-";
  if (ns < 10'000) {
    std::snprintf(buf, sizeof buf, "%.0f", ns);
  } else if (ns < 10'000'000) {
    std::snprintf(buf, sizeof buf, "%.1fus", ns / 1e3);
  } else {
    std::snprintf(buf, sizeof buf, "%.1fms", ns / 1e6);
  }
  return buf;
}

std::string metg_text(const Figures& f) {
  if (f.metg_ns < 0) return "-";
  const std::string mark = f.metg_bound == "at_most" ? "<" : f.metg_bound == "at_least" ? ">" : "";
  return mark + fmt_ns(f.metg_ns);
}

// tmr's METG over the best peer's, where either may be a bound ("at_most" / "at_least").
std::string ratio_text(double ratio, const std::string& tmr_bound, const std::string& peer_bound) {
  const bool tmr_low = tmr_bound == "at_least", tmr_high = tmr_bound == "at_most";
  const bool peer_low = peer_bound == "at_least", peer_high = peer_bound == "at_most";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2fx", ratio);
  if ((tmr_low || peer_high) && !(tmr_high || peer_low)) return std::string(">") + buf;
  if ((tmr_high || peer_low) && !(tmr_low || peer_high)) return std::string("<") + buf;
  if (tmr_bound == "exact" && peer_bound == "exact") return buf;
  return "n/a";  // bounds in opposite directions
}

void print_table(const Results& results) {
  std::vector<std::string> systems;
  for (const std::string_view s : kSystemOrder) {
    for (const auto& [g, row] : results) {
      if (row.contains(std::string(s))) {
        systems.emplace_back(s);
        break;
      }
    }
  }
  std::printf(
      "\ncells: wall ns/task / CPU ns/task | METG(50%%) ns; ratio: tmr / best peer "
      "(< 1: tmr ahead)\n");
  std::printf("%-12s %7s", "graph", "tasks");
  for (const std::string& s : systems)
    std::printf(" %-22s", s.c_str());
  std::printf(" %s\n", "tmr/best wall | METG");
  for (const std::string_view gname : kGraphNames) {
    const auto row = results.find(std::string(gname));
    if (row == results.end()) continue;
    std::uint64_t tasks = 0;
    for (const auto& [s, f] : row->second)
      tasks = std::max(tasks, f.tasks);
    std::printf("%-12s %7llu", row->first.c_str(), static_cast<unsigned long long>(tasks));
    const Figures* best_wall = nullptr;
    const Figures* best_metg = nullptr;
    std::string best_wall_name, best_metg_name;
    for (const std::string& s : systems) {
      const auto cell = row->second.find(s);
      if (cell == row->second.end()) {
        std::printf(" %-22s", "n/a");
        continue;
      }
      const Figures& f = cell->second;
      const std::string text = fmt_ns(f.wall_ns_per_task) + "/" + fmt_ns(f.cpu_ns_per_task) +
                               " | " + metg_text(f) + (f.checksum_ok ? "" : " BAD");
      std::printf(" %-22s", text.c_str());
      if (is_tmr(s)) continue;
      if (!best_wall || f.wall_ns_per_task < best_wall->wall_ns_per_task) {
        best_wall = &f;
        best_wall_name = s;
      }
      if (f.metg_ns >= 0 && (!best_metg || f.metg_ns < best_metg->metg_ns)) {
        best_metg = &f;
        best_metg_name = s;
      }
    }
    const auto tmr = row->second.find("tmr");
    if (tmr != row->second.end() && best_wall) {
      std::printf(" %.2fx %s", tmr->second.wall_ns_per_task / best_wall->wall_ns_per_task,
                  best_wall_name.c_str());
      if (best_metg && tmr->second.metg_ns >= 0) {
        std::printf(" | %s %s",
                    ratio_text(tmr->second.metg_ns / best_metg->metg_ns, tmr->second.metg_bound,
                               best_metg->metg_bound)
                        .c_str(),
                    best_metg_name.c_str());
      }
    }
    std::printf("\n");
  }
  for (const auto& [g, row] : results) {
    for (const auto& [s, f] : row) {
      if (f.submit_ns_per_task >= 0) {
        std::printf("%s %s: orchestrator submit cost %s ns/task (not blocked on rings)", s.c_str(),
                    g.c_str(), fmt_ns(f.submit_ns_per_task).c_str());
        if (f.orchestrator_wait_share >= 0) {
          std::printf(", waiting for a CPU %.0f%% of its runnable time (%s)",
                      100 * f.orchestrator_wait_share,
                      f.orchestrator_wait_share < kSharedCpuWaitShare ? "own CPU" : "shared CPU");
        }
        std::printf("\n");
      }
    }
  }
  for (const auto& [g, row] : results) {
    const auto tbb = row.find("tbb");
    if (tbb != row.end() && tbb->second.build_ns_per_task >= 0) {
      std::printf("tbb %s: graph construction %s ns/task of the %s wall\n", g.c_str(),
                  fmt_ns(tbb->second.build_ns_per_task).c_str(),
                  fmt_ns(tbb->second.wall_ns_per_task).c_str());
    }
  }
}

}  // namespace

int run_main(int argc, char** argv, const std::vector<SystemFactory>& systems,
             const std::string& helper) {
  Options o;
  try {
    o = parse(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    usage();
    return 2;
  }
  // The graphs, their references and sweep sizes are shared by every system.
  std::vector<Workload> workloads;
  std::vector<MetgSweep> sweeps;
  for (const std::string_view gname : kGraphNames) {
    if (!selected(o.graphs, gname)) continue;
    const GraphKind kind = graph_kind(gname);
    const std::uint32_t tasks = o.quick ? 1024 : full_tasks(kind);
    workloads.emplace_back(make_graph(kind, tasks));
    sweeps.emplace_back(kind, tasks, o.quick, o.spins);
  }
  const std::string load_before = load_average();
  Results results;
  bool ok = true;
  for (const SystemFactory& factory : systems) {
    if (!selected(o.systems, factory.name)) continue;
    const std::unique_ptr<System> system = factory.make();
    for (std::size_t i = 0; i < workloads.size(); ++i) {
      const Workload& full = workloads[i];
      std::fprintf(stderr, "[%s] %s: %zu tasks\n", full.graph.name.c_str(), system->name().c_str(),
                   full.graph.size());
      Figures f;
      if (o.wall) {
        f = measure_overhead(*system, full, o.reps);
        std::fprintf(stderr, "    wall %.0f ns/task, cpu %.0f ns/task\n", f.wall_ns_per_task,
                     f.cpu_ns_per_task);
      } else {
        f.tasks = full.graph.size();  // wall and CPU stay 0: the sweep sizes runs by spin alone
      }
      if (o.metg) sweeps[i].run(*system, f);
      ok = ok && f.checksum_ok;
      results[full.graph.name][system->name()] = f;
    }
  }
  if (!helper.empty() && selected(o.systems, "libomp")) ok = run_helper(helper, o, results) && ok;
  if (o.table) {
    print_table(results);
    // Other processes on the 2 cores distort every figure; say how busy the machine was.
    std::printf("load average (1, 5, 15 min) before: %s, after: %s\n", load_before.c_str(),
                load_average().c_str());
  }
  if (!o.json_path.empty()) {
    std::ofstream out(o.json_path);
    out << to_json(results).dump(2) << "\n";
    if (!out) {
      std::fprintf(stderr, "cannot write %s\n", o.json_path.c_str());
      ok = false;
    }
  }
  if (!ok) std::fprintf(stderr, "FAILED: a system computed a wrong result (see above)\n");
  return ok ? 0 : 1;
}

}  // namespace peers
