"""The known-shift test on a real session, as a Markdown table (docs/sync.md).

    python scripts/known_shifts.py SESSION [--n 10] [--seed 18] [--span-ms 300]

Moves every motion clock's timestamps by N random off-grid amounts in ±span ms and reports, per
shift, the recovered shift (offset − unshifted offset), its error and the drift
(``egoworld.sync.evaluate.known_shifts``).
"""
from __future__ import annotations

import argparse

import numpy as np

from egoworld.sync.evaluate import known_shifts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("session")
    ap.add_argument("--n", type=int, default=10)
    ap.add_argument("--seed", type=int, default=18)
    ap.add_argument("--span-ms", type=float, default=300.0)
    a = ap.parse_args()
    shifts = list(np.round(np.random.default_rng(a.seed).uniform(-a.span_ms, a.span_ms, a.n), 3))
    r = known_shifts(a.session, shifts)
    for clock, b in r["base"].items():
        print(f"unshifted `{clock}`: offset {b['offset_ms']:+.3f} ms, drift {b['drift_ppm']:+.1f} ppm, {b['verdict']} ({b['reason']})\n")
    print("| applied shift (ms) | recovered (ms) | error (ms) | drift (ppm) | verdict |")
    print("|---:|---:|---:|---:|---|")
    for row in r["rows"]:
        print(f"| {row['shift_ms']:+.3f} | {row['recovered_ms']:+.3f} | {row['error_ms']:+.3f} | {row['drift_ppm']:+.1f} | {row['verdict']} |")
    print(f"\nmedian |error| {r['median_abs_error_ms']:.3f} ms, max {r['max_abs_error_ms']:.3f} ms, "
          f"drift range {r['drift_range_ppm']:.1f} ppm")


if __name__ == "__main__":
    main()
