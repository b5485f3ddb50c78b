#include "core/engine.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <span>

#include "core/cycle_clock.hpp"
#include "core/orchestrator_core.hpp"
#include "core/stall_wait.hpp"

namespace tmr::detail {

Engine::Engine(RuntimeConfig config, KernelRegistry kernels)
    : config_(std::move(config)),
      kernels_(std::move(kernels)),
      kernel_watch_(3 * std::max(0, config_.clusters)) {
  config_.validate();
  topology_ = Topology{config_.clusters, config_.scheduler_threads};
  for (int r = 0; r < kRingCount; ++r) {
    rings_.push_back(std::make_unique<Ring>(static_cast<std::uint32_t>(r), config_.ring));
    ring_pointers_[r] = rings_.back().get();
  }
  mailboxes_ = std::make_unique<Mailbox[]>(static_cast<std::size_t>(core_count()));
  completed_ = std::make_unique<CompletedCount[]>(static_cast<std::size_t>(core_count()) + 1);
  for (int c = 0; c < cluster_count(); ++c) {
    const int cores[3] = {topology_.aic_core(c), topology_.aiv_core(c, 0),
                          topology_.aiv_core(c, 1)};
    for (int s = 0; s < 3; ++s) {
      Mailbox& m = mailbox(cores[s]);
      m.core = static_cast<std::uint16_t>(cores[s]);
      m.cluster = static_cast<std::uint16_t>(c);
      m.scheduler_thread = static_cast<std::uint16_t>(topology_.scheduler_of_cluster(c));
      m.type = s == 0 ? CoreType::aic : CoreType::aiv;
      m.sub_block = static_cast<std::uint8_t>(s == 0 ? 0 : s - 1);
    }
  }
  // Every live task fits in a ready queue at once, so pushes never fail.
  const std::size_t queue_capacity = std::size_t{config_.ring.task_window} * kRingCount;
  scheduler_ = std::make_unique<Scheduler>(
      topology_, std::span<Mailbox>(mailboxes_.get(), static_cast<std::size_t>(core_count())),
      config_.dual_slot.resolved_for(config_.platform), queue_capacity, *this, *this, *this);
  scheduler_->read_abort_flag(&aborting_);  // aborting()'s flag, without the virtual call
  completion_logs_ = std::make_unique<CompletionLogs>(core_count());
  scheduler_->write_completions_to(completion_logs_.get());
  orchestrator_ = std::make_unique<OrchestratorCore>(
      OrchestratorPorts{std::span<Ring* const>(ring_pointers_, kRingCount), config_.clusters,
                        kernels_, config_.stall_timeout_s, config_.tensor_wait_timeout_s, *this,
                        *this, *this, *this, config_.parallel_for_analysis, has_error_});
  orchestrator_->read_completions_from(completion_logs_.get());
  platform_ = make_platform(*this);
  platform_counts_ = platform_->counts_kernel_tasks();
}

Engine::~Engine() {
  platform_.reset();  // joins every thread before the state they use goes away
}

void Engine::latch_error(ErrorCode code, const std::string& message) {
  {
    std::lock_guard lock(error_mutex_);
    if (has_error_.load(std::memory_order_relaxed)) return;
    error_ = Status{code, message};
    has_error_.store(true, std::memory_order_release);
  }
  aborting_.store(true, std::memory_order_release);
  platform_->notify_progress();
  platform_->notify_schedulers();
}

Status Engine::error() const {
  std::lock_guard lock(error_mutex_);
  return error_;
}

void Engine::report_kernel_exception(KernelId kernel, TaskId task, std::uint32_t block,
                                     const std::string& what) {
  const KernelInfo* info = kernels_.find(kernel);
  const std::string name = info != nullptr ? info->name : "#" + std::to_string(kernel);
  latch_error(ErrorCode::kernel_exception,
              "kernel '" + name + "' threw in task r" + std::to_string(task.ring()) + ":" +
                  std::to_string(task.local()) + " block " + std::to_string(block) + ": " + what +
                  "; kernels must not throw — fix the kernel or validate its inputs in the "
                  "orchestration");
}

namespace {

std::string seconds_text(double seconds) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.3g s", seconds);
  return text;
}

}  // namespace

