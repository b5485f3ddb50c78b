#!/usr/bin/env python3
"""Usage: scripts/measure/setup_fit.py DIR

Reads setup_fit.sh's callgrind files in DIR and fits the sim's loop set-up constants
(docs/sim.md). All costs are in units of an ordinary submit (`unit.cg`: inclusive
tmr::Orchestrator::submit over its calls).

Learned set-up, L(T) = fixed + ratio * T + square * T^2 units a loop of T template tasks:
  L(4)   = the one try_template of setup.L1.R1 (one block loop)
  L(129) = try_template of setup.T129.R1 less two L(4) (requests 0 and 1 each learn a block loop)
  L(257) = the same of setup.T257.R1
  and the three-term curve through them.
Kept set-up, as a share of the learned one (unit-free): per case, inclusive try_kept +
try_kept_from_start of R3 less R2 over try_template of R1, fitted as
  share(T) = base * F(T) + per_task * (1 - F(T)),
F(T) being the per-loop part's share of the fitted learned charge of that case's loops (T4: 16
loops of 4; T129: one of 129 and two of 4; T257: one of 257 and two of 4), through T4 and T257,
checked at T129."""
import re
import subprocess
import sys

LINE = re.compile(r"\s*([\d,]+) \(\s*[\d.]+%\)\s+\S*?:(.*?)(?: \[[^\]]*\])?$")
LEARN = ("tmr::detail::LoopDriver::try_template(",)
KEPT = ("tmr::detail::LoopDriver::try_kept(", "tmr::detail::LoopDriver::try_kept_from_start(")
SUBMIT = ("tmr::Orchestrator::submit(tmr::MixKernels",)
LOOPS = {"T4": [4] * 16, "T129": [129, 4, 4], "T257": [257, 4, 4]}


def inclusive(path, prefixes):
    out = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", path],
                         capture_output=True, text=True, check=True)
    total = 0
    for line in out.stdout.splitlines():
        m = LINE.match(line)
        if m and any(m.group(2).startswith(p) for p in prefixes):
            total += int(m.group(1).replace(",", ""))
    return total


def calls(path, prefix):
    """Calls of the function named by prefix, summed over its call sites."""
    ids, total, current = set(), 0, None
    with open(path) as f:
        for line in f:
            m = re.match(r"c?fn=\((\d+)\)(?: (.*))?", line)
            if m:
                if m.group(2) and m.group(2).startswith(prefix):
                    ids.add(m.group(1))
                current = m.group(1) if line.startswith("cfn=") else None
            elif line.startswith("calls=") and current in ids:
                total += int(line.split()[0][6:])
    return total


def solve3(rows):
    """Solves three equations [a, b, c, y]: a x0 + b x1 + c x2 = y (Cramer)."""
    def det(m):
        return (m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
                - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
                + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]))
    a = [r[:3] for r in rows]
    d = det(a)
    out = []
    for k in range(3):
        m = [list(r[:3]) for r in rows]
        for i in range(3):
            m[i][k] = rows[i][3]
        out.append(det(m) / d)
    return out


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: scripts/measure/setup_fit.py DIR")
    d = sys.argv[1]
    n = calls(f"{d}/unit.cg", SUBMIT[0])
    if n <= 0:
        sys.exit(f"setup_fit.py: no tmr::Orchestrator::submit calls in {d}/unit.cg")
    unit = inclusive(f"{d}/unit.cg", SUBMIT) / n
    print(f"unit: an ordinary submit {unit:,.1f} instructions ({n} submits)")
    l4 = inclusive(f"{d}/setup.L1.R1.cg", LEARN)
    learned = {c: inclusive(f"{d}/setup.{c}.R1.cg", LEARN) for c in LOOPS}
    l129 = learned["T129"] - 2 * l4
    l257 = learned["T257"] - 2 * l4
    units = {4: l4 / unit, 129: l129 / unit, 257: l257 / unit}
    for t, u in units.items():
        print(f"learned L({t}): {u:,.2f} units")
    fixed, ratio, square = solve3([[1, t, t * t, units[t]] for t in (4, 129, 257)])
    print(f"fit: loop_setup_fixed {fixed:.2f}, loop_setup_ratio {ratio:.3f}, "
          f"loop_setup_square {square:.6f}")

    def share_fixed(loops):
        per_loop = sum(fixed + square * t * t for t in loops)
        return per_loop / (per_loop + ratio * sum(loops))

    share = {}
    for c in LOOPS:
        kept = (inclusive(f"{d}/setup.{c}.R3.cg", KEPT)
                - inclusive(f"{d}/setup.{c}.R2.cg", KEPT))
        share[c] = kept / learned[c]
        print(f"{c}: learned {learned[c]:,} kept {kept:,} kept / learned {share[c]:.3f}, "
              f"per-loop share of the charge {share_fixed(LOOPS[c]):.3f}")
    f4, f257 = share_fixed(LOOPS["T4"]), share_fixed(LOOPS["T257"])
    det = f4 * (1 - f257) - f257 * (1 - f4)
    base = (share["T4"] * (1 - f257) - share["T257"] * (1 - f4)) / det
    per_task = (f4 * share["T257"] - f257 * share["T4"]) / det
    f129 = share_fixed(LOOPS["T129"])
    print(f"fit: kept_setup_base_ratio {base:.3f}, kept_setup_ratio {per_task:.3f}; at T129 "
          f"{base * f129 + per_task * (1 - f129):.3f} (measured {share['T129']:.3f})")


if __name__ == "__main__":
    main()
