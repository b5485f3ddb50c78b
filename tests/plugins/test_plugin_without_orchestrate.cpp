// Plug-in fixture: lacks the required tmr_plugin_orchestrate, so loading it must fail.
#include "tmr/tmr.hpp"

TMR_PLUGIN_EXPORT void tmr_plugin_register(tmr::KernelRegistry&) {}
