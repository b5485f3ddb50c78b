#include "core/engine.hpp"
#include "platform/platform.hpp"
#include "platform/sim/sim_platform.hpp"
#include "platform/threads/threads_platform.hpp"

namespace tmr::detail {

std::unique_ptr<Platform> make_platform(Engine& engine) {
  switch (engine.config().platform) {
    case PlatformKind::threads:
      return std::make_unique<ThreadsPlatform>(engine);
    case PlatformKind::sim:
      return std::make_unique<SimPlatform>(engine);
  }
  throw Error(ErrorCode::invalid_config, "unknown RuntimeConfig::platform; use threads or sim");
}

}  // namespace tmr::detail
