// RAII scope: opens on construction, closes on destruction, so early returns and exceptions in
// an orchestration never leave a scope open.
#include "tmr/orchestrator.hpp"

namespace tmr {

ScopeGuard::ScopeGuard(Orchestrator& orchestrator) : orchestrator_(&orchestrator) {
  orchestrator_->scope_begin();
}

ScopeGuard::~ScopeGuard() {
  orchestrator_->scope_end();
}

}  // namespace tmr
