#!/usr/bin/env bash
# `make run`: the flagship example (paged attention, every small case) on the threads platform,
# ending with a one-line verdict. Usage: scripts/run_flagship.sh <build dir> [extra tmr run args]
# The large case (B16_ctx4096) is left out; run it with
#   <build dir>/tmr run paged_attention --case B16_ctx4096 --rounds 5
set -uo pipefail
build_dir="${1:?usage: run_flagship.sh <build dir> [tmr run options]}"
shift
tmr="${build_dir}/tmr"
if [[ ! -x "${tmr}" ]]; then
  echo "run_flagship: ${tmr} is missing; build first (cmake --build --preset release)" >&2
  echo "VERDICT: FAIL (no tmr executable)"
  exit 1
fi
"${tmr}" run paged_attention --all-cases --rounds "${TMR_FLAGSHIP_ROUNDS:-3}" "$@"
status=$?
if [[ ${status} -eq 0 ]]; then
  echo "VERDICT: PASS - paged attention matches the golden in every small case"
else
  echo "VERDICT: FAIL - tmr run paged_attention exited with ${status} (see above)"
fi
exit ${status}
