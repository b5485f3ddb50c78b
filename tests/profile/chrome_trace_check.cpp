#include "profile/chrome_trace_check.hpp"

#include <algorithm>
#include <map>
#include <tuple>
#include <vector>

#include "tmr/profile/chrome_trace.hpp"
#include "tmr/profile/task_naming.hpp"

namespace tmr::testing {

namespace {

using nlohmann::json;
using Lane = std::pair<int, int>;  // pid, tid

constexpr double kEpsilonUs = 1e-6;

struct Slice {
  double begin_us = 0;
  double end_us = 0;
  std::uint64_t sequence = 0;
  std::uint64_t start_ns = 0;
  std::uint64_t end_ns = 0;
};

// The task of the complete event on `lane` that contains `ts`, or -1.
std::int64_t task_at(const std::map<Lane, std::vector<Slice>>& slices, const Lane& lane, double ts,
                     std::uint64_t wanted) {
  const auto it = slices.find(lane);
  if (it == slices.end()) return -1;
  std::int64_t found = -1;
  for (const Slice& s : it->second) {
    if (ts + kEpsilonUs < s.begin_us || ts - kEpsilonUs > s.end_us) continue;
    found = static_cast<std::int64_t>(s.sequence);
    if (s.sequence == wanted) return found;
  }
  return found;
}

}  // namespace

std::string check_chrome_trace(const json& document, const Trace& trace) {
  if (!document.contains("traceEvents") || !document["traceEvents"].is_array()) {
    return "no traceEvents array";
  }
  std::map<Lane, std::vector<Slice>> slices;
  // (sequence, block, pid, tid) -> complete events on core lanes.
  std::map<std::tuple<std::uint64_t, std::uint32_t, int, int>, int> core_events;
  std::size_t core_event_count = 0;
  std::map<std::uint64_t, std::vector<const json*>> flows;  // id -> its events
  for (const json& e : document["traceEvents"]) {
    if (!e.contains("ph") || !e.contains("pid") || !e.contains("tid")) {
      return "an event without ph/pid/tid: " + e.dump();
    }
    const std::string ph = e["ph"];
    const Lane lane{e["pid"].get<int>(), e["tid"].get<int>()};
    if (ph == "X") {
      Slice s;
      s.begin_us = e["ts"].get<double>();
      s.end_us = s.begin_us + e["dur"].get<double>();
      s.sequence = e["args"]["sequence"].get<std::uint64_t>();
      if (lane.first != profile::kRuntimeProcess) {
        ++core_event_count;
        s.start_ns = e["args"]["start_ns"].get<std::uint64_t>();
        s.end_ns = e["args"]["end_ns"].get<std::uint64_t>();
        ++core_events[{s.sequence, e["args"]["block"].get<std::uint32_t>(), lane.first,
                       lane.second}];
        const std::string name = e["name"];
        const std::string kernel = e["args"]["kernel"];
        if (name.find(kernel) == std::string::npos ||
            name.find("#" + std::to_string(s.sequence)) == std::string::npos) {
          return "event name '" + name + "' does not say kernel " + kernel + " and #sequence";
        }
      }
      slices[lane].push_back(s);
    } else if (ph == "s" || ph == "f") {
      flows[e["id"].get<std::uint64_t>()].push_back(&e);
    }
  }

  // One complete event per subtask, on its core's lane.
  if (core_event_count != trace.subtasks.size()) {
    return std::to_string(core_event_count) + " complete events on core lanes for " +
           std::to_string(trace.subtasks.size()) + " subtasks";
  }
  for (const SubtaskEvent& s : trace.subtasks) {
    const auto key = std::tuple{s.task_sequence, s.block, profile::cluster_pid(s.cluster),
                                profile::lane_in_cluster(s, trace.clusters)};
    const auto it = core_events.find(key);
    if (it == core_events.end() || it->second != 1) {
      return "subtask of task " + std::to_string(s.task_sequence) + " block " +
             std::to_string(s.block) + " has " +
             std::to_string(it == core_events.end() ? 0 : it->second) +
             " complete events on the lane of core " + std::to_string(s.core);
    }
  }

  // No overlap on a core lane (integer ns, and the microsecond figures a viewer uses).
  for (auto& [lane, list] : slices) {
    if (lane.first == profile::kRuntimeProcess) continue;
    std::sort(list.begin(), list.end(),
              [](const Slice& a, const Slice& b) { return a.start_ns < b.start_ns; });
    for (std::size_t i = 1; i < list.size(); ++i) {
      if (list[i - 1].end_ns > list[i].start_ns ||
          list[i - 1].end_us > list[i].begin_us + kEpsilonUs) {
        return "tasks " + std::to_string(list[i - 1].sequence) + " and " +
               std::to_string(list[i].sequence) + " overlap on lane " + std::to_string(lane.first) +
               "/" + std::to_string(lane.second);
      }
    }
  }

  // One flow pair per edge, bound to the producer's and the consumer's complete events.
  std::map<std::pair<std::uint64_t, std::uint64_t>, int> edges_seen;
  std::size_t edges = 0;
  for (const TaskEvent& t : trace.tasks)
    edges += t.producers.size();
  if (flows.size() != edges) {
    return std::to_string(flows.size()) + " flow ids for " + std::to_string(edges) + " edges";
  }
  for (const auto& [id, events] : flows) {
    if (events.size() != 2 || (*events[0])["ph"] != "s" || (*events[1])["ph"] != "f") {
      return "flow " + std::to_string(id) + " is not one 's' followed by one 'f'";
    }
    const json& s = *events[0];
    const json& f = *events[1];
    if (f.value("bp", "") != "e") return "flow " + std::to_string(id) + " 'f' lacks bp=e";
    const std::uint64_t producer = s["args"]["producer"];
    const std::uint64_t consumer = s["args"]["consumer"];
    if (f["args"]["producer"] != producer || f["args"]["consumer"] != consumer) {
      return "flow " + std::to_string(id) + " ends disagree on the edge";
    }
    const auto bound = [&](const json& e, std::uint64_t wanted) {
      return task_at(slices, {e["pid"].get<int>(), e["tid"].get<int>()}, e["ts"].get<double>(),
                     wanted) == static_cast<std::int64_t>(wanted);
    };
    if (!bound(s, producer)) {
      return "flow " + std::to_string(id) + " starts outside producer " + std::to_string(producer);
    }
    if (!bound(f, consumer)) {
      return "flow " + std::to_string(id) + " ends outside consumer " + std::to_string(consumer);
    }
    ++edges_seen[{producer, consumer}];
  }
  for (const TaskEvent& t : trace.tasks) {
    for (const std::uint64_t p : t.producers) {
      if (edges_seen[{p, t.sequence}] < 1) {
        return "edge " + std::to_string(p) + " -> " + std::to_string(t.sequence) + " has no flow";
      }
    }
  }
  return "";
}

}  // namespace tmr::testing
