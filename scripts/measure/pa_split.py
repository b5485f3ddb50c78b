#!/usr/bin/env python3
"""Usage: scripts/measure/pa_split.py DIR EXAMPLE

Splits round 3 (R3 less R2) of cg_paged_attention.sh's callgrind files DIR/pa.{on,off}.R{2,3}.cg
into the parts the sim charges by rows of their own and the rest, and prints the "cats factor":
(rest on / rest off) / (whole on / whole off), the share of the whole orchestration's on / off
that the rest accounts for (docs/sim.md, wide_submit_ratio). The parts, by function name:
  example     exclusive Ir of every function named tmr::examples::EXAMPLE::... (its lambdas,
              kv_block, context_length, attention_views; header code inlined into them included)
  kept start  inclusive Ir of LoopDriver::try_kept_from_start (the kept template's start)
  reads       exclusive Ir of the element reads' own functions: Orchestrator::read_element,
              OrchestratorCore::read_element, check_element_type, LoopDriver::element_access_slow,
              Tensor::element_address (not the producers' wait an `off` read can make)
The lead's cats.py of sessions 24-29 (lost with its machine) drew these lines by lists of its
own; on 448faa4 this definition gives factor 0.864 where it gave 0.875."""
import os
import re
import subprocess
import sys

READS = (
    "tmr::Orchestrator::read_element(",
    "tmr::detail::OrchestratorCore::read_element(",
    "tmr::detail::OrchestratorCore::check_element_type(",
    "tmr::detail::LoopDriver::element_access_slow(",
    "tmr::Tensor::element_address(",
)
KEPT = "tmr::detail::LoopDriver::try_kept_from_start("
LINE = re.compile(r"\s*([\d,]+) \(\s*[\d.]+%\)\s+\S*?:(.*?)(?: \[[^\]]*\])?$")


def costs(path, inclusive):
    out = subprocess.run(["callgrind_annotate", f"--inclusive={'yes' if inclusive else 'no'}",
                          "--threshold=100", path], capture_output=True, text=True, check=True)
    table = {}
    for line in out.stdout.splitlines():
        m = LINE.match(line)
        if m and "PROGRAM TOTALS" not in line:
            name = m.group(2)
            table[name] = table.get(name, 0) + int(m.group(1).replace(",", ""))
    return table


def round3(directory, pf, inclusive):
    r3 = costs(os.path.join(directory, f"pa.{pf}.R3.cg"), inclusive)
    r2 = costs(os.path.join(directory, f"pa.{pf}.R2.cg"), inclusive)
    return {k: r3.get(k, 0) - r2.get(k, 0) for k in set(r3) | set(r2)}


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__.splitlines()[0], file=sys.stderr)
        print("pa_split.py: error: expected 2 arguments (DIR EXAMPLE)", file=sys.stderr)
        return 2
    directory, example = sys.argv[1], sys.argv[2]
    parts = {}
    for pf in ("on", "off"):
        excl = round3(directory, pf, False)
        incl = round3(directory, pf, True)
        whole = sum(excl.values())
        ex = sum(v for k, v in excl.items() if k.startswith(f"tmr::examples::{example}::"))
        kept = sum(v for k, v in incl.items() if k.startswith(KEPT))
        reads = sum(v for k, v in excl.items() if k.startswith(READS))
        parts[pf] = (whole, ex, kept, reads, whole - ex - kept - reads)
        print(f"{pf}: whole {whole:,} = example {ex:,} + kept start {kept:,} + reads {reads:,}"
              f" + rest {parts[pf][4]:,}")
    whole = parts["on"][0] / parts["off"][0]
    rest = parts["on"][4] / parts["off"][4]
    print(f"on / off: whole {whole:.3f}, rest {rest:.3f}, factor {rest / whole:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
