// paged_attention as a plug-in (libtmr_paged_attention_plugin.so), so `python3 -m tmr run` can run
// it against examples/paged_attention/golden.py exactly as the `tmr` command runs it.
#include "tmr/plugin.hpp"
#include "paged_attention/kernels.hpp"
#include "paged_attention/orchestration.hpp"

TMR_PLUGIN_EXPORT void tmr_plugin_register(tmr::KernelRegistry& kernels) {
  tmr::examples::paged_attention::register_kernels(kernels);
}

TMR_PLUGIN_EXPORT void tmr_plugin_orchestrate(tmr::Orchestrator& o,
                                              const tmr::OrchestrationArgs& args) {
  tmr::examples::paged_attention::orchestrate(o, args);
}
