#include "tmr/profile/chrome_trace.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <ostream>

#include "tmr/profile/task_naming.hpp"

namespace tmr::profile {

namespace {

using nlohmann::json;

double us(std::uint64_t ns) {
  return static_cast<double>(ns) / 1e3;
}

// Where a flow arrow attaches: a lane and a time inside one of its complete events.
struct Anchor {
  int pid = kRuntimeProcess;
  int tid = kOrchestratorThread;
  std::uint64_t ts_ns = 0;
};

// The middle of [begin, end]: strictly inside a non-empty slice, so viewers bind the flow event
// to that slice and not to a neighbour that ends or starts at the same instant.
std::uint64_t middle(std::uint64_t begin, std::uint64_t end) {
  return begin + (end - begin) / 2;
}

json metadata(const char* what, int pid, int tid, const std::string& name) {
  return {{"ph", "M"}, {"name", what}, {"pid", pid}, {"tid", tid}, {"args", {{"name", name}}}};
}

json sort_index(const char* what, int pid, int tid, int index) {
  return {
      {"ph", "M"}, {"name", what}, {"pid", pid}, {"tid", tid}, {"args", {{"sort_index", index}}}};
}

}  // namespace

void write_chrome_trace(std::ostream& out, const Trace& trace, const KernelRegistry& kernels) {
  json events = json::array();

  // Lanes: the runtime process first, then one process per cluster with AIC, AIV0, AIV1.
  events.push_back(metadata("process_name", kRuntimeProcess, 0, "runtime"));
  events.push_back(sort_index("process_sort_index", kRuntimeProcess, 0, 0));
  events.push_back(metadata("thread_name", kRuntimeProcess, kOrchestratorThread, "orchestrator"));
  events.push_back(sort_index("thread_sort_index", kRuntimeProcess, kOrchestratorThread, 0));
  for (int t = 0; t < trace.scheduler_threads; ++t) {
    events.push_back(metadata("thread_name", kRuntimeProcess, scheduler_tid(t),
                              "scheduler " + std::to_string(t)));
    events.push_back(sort_index("thread_sort_index", kRuntimeProcess, scheduler_tid(t), 1 + t));
  }
  for (int c = 0; c < trace.clusters; ++c) {
    events.push_back(metadata("process_name", cluster_pid(c), 0, "cluster " + std::to_string(c)));
    events.push_back(sort_index("process_sort_index", cluster_pid(c), 0, 1 + c));
    for (int lane = 0; lane < kLanesPerCluster; ++lane) {
      events.push_back(metadata("thread_name", cluster_pid(c), lane, lane_name(c, lane)));
      events.push_back(sort_index("thread_sort_index", cluster_pid(c), lane, lane));
    }
  }

  // The orchestrator: each task from the previous submit to its own.
  std::vector<Anchor> anchor_in(trace.tasks.size());
  std::vector<Anchor> anchor_out(trace.tasks.size());
  std::uint64_t previous_submit = 0;
  for (std::size_t i = 0; i < trace.tasks.size(); ++i) {
    const TaskEvent& task = trace.tasks[i];
    const std::uint64_t begin = std::min(previous_submit, task.submit_ns);
    previous_submit = task.submit_ns;
    const Anchor anchor{kRuntimeProcess, kOrchestratorThread, middle(begin, task.submit_ns)};
    anchor_in[i] = anchor_out[i] = anchor;
    events.push_back({{"ph", "X"},
                      {"name", "submit " + task_label(task, kernels)},
                      {"cat", "submit"},
                      {"pid", kRuntimeProcess},
                      {"tid", kOrchestratorThread},
                      {"ts", us(begin)},
                      {"dur", us(task.submit_ns - begin)},
                      {"args",
                       {{"sequence", task.sequence},
                        {"kind", task_kind_name(task_kind(task, kernels))},
                        {"blocks", task.block_count},
                        {"producers", std::vector<std::uint64_t>(task.producers)}}}});
  }

  // Cores and schedulers. A kernel task's arrows leave its last-ending subtask and enter its
  // first-starting one.
  std::vector<std::uint64_t> first_start(trace.tasks.size(), ~std::uint64_t{0});
  std::vector<std::uint64_t> last_end(trace.tasks.size(), 0);
  std::vector<bool> has_subtask(trace.tasks.size(), false);
  for (const SubtaskEvent& s : trace.subtasks) {
    if (s.task_sequence >= trace.tasks.size()) continue;
    const TaskEvent& task = trace.tasks[s.task_sequence];
    const std::string label = subtask_label(task, s, kernels);
    const int pid = cluster_pid(s.cluster);
    const int tid = lane_in_cluster(s, trace.clusters);
    const KernelId kernel = s.slot < 3 ? task.kernels[s.slot] : kNoKernel;
    events.push_back(
        {{"ph", "X"},
         {"name", label},
         {"cat", s.core_type == CoreType::aic ? "aic" : "aiv"},
         {"pid", pid},
         {"tid", tid},
         {"ts", us(s.start_ns)},
         {"dur", us(s.end_ns - s.start_ns)},
         {"args",
          {{"kernel", kernel_name(kernels, kernel)},
           {"sequence", s.task_sequence},
           {"block", s.block},
           {"blocks", task.block_count},
           {"core", s.core},
           {"scheduler_thread", s.scheduler_thread},
           {"start_ns", s.start_ns},
           {"end_ns", s.end_ns},
           {"ready_us", us(task.ready_ns)},
           {"dispatch_us", us(s.dispatch_ns)},
           {"retire_us", us(s.retire_ns)},
           {"head_ns", static_cast<double>(s.start_ns) - static_cast<double>(s.dispatch_ns)},
           {"staged", s.staged},
           {"tail_ns", static_cast<double>(s.retire_ns) - static_cast<double>(s.end_ns)}}}});
    if (s.staged) {
      // Pre-staged into the core's pending slot: a mark on the core's lane where it was staged
      // (its wait there is dispatch_us .. ts of the slice).
      events.push_back({{"ph", "i"},
                        {"s", "t"},
                        {"name", "staged " + label},
                        {"cat", "staged"},
                        {"pid", pid},
                        {"tid", tid},
                        {"ts", us(s.dispatch_ns)},
                        {"args",
                         {{"waited_ns", static_cast<double>(s.start_ns) -
                                            static_cast<double>(s.dispatch_ns)}}}});
    }
    const int sched = scheduler_tid(s.scheduler_thread);
    const std::string where = " -> " + short_lane_name(s.cluster, tid);
    events.push_back({{"ph", "i"},
                      {"s", "t"},
                      {"name", "dispatch " + label + where},
                      {"cat", "dispatch"},
                      {"pid", kRuntimeProcess},
                      {"tid", sched},
                      {"ts", us(s.dispatch_ns)}});
    events.push_back({{"ph", "i"},
                      {"s", "t"},
                      {"name", "retire " + label},
                      {"cat", "retire"},
                      {"pid", kRuntimeProcess},
                      {"tid", sched},
                      {"ts", us(s.retire_ns)}});

    const std::uint64_t seq = s.task_sequence;
    const Anchor here{pid, tid, middle(s.start_ns, s.end_ns)};
    if (!has_subtask[seq] || s.start_ns < first_start[seq]) {
      first_start[seq] = s.start_ns;
      anchor_in[seq] = here;
    }
    if (!has_subtask[seq] || s.end_ns >= last_end[seq]) {
      last_end[seq] = s.end_ns;
      anchor_out[seq] = here;
    }
    has_subtask[seq] = true;
  }

  // One flow pair per dependency edge.
  std::uint64_t flow_id = 0;
  for (std::size_t i = 0; i < trace.tasks.size(); ++i) {
    const TaskEvent& task = trace.tasks[i];
    for (const std::uint64_t producer : task.producers) {
      if (producer >= trace.tasks.size()) continue;
      ++flow_id;
      const Anchor& from = anchor_out[producer];
      const Anchor& to = anchor_in[i];
      events.push_back({{"ph", "s"},
                        {"id", flow_id},
                        {"name", "dependency"},
                        {"cat", "dependency"},
                        {"pid", from.pid},
                        {"tid", from.tid},
                        {"ts", us(from.ts_ns)},
                        {"args", {{"producer", producer}, {"consumer", task.sequence}}}});
      events.push_back({{"ph", "f"},
                        {"bp", "e"},
                        {"id", flow_id},
                        {"name", "dependency"},
                        {"cat", "dependency"},
                        {"pid", to.pid},
                        {"tid", to.tid},
                        {"ts", us(to.ts_ns)},
                        {"args", {{"producer", producer}, {"consumer", task.sequence}}}});
    }
  }

  const json document = {{"traceEvents", std::move(events)},
                         {"displayTimeUnit", "ns"},
                         {"otherData",
                          {{"generator", "tmr"},
                           {"clusters", trace.clusters},
                           {"scheduler_threads", trace.scheduler_threads},
                           {"tasks", trace.tasks.size()},
                           {"subtasks", trace.subtasks.size()}}}};
  out << document.dump() << "\n";
}

}  // namespace tmr::profile