bool Engine::watch_kernels() {
  if (kernel_overran_) return true;
  const std::uint64_t now = KernelWatch::now_ns();
  const std::optional<KernelWatch::Running> running = kernel_watch_.longest(now);
  if (!running) return false;
  const KernelInfo* info = kernels_.find(running->kernel);
  const int core = running->core;
  const int cluster = core < cluster_count() ? core : (core - cluster_count()) / 2;
  const std::string where =
      "kernel '" + (info != nullptr ? info->name : "#" + std::to_string(running->kernel)) +
      "' (task r" + std::to_string(running->task.ring()) + ":" +
      std::to_string(running->task.local()) + ", block " + std::to_string(running->block) +
      ") has been running on core " + std::to_string(core) + " (" +
      (core < cluster_count() ? std::string("AIC")
                              : "AIV " + std::to_string((core - cluster_count()) % 2)) +
      " of cluster " + std::to_string(cluster) + ") for " +
      seconds_text(static_cast<double>(running->elapsed_ns) / 1e9);
  const double stall_s = config_.stall_timeout_s;
  const bool overran = static_cast<double>(running->elapsed_ns) > stall_s * 1e9;
  const std::uint64_t since = now - running->elapsed_ns;
  if (since != reported_since_ns_) {
    reported_since_ns_ = since;
    next_report_ns_ = static_cast<std::uint64_t>(std::min(10.0, stall_s / 2) * 1e9);
    long_kernel_reported_ = false;
  }
  // The first look may come after stall_timeout_s (a loaded host can keep the orchestrator thread
  // off its CPU for the whole report window): the kernel is still reported before the run fails.
  if (running->elapsed_ns >= next_report_ns_ && !(overran && long_kernel_reported_)) {
    std::fprintf(stderr, "tmr: %s; the run fails %s stall_timeout_s = %s\n", where.c_str(),
                 overran ? "now: it passed" : "if it passes", seconds_text(stall_s).c_str());
    long_kernel_reported_ = true;
    next_report_ns_ *= 2;
  }
  if (overran) {
    kernel_overran_ = true;
    overrun_message_ =
        where + ", past stall_timeout_s = " + seconds_text(stall_s) +
        "; it may never return. The runtime is unusable until destroyed (its core still runs the "
        "kernel); fix the kernel, or raise stall_timeout_s if it is only slow";
    latch_error(ErrorCode::scheduler_timeout, overrun_message_);
    return true;
  }
  return false;
}

void Engine::reset_for_run() {
  for (auto& ring : rings_)
    ring->reset();
  scheduler_->reset();
  completion_logs_->reset();
  for (int slot = 0; slot <= core_count(); ++slot)
    completed_[static_cast<std::size_t>(slot)].count.store(0, std::memory_order_relaxed);
  wake_at_completed_.store(kNotWaiting, std::memory_order_relaxed);
  aborting_.store(false, std::memory_order_relaxed);
  has_error_.store(false, std::memory_order_relaxed);
  error_ = Status{};
  kernel_overran_ = false;
  overrun_message_.clear();
  reported_since_ns_ = next_report_ns_ = 0;
  long_kernel_reported_ = false;
}

