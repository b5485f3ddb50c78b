#include "core/orchestrator_core.hpp"

#include <algorithm>
#include <cstring>
#include <sstream>

#include "core/engine.hpp"

namespace tmr::detail {
namespace {

constexpr std::uint64_t kOutputAlign = 64;
constexpr std::uint64_t kPollNs = 1'000'000;  // re-check a blocked condition every 1 ms

std::uint64_t align_up(std::uint64_t value, std::uint64_t alignment) {
  return (value + alignment - 1) / alignment * alignment;
}

std::string task_name(TaskId id) {
  return "r" + std::to_string(id.ring()) + ":" + std::to_string(id.local());
}

// Fills `bytes` with copies of one element of `element_size` bytes, doubling the filled prefix.
void fill_pattern(std::byte* data, std::uint64_t bytes, std::uint64_t bits,
                  std::size_t element_size) {
  if (bytes == 0) return;
  std::memcpy(data, &bits, std::min<std::uint64_t>(element_size, bytes));
  std::uint64_t filled = element_size;
  while (filled < bytes) {
    const std::uint64_t chunk = std::min(filled, bytes - filled);
    std::memcpy(data + filled, data, chunk);
    filled += chunk;
  }
}

}  // namespace

OrchestratorCore::OrchestratorCore(Engine& engine)
    : engine_(engine), map_(engine.ring_pointers(), kRingCount), loops_(engine, map_) {}

void OrchestratorCore::begin_run() {
  map_.reset();
  loops_.reset();
  scope_tasks_.clear();
  scope_starts_.assign(1, 0);  // the outermost scope, depth 0
  std::fill(std::begin(open_scope_tasks_), std::end(open_scope_tasks_), 0u);
  std::fill(std::begin(open_scope_heap_), std::end(open_scope_heap_), 0u);
  std::fill(std::begin(cleaned_), std::end(cleaned_), 0u);
  producers_.clear();
  sequence_ = kernel_tasks_ = inline_tasks_ = blocked_ns_ = 0;
  task_events_.clear();
}

void OrchestratorCore::end_orchestration() {
  const std::size_t unbalanced = scope_starts_.size() - 1;
  while (scope_starts_.size() > 1)
    scope_end();
  if (unbalanced != 0 && !fatal()) {
    fail(ErrorCode::scope_error,
         std::to_string(unbalanced) +
             " scope(s) were still open when the orchestration returned; pair every "
             "scope_begin() with scope_end(), or use TMR_SCOPE / Orchestrator::scope()");
  }
  // The outermost scope.
  const std::size_t start = scope_starts_.back();
  for (std::size_t i = start; i < scope_tasks_.size(); ++i)
    release_scope_task(scope_tasks_[i]);
  scope_tasks_.resize(start);
  scope_starts_.clear();
}

void OrchestratorCore::fail(ErrorCode code, const std::string& message) {
  engine_.latch_error(code, message);
}
bool OrchestratorCore::fatal() const {
  return engine_.has_error();
}
Status OrchestratorCore::status() const {
  return engine_.error();
}
const KernelRegistry& OrchestratorCore::kernels() const {
  return engine_.kernels();
}

// ---------------------------------------------------------------- scopes

void OrchestratorCore::scope_begin() {
  if (static_cast<int>(scope_starts_.size()) > kMaxScopeDepth) {
    if (!fatal()) {
      fail(ErrorCode::scope_error, "scope nesting deeper than " + std::to_string(kMaxScopeDepth) +
                                       "; close scopes before opening more");
    }
    return;
  }
  scope_starts_.push_back(scope_tasks_.size());
}

void OrchestratorCore::scope_end() {
  if (scope_starts_.size() <= 1) {
    if (!fatal()) {
      fail(ErrorCode::scope_error,
           "scope_end() without a matching scope_begin(); pair them or use TMR_SCOPE");
    }
    return;
  }
  // Scope ends run even after an error, so bookkeeping stays balanced for the drain.
  const std::size_t start = scope_starts_.back();
  engine_.platform().orchestrator_work(OrchestratorWork::scope_end,
                                       static_cast<std::uint32_t>(scope_tasks_.size() - start));
  for (std::size_t i = start; i < scope_tasks_.size(); ++i)
    release_scope_task(scope_tasks_[i]);
  scope_tasks_.resize(start);
  scope_starts_.pop_back();
}

// ---------------------------------------------------------------- parallel_for

void OrchestratorCore::parallel_for(std::int64_t n, bool scope_per_iteration, LoopBody body,
                                    void* context, Orchestrator& orchestrator) {
  if (fatal()) return;
  if (n < 0) {
    fail(ErrorCode::invalid_args,
         "parallel_for over " + std::to_string(n) + " iterations; the count must be zero or more");
    return;
  }
  // Balanced even when the body throws (the run then reports the exception).
  struct Unwind {
    OrchestratorCore& core;
    bool scope_open = false;
    ~Unwind() {
      if (scope_open) core.scope_end();
      core.loops_.end_loop();
    }
  } unwind{*this};
  loops_.begin_loop(n, sequence_);
  for (std::int64_t i = 0; i < n && !fatal(); ++i) {
    loops_.begin_iteration(i);
    if (scope_per_iteration) {
      scope_begin();
      unwind.scope_open = true;
    }
    body(context, orchestrator, i);
    if (scope_per_iteration) {
      unwind.scope_open = false;
      scope_end();
    }
    loops_.end_iteration();
  }
}

void OrchestratorCore::release_scope_task(TaskSlot* task) {
  Ring& ring = *task->ring;
  Ring::SlotInfo& info = ring.info(task->id.local());
  info.scope_open = false;
  --open_scope_tasks_[ring.index()];
  open_scope_heap_[ring.index()] -= info.heap_bytes;
  if (ring.release(*task)) engine_.platform().notify_progress();
}

// ---------------------------------------------------------------- submit

bool OrchestratorCore::validate_kernels(const MixKernels& kernels, Plan* plan) {
  const KernelId ids[3] = {kernels.aic, kernels.aiv0, kernels.aiv1};
  static constexpr const char* kSlotNames[3] = {"AIC", "AIV0", "AIV1"};
  for (int s = 0; s < 3; ++s) {
    if (ids[s] == kNoKernel) continue;
    const KernelInfo* info = engine_.kernels().find(ids[s]);
    if (info == nullptr) {
      fail(ErrorCode::unknown_kernel, "kernel id " + std::to_string(ids[s]) + " given for the " +
                                          kSlotNames[s] +
                                          " slot is not registered; register it with "
                                          "KernelRegistry::add before running");
      return false;
    }
    const CoreType wanted = s == kSlotAic ? CoreType::aic : CoreType::aiv;
    if (info->core_type != wanted) {
      fail(ErrorCode::invalid_args,
           "kernel '" + info->name + "' runs on " + std::string(core_type_name(info->core_type)) +
               " cores but was given for the " + kSlotNames[s] + " slot; pass it as the " +
               (wanted == CoreType::aic ? "AIV0/AIV1" : "AIC") + " kernel instead");
      return false;
    }
    plan->fns[s] = info->fn;
    plan->kernels[s] = ids[s];
    plan->mask = static_cast<std::uint8_t>(plan->mask | (1u << s));
  }
  if (plan->mask == 0) {
    fail(ErrorCode::invalid_args, "a task needs at least one kernel (AIC, AIV0 or AIV1)");
    return false;
  }
  if (plan->mask == 4) {  // a lone second-AIV kernel runs as an ordinary AIV task
    plan->fns[kSlotAiv0] = plan->fns[kSlotAiv1];
    plan->kernels[kSlotAiv0] = plan->kernels[kSlotAiv1];
    plan->fns[kSlotAiv1] = nullptr;
    plan->kernels[kSlotAiv1] = kNoKernel;
    plan->mask = 2;
  }
  const int active = active_slot_count(plan->mask);
  plan->shape = active >= 2 ? TaskShape::mix : (plan->mask == 1 ? TaskShape::aic : TaskShape::aiv);
  return true;
}

bool OrchestratorCore::validate_args(const Args& args, const Plan& plan) {
  if (args.has_error()) {
    fail(ErrorCode::invalid_args, args.error());
    return false;
  }
  if (args.block_count() < 1) {
    fail(ErrorCode::invalid_args,
         "a task needs at least one block; use Args::blocks(n) with n >= 1");
    return false;
  }
  if (!plan.inline_task && args.is_sync_start() && args.block_count() > 1) {
    const std::uint32_t capacity = plan.shape == TaskShape::aiv
                                       ? 2u * static_cast<std::uint32_t>(engine_.cluster_count())
                                       : static_cast<std::uint32_t>(engine_.cluster_count());
    if (args.block_count() > capacity) {
      fail(ErrorCode::sync_start_invalid,
           "a start-together task has " + std::to_string(args.block_count()) +
               " blocks but the machine can run at most " + std::to_string(capacity) +
               " at once; use fewer blocks, drop sync_start, or configure more clusters");
      return false;
    }
  }
  for (int i = 0; i < args.tensor_count(); ++i) {
    const ArgTag tag = args.tag(i);
    if (plan.inline_task && tag != ArgTag::out) {
      fail(ErrorCode::invalid_args, "alloc() takes only out(...) tensors; argument " +
                                        std::to_string(i) + " is " +
                                        std::string(arg_tag_name(tag)));
      return false;
    }
    if (tag != ArgTag::out && !args.tensor(i).valid()) {
      fail(ErrorCode::invalid_args, "tensor argument " + std::to_string(i) + " (" +
                                        std::string(arg_tag_name(tag)) +
                                        ") is a null tensor; pass a tensor from wrap(), an "
                                        "orchestration argument or an earlier submit");
      return false;
    }
  }
  if (plan.inline_task && args.scalar_count() != 0) {
    fail(ErrorCode::invalid_args, "alloc() takes no scalars");
    return false;
  }
  return true;
}

TaskOutputs OrchestratorCore::submit(const MixKernels& kernels, const Args& args) {
  if (fatal()) return {};
  Plan plan;
  if (!validate_kernels(kernels, &plan) || !validate_args(args, plan)) return {};
  return submit_planned(plan, args);
}

TaskOutputs OrchestratorCore::alloc(const Args& args) {
  if (fatal()) return {};
  Plan plan;
  plan.inline_task = true;
  if (!validate_args(args, plan)) return {};
  return submit_planned(plan, args);
}

void OrchestratorCore::add_producer(TaskSlot* slot, TaskId id) {
  Ring::SlotInfo& info = slot->ring->info(id.local());
  if (info.stamp == stamp_) return;
  info.stamp = stamp_;
  producers_.push_back(slot);
}

bool OrchestratorCore::add_creator(const Tensor& tensor, int arg_index) {
  const TaskId owner = tensor.producer();
  if (!owner.valid()) return true;
  if (owner.ring() >= kRingCount) {
    fail(ErrorCode::invalid_args, "tensor argument " + std::to_string(arg_index) +
                                      " names an impossible producer task; build tensors "
                                      "with Tensor::wrap or take them from submit outputs");
    return false;
  }
  Ring& ring = engine_.ring(static_cast<int>(owner.ring()));
  const Ring::SlotInfo& info = ring.info(owner.local());
  if (info.id != owner || ring.is_retired(owner) || !info.scope_open) {
    fail(ErrorCode::invalid_args,
         "tensor argument " + std::to_string(arg_index) + " was created by task " +
             task_name(owner) +
             " whose scope has ended, so its buffer may already be reused; use a tensor only "
             "inside the scope that created it (allocate it in an enclosing scope, or copy it "
             "into an external tensor with out_existing)");
    return false;
  }
  add_producer(&ring.slot(owner.local()), owner);
  return true;
}

void OrchestratorCore::collect_accessors(const AccessRegion& region, AccessKind kind) {
  map_.lookup(region, kind, [this](TaskSlot* slot, TaskId id) { add_producer(slot, id); });
}

TaskOutputs OrchestratorCore::submit_planned(const Plan& plan, const Args& args) {
  if (scope_starts_.empty()) {
    fail(ErrorCode::scope_error, "submit outside any scope (after the orchestration returned)");
    return {};
  }
  const int ring_index = std::min(scope_depth(), kRingCount - 1);
  Ring& ring = engine_.ring(ring_index);
  // Covered by a parallel_for template: producers come from the template (loops/).
  const bool analysed = loops_.active() && loops_.plan_submit(plan.kernels, plan.inline_task, args);
  engine_.platform().orchestrator_work(plan.inline_task ? OrchestratorWork::alloc
                                       : analysed       ? OrchestratorWork::submit_analysed
                                                        : OrchestratorWork::submit,
                                       static_cast<std::uint32_t>(args.tensor_count()));

  // Outputs are packed into one heap range, each 64-byte aligned.
  std::uint64_t out_offsets[kMaxTensorArgs] = {};
  std::uint64_t out_total = 0;
  int out_count = 0;
  for (int i = 0; i < args.tensor_count(); ++i) {
    if (args.tag(i) != ArgTag::out) continue;
    ++out_count;
    const Tensor& spec = args.tensor(i);
    out_offsets[i] = out_total;
    out_total += align_up(spec.elements() * spec.element_size(), kOutputAlign);
  }
  // Impossible requests fail at once instead of waiting for space that can never appear.
  if (out_total > ring.heap_capacity()) {
    fail(ErrorCode::heap_ring_deadlock,
         "a task's outputs need " + std::to_string(out_total) + " bytes but ring " +
             std::to_string(ring_index) + "'s heap holds " + std::to_string(ring.heap_capacity()) +
             "; raise TMR_RING_HEAP (RuntimeConfig::ring.heap_bytes)");
    return {};
  }
  // Only tasks that create buffers are held by their scope (so their outputs stay valid while
  // the orchestration may still pass them on). A task without fresh outputs retires as soon as
  // it and its consumers are done, so long flat loops need no scopes at all.
  const bool scoped = out_count > 0 || plan.inline_task;
  if (scoped && open_scope_tasks_[ring_index] + 2 > ring.window()) {
    fail(ErrorCode::scope_deadlock,
         "open scopes on ring " + std::to_string(ring_index) + " already hold " +
             std::to_string(open_scope_tasks_[ring_index]) +
             " tasks and the ring's task window is " + std::to_string(ring.window()) +
             " (at most window-1 live); a scope's tasks are only released when it ends, so this "
             "can never fit. Raise TMR_RING_TASK_WINDOW (RuntimeConfig::ring.task_window) or "
             "split the work into smaller (nested) scopes");
    return {};
  }
  if (scoped && open_scope_heap_[ring_index] + out_total > ring.heap_capacity()) {
    fail(ErrorCode::scope_deadlock,
         "open scopes on ring " + std::to_string(ring_index) + " already hold " +
             std::to_string(open_scope_heap_[ring_index]) + " heap bytes; " +
             std::to_string(out_total) + " more exceed the ring heap of " +
             std::to_string(ring.heap_capacity()) +
             " bytes. Raise TMR_RING_HEAP (RuntimeConfig::ring.heap_bytes) or split the work "
             "into smaller (nested) scopes");
    return {};
  }

  std::uint64_t heap_offset = 0;
  std::uint64_t heap_consumed = 0;
  if (!wait_for_room(ring, out_total, &heap_offset, &heap_consumed)) return {};

  const std::uint32_t local = ring.admit(heap_consumed);
  const TaskId id(static_cast<std::uint32_t>(ring_index), local);
  TaskSlot& slot = ring.slot(local);
  TaskRecord& record = ring.record(local);
  Ring::SlotInfo& info = ring.info(local);
  const std::uint64_t sequence = sequence_++;

  slot.id = id;
  slot.sequence = sequence;
  slot.ring = &ring;
  slot.record = &record;
  slot.block_count = args.block_count();
  slot.active_mask = plan.mask;
  slot.shape = plan.shape;
  slot.sync_start = args.is_sync_start();
  slot.next_block = 0;
  slot.dep_count = 0;
  slot.dep_begin = ring.dep_top();
  slot.ready_ns.store(0, std::memory_order_relaxed);
  slot.subtasks_remaining.store(
      plan.inline_task ? 0 : args.block_count() * active_slot_count(plan.mask),
      std::memory_order_relaxed);

  // Task record: kernels, tensors (fresh outputs materialised in the heap), scalars.
  TaskOutputs outputs;
  outputs.task_ = id;
  std::byte* const heap_base = static_cast<std::byte*>(ring.heap_at(heap_offset));
  for (int s = 0; s < 3; ++s) {
    record.fns[s] = plan.fns[s];
    record.kernels[s] = plan.kernels[s];
  }
  record.tensor_count = args.tensor_count();
  record.scalar_count = args.scalar_count();
  for (int i = 0; i < args.tensor_count(); ++i) {
    if (args.tag(i) != ArgTag::out) {
      record.tensors[i] = args.tensor(i);
      continue;
    }
    const Tensor& spec = args.tensor(i);
    const std::uint64_t bytes = spec.elements() * spec.element_size();
    std::byte* const data = heap_base + out_offsets[i];
    record.tensors[i] = Tensor::make_owned(data, bytes, spec.shape(), spec.dtype(), id);
    if (args.initial_bits(i)) fill_pattern(data, bytes, *args.initial_bits(i), spec.element_size());
    std::memcpy(&outputs.storage_[static_cast<std::size_t>(outputs.count_++)], &record.tensors[i],
                sizeof(Tensor));
  }
  if (args.scalar_count() > 0) {
    std::memcpy(record.scalars, args.scalars(),
                static_cast<std::size_t>(args.scalar_count()) * sizeof(std::uint64_t));
  }

  // Producers: creators of every tensor argument, then conflicting accesses in the TensorMap —
  // or, for a task a parallel_for template covers, the template's producers (loops/).
  ++stamp_;
  producers_.clear();
  AccessRegion regions[kMaxTensorArgs];
  for (int i = 0; i < args.tensor_count(); ++i) {
    const ArgTag tag = args.tag(i);
    if (tag == ArgTag::out) continue;
    const Tensor& t = args.tensor(i);
    if (!add_creator(t, i)) break;
    if (tag == ArgTag::no_dep) continue;
    regions[i] = make_region(t);
    if (!analysed) {
      collect_accessors(regions[i], tag == ArgTag::in ? AccessKind::read : AccessKind::write);
    }
  }
  if (analysed && !fatal()) {
    loops_.collect(
        args, regions,
        [this](TaskId producer) {
          add_producer(&engine_.ring(static_cast<int>(producer.ring())).slot(producer.local()),
                       producer);
        },
        [this](const AccessRegion& region, AccessKind kind) { collect_accessors(region, kind); });
  }
  loops_.submitted(id);
  bool ok = !fatal();
  const auto producer_count = static_cast<std::uint64_t>(producers_.size());
  if (ok && producer_count > ring.dep_capacity()) {
    fail(ErrorCode::dependency_overflow,
         "a task depends on " + std::to_string(producer_count) + " earlier tasks but ring " +
             std::to_string(ring_index) + "'s dependency pool holds " +
             std::to_string(ring.dep_capacity()) +
             " records; raise TMR_RING_DEP_POOL (RuntimeConfig::ring.dep_pool)");
    ok = false;
  }
  if (ok) ok = wait_for_dep_nodes(ring, producer_count);

  // Wire: hold each producer, push this task onto its fanout list (or count it as finished).
  const std::uint64_t first_node = ring.take_dep_nodes(ok ? producer_count : 0);
  std::int32_t resolved = 0;
  std::uint32_t held = 0;
  if (plan.inline_task) {
    slot.state.store(TaskState::completed, std::memory_order_relaxed);
    slot.fanout_head.store(closed_fanout(), std::memory_order_relaxed);
    slot.release_remaining.store(1, std::memory_order_relaxed);  // its scope only
    slot.fanin_remaining.store(0, std::memory_order_relaxed);
  } else {
    slot.state.store(TaskState::pending, std::memory_order_relaxed);
    slot.fanout_head.store(nullptr, std::memory_order_relaxed);
    // Its completion, plus its scope when it creates buffers.
    slot.release_remaining.store(scoped ? 2 : 1, std::memory_order_relaxed);
    slot.fanin_remaining.store(static_cast<std::int32_t>(producer_count) + 1,
                               std::memory_order_relaxed);
    if (ok) {
      for (TaskSlot* producer : producers_) {
        if (!Ring::hold(*producer)) {
          ++resolved;  // already consumed, hence long finished
          continue;
        }
        FanoutNode& node = ring.dep_node(first_node + held++);
        node.consumer = &slot;
        node.producer = producer;
        FanoutNode* head = producer->fanout_head.load(std::memory_order_acquire);
        for (;;) {
          if (head == closed_fanout()) {
            ++resolved;
            break;
          }
          node.next = head;
          if (producer->fanout_head.compare_exchange_weak(head, &node, std::memory_order_acq_rel,
                                                          std::memory_order_acquire)) {
            break;
          }
        }
      }
    } else {
      resolved = static_cast<std::int32_t>(producer_count);  // failed: never dispatched anyway
    }
  }
  slot.dep_begin = first_node;
  slot.dep_count = held;
  if (held != 0) engine_.platform().orchestrator_work(OrchestratorWork::wire, held);
  info.dep_end = ring.dep_top();

  if (ok) {
    for (int i = 0; i < args.tensor_count(); ++i) {
      const ArgTag tag = args.tag(i);
      if (tag == ArgTag::in) map_.insert(regions[i], AccessKind::read, &slot, id, info);
      if (tag == ArgTag::inout || tag == ArgTag::out_existing) {
        map_.insert(regions[i], AccessKind::write, &slot, id, info);
      }
    }
  }

  if (scoped) {
    ++open_scope_tasks_[ring_index];
    open_scope_heap_[ring_index] += heap_consumed;
    scope_tasks_.push_back(&slot);
  } else {
    info.scope_open = false;  // creates nothing: no tensor can name it as creator
  }
  ring.publish(local);

  if (engine_.recording()) {
    TaskEvent event;
    event.id = id;
    event.sequence = sequence;
    for (int s = 0; s < 3; ++s)
      event.kernels[s] = plan.kernels[s];
    event.block_count = args.block_count();
    event.inline_task = plan.inline_task;
    event.submit_ns = engine_.now_ns();
    if (plan.inline_task) event.ready_ns = event.complete_ns = event.submit_ns;
    event.producers.reserve(producers_.size());
    for (TaskSlot* p : producers_)
      event.producers.push_back(p->sequence);
    task_events_.push_back(std::move(event));
  }

  if (plan.inline_task) {
    ++inline_tasks_;
  } else {
    ++kernel_tasks_;
    if (!ok) {
      // Never dispatched: count it finished so the drain does not wait for it.
      slot.state.store(TaskState::completed, std::memory_order_release);
      slot.fanout_head.store(closed_fanout(), std::memory_order_release);
      ring.release(slot);
      engine_.note_kernel_task_completed();
      return {};
    }
    if (slot.fanin_remaining.fetch_sub(resolved + 1, std::memory_order_acq_rel) == resolved + 1) {
      if (engine_.recording()) slot.ready_ns.store(engine_.now_ns(), std::memory_order_relaxed);
      engine_.scheduler().push_ready_global(&slot);
    }
  }
  if (!ok) return {};
  return outputs;
}

// ---------------------------------------------------------------- rings and waiting

void OrchestratorCore::sync_rings() {
  for (int r = 0; r < kRingCount; ++r) {
    Ring& ring = engine_.ring(r);
    if (ring.refresh() == 0 && cleaned_[r] == ring.retired_seen()) continue;
    for (std::uint32_t local = cleaned_[r]; local != ring.retired_seen(); ++local) {
      map_.release_task(ring.info(local));
    }
    cleaned_[r] = ring.retired_seen();
  }
}

bool OrchestratorCore::all_kernel_tasks_finished() const {
  return engine_.kernel_tasks_completed() == kernel_tasks_;
}

template <class Ready, class Describe>
bool OrchestratorCore::wait_blocked(Ready ready, Describe describe, ErrorCode code) {
  Platform& platform = engine_.platform();
  const std::uint64_t start = platform.now_ns();
  std::uint64_t last_progress = start;
  std::uint64_t last_completed = engine_.kernel_tasks_completed();
  int quiet_checks = 0;
  // Resume only after a batch of completions (or when none is left to wait for), so a full ring
  // does not turn into one sleep and one wake-up per task.
  const std::uint64_t batch = std::max<std::uint64_t>(1, engine_.ring(0).window() / 8);
  engine_.wake_orchestrator_at(std::min(last_completed + batch, kernel_tasks_));
  for (;;) {
    if (platform.wait_until([&] { return fatal() || ready(); }, kPollNs)) break;
    const std::uint64_t now = platform.now_ns();
    const std::uint64_t completed = engine_.kernel_tasks_completed();
    if (completed != last_completed) {
      last_completed = completed;
      last_progress = now;
      quiet_checks = 0;
      engine_.wake_orchestrator_at(std::min(completed + batch, kernel_tasks_));
      continue;
    }
    // Every submitted task has finished and the watermark still does not move: only the
    // orchestrator could free space (by ending scopes), and it is the one waiting.
    if (all_kernel_tasks_finished() && ++quiet_checks >= 3) {
      fail(code, describe() +
                     "; every submitted task has finished, so what remains is held by scopes "
                     "that are still open");
      break;
    }
    if (now - last_progress > static_cast<std::uint64_t>(engine_.config().stall_timeout_s * 1e9)) {
      fail(code, describe() + "; no task finished for " +
                     std::to_string(engine_.config().stall_timeout_s) +
                     " s (a kernel may never return)");
      break;
    }
  }
  engine_.wake_orchestrator_at(Engine::kNotWaiting);
  blocked_ns_ += platform.now_ns() - start;
  return !fatal();
}

bool OrchestratorCore::wait_for_room(Ring& ring, std::uint64_t bytes, std::uint64_t* offset,
                                     std::uint64_t* consumed) {
  // Reclaiming (and freeing TensorMap entries of retired tasks) is batched: every 64 submits,
  // or whenever the ring looks full.
  if (++submits_since_sync_ >= 64) {
    submits_since_sync_ = 0;
    sync_rings();
  }
  auto fits = [&] { return ring.window_has_room() && ring.heap_fits(bytes, offset, consumed); };
  if (fits()) return true;
  sync_rings();
  if (fits()) return true;
  const bool heap_short = ring.window_has_room();
  // Hysteresis: once blocked, wait for an eighth of the window (unless nothing more can finish).
  const std::uint32_t slack = ring.window() / 8;
  auto ready = [&] {
    sync_rings();
    if (!fits()) return false;
    return ring.live_tasks() + 1 + slack < ring.window() || all_kernel_tasks_finished();
  };
  auto describe = [&] {
    return std::string(heap_short ? "output heap" : "task window") + " of ring " +
           std::to_string(ring.index()) + " is full (" + describe_ring(ring) + "); raise " +
           (heap_short ? "TMR_RING_HEAP (RuntimeConfig::ring.heap_bytes)"
                       : "TMR_RING_TASK_WINDOW (RuntimeConfig::ring.task_window)") +
           " or end scopes sooner";
  };
  return wait_blocked(
      ready, describe,
      heap_short ? ErrorCode::heap_ring_deadlock : ErrorCode::flow_control_deadlock);
}

bool OrchestratorCore::wait_for_dep_nodes(Ring& ring, std::uint64_t nodes) {
  if (ring.dep_fits(nodes)) return true;
  auto ready = [&] {
    sync_rings();
    return ring.dep_fits(nodes);
  };
  auto describe = [&] {
    return "dependency pool of ring " + std::to_string(ring.index()) + " is full (" +
           std::to_string(ring.dep_used()) + " of " + std::to_string(ring.dep_capacity()) +
           " records held, " + std::to_string(nodes) + " more needed; " + describe_ring(ring) +
           "); raise TMR_RING_DEP_POOL (RuntimeConfig::ring.dep_pool) or end scopes sooner";
  };
  return wait_blocked(ready, describe, ErrorCode::dep_pool_overflow);
}

std::string OrchestratorCore::describe_ring(Ring& ring) const {
  std::ostringstream out;
  out << ring.live_tasks() << " of " << ring.window() << " task slots live, " << ring.heap_used()
      << " of " << ring.heap_capacity() << " heap bytes held, " << open_scope_tasks_[ring.index()]
      << " tasks held by open scopes";
  if (ring.live_tasks() > 0) {
    TaskSlot& oldest = ring.slot(ring.retired_seen());
    out << "; oldest live task " << describe_task(oldest);
  }
  return out.str();
}

std::string OrchestratorCore::describe_task(TaskSlot& task) const {
  std::string state;
  switch (task.state.load(std::memory_order_acquire)) {
    case TaskState::pending:
      state = "waiting for producers";
      break;
    case TaskState::ready:
      state = "ready or running";
      break;
    case TaskState::completed:
      state = "finished but still referenced";
      break;
    case TaskState::consumed:
      state = "consumed";
      break;
  }
  std::string kernels;
  for (KernelId k : task.record->kernels) {
    if (const KernelInfo* info = engine_.kernels().find(k)) {
      kernels += (kernels.empty() ? "" : "+") + info->name;
    }
  }
  if (kernels.empty()) kernels = "alloc";
  const bool scope_open = task.ring->info(task.id.local()).scope_open;
  return task_name(task.id) + " (" + kernels + ", " + state +
         (scope_open ? ", its scope is open" : "") + ")";
}

// ---------------------------------------------------------------- element access

bool OrchestratorCore::wait_producers_finished(const char* what) {
  auto finished = [&] {
    for (TaskSlot* p : producers_) {
      if (p->state.load(std::memory_order_acquire) < TaskState::completed) return false;
    }
    return true;
  };
  if (finished()) return true;
  const std::uint64_t timeout =
      static_cast<std::uint64_t>(engine_.config().tensor_wait_timeout_s * 1e9);
  Platform& platform = engine_.platform();
  const std::uint64_t start = platform.now_ns();
  engine_.wake_orchestrator_at(0);  // any completion may be the awaited one
  for (;;) {
    if (platform.wait_until([&] { return fatal() || finished(); }, kPollNs)) break;
    if (platform.now_ns() - start > timeout) {
      std::string blocking;
      for (TaskSlot* p : producers_) {
        if (p->state.load(std::memory_order_acquire) < TaskState::completed) {
          blocking = describe_task(*p);
          break;
        }
      }
      fail(ErrorCode::tensor_wait_timeout,
           std::string(what) + " waited " + std::to_string(engine_.config().tensor_wait_timeout_s) +
               " s for task " + blocking +
               "; raise RuntimeConfig::tensor_wait_timeout_s if kernels are that slow");
      break;
    }
  }
  engine_.wake_orchestrator_at(Engine::kNotWaiting);
  blocked_ns_ += platform.now_ns() - start;
  return !fatal();
}

void OrchestratorCore::read_element(const Tensor& tensor, const Shape& indices, void* out,
                                    std::size_t size) {
  std::memset(out, 0, size);
  if (fatal()) return;
  if (!tensor.valid() || size != tensor.element_size()) {
    fail(ErrorCode::invalid_args,
         tensor.valid()
             ? "get_tensor_data<T> with sizeof(T)=" + std::to_string(size) + " on a tensor of " +
                   std::string(dtype_name(tensor.dtype())) + "; use the element type of the tensor"
             : "get_tensor_data on a null tensor");
    return;
  }
  const void* address = tensor.element_address(indices);  // throws Error when out of bounds
  loops_.element_access(false);
  engine_.platform().orchestrator_work(OrchestratorWork::element_access, 1);
  ++stamp_;
  producers_.clear();
  sync_rings();
  if (!add_creator(tensor, 0)) return;
  collect_accessors(make_region(tensor), AccessKind::read);
  if (!wait_producers_finished("get_tensor_data")) return;
  std::memcpy(out, address, size);
}

void OrchestratorCore::write_element(const Tensor& tensor, const Shape& indices, const void* in,
                                     std::size_t size) {
  if (fatal()) return;
  if (!tensor.valid() || size != tensor.element_size()) {
    fail(ErrorCode::invalid_args,
         tensor.valid() ? "set_tensor_data with a value of " + std::to_string(size) +
                              " bytes on a tensor of " + std::string(dtype_name(tensor.dtype())) +
                              "; pass a value of the tensor's element type"
                        : "set_tensor_data on a null tensor");
    return;
  }
  void* const address = tensor.element_address(indices);
  loops_.element_access(true);
  engine_.platform().orchestrator_work(OrchestratorWork::element_access, 1);
  // Writers and readers of the element must be done before it changes under them.
  Shape ones;
  for (int d = 0; d < tensor.ndims(); ++d)
    ones.push_back(1);
  const Tensor element = tensor.view(ones, indices);
  ++stamp_;
  producers_.clear();
  sync_rings();
  if (!add_creator(tensor, 0)) return;
  collect_accessors(make_region(element), AccessKind::write);
  if (!wait_producers_finished("set_tensor_data")) return;
  std::memcpy(address, in, size);
}

void OrchestratorCore::wait_for(const Tensor& tensor) {
  if (fatal()) return;
  if (!tensor.valid()) {
    fail(ErrorCode::invalid_args, "wait_for on a null tensor");
    return;
  }
  ++stamp_;
  producers_.clear();
  sync_rings();
  if (!add_creator(tensor, 0)) return;
  collect_accessors(make_region(tensor), AccessKind::read);
  wait_producers_finished("wait_for");
}

}  // namespace tmr::detail
