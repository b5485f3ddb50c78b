// Cluster-local pipes: bounded blocking FIFOs through which the AIC and the two AIV kernels of one
// MIX task exchange tiles while all three run (the reference's TPUSH/TPOP). The table is indexed by
// (cluster, channel). Every message carries the tag of the task that sent it, so a message left by
// an aborted task is dropped and a mix-up between tasks is an error rather than a wrong result.
//
// The table is process-wide: two runtimes running pipe kernels at the same time in one process
// would share it (tags turn that into an error, never into wrong data).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

namespace tmr::examples {

inline constexpr int kPipeChannels = 4;          // per cluster
inline constexpr std::size_t kPipeCapacity = 2;  // messages per channel (double buffering)

struct PipeMessage {
  std::uint64_t tag = 0;  // the sending task's tag; tags increase over the process lifetime
  std::vector<float> payload;
};

class ClusterPipe {
 public:
  // Blocks while the FIFO is full. Throws Error(kernel_exception) after `timeout`.
  void push(PipeMessage message, std::chrono::milliseconds timeout);
  // Blocks until a message tagged `tag` is at the head; drops older (stale) messages first.
  // Throws Error(kernel_exception) after `timeout`, or when a newer task's message is at the head.
  PipeMessage pop(std::uint64_t tag, std::chrono::milliseconds timeout);

  void set_name(std::string name) { name_ = std::move(name); }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<PipeMessage> queue_;
  std::string name_;
};

// The pipe of `channel` on `cluster`. Throws Error(kernel_exception) when out of range.
ClusterPipe& cluster_pipe(std::uint32_t cluster, int channel);

// How long a push or pop of a pipe kernel waits before failing: TMR_PIPE_TIMEOUT_MS, default 20000.
std::chrono::milliseconds pipe_timeout();
// Overrides the timeout for the rest of the process (tests); throws for a non-positive value.
void set_pipe_timeout(std::chrono::milliseconds timeout);

// A fresh tag for one task's messages (process-wide counter, starts at 1).
std::uint64_t next_pipe_tag();

}  // namespace tmr::examples
