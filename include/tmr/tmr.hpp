// Everything a user of tmr includes.
#pragma once

#include "tmr/args.hpp"
#include "tmr/config.hpp"
#include "tmr/dtype.hpp"
#include "tmr/error.hpp"
#include "tmr/kernel.hpp"
#include "tmr/orchestrator.hpp"
#include "tmr/plugin.hpp"
#include "tmr/runtime.hpp"
#include "tmr/shape.hpp"
#include "tmr/tensor.hpp"
#include "tmr/trace.hpp"
