#include "tmr/profile/task_naming.hpp"

#include <algorithm>

namespace tmr::profile {

namespace {

constexpr const char* kLaneNames[kLanesPerCluster] = {"AIC", "AIV0", "AIV1"};

}  // namespace

std::string_view task_kind_name(TaskKind kind) {
  switch (kind) {
    case TaskKind::aic:
      return "AIC";
    case TaskKind::aiv:
      return "AIV";
    case TaskKind::mix:
      return "MIX";
    case TaskKind::alloc:
      return "alloc";
  }
  return "?";
}

TaskKind task_kind(const TaskEvent& task, const KernelRegistry& kernels) {
  if (task.inline_task) return TaskKind::alloc;
  int active = 0;
  KernelId only = kNoKernel;
  for (const KernelId k : task.kernels) {
    if (k == kNoKernel) continue;
    ++active;
    only = k;
  }
  if (active == 0) return TaskKind::alloc;
  if (active > 1) return TaskKind::mix;
  // The slot says the core type; the registry agrees for a valid task but is asked in case a
  // hand-built trace put an AIV kernel in slot 0.
  if (const KernelInfo* info = kernels.find(only)) {
    return info->core_type == CoreType::aic ? TaskKind::aic : TaskKind::aiv;
  }
  return task.kernels[0] != kNoKernel ? TaskKind::aic : TaskKind::aiv;
}

std::string kernel_name(const KernelRegistry& kernels, KernelId id) {
  if (id == kNoKernel) return "alloc";
  if (const KernelInfo* info = kernels.find(id)) return info->name;
  return "kernel" + std::to_string(id);
}

std::string task_label(const TaskEvent& task, const KernelRegistry& kernels) {
  std::string name;
  if (task.inline_task) {
    name = "alloc";
  } else {
    std::vector<KernelId> seen;  // a MIX task often runs one AIV kernel on both AIVs
    for (const KernelId k : task.kernels) {
      if (k == kNoKernel || std::find(seen.begin(), seen.end(), k) != seen.end()) continue;
      seen.push_back(k);
      name += (name.empty() ? "" : "+") + kernel_name(kernels, k);
    }
    if (name.empty()) name = "alloc";
  }
  name += " #" + std::to_string(task.sequence);
  if (task.block_count > 1) name += " x" + std::to_string(task.block_count);
  return name;
}

std::string subtask_label(const TaskEvent& task, const SubtaskEvent& subtask,
                          const KernelRegistry& kernels) {
  const KernelId k = subtask.slot < 3 ? task.kernels[subtask.slot] : kNoKernel;
  std::string name = kernel_name(kernels, k) + " #" + std::to_string(task.sequence);
  if (task.block_count > 1) {
    name += " b" + std::to_string(subtask.block) + "/" + std::to_string(task.block_count);
  }
  return name;
}

int lane_in_cluster(const SubtaskEvent& subtask, int clusters) {
  if (subtask.core_type == CoreType::aic) return 0;
  const int aiv_index = static_cast<int>(subtask.core) - clusters;
  return 1 + (aiv_index >= 0 ? aiv_index % 2 : 0);
}

std::string lane_name(int cluster, int lane) {
  return "cluster " + std::to_string(cluster) + " " + kLaneNames[lane];
}

std::string short_lane_name(int cluster, int lane) {
  return "c" + std::to_string(cluster) + " " + kLaneNames[lane];
}

}  // namespace tmr::profile
