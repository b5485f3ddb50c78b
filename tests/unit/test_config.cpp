// Runtime configuration: validation messages and the TMR_* environment overrides.
#include <gtest/gtest.h>
#include <sched.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "tmr/config.hpp"
#include "unit/expect_error.hpp"

namespace tmr {
namespace {

using test::throws_error;

// Clears every TMR_* variable apply_env reads and restores the caller's values afterwards, so
// the tests neither see nor leak environment settings.
class ConfigEnv : public ::testing::Test {
 protected:
  static constexpr const char* kNames[] = {
      "TMR_CLUSTERS",      "TMR_SCHED_THREADS", "TMR_RING_TASK_WINDOW", "TMR_RING_HEAP",
      "TMR_RING_DEP_POOL", "TMR_DUAL_SLOT",     "TMR_RECORD_EVENTS",    "TMR_MIX_TAKE_BACK",
      "TMR_PLACEMENT",     "TMR_TIMING_ONLY",   "TMR_SIM_TIMING_ONLY"};
  void SetUp() override {
    for (const char* name : kNames) {
      const char* value = std::getenv(name);
      saved_.push_back(value ? std::optional<std::string>(value) : std::nullopt);
      unsetenv(name);
    }
  }
  void TearDown() override {
    for (std::size_t i = 0; i < saved_.size(); ++i) {
      if (saved_[i]) {
        setenv(kNames[i], saved_[i]->c_str(), 1);
      } else {
        unsetenv(kNames[i]);
      }
    }
  }
  static void set(const char* name, const char* value) { setenv(name, value, 1); }

