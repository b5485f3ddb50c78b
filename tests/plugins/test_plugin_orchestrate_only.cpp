// Plug-in fixture: exports only the orchestration (tmr_plugin_register is optional).
#include "tmr/tmr.hpp"

TMR_PLUGIN_EXPORT void tmr_plugin_orchestrate(tmr::Orchestrator&, const tmr::OrchestrationArgs&) {}
