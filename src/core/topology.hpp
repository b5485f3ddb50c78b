// The chip's shape as every unit sees it: clusters of one AIC and two AIV cores, core numbering,
// and which scheduler thread owns which cluster. A value type, fixed at construction.
#pragma once

namespace tmr::detail {

struct Topology {
  int clusters = 1;
  int scheduler_threads = 1;

  // Cores [0, clusters) are AICs; AIV s of cluster c is clusters + 2c + s.
  int core_count() const { return 3 * clusters; }
  int aic_core(int cluster) const { return cluster; }
  int aiv_core(int cluster, int sub) const { return clusters + 2 * cluster + sub; }
  int scheduler_of_cluster(int cluster) const { return cluster % scheduler_threads; }
};

}  // namespace tmr::detail
