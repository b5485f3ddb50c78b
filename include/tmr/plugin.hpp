// Orchestrations (and their kernels) loaded from a shared library at run time.
#pragma once

#include <memory>
#include <string>

#include "tmr/kernel.hpp"
#include "tmr/orchestrator.hpp"

// A plug-in defines these two functions with TMR_PLUGIN_EXPORT.
#define TMR_PLUGIN_EXPORT extern "C" __attribute__((visibility("default")))
// TMR_PLUGIN_EXPORT void tmr_plugin_register(tmr::KernelRegistry& kernels);
// TMR_PLUGIN_EXPORT void tmr_plugin_orchestrate(tmr::Orchestrator& o,
//                                               const tmr::OrchestrationArgs& args);

namespace tmr {

class Plugin {
 public:
  // Throws Error(plugin_error) naming the file and the dlopen/dlsym message.
  static Plugin load(const std::string& path);
  ~Plugin();
  Plugin(Plugin&&) noexcept;
  Plugin& operator=(Plugin&&) noexcept;

  // Registers the plug-in's kernels (if it exports tmr_plugin_register).
  void register_kernels(KernelRegistry& kernels) const;
  // The orchestration; valid while this Plugin lives.
  Orchestration orchestration() const;

 private:
  struct Library;
  explicit Plugin(std::unique_ptr<Library> library);
  std::unique_ptr<Library> library_;
};

}  // namespace tmr
