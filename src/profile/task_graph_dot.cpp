#include "tmr/profile/task_graph_dot.hpp"

#include <ostream>
#include <string>

#include "tmr/profile/task_naming.hpp"

namespace tmr::profile {

namespace {

// Kind colours: cube and vector work apart at a glance, MIX distinct from both.
const char* fill_of(TaskKind kind) {
  switch (kind) {
    case TaskKind::aic:
      return "#9ecae1";
    case TaskKind::aiv:
      return "#a1d99b";
    case TaskKind::mix:
      return "#cbc9e2";
    case TaskKind::alloc:
      return "white";
  }
  return "white";
}

std::string quoted(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

}  // namespace

void write_task_graph_dot(std::ostream& out, const Trace& trace, const KernelRegistry& kernels) {
  out << "// tmr task dependency graph: " << trace.tasks.size()
      << " tasks. Render with: dot -Tsvg graph.dot -o graph.svg\n"
      << "digraph tmr_tasks {\n"
      << "  rankdir=LR;\n"
      << "  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\", fontsize=10];\n"
      << "  edge [color=\"#555555\", arrowsize=0.6];\n";
  // The key: one sample node per kind, kept apart from the tasks.
  out << "  subgraph cluster_legend {\n    label=\"kinds\"; fontname=\"Helvetica\";\n";
  for (const TaskKind kind : {TaskKind::aic, TaskKind::aiv, TaskKind::mix, TaskKind::alloc}) {
    out << "    legend_" << task_kind_name(kind) << " [label=" << quoted(task_kind_name(kind))
        << ", fillcolor=" << quoted(fill_of(kind))
        << (kind == TaskKind::alloc ? ", style=\"rounded,dashed\"" : "") << "];\n";
  }
  out << "  }\n";
  for (std::size_t i = 0; i < trace.tasks.size(); ++i) {
    const TaskEvent& task = trace.tasks[i];
    const TaskKind kind = task_kind(task, kernels);
    out << "  t" << i << " [label=" << quoted(task_label(task, kernels))
        << ", fillcolor=" << quoted(fill_of(kind));
    if (kind == TaskKind::alloc) out << ", style=\"rounded,dashed\"";
    out << "];\n";
  }
  for (std::size_t i = 0; i < trace.tasks.size(); ++i) {
    for (const std::uint64_t producer : trace.tasks[i].producers) {
      out << "  t" << producer << " -> t" << i << ";\n";
    }
  }
  out << "}\n";
}

}  // namespace tmr::profile
