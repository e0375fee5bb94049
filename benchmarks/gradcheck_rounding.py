#!/usr/bin/env python
"""How close float32 gradients come to the rounding step's tolerance, over the corpus's networks.

Usage::

    python benchmarks/gradcheck_rounding.py [--count 2000] [--seed 11] [--floor 16]

Draws ``--count`` networks with the differential corpus's Hypothesis strategy
(``tests/differential``), keeps the float32 ones and runs ``gc.check_gradients`` on each,
with the rounding step's floor set to ``--floor`` ulp (graphc.rounding.FLOOR_ULPS; 0
measures what the measured noise alone explains). It prints how many networks fail either
step and the largest |float32 - twin| / tolerance of any rounding row (below 1: passed).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

CORPUS_DIR = Path(__file__).resolve().parents[1] / "tests" / "differential"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000, help="networks to draw (about half are float32)")
    parser.add_argument("--seed", type=int, default=11, help="the Hypothesis seed")
    parser.add_argument("--floor", type=float, default=None, help="the rounding floor in ulp (default: graphc's)")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    sys.path.insert(0, str(CORPUS_DIR))
    from corpus.networks import networks
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed

    import graphc as gc
    from graphc import rounding

    if args.floor is not None:
        rounding.FLOOR_ULPS = args.floor
    seen, failed, worst = [0], {"derivation": [], "rounding": []}, [0.0]

    @hypothesis_seed(args.seed)
    @settings(max_examples=args.count, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(networks(max_steps=7))
    def run(case):
        if case.dtype != "float32":
            return
        seen[0] += 1
        with np.errstate(all="ignore"):
            report = gc.check_gradients(gc.compile(case.graph), case.feeds, raise_on_failure=False)
        for step in report.failed_steps:
            failed[step].append(case.reproducer)
        ratios = [r.error / r.tolerance for r in report.rows if r.check == "rounding" and r.tolerance > 0]
        worst[0] = max([worst[0], *ratios])

    start = time.perf_counter()
    run()
    print(f"{seen[0]} float32 networks in {time.perf_counter() - start:.0f} s (floor {rounding.FLOOR_ULPS:g} ulp): "
          f"{len(failed['derivation'])} fail the derivation step, {len(failed['rounding'])} the rounding step; "
          f"largest rounding error / tolerance {worst[0]:.3g}")
    for step, reproducers in failed.items():
        if reproducers:
            print(f"\n=== {step}: the smallest of {len(reproducers)}:\n{min(reproducers, key=len)}")
    return 1 if any(failed.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
