// The dispatch policy seam: every decision about WHERE and IN WHICH ORDER ready work goes, and
// nothing about how it gets there. The scheduler's mechanism (scheduler/) asks this unit three
// things: the order of placement passes in a step, whether a task may be pre-staged into a busy
// core's pending slot, and which unit (cluster or core) of a thread takes a task. Changing a
// policy (e.g. MIX pre-staging, issue 12) means changing this unit only.
#pragma once

#include <cstdint>
#include <span>

#include "core/scheduler/core_slots.hpp"
#include "core/task.hpp"
#include "tmr/config.hpp"

namespace tmr::detail {

// Where a placement pass puts work: a core's running slot (it must be idle) or its pending slot
// (it runs something latched and has nothing staged).
enum class SlotTarget : std::uint8_t { idle, pending };

struct PlacementPass {
  TaskShape shape;
  SlotTarget target;
};

// The three cores of one cluster, as global core indices.
struct ClusterCores {
  int aic;
  int aiv[2];
};

// The cores one scheduler thread may place on: its clusters, and the whole slot table (only
// the entries of those clusters are read).
struct PlacementView {
  std::span<const CoreSlot> cores;
  std::span<const ClusterCores> clusters;
  std::span<const int> owned_clusters;
  // Per core, when its running subtask is expected to end (scheduler clock, ns; 0 for an idle
  // core or no estimate yet). Empty: no estimates, first fit.
  std::span<const std::uint64_t> expected_end_ns = {};
};

class DispatchPolicy {
 public:
  // `dual_slot` as the engine resolved it for its platform (DualSlotPolicy::resolved_for); an
  // unset `mix` stages no MIX block.
  explicit DispatchPolicy(const DualSlotPolicy& dual_slot);

  // The passes one scheduler step makes, in order. Idle cores before pending slots, so a
  // pre-staged task never waits behind a busy core while one of this thread's cores is idle;
  // MIX first among idle passes (widest first: it needs several cores of one cluster, which
  // single-core tasks would otherwise fragment); AIC/AIV order alternates between threads so
  // neither shape starves when both queues are long.
  std::span<const PlacementPass> staging_order(int thread) const;

  // Whether `task` may be pre-staged into a pending slot. Start-together tasks never are: their
  // blocks must start at the same moment, which a busy core cannot promise. MIX tasks only when
  // `dual_slot.mix` (their idle cores take the running slot, busy ones the pending slot).
  // Inline: the workers' staging asks it once per task (an out-of-line call there was ~11
  // instructions of a task on the peers' independent graph).
  bool may_prestage(const TaskSlot& task) const {
    return !task.sync_start && (task.shape != TaskShape::mix || stage_mix_);
  }
  bool stages_mix() const { return stage_mix_; }
  // Whether a staged MIX block whose parts all still wait may be taken back and placed again
  // when a cluster that can run it now is idle (stranding, docs/design.md).
  bool takes_back_mix() const { return take_back_mix_; }

  // A unit of the view with room for one block of a task of `shape` / `active_mask` in `target`
  // slots: a cluster index (AIC, MIX) or an AIV core index; -1 when there is none. An AIC or AIV
  // block takes no core held for a waiting MIX task (CoreSlot::mix_reserved). A MIX block
  // in a pending pass takes each core it uses that is idle, or stageable and not running a part
  // of a MIX task that still has a part pending (the deadlock rule, docs/design.md); among the
  // clusters that fit it takes the one expected to free first (the latest expected end of the
  // busy cores it uses, issue 12 / the reference's #2279), first fit on ties or without
  // estimates.
  static int find_unit(const PlacementView& view, TaskShape shape, std::uint8_t active_mask,
                       SlotTarget target);
  // The cluster to hold for a MIX task of `active_mask` that could not be placed ("Reserved for
  // MIX", docs/design.md): the one nearest to fitting, i.e. with the most of the cores it uses
  // already usable (idle, or with `staging` stageable behind work that ends by itself), then the
  // one whose busy cores it uses are expected to free first (with estimates), then first fit.
  // -1 when every cluster has a core held for a cohort.
  static int reserve_unit(const PlacementView& view, std::uint8_t active_mask, bool staging);
  // False when no cluster of the view has two cores a staged MIX part could use (every MIX task
  // has at least two parts): the staged MIX pass then pops nothing (a pop and push-back per step
  // is scheduler time for nothing, e.g. while the cores have not ACKed yet).
  static bool may_have_mix_room(const PlacementView& view);
  // How many blocks of such a task could start on idle units of the view right now. A MIX task
  // needs only the cores its active_mask names; an AIC or AIV task no core held for a MIX task.
  static int count_idle_units(const PlacementView& view, TaskShape shape, std::uint8_t active_mask);

 private:
  PlacementPass orders_[2][2 * kShapeCount];  // at most an idle and a pending pass per shape
  int order_length_ = 0;
  bool stage_mix_ = false;
  bool take_back_mix_ = false;
};

}  // namespace tmr::detail
