// How the profile outputs name tasks, subtasks and core lanes, and what kind of task each is.
#pragma once

#include <string>

#include "tmr/kernel.hpp"
#include "tmr/trace.hpp"

namespace tmr::profile {

enum class TaskKind : std::uint8_t { aic, aiv, mix, alloc };
std::string_view task_kind_name(TaskKind kind);

// AIC or AIV for a single-kernel task, MIX when several slots run kernels, alloc for a hidden
// alloc task (no kernel).
TaskKind task_kind(const TaskEvent& task, const KernelRegistry& kernels);

// The registered name, "kernel<id>" for an unknown id, "alloc" for kNoKernel.
std::string kernel_name(const KernelRegistry& kernels, KernelId id);

// "qk_matmul #12" (kernel and sequence), "qk+softmax #12" for a MIX task, "x4" appended for an
// SPMD task of 4 blocks.
std::string task_label(const TaskEvent& task, const KernelRegistry& kernels);

// One core's share: "qk_matmul #12" or, for an SPMD task, "qk_matmul #12 b3/4".
std::string subtask_label(const TaskEvent& task, const SubtaskEvent& subtask,
                          const KernelRegistry& kernels);

// The lane of a core within its cluster: 0 AIC, 1 AIV0, 2 AIV1 (cores are numbered as the engine
// does: AIC c is core c, AIV s of cluster c is core clusters + 2c + s).
int lane_in_cluster(const SubtaskEvent& subtask, int clusters);
inline constexpr int kLanesPerCluster = 3;

// "cluster 3 AIC", "cluster 3 AIV1".
std::string lane_name(int cluster, int lane);
// The short form for narrow labels: "c3 AIC".
std::string short_lane_name(int cluster, int lane);

}  // namespace tmr::profile
