#include "common/cluster_pipe.hpp"

#include <array>
#include <atomic>
#include <cstdlib>
#include <memory>

#include "tmr/config.hpp"
#include "tmr/error.hpp"

namespace tmr::examples {

namespace {

[[noreturn]] void fail(const std::string& message) {
  throw Error(ErrorCode::kernel_exception, message);
}

struct PipeTable {
  std::array<std::array<ClusterPipe, kPipeChannels>, kMaxClusters> pipes;
  PipeTable() {
    for (int cluster = 0; cluster < kMaxClusters; ++cluster) {
      for (int channel = 0; channel < kPipeChannels; ++channel) {
        pipes[static_cast<std::size_t>(cluster)][static_cast<std::size_t>(channel)].set_name(
            "cluster " + std::to_string(cluster) + " channel " + std::to_string(channel));
      }
    }
  }
};

}  // namespace

void ClusterPipe::push(PipeMessage message, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  const bool has_room =
      changed_.wait_for(lock, timeout, [this] { return queue_.size() < kPipeCapacity; });
  if (!has_room) {
    fail("pipe " + name_ + ": still full after " + std::to_string(timeout.count()) +
         " ms; its reader never ran. The kernels of a MIX task must run at the same time on one "
         "cluster");
  }
  queue_.push_back(std::move(message));
  lock.unlock();
  changed_.notify_all();
}

PipeMessage ClusterPipe::pop(std::uint64_t tag, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  bool dropped = false;
  const bool ready = changed_.wait_for(lock, timeout, [&] {
    while (!queue_.empty() && queue_.front().tag < tag) {  // left by an aborted earlier task
      queue_.pop_front();
      dropped = true;
    }
    return !queue_.empty();
  });
  if (dropped) changed_.notify_all();
  if (!ready) {
    fail("pipe " + name_ + ": no message after " + std::to_string(timeout.count()) +
         " ms; its writer never ran. The kernels of a MIX task must run at the same time on one "
         "cluster");
  }
  if (queue_.front().tag != tag) {
    fail("pipe " + name_ + ": expected a message of task tag " + std::to_string(tag) +
         " but found tag " + std::to_string(queue_.front().tag) +
         "; two MIX tasks shared a cluster at the same time");
  }
  PipeMessage message = std::move(queue_.front());
  queue_.pop_front();
  lock.unlock();
  changed_.notify_all();
  return message;
}

ClusterPipe& cluster_pipe(std::uint32_t cluster, int channel) {
  static const std::unique_ptr<PipeTable> table = std::make_unique<PipeTable>();
  if (cluster >= static_cast<std::uint32_t>(kMaxClusters) || channel < 0 ||
      channel >= kPipeChannels) {
    fail("pipe (cluster " + std::to_string(cluster) + ", channel " + std::to_string(channel) +
         ") does not exist; clusters run below " + std::to_string(kMaxClusters) +
         " and channels below " + std::to_string(kPipeChannels));
  }
  return table->pipes[cluster][static_cast<std::size_t>(channel)];
}

namespace {

std::chrono::milliseconds timeout_from_environment() {
  const char* text = std::getenv("TMR_PIPE_TIMEOUT_MS");
  if (text == nullptr || *text == '\0') return std::chrono::milliseconds(20000);
  char* end = nullptr;
  const long long value = std::strtoll(text, &end, 10);
  if (*end != '\0' || value <= 0) {
    fail(std::string("TMR_PIPE_TIMEOUT_MS='") + text + "' is not a positive integer");
  }
  return std::chrono::milliseconds(value);
}

// Milliseconds; 0 until first read from the environment.
std::atomic<std::int64_t> timeout_ms{0};

}  // namespace

std::chrono::milliseconds pipe_timeout() {
  std::int64_t value = timeout_ms.load(std::memory_order_relaxed);
  if (value == 0) {
    value = timeout_from_environment().count();
    std::int64_t unset = 0;
    // Another thread may have set it meanwhile; keep the first value.
    if (!timeout_ms.compare_exchange_strong(unset, value, std::memory_order_relaxed)) value = unset;
  }
  return std::chrono::milliseconds(value);
}

void set_pipe_timeout(std::chrono::milliseconds timeout) {
  if (timeout.count() <= 0) fail("set_pipe_timeout: the timeout must be positive");
  timeout_ms.store(timeout.count(), std::memory_order_relaxed);
}

std::uint64_t next_pipe_tag() {
  static std::atomic<std::uint64_t> counter{0};
  return counter.fetch_add(1, std::memory_order_relaxed) + 1;
}

}  // namespace tmr::examples