RunResult Engine::run(const Orchestration& orchestration, const RunArgs& args) {
  reset_for_run();
  RunResult result;

  // "Device" copies of the host tensors. A timing-only run (either platform) calls no kernel, so
  // only the orchestration can look at tensor contents: its inputs are used in place (no copy;
  // the orchestration reads exactly what a copy would hold, and a set_tensor_data on an input
  // would write through to the caller's memory), and nothing is copied back after the run
  // (outputs are left untouched). out and inout tensors still get device buffers, as usual.
  const bool timing_only = config_.runs_timing_only();
  OrchestrationArgs orchestration_args;
  std::vector<std::unique_ptr<std::byte[]>> device;
  for (const RunArgs::HostTensor& host : args.tensors()) {
    const std::uint64_t bytes = host.shape.elements() * dtype_size(host.dtype);
    if (timing_only && host.direction == RunArgs::Direction::in) {
      device.emplace_back();  // no device buffer: the orchestration reads the host tensor
      orchestration_args.tensors_.push_back(Tensor::wrap(host.host, host.shape, host.dtype));
      continue;
    }
    device.push_back(std::make_unique<std::byte[]>(bytes));
    if (host.direction != RunArgs::Direction::out) {
      std::memcpy(device.back().get(), host.host, bytes);
    } else {
      std::memset(device.back().get(), 0, bytes);
    }
    orchestration_args.tensors_.push_back(
        Tensor::wrap(device.back().get(), host.shape, host.dtype));
  }
  orchestration_args.scalars_ = args.scalars();

  run_start_ns_ = platform_->now_ns();
  const std::uint64_t start_cycles = cycles();
  orchestrator_->begin_run();
  // The completion logs only for a run whose discoveries may read them (one that neither records
  // nor charges, Dependence::set_skip_completed): a traced or sim run's completions append nothing.
  scheduler_->write_completions_to(orchestrator_->reads_completions() ? completion_logs_.get()
                                                                      : nullptr);
  orchestrator_->run_arguments(orchestration_args.tensors_);
  platform_->begin_run();

  Orchestrator& orchestrator = orchestrator_->api();
  const std::uint64_t orchestration_start = now_ns();
  try {
    orchestration(orchestrator, orchestration_args);
  } catch (const Error& e) {
    latch_error(e.code(), e.what());
  } catch (const std::exception& e) {
    latch_error(ErrorCode::orchestration_exception,
                std::string("the orchestration threw: ") + e.what());
  } catch (...) {
    latch_error(ErrorCode::orchestration_exception, "the orchestration threw a non-std exception");
  }
  orchestrator_->end_orchestration();
  const std::uint64_t orchestration_end = now_ns();
  // The orchestrator's scheduler steps up to here (the drain below helps too, outside it).
  const Platform::OrchestratorSteps steps = platform_->orchestrator_steps();

  // Drain: every kernel task finishes and every ring retires all it holds.
  auto drained = [&] {
    if (kernel_tasks_completed() != orchestrator_->kernel_tasks_submitted()) return false;
    for (auto& ring : rings_) {
      ring->publish_all();  // the submit path publishes in batches (Ring::publish_batched)
      ring->try_advance();
      if (ring->retired() != ring->head()) return false;
    }
    return true;
  };
  if (!has_error()) {
    wake_orchestrator_at(orchestrator_->kernel_tasks_submitted());
    const auto stall_ns = static_cast<std::uint64_t>(config_.stall_timeout_s * 1e9);
    wait_with_stall_check(
        *this, 10'000'000, [&] { return has_error() || drained(); },
        [&](const WaitProgress& p) {
          // A kernel that runs too long is named by the kernel watch (wait_with_stall_check);
          // this rule is for no progress while no kernel runs at all (a runtime bug).
          if (p.quiet_ns <= stall_ns) return true;
          latch_error(ErrorCode::scheduler_timeout,
                      "no task finished for " + std::to_string(config_.stall_timeout_s) +
                          " s with " +
                          std::to_string(orchestrator_->kernel_tasks_submitted() - p.completed) +
                          " tasks unfinished and no kernel running; the runtime has a bug: "
                          "please report it with TMR_RECORD_EVENTS=1");
          return false;
        });
  }
  wake_orchestrator_at(kNotWaiting);
  // After an error this also waits for kernels already running, but not for one that overruns
  // stall_timeout_s: then the run ends without it and the engine stays unusable.
  platform_->end_run([this] { return watch_kernels(); });
  if (kernel_overran_) {
    unusable_reason_ = "the runtime is unusable: in an earlier run, " + overrun_message_;
    for (auto& buffer : device)
      abandoned_buffers_.push_back(std::move(buffer));  // the stuck kernel may still use them
  }
  const std::uint64_t end = now_ns();
  const double ns_per_cycle =
      static_cast<double>(end) /
      static_cast<double>(std::max<std::uint64_t>(1, cycles() - start_cycles));

  result.status = error();
  RunStats& stats = result.stats;
  stats.tasks_submitted = orchestrator_->tasks_submitted();
  stats.inline_tasks = orchestrator_->inline_tasks();
  stats.completed_producers_left_out = orchestrator_->completed_producers_left_out();
  stats.wall_us = static_cast<double>(end) / 1e3;
  stats.orchestration_us = static_cast<double>(orchestration_end - orchestration_start) / 1e3;
  stats.orchestrator_blocked_us = static_cast<double>(orchestrator_->blocked_ns()) / 1e3;
  const OrchestratorCore::RingWaits& ring_waits = orchestrator_->ring_waits();
  stats.orchestrator_ring_waits = ring_waits.count;
  stats.orchestrator_ring_wait_us = static_cast<double>(ring_waits.ns) / 1e3;
  stats.orchestrator_ring_wait_cpu_us = static_cast<double>(ring_waits.cpu_ns) / 1e3;
  stats.orchestrator_wait_steps = steps.wait;
  stats.orchestrator_wait_steps_progress = steps.wait_progress;
  stats.orchestrator_placement_steps = steps.placement;
  stats.orchestrator_placements_gate_held = steps.placement_gate_held;
  orchestrator_->loops().fill_stats(&stats);
  for (int t = 0; t < scheduler_->thread_count(); ++t) {
    const double platform_busy = platform_->scheduler_busy_ns(t);
    stats.scheduler_us +=
        platform_busy >= 0 ? platform_busy / 1e3
                           : static_cast<double>(scheduler_->busy_cycles(t)) * ns_per_cycle / 1e3;
    stats.subtasks_executed += scheduler_->subtasks_done(t);
    stats.mix_blocks_taken_back += scheduler_->counters(t).taken_back;
    stats.unlatched_taken_back += scheduler_->counters(t).unlatched_taken_back;
  }

  if (recording()) {
    auto trace = std::make_shared<Trace>();
    trace->clusters = cluster_count();
    trace->scheduler_threads = config_.scheduler_threads;
    orchestrator_->take_events(trace.get());
    for (int t = 0; t < scheduler_->thread_count(); ++t) {
      for (const Scheduler::Completion& c : scheduler_->completions(t)) {
        TaskEvent& e = trace->tasks[c.sequence];
        e.ready_ns = c.ready_ns != 0 ? c.ready_ns : e.submit_ns;
        e.complete_ns = c.complete_ns;
      }
      auto& events = scheduler_->subtask_events(t);
      trace->subtasks.insert(trace->subtasks.end(), events.begin(), events.end());
      const auto& held = scheduler_->mix_reservations(t);
      trace->mix_reservations.insert(trace->mix_reservations.end(), held.begin(), held.end());
    }
    std::sort(trace->subtasks.begin(), trace->subtasks.end(),
              [](const SubtaskEvent& a, const SubtaskEvent& b) { return a.end_ns < b.end_ns; });
    result.trace = std::move(trace);
  }

  if (result.ok() && !timing_only) {
    for (std::size_t i = 0; i < args.tensors().size(); ++i) {
      const RunArgs::HostTensor& host = args.tensors()[i];
      if (host.direction == RunArgs::Direction::in) continue;
      std::memcpy(host.host, device[i].get(), host.shape.elements() * dtype_size(host.dtype));
    }
  }
  return result;
}

}  // namespace tmr::detail
