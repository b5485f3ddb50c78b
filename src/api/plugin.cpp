// Plug-in orchestrations: a shared library exporting tmr_plugin_orchestrate (required) and
// tmr_plugin_register (optional), loaded with dlopen; its code stays mapped for the process.
#include "tmr/plugin.hpp"

#include <dlfcn.h>
#include <sys/stat.h>

#include <string>
#include <utility>

#include "tmr/error.hpp"

namespace tmr {

namespace {

using OrchestrateFn = void (*)(Orchestrator&, const OrchestrationArgs&);
using RegisterFn = void (*)(KernelRegistry&);

constexpr const char* kOrchestrateSymbol = "tmr_plugin_orchestrate";
constexpr const char* kRegisterSymbol = "tmr_plugin_register";

std::string last_dl_error() {
  const char* message = dlerror();
  return message != nullptr ? message : "unknown dynamic loader error";
}

bool is_file(const std::string& path) {
  struct stat info {};
  return ::stat(path.c_str(), &info) == 0 && S_ISREG(info.st_mode);
}

}  // namespace

struct Plugin::Library {
  std::string path;
  void* handle = nullptr;
  OrchestrateFn orchestrate = nullptr;
  RegisterFn register_kernels = nullptr;

  Library() = default;
  Library(const Library&) = delete;
  Library& operator=(const Library&) = delete;
  ~Library() {
    if (handle != nullptr) dlclose(handle);
  }
};

Plugin Plugin::load(const std::string& path) {
  if (path.empty()) {
    throw Error(ErrorCode::plugin_error,
                "plug-in path is empty; pass the path of the plug-in's shared library (.so)");
  }
  auto library = std::make_unique<Library>();
  library->path = path;
  // dlopen searches the library path, not the working directory, for a name without '/'; a user
  // naming a file here means that file.
  const std::string open_path =
      path.find('/') == std::string::npos && is_file(path) ? "./" + path : path;
  dlerror();  // clear any stale message so the one we report is ours
  // RTLD_NODELETE: the code stays mapped after the Plugin dies. A registry may hold kernels that
  // are callables defined in the plug-in, and destroying them runs the plug-in's code.
  library->handle = dlopen(open_path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
  if (library->handle == nullptr) {
    throw Error(ErrorCode::plugin_error,
                "cannot load plug-in '" + path + "': " + last_dl_error() +
                    "; check the path, and that the library and its dependencies exist and were "
                    "built for this machine and this tmr (ldd lists missing dependencies)");
  }
  dlerror();
  library->orchestrate =
      reinterpret_cast<OrchestrateFn>(dlsym(library->handle, kOrchestrateSymbol));
  if (library->orchestrate == nullptr) {
    throw Error(ErrorCode::plugin_error,
                "plug-in '" + path + "' does not export " + kOrchestrateSymbol + " (" +
                    last_dl_error() + "); define TMR_PLUGIN_EXPORT void " + kOrchestrateSymbol +
                    "(tmr::Orchestrator&, const tmr::OrchestrationArgs&) in the plug-in");
  }
  // Optional: a plug-in may use only kernels the host already registered.
  library->register_kernels = reinterpret_cast<RegisterFn>(dlsym(library->handle, kRegisterSymbol));
  dlerror();
  return Plugin(std::move(library));
}

Plugin::Plugin(std::unique_ptr<Library> library) : library_(std::move(library)) {}
Plugin::~Plugin() = default;
Plugin::Plugin(Plugin&&) noexcept = default;
Plugin& Plugin::operator=(Plugin&&) noexcept = default;

void Plugin::register_kernels(KernelRegistry& kernels) const {
  if (!library_) {
    throw Error(ErrorCode::plugin_error,
                "register_kernels on a moved-from Plugin; use the Plugin it was moved into");
  }
  if (library_->register_kernels != nullptr) library_->register_kernels(kernels);
}

Orchestration Plugin::orchestration() const {
  if (!library_) {
    throw Error(ErrorCode::plugin_error,
                "orchestration() on a moved-from Plugin; use the Plugin it was moved into");
  }
  // Capture the function, not the Plugin: the Library stays put when the Plugin is moved.
  const OrchestrateFn orchestrate = library_->orchestrate;
  return [orchestrate](Orchestrator& orchestrator, const OrchestrationArgs& args) {
    orchestrate(orchestrator, args);
  };
}

}  // namespace tmr
