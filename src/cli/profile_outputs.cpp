#include "cli/profile_outputs.hpp"

#include "cli/output_files.hpp"

#include <filesystem>
#include <functional>

#include "tmr/profile/chrome_trace.hpp"
#include "tmr/profile/swimlane_svg.hpp"
#include "tmr/profile/task_graph_dot.hpp"
#include "tmr/profile/trace_stats.hpp"

namespace tmr::cli {

namespace {

bool write_file(const std::string& path, const std::string& what,
                const std::function<void(std::ostream&)>& write, std::ostream& out,
                std::ostream& err) {
  const std::string problem = write_output_file(path, write);
  if (!problem.empty()) {
    err << "tmr run: cannot write the " << what << " to '" << path << "': " << problem << "\n";
    return false;
  }
  out << "  " << what << ": " << path << "\n";
  return true;
}

}  // namespace

std::string profile_path(const std::string& path, const std::string& case_name, bool per_case) {
  if (!per_case) return path;
  const std::filesystem::path p(path);
  std::filesystem::path named = p.parent_path() / p.stem();
  named += "." + case_name + p.extension().string();
  return named.string();
}

bool write_profile_outputs(const CaseResult& result, const RunOptions& options,
                           const KernelRegistry& kernels, bool per_case, std::ostream& out,
                           std::ostream& err) {
  if (!result.trace) {
    err << "tmr run: case " << result.name << " recorded no trace (it failed before its first "
        << "round finished); no profile output written\n";
    return false;
  }
  const Trace& trace = *result.trace;
  bool ok = true;
  if (options.stats) {
    out << "  statistics of round 1 (times per subtask, in us):\n";
    profile::print_trace_stats(out, profile::compute_trace_stats(trace, kernels));
    out << "  MIX blocks taken back from a pending slot to an idle cluster: "
        << result.mix_blocks_taken_back << "\n";
  }
  if (!options.trace_path.empty()) {
    ok &= write_file(
        profile_path(options.trace_path, result.name, per_case), "trace",
        [&](std::ostream& o) { profile::write_chrome_trace(o, trace, kernels); }, out, err);
  }
  if (!options.swimlane_path.empty()) {
    profile::SwimlaneOptions swimlane;
    swimlane.title = options.example + " / " + result.name + " (round 1)";
    ok &= write_file(
        profile_path(options.swimlane_path, result.name, per_case), "swimlane",
        [&](std::ostream& o) { profile::write_swimlane_svg(o, trace, kernels, swimlane); }, out,
        err);
  }
  if (!options.graph_path.empty()) {
    ok &= write_file(
        profile_path(options.graph_path, result.name, per_case), "graph",
        [&](std::ostream& o) { profile::write_task_graph_dot(o, trace, kernels); }, out, err);
  }
  return ok;
}

}  // namespace tmr::cli
