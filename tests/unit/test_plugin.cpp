// Plug-ins: loading, kernel registration, the orchestration entry point, and load errors.
// The fixtures are built by tests/CMakeLists.txt; their paths arrive as compile definitions.
#include <gtest/gtest.h>
#include <unistd.h>

#include <bit>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tmr/plugin.hpp"
#include "unit/expect_error.hpp"

namespace tmr {
namespace {

using test::throws_error;

// The unit tests link no engine: the fixture's orchestration never touches the Orchestrator, so
// one whose core pointer is null is enough to call it.
Orchestrator detached_orchestrator() {
  return std::bit_cast<Orchestrator>(static_cast<detail::OrchestratorCore*>(nullptr));
}

TEST(Plugin, LoadsAndRegistersKernels) {
  const Plugin plugin = Plugin::load(TMR_TEST_PLUGIN);
  KernelRegistry kernels;
  kernels.add("host_kernel", CoreType::aic, [](const KernelArgs&) {});
  plugin.register_kernels(kernels);
  ASSERT_EQ(kernels.size(), 3u);
  EXPECT_EQ(kernels.id("test_plugin.scale"), 1);
  EXPECT_EQ(kernels.id("test_plugin.nothing"), 2);
  EXPECT_EQ(kernels.find(1)->core_type, CoreType::aiv);
  EXPECT_EQ(kernels.find(2)->core_type, CoreType::aic);

  // The registered function is the plug-in's code: run it on host tensors.
  std::vector<float> x{1, 2, 3, 4};
  std::vector<float> y(4);
  const Tensor tensors[] = {Tensor::wrap(x.data(), Shape{4}, DType::f32),
                            Tensor::wrap(y.data(), Shape{4}, DType::f32)};
  const std::uint64_t factor = std::bit_cast<std::uint32_t>(3.0f);
  kernels.find(1)->fn(KernelArgs(tensors, 2, &factor, 1, 0, 1, 0, 0));
  EXPECT_EQ(y, (std::vector<float>{3, 6, 9, 12}));

  // Registering twice reports the plug-in's duplicate names.
  EXPECT_TRUE(throws_error([&] { plugin.register_kernels(kernels); }, ErrorCode::invalid_args,
                           "kernel 'test_plugin.scale' is already registered"));
}

TEST(Plugin, OrchestrationCallsThePlugin) {
  Orchestration orchestration;
  {
    Plugin loaded = Plugin::load(TMR_TEST_PLUGIN);
    orchestration = loaded.orchestration();
    // Moving the Plugin keeps the library loaded and the orchestration valid.
    Plugin moved = std::move(loaded);
    OrchestrationArgs args;
    std::vector<float> data(4);
    args.tensors_.push_back(Tensor::wrap(data.data(), Shape{4}, DType::f32));
    args.scalars_.push_back(42);
    Orchestrator orchestrator = detached_orchestrator();
    EXPECT_TRUE(throws_error([&] { orchestration(orchestrator, args); }, ErrorCode::explicit_fatal,
                             "test plugin reached with 1 tensors and scalar 42"));
  }
}

TEST(Plugin, RegisterIsOptional) {
  const Plugin plugin = Plugin::load(TMR_TEST_PLUGIN_ORCHESTRATE_ONLY);
  KernelRegistry kernels;
  plugin.register_kernels(kernels);
  EXPECT_EQ(kernels.size(), 0u);
  const Orchestration orchestration = plugin.orchestration();
  Orchestrator orchestrator = detached_orchestrator();
  EXPECT_NO_THROW(orchestration(orchestrator, OrchestrationArgs()));
}

TEST(Plugin, MissingOrchestrateIsAnError) {
  EXPECT_TRUE(throws_error([] { (void)Plugin::load(TMR_TEST_PLUGIN_WITHOUT_ORCHESTRATE); },
                           ErrorCode::plugin_error, "does not export tmr_plugin_orchestrate ("));
  EXPECT_TRUE(throws_error([] { (void)Plugin::load(TMR_TEST_PLUGIN_WITHOUT_ORCHESTRATE); },
                           ErrorCode::plugin_error,
                           "define TMR_PLUGIN_EXPORT void tmr_plugin_orchestrate("));
}

TEST(Plugin, MissingFileIsAnError) {
  const std::string path = "/nonexistent/dir/libmissing_plugin.so";
  EXPECT_TRUE(throws_error([&] { (void)Plugin::load(path); }, ErrorCode::plugin_error,
                           "cannot load plug-in '" + path + "': " + path +
                               ": cannot open shared object file: No such file or directory; "
                               "check the path"));
  EXPECT_TRUE(throws_error([] { (void)Plugin::load(""); }, ErrorCode::plugin_error,
                           "plug-in path is empty"));
}

TEST(Plugin, NotASharedLibraryIsAnError) {
  const std::filesystem::path path = std::filesystem::temp_directory_path() /
                                     ("tmr_not_a_plugin_" + std::to_string(::getpid()) + ".so");
  std::ofstream(path) << "this is not an ELF file\n";
  EXPECT_TRUE(throws_error([&] { (void)Plugin::load(path.string()); }, ErrorCode::plugin_error,
                           "cannot load plug-in '" + path.string() + "': "));
  std::filesystem::remove(path);
}

// A bare file name means the file in the working directory, not a library-path search.
TEST(Plugin, BareNameIsResolvedInTheWorkingDirectory) {
  const std::filesystem::path fixture(TMR_TEST_PLUGIN);
  const std::filesystem::path previous = std::filesystem::current_path();
  std::filesystem::current_path(fixture.parent_path());
  KernelRegistry kernels;
  try {
    const Plugin plugin = Plugin::load(fixture.filename().string());
    plugin.register_kernels(kernels);
  } catch (...) {
    std::filesystem::current_path(previous);
    throw;
  }
  std::filesystem::current_path(previous);
  EXPECT_EQ(kernels.size(), 2u);
}

TEST(Plugin, MovedFromPluginIsAnError) {
  Plugin plugin = Plugin::load(TMR_TEST_PLUGIN);
  Plugin other = std::move(plugin);
  KernelRegistry kernels;
  // NOLINTNEXTLINE(bugprone-use-after-move): using the moved-from object is the point
  EXPECT_TRUE(throws_error([&] { plugin.register_kernels(kernels); }, ErrorCode::plugin_error,
                           "moved-from Plugin"));
  EXPECT_TRUE(throws_error([&] { (void)plugin.orchestration(); }, ErrorCode::plugin_error,
                           "moved-from Plugin"));
  other.register_kernels(kernels);
  EXPECT_EQ(kernels.size(), 2u);
  // Move assignment releases the library the target held and takes the other one.
  Plugin third = Plugin::load(TMR_TEST_PLUGIN_ORCHESTRATE_ONLY);
  third = std::move(other);
  KernelRegistry again;
  third.register_kernels(again);
  EXPECT_EQ(again.size(), 2u);
}

}  // namespace
}  // namespace tmr
