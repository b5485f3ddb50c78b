#include "core/engine.hpp"
#include "platform/platform.hpp"
#include "platform/threads/threads_platform.hpp"

namespace tmr::detail {

std::unique_ptr<Platform> make_platform(Engine& engine) {
  switch (engine.config().platform) {
    case PlatformKind::threads:
      return std::make_unique<ThreadsPlatform>(engine);
    case PlatformKind::sim:
      break;
  }
  throw Error(ErrorCode::invalid_config,
              "the sim platform is not built yet; use PlatformKind::threads (--platform threads)");
}

}  // namespace tmr::detail