 private:
  std::vector<std::optional<std::string>> saved_;
};

TEST(RuntimeConfig, DefaultsAreValid) {
  const RuntimeConfig config;
  EXPECT_NO_THROW(config.validate());
  EXPECT_EQ(config.clusters, 24);
  EXPECT_EQ(config.scheduler_threads, 3);
  EXPECT_TRUE(config.dual_slot.aic);
  EXPECT_TRUE(config.dual_slot.aiv);
  // MIX staging is the platform's choice unless set: the chip model stages, CPU threads do not.
  EXPECT_FALSE(config.dual_slot.mix.has_value());
  EXPECT_TRUE(config.dual_slot.stages_mix_on(PlatformKind::sim));
  EXPECT_FALSE(config.dual_slot.stages_mix_on(PlatformKind::threads));
  EXPECT_EQ(config.dual_slot.resolved_for(PlatformKind::sim).mix, true);
  EXPECT_EQ(config.dual_slot.resolved_for(PlatformKind::threads).mix, false);
  // A choice, by TMR_DUAL_SLOT or by assignment, holds on both platforms.
  DualSlotPolicy chosen;
  chosen.mix = true;
  EXPECT_TRUE(chosen.stages_mix_on(PlatformKind::threads));
  chosen.mix = false;
  EXPECT_FALSE(chosen.stages_mix_on(PlatformKind::sim));
}

TEST(RuntimeConfig, LimitsAreAccepted) {
  RuntimeConfig config;
  config.clusters = kMaxClusters;
  config.scheduler_threads = kMaxSchedulerThreads;
  config.ring = RingConfig{4, 1024, 16};
  EXPECT_NO_THROW(config.validate());
  config.clusters = 1;
  config.scheduler_threads = 1;
  EXPECT_NO_THROW(config.validate());
}

TEST(RuntimeConfig, ClustersOutOfRange) {
  RuntimeConfig config;
  config.clusters = 0;
  EXPECT_TRUE(throws_error([&] { config.validate(); }, ErrorCode::invalid_config,
                           "RuntimeConfig::clusters = 0 is out of range; accepted 1 to 64 "
                           "(kMaxClusters); set it in the config or with TMR_CLUSTERS"));
  config.clusters = kMaxClusters + 1;
  EXPECT_TRUE(throws_error([&] { config.validate(); }, ErrorCode::invalid_config,
                           "clusters = 65 is out of range"));
}

TEST(RuntimeConfig, SchedulerThreads) {
  RuntimeConfig config;
  config.scheduler_threads = 0;
  EXPECT_TRUE(throws_error([&] { config.validate(); }, ErrorCode::invalid_config,
                           "scheduler_threads = 0 is out of range; accepted 1 to 8"));
  config.scheduler_threads = 9;
  EXPECT_TRUE(
      throws_error([&] { config.validate(); }, ErrorCode::invalid_config, "TMR_SCHED_THREADS"));
  config.clusters = 2;
  config.scheduler_threads = 3;
  EXPECT_TRUE(throws_error([&] { config.validate(); }, ErrorCode::invalid_config,
                           "scheduler_threads = 3 exceeds clusters = 2"));
}

TEST(RuntimeConfig, RingSizesMustBePowersOfTwo) {
  RuntimeConfig config;
  config.ring.task_window = 1000;
  EXPECT_TRUE(throws_error([&] { config.validate(); }, ErrorCode::invalid_config,
                           "RuntimeConfig::ring.task_window = 1000 is not a power of two >= 4; "
                           "use e.g. 1024 (config or TMR_RING_TASK_WINDOW)"));
  config.ring.task_window = 2;
  EXPECT_TRUE(throws_error([&] { config.validate(); }, ErrorCode::invalid_config,
                           "task_window = 2 is not a power of two >= 4; use e.g. 4"));
  config = RuntimeConfig();
  config.ring.heap_bytes = 512;
  EXPECT_TRUE(throws_error([&] { config.validate(); }, ErrorCode::invalid_config,
                           "ring.heap_bytes = 512 is not a multiple of 64 >= 1024"));
  config.ring.heap_bytes = (1u << 20) + 1;
  EXPECT_TRUE(throws_error([&] { config.validate(); }, ErrorCode::invalid_config,
                           "use e.g. 1048640 (config or TMR_RING_HEAP)"));
  config.ring.heap_bytes = 2560u << 10;  // 2.5 MiB, the reference's ring-stress heap
  EXPECT_NO_THROW(config.validate());
  config = RuntimeConfig();
  config.ring.dep_pool = 8;
  EXPECT_TRUE(throws_error([&] { config.validate(); }, ErrorCode::invalid_config,
                           "ring.dep_pool = 8 is not a power of two >= 16"));
  config.ring.dep_pool = 0;
  EXPECT_TRUE(
      throws_error([&] { config.validate(); }, ErrorCode::invalid_config, "TMR_RING_DEP_POOL"));
}

TEST(RuntimeConfig, TimeoutsMustBePositive) {
  RuntimeConfig config;
  config.tensor_wait_timeout_s = 0;
  EXPECT_TRUE(throws_error([&] { config.validate(); }, ErrorCode::invalid_config,
                           "tensor_wait_timeout_s = 0 is not a positive, finite number"));
  config = RuntimeConfig();
  config.stall_timeout_s = -0.5;
  EXPECT_TRUE(throws_error([&] { config.validate(); }, ErrorCode::invalid_config,
                           "stall_timeout_s = -0.5"));
  config.stall_timeout_s = std::nan("");
  EXPECT_TRUE(
      throws_error([&] { config.validate(); }, ErrorCode::invalid_config, "stall_timeout_s = nan"));
  config.stall_timeout_s = std::numeric_limits<double>::infinity();
  EXPECT_TRUE(
      throws_error([&] { config.validate(); }, ErrorCode::invalid_config, "stall_timeout_s = inf"));
}

TEST_F(ConfigEnv, UnsetVariablesChangeNothing) {
  RuntimeConfig config;
  config.clusters = 5;
  config.apply_env();
  EXPECT_EQ(config.clusters, 5);
  EXPECT_EQ(config.ring.heap_bytes, RingConfig().heap_bytes);
  set("TMR_CLUSTERS", "");  // empty means unset
  config.apply_env();
  EXPECT_EQ(config.clusters, 5);
}

TEST_F(ConfigEnv, EveryVariableIsApplied) {
  set("TMR_CLUSTERS", "8");
  set("TMR_SCHED_THREADS", " 2 ");
  set("TMR_RING_TASK_WINDOW", "256");
  set("TMR_RING_HEAP", "4M");
  set("TMR_RING_DEP_POOL", "1024");
  set("TMR_DUAL_SLOT", "aiv");
  set("TMR_RECORD_EVENTS", "1");
  RuntimeConfig config;
  EXPECT_EQ(&config.apply_env(), &config);
  EXPECT_EQ(config.clusters, 8);
  EXPECT_EQ(config.scheduler_threads, 2);
  EXPECT_EQ(config.ring.task_window, 256u);
  EXPECT_EQ(config.ring.heap_bytes, 4u << 20);
  EXPECT_EQ(config.ring.dep_pool, 1024u);
  EXPECT_FALSE(config.dual_slot.aic);
  EXPECT_TRUE(config.dual_slot.aiv);
  EXPECT_EQ(config.dual_slot.mix, false);
  EXPECT_TRUE(config.record_events);
  EXPECT_NO_THROW(config.validate());
}

TEST_F(ConfigEnv, HeapSizeSuffixes) {
  const std::pair<const char*, std::uint64_t> cases[] = {{"1048576", 1u << 20},
                                                         {"1024K", 1u << 20},
                                                         {"64k", 64u << 10},
                                                         {"64M", 64u << 20},
                                                         {"2m", 2u << 20},
                                                         {"1G", std::uint64_t{1} << 30},
                                                         {"4g", std::uint64_t{4} << 30}};
  for (const auto& [text, bytes] : cases) {
    set("TMR_RING_HEAP", text);
    RuntimeConfig config;
    config.apply_env();
    EXPECT_EQ(config.ring.heap_bytes, bytes) << text;
  }
  for (const char* bad :
       {"64Q", "M", "-1", "1.5G", "64 M B", "99999999999999999999", "17179869184G"}) {
    set("TMR_RING_HEAP", bad);
    RuntimeConfig config;
    EXPECT_TRUE(throws_error([&] { config.apply_env(); }, ErrorCode::invalid_config,
                             "TMR_RING_HEAP='" + std::string(bad) +
                                 "' is not valid; expected a "
                                 "byte count such as 1048576, 1024K, 64M or 1G"))
        << bad;
  }
}

TEST_F(ConfigEnv, DualSlotValues) {
  set("TMR_DUAL_SLOT", "none");
  RuntimeConfig config;
  config.apply_env();
  EXPECT_FALSE(config.dual_slot.aic || config.dual_slot.aiv);
  EXPECT_EQ(config.dual_slot.mix, false);  // set, so no platform default turns it on
  set("TMR_DUAL_SLOT", "aic,aiv");
  config.apply_env();
  EXPECT_TRUE(config.dual_slot.aic && config.dual_slot.aiv);
  EXPECT_EQ(config.dual_slot.mix, false);
  set("TMR_DUAL_SLOT", "aiv");
  config.apply_env();
  EXPECT_FALSE(config.dual_slot.aic);  // the list replaces the policy, it does not add to it
  EXPECT_TRUE(config.dual_slot.aiv);
  for (const char* bad : {"cube", "aic,", "aic,,aiv", "AIC", "none,aic", ","}) {
    set("TMR_DUAL_SLOT", bad);
    EXPECT_TRUE(throws_error([&] { config.apply_env(); }, ErrorCode::invalid_config,
                             "expected \"none\" or a comma-separated list of aic, aiv, mix"))
        << bad;
  }
}

TEST_F(ConfigEnv, MixPreStagingIsAccepted) {
  struct Case {
    const char* value;
    bool aic, aiv, mix;
  };
  for (const Case& c :
       {Case{"mix", false, false, true}, Case{"aic,mix", true, false, true},
        Case{"aic, aiv, mix", true, true, true}, Case{"aiv,mix", false, true, true}}) {
    set("TMR_DUAL_SLOT", c.value);
    RuntimeConfig config;
    config.apply_env();
    EXPECT_EQ(config.dual_slot.aic, c.aic) << c.value;
    EXPECT_EQ(config.dual_slot.aiv, c.aiv) << c.value;
    EXPECT_EQ(config.dual_slot.mix, c.mix) << c.value;
    config.validate();
  }
  set("TMR_DUAL_SLOT", "mix,cube");
  RuntimeConfig config;
  EXPECT_TRUE(throws_error([&] { config.apply_env(); }, ErrorCode::invalid_config,
                           "expected \"none\" or a comma-separated list of aic, aiv, mix"));
}

TEST_F(ConfigEnv, MixTakeBackIsOnByDefaultAndCanBeTurnedOff) {
  RuntimeConfig config;
  EXPECT_TRUE(config.dual_slot.mix_take_back);
  set("TMR_MIX_TAKE_BACK", "off");
  config.apply_env();
  EXPECT_FALSE(config.dual_slot.mix_take_back);
  set("TMR_MIX_TAKE_BACK", " on ");
  config.apply_env();
  EXPECT_TRUE(config.dual_slot.mix_take_back);
  set("TMR_MIX_TAKE_BACK", "yes");
  EXPECT_TRUE(
      throws_error([&] { config.apply_env(); }, ErrorCode::invalid_config, "TMR_MIX_TAKE_BACK"));
}

TEST_F(ConfigEnv, PlacementIsAdaptiveByDefaultAndEveryModeIsAccepted) {
  RuntimeConfig config;
  EXPECT_EQ(config.placement, ThreadPlacement::adaptive);
  for (const ThreadPlacement mode : {ThreadPlacement::split, ThreadPlacement::nice,
                                     ThreadPlacement::adaptive, ThreadPlacement::none}) {
    set("TMR_PLACEMENT", (std::string(" ") + placement_name(mode) + " ").c_str());
    config.apply_env();
    EXPECT_EQ(config.placement, mode);
    EXPECT_EQ(parse_placement(placement_name(mode)), mode);
  }
  EXPECT_FALSE(parse_placement("pinned").has_value());
  set("TMR_PLACEMENT", "pinned");
  EXPECT_TRUE(
      throws_error([&] { config.apply_env(); }, ErrorCode::invalid_config,
                   "TMR_PLACEMENT='pinned' is not valid; expected none, split, nice or adaptive"));
  EXPECT_EQ(config.placement, ThreadPlacement::none) << "a failed apply changes nothing";
}

TEST_F(ConfigEnv, GarbageNamesTheVariable) {
  const std::pair<const char*, const char*> cases[] = {
      {"TMR_CLUSTERS", "many"},        {"TMR_CLUSTERS", "12abc"},
      {"TMR_CLUSTERS", "99999999999"}, {"TMR_SCHED_THREADS", "two"},
      {"TMR_RING_TASK_WINDOW", "-4"},  {"TMR_RING_TASK_WINDOW", "4294967296"},
      {"TMR_RING_DEP_POOL", "1e6"},    {"TMR_RECORD_EVENTS", "yes"},
      {"TMR_RECORD_EVENTS", "2"}};
  for (const auto& [name, value] : cases) {
    set(name, value);
    RuntimeConfig config;
    EXPECT_TRUE(throws_error([&] { config.apply_env(); }, ErrorCode::invalid_config,
                             std::string(name) + "='" + value + "' is not valid; expected "))
        << name << "=" << value;
    unsetenv(name);
  }
}

// TMR_TIMING_ONLY is the platform-independent switch; TMR_SIM_TIMING_ONLY its older alias (it
// sets sim.timing_only); either makes the run timing-only, and two that disagree are refused.
TEST_F(ConfigEnv, TimingOnly) {
  RuntimeConfig config;
  EXPECT_FALSE(config.runs_timing_only());
  set("TMR_TIMING_ONLY", "1");
  config.apply_env();
  EXPECT_TRUE(config.timing_only);
  EXPECT_FALSE(config.sim.timing_only);
  EXPECT_TRUE(config.runs_timing_only());
  set("TMR_TIMING_ONLY", " 0 ");
  config.apply_env();
  EXPECT_FALSE(config.runs_timing_only());
  unsetenv("TMR_TIMING_ONLY");

  set("TMR_SIM_TIMING_ONLY", "1");
  RuntimeConfig alias;
  alias.apply_env();
  EXPECT_FALSE(alias.timing_only);
  EXPECT_TRUE(alias.sim.timing_only);
  EXPECT_TRUE(alias.runs_timing_only());
  set("TMR_TIMING_ONLY", "1");  // both, agreeing
  alias.apply_env();
  EXPECT_TRUE(alias.timing_only && alias.sim.timing_only);

  set("TMR_TIMING_ONLY", "0");
  RuntimeConfig disagreeing;
  EXPECT_TRUE(throws_error([&] { disagreeing.apply_env(); }, ErrorCode::invalid_config,
                           "TMR_TIMING_ONLY and TMR_SIM_TIMING_ONLY (its older alias) disagree"));
  EXPECT_FALSE(disagreeing.runs_timing_only()) << "a failed apply changes nothing";
  unsetenv("TMR_SIM_TIMING_ONLY");

  for (const char* name : {"TMR_TIMING_ONLY", "TMR_SIM_TIMING_ONLY"}) {
    set(name, "yes");
    RuntimeConfig bad;
    EXPECT_TRUE(throws_error([&] { bad.apply_env(); }, ErrorCode::invalid_config,
                             std::string(name) + "='yes' is not valid; expected 0 or 1"))
        << name;
    unsetenv(name);
  }
}

TEST_F(ConfigEnv, AFailedApplyChangesNothing) {
  set("TMR_CLUSTERS", "8");
  set("TMR_RECORD_EVENTS", "maybe");
  RuntimeConfig config;
  EXPECT_THROW(config.apply_env(), Error);
  EXPECT_EQ(config.clusters, 24);
}

TEST_F(ConfigEnv, OutOfRangeValuesAreCaughtByValidate) {
  set("TMR_CLUSTERS", "0");
  RuntimeConfig config;
  config.apply_env();  // a well-formed integer: parsing accepts it
  EXPECT_TRUE(throws_error([&] { config.validate(); }, ErrorCode::invalid_config,
                           "clusters = 0 is out of range; accepted 1 to 64 (kMaxClusters); set "
                           "it in the config or with TMR_CLUSTERS"));
}

// The host topology for CPU runs: one cluster per two CPUs of the affinity mask, one scheduler
// thread per 32, within the limits; fit_host keeps a minimum cluster count and stays valid.
TEST(RuntimeConfig, HostTopologyFitsTheAffinityMask) {
  cpu_set_t set;
  CPU_ZERO(&set);
  ASSERT_EQ(sched_getaffinity(0, sizeof(set), &set), 0);
  const int cpus = CPU_COUNT(&set);
  const HostTopology host = host_topology();
  EXPECT_EQ(host.cpus, cpus);
  EXPECT_EQ(host.clusters, std::clamp(cpus / 2, 1, kMaxClusters));
  EXPECT_GE(host.scheduler_threads, 1);
  EXPECT_LE(host.scheduler_threads, host.clusters);
  EXPECT_EQ(host.scheduler_threads,
            std::clamp(cpus / 32, 1, std::min(kMaxSchedulerThreads, host.clusters)));

  RuntimeConfig fitted;
  fitted.fit_host();
  EXPECT_EQ(fitted.clusters, host.clusters);
  EXPECT_EQ(fitted.scheduler_threads, host.scheduler_threads);
  EXPECT_NO_THROW(fitted.validate());

  RuntimeConfig at_least_four;
  at_least_four.fit_host(4);
  EXPECT_EQ(at_least_four.clusters, std::max(4, host.clusters));
  EXPECT_NO_THROW(at_least_four.validate());
}

// Under a one-CPU affinity mask (what `taskset -c 0` gives) the host is one cluster.
TEST(RuntimeConfig, HostTopologyFollowsANarrowedAffinityMask) {
  cpu_set_t original;
  CPU_ZERO(&original);
  ASSERT_EQ(sched_getaffinity(0, sizeof(original), &original), 0);
  int first = 0;
  while (!CPU_ISSET(first, &original))
    ++first;
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(first, &one);
  ASSERT_EQ(sched_setaffinity(0, sizeof(one), &one), 0);
  const HostTopology host = host_topology();
  ASSERT_EQ(sched_setaffinity(0, sizeof(original), &original), 0);
  EXPECT_EQ(host.cpus, 1);
  EXPECT_EQ(host.clusters, 1);
  EXPECT_EQ(host.scheduler_threads, 1);
}

}  // namespace
}  // namespace tmr
