#include "platform/sim/sim_platform.hpp"

#include <algorithm>
#include <string>

#include "core/core_runner.hpp"
#include "core/engine.hpp"
#include "core/mailbox.hpp"

namespace tmr::detail {

namespace {

// How long the event loop waits (real time) for a kernel the model says has finished. Only a
// kernel that never returns (or waits on a partner that has not started) gets near it.
constexpr int kKernelPollMs = 10;  // how often a wait for a late kernel checks the watch

}  // namespace

SimPlatform::SimPlatform(Engine& engine)
    : engine_(engine),
      config_(engine.config().sim),
      schedulers_(static_cast<std::size_t>(engine.config().scheduler_threads)),
      cores_(static_cast<std::size_t>(engine.core_count())) {
  if (!engine.config().runs_timing_only())
    workers_ = std::make_unique<sim::KernelWorkers>(engine.core_count());
}

SimPlatform::~SimPlatform() = default;

void SimPlatform::begin_run() {
  // Virtual time keeps going from the previous run (the engine measures from its run start), so
  // runs are identical relative to their start.
  queue_.clear();
  timings_ = sim::resolve_kernel_timings(config_.costs, engine_.kernels());
  for (SchedulerActor& s : schedulers_)
    s = SchedulerActor{};
  for (std::size_t core = 0; core < cores_.size(); ++core) {
    CoreActor& c = cores_[core];
    c.busy = false;
    c.waiting_for_partners = false;
    c.older_token = c.newer_token =
        engine_.mailbox(static_cast<int>(core)).dispatch.load(std::memory_order_acquire);
    c.newer_visible_ns = 0;
  }
  running_cores_ = 0;
  kernel_starts_ = 0;
  in_event_ = false;
  stepping_thread_ = -1;
  for (int t = 0; t < static_cast<int>(schedulers_.size()); ++t)
    wake_scheduler(t, orchestrator_clock_);
}

// Kernels are awaited in core_finish, which consults the engine's watch itself (it also runs
// while the orchestrator waits), so `give_up` adds nothing here.
void SimPlatform::end_run(const std::function<bool()>& /*give_up*/) {
  while (!queue_.empty())
    run_event(queue_.pop());
  orchestrator_clock_ = std::max(orchestrator_clock_, event_time_);
}

void SimPlatform::abandon() {
  if (workers_) workers_->abandon();
}

double SimPlatform::scheduler_busy_ns(int thread) const {
  return schedulers_[static_cast<std::size_t>(thread)].busy_ns;
}

void SimPlatform::orchestrator_work(OrchestratorWork work, std::uint32_t count) {
  orchestrator_clock_ += sim::orchestrator_cost_ns(config_.costs, work, count);
  run_events_until(orchestrator_clock_);
}

void SimPlatform::run_events_until(std::uint64_t time) {
  while (!queue_.empty() && queue_.top().time <= time)
    run_event(queue_.pop());
}

bool SimPlatform::wait_until(const std::function<bool()>& ready, std::uint64_t timeout_ns) {
  const std::uint64_t deadline = orchestrator_clock_ + timeout_ns;
  for (;;) {
    if (ready()) return true;
    if (queue_.empty() || queue_.top().time > deadline) {
      orchestrator_clock_ = deadline;  // nothing happens before the timeout
      return false;
    }
    const sim::Event event = queue_.pop();
    run_event(event);
    orchestrator_clock_ = std::max(orchestrator_clock_, event.time);
  }
}

void SimPlatform::run_event(const sim::Event& event) {
  in_event_ = true;
  event_time_ = event.time;
  switch (event.kind) {
    case sim::EventKind::scheduler_step:
      scheduler_step(event.index);
      break;
    case sim::EventKind::core_pickup:
      core_pickup(event.index);
      break;
    case sim::EventKind::core_finish:
      core_finish(event.index);
      break;
  }
  in_event_ = false;
}

// ---------------------------------------------------------------- schedulers

void SimPlatform::wake_scheduler(int thread, std::uint64_t time) {
  SchedulerActor& s = schedulers_[static_cast<std::size_t>(thread)];
  if (s.step_queued) return;  // it steps anyway and will see the new state
  s.step_queued = true;
  queue_.push(time, sim::EventKind::scheduler_step, thread);
}

void SimPlatform::wake_schedulers() {
  const std::uint64_t at = now_ns() + static_cast<std::uint64_t>(config_.costs.wake_ns);
  for (int t = 0; t < static_cast<int>(schedulers_.size()); ++t) {
    // A step that wakes "everyone" never wakes itself: if it made progress it steps again, and
    // if not, nothing changed that it has not already seen.
    if (t != stepping_thread_) wake_scheduler(t, at);
  }
}

std::uint32_t SimPlatform::visible_dispatch(int core) const {
  const CoreActor& c = cores_[static_cast<std::size_t>(core)];
  return now_ns() >= c.newer_visible_ns ? c.newer_token : c.older_token;
}

void SimPlatform::show_dispatch(int core, std::uint32_t token, std::uint64_t at) {
  CoreActor& c = cores_[static_cast<std::size_t>(core)];
  c.older_token = visible_dispatch(core);
  c.newer_token = token;
  c.newer_visible_ns = at;
}

void SimPlatform::notify_core(Mailbox& mailbox) {
  if (stepping_thread_ >= 0) {
    notified_cores_.push_back(mailbox.core);  // the doorbell rings when the step's writes are done
    return;
  }
  show_dispatch(mailbox.core, mailbox.dispatch.load(std::memory_order_acquire), now_ns());
  queue_.push(now_ns() + static_cast<std::uint64_t>(config_.costs.pickup_ns),
              sim::EventKind::core_pickup, mailbox.core);
}

void SimPlatform::scheduler_step(int thread) {
  SchedulerActor& me = schedulers_[static_cast<std::size_t>(thread)];
  me.step_queued = false;
  Scheduler& scheduler = engine_.scheduler();
  const Scheduler::StepCounters before = scheduler.counters(thread);
  stepping_thread_ = thread;
  notified_cores_.clear();
  const bool progress = scheduler.step(thread);
  stepping_thread_ = -1;
  const std::uint64_t cost = sim::step_cost_ns(config_.costs, before, scheduler.counters(thread));
  const std::uint64_t end = event_time_ + cost;
  for (const int core : notified_cores_) {
    show_dispatch(core, engine_.mailbox(core).dispatch.load(std::memory_order_acquire), end);
    queue_.push(end + static_cast<std::uint64_t>(config_.costs.pickup_ns),
                sim::EventKind::core_pickup, core);
  }
  notified_cores_.clear();
  if (progress) {
    me.busy_ns += static_cast<double>(cost);
    wake_scheduler(thread, end);
  }
  // Without progress the thread parks until a core's status changes or work is published.
}

// ---------------------------------------------------------------- cores

void SimPlatform::core_pickup(int core) {
  CoreActor& c = cores_[static_cast<std::size_t>(core)];
  if (c.busy) return;  // the finish picks up whatever is waiting
  const std::uint32_t token = visible_dispatch(core);
  if (token == c.last_token || token >= kReservedTokens) return;
  start_subtask(core, token);
}

void SimPlatform::start_subtask(int core, std::uint32_t token) {
  CoreActor& c = cores_[static_cast<std::size_t>(core)];
  Mailbox& m = engine_.mailbox(core);
  const std::optional<DispatchPayload> latched = latch_dispatch(m, token);
  if (!latched) return;  // the scheduler took the (pending) dispatch back before this pickup
  c.job = *latched;
  c.last_token = token;
  c.running_token = token;
  c.busy = true;
  ++running_cores_;
  c.start_ns = engine_.now_ns();
  const TaskRecord& record = *c.job.record;
  const RecordTensors tensors(record);  // rebuilt when the record names its image
  const KernelArgs args(tensors.get(), record.tensor_count, record.scalars, record.scalar_count,
                        c.job.block_index, c.job.block_count, c.job.sub_block, c.job.cluster);
  std::uint64_t duration =
      sim::kernel_duration_ns(config_.costs, timings_[static_cast<std::size_t>(c.job.kernel)],
                              m.type, args, running_cores_);
  if (config_.costs.kernel_jitter > 0) duration = jittered(duration);
  if (workers_) {
    engine_.kernel_watch().started(core, c.job.kernel, c.job.task, c.job.block_index,
                                   KernelWatch::now_ns());
    workers_->start(core, c.job);
  }
  c.duration_ns = duration;
  if (partner_unstarted(core)) {
    c.waiting_for_partners = true;  // the last partner to start schedules this finish
  } else {
    queue_.push(event_time_ + duration, sim::EventKind::core_finish, core);
    release_waiting_partners(core);
  }
  // The ACK becomes visible to the owning scheduler thread (it may now stage a pending dispatch).
  wake_scheduler(m.scheduler_thread,
                 event_time_ + static_cast<std::uint64_t>(config_.costs.fin_visible_ns));
}

std::uint64_t SimPlatform::jittered(std::uint64_t duration) {
  // splitmix64 over (seed, n-th kernel start of the run): deterministic for a seed.
  std::uint64_t z = static_cast<std::uint64_t>(config_.costs.jitter_seed) * 0x9E3779B97F4A7C15ull +
                    ++kernel_starts_ * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  const double unit = static_cast<double>(z >> 11) * 0x1.0p-53;  // [0, 1)
  const double factor = 1.0 + config_.costs.kernel_jitter * (2.0 * unit - 1.0);
  return static_cast<std::uint64_t>(static_cast<double>(duration) * factor + 0.5);
}

bool SimPlatform::partner_unstarted(int core) const {
  const CoreActor& c = cores_[static_cast<std::size_t>(core)];
  const std::uint32_t cluster = engine_.mailbox(core).cluster;
  for (int other = 0; other < static_cast<int>(cores_.size()); ++other) {
    const Mailbox& m = engine_.mailbox(other);
    if (other == core || m.cluster != cluster) continue;
    const CoreActor& o = cores_[static_cast<std::size_t>(other)];
    const std::uint32_t token = m.dispatch.load(std::memory_order_acquire);
    if (token == o.last_token || token >= kReservedTokens) continue;  // nothing waiting there
    const DispatchPayload& p = m.payload[token & 1];
    if (p.task == c.job.task && p.block_index == c.job.block_index) return true;
  }
  return false;
}

void SimPlatform::release_waiting_partners(int core) {
  const CoreActor& c = cores_[static_cast<std::size_t>(core)];
  const std::uint32_t cluster = engine_.mailbox(core).cluster;
  for (int other = 0; other < static_cast<int>(cores_.size()); ++other) {
    CoreActor& o = cores_[static_cast<std::size_t>(other)];
    if (!o.waiting_for_partners || engine_.mailbox(other).cluster != cluster) continue;
    if (!(o.job.task == c.job.task) || o.job.block_index != c.job.block_index) continue;
    o.waiting_for_partners = false;
    queue_.push(event_time_ + o.duration_ns, sim::EventKind::core_finish, other);
  }
}

void SimPlatform::core_finish(int core) {
  CoreActor& c = cores_[static_cast<std::size_t>(core)];
  Mailbox& m = engine_.mailbox(core);
  if (workers_) {
    // The model says the kernel has ended; wait until the host has really run it, but not past
    // stall_timeout_s: the engine's watch then names the kernel and fails the run, and the run
    // goes on without it (the engine is unusable afterwards; abandon() lets the thread go).
    std::optional<std::string> error;
    bool returned = false;
    while (!(returned = workers_->wait(core, &error, kKernelPollMs))) {
      if (engine_.watch_kernels()) break;
    }
    if (returned) engine_.kernel_watch().finished(core);
    if (error) engine_.report_kernel_exception(c.job.kernel, c.job.task, c.job.block_index, *error);
  }
  finish_dispatch(m, c.running_token, c.start_ns, engine_.now_ns());
  c.busy = false;
  --running_cores_;
  const std::uint64_t visible =
      event_time_ + static_cast<std::uint64_t>(config_.costs.fin_visible_ns);
  wake_scheduler(m.scheduler_thread, visible);
  // A pre-staged (pending) dispatch: the core switches to it without waiting for a doorbell.
  const std::uint32_t next = visible_dispatch(core);
  if (next != c.last_token && next < kReservedTokens) {
    queue_.push(event_time_ + static_cast<std::uint64_t>(config_.costs.pickup_ns),
                sim::EventKind::core_pickup, core);
  }
}

}  // namespace tmr::detail
