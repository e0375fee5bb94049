#!/usr/bin/env python
"""The differential corpus at scale: many random networks, every path against the oracle.

Usage::

    python benchmarks/differential.py [--count 10000] [--seed 0] [--jobs 1] [--minutes M] [--quiet]

Draws ``--count`` networks with the corpus's Hypothesis strategy (``tests/differential``,
seeded by ``--seed``: the same command draws the same networks), runs each through every
path (forward, value_and_grad with and without seed, sgd_step, the saved module in a
subprocess without graphc/sympy/networkx, gc.grad, a Hessian-vector product for smooth
nets, ownership of returned arrays) and compares with the reference interpreter and
central differences. It prints every disagreement with the network's builder code and
feeds (a reproducer that runs as it is), then networks/second, the count of disagreements
and, per class of disagreement, how many networks show it and the smallest reproducer.
``--jobs`` splits the count over processes (each with its own seed, seed * 1000 + job);
``--minutes`` stops drawing after that long and reports what ran (a progress line goes to
stderr every 200 networks). Exits 1 when anything disagrees.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from pathlib import Path

CORPUS_DIR = Path(__file__).resolve().parents[1] / "tests" / "differential"


class _OutOfTime(BaseException):
    """Raised inside the Hypothesis run to end it (a BaseException: not a failing example)."""


def _run(count: int, seed: int, quiet: bool, minutes: float | None = None
         ) -> tuple[int, list[tuple[str, list[tuple[str, str]]]]]:
    """(networks run, [(reproducer, [(class, description)])]) for ``count`` networks."""
    sys.path.insert(0, str(CORPUS_DIR))
    import numpy as np
    from corpus.networks import networks
    from corpus.paths import SavedModules, check
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed

    saved = SavedModules()
    failures: list[tuple[str, list[tuple[str, str]]]] = []
    done = [0]

    @hypothesis_seed(seed)
    @settings(max_examples=count, database=None, deadline=None, phases=[Phase.generate], print_blob=False,
              suppress_health_check=list(HealthCheck))
    @given(networks(max_steps=7))
    def run(case):
        if minutes is not None and time.perf_counter() - start > 60 * minutes:
            raise _OutOfTime
        done[0] += 1
        if done[0] % 200 == 0:
            print(f"seed {seed}: {done[0]} networks, {len(failures)} with disagreements, "
                  f"{time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
        with np.errstate(all="ignore"):
            found = check(case, saved)
        if found:
            failures.append((case.reproducer, [(d.klass, str(d)) for d in found]))
            if not quiet:
                print(f"--- network {seed}:{done[0]}: {len(found)} disagreement(s)", flush=True)
                for d in found:
                    print(f"  {d}", flush=True)
                print(case.reproducer, flush=True)

    start = time.perf_counter()
    try:
        run()
    except _OutOfTime:
        pass
    finally:
        saved.close()
    return done[0], failures


def _job(args: tuple[int, int, bool, float | None]):
    return _run(*args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000, help="networks to draw (default 10,000)")
    parser.add_argument("--seed", type=int, default=0, help="the Hypothesis seed (default 0)")
    parser.add_argument("--jobs", type=int, default=1, help="processes to split the count over (default 1)")
    parser.add_argument("--minutes", type=float, default=None, help="stop drawing after this many minutes")
    parser.add_argument("--quiet", action="store_true", help="print only the summary and a reproducer per class")
    args = parser.parse_args(argv)
    import warnings

    warnings.simplefilter("ignore")
    start = time.perf_counter()
    if args.jobs <= 1:
        results = [_run(args.count, args.seed, args.quiet, args.minutes)]
    else:
        shares = [args.count // args.jobs + (1 if j < args.count % args.jobs else 0) for j in range(args.jobs)]
        with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
            results = pool.map(_job, [(n, args.seed * 1000 + j, args.quiet, args.minutes)
                                      for j, n in enumerate(shares)])
    seconds = time.perf_counter() - start
    total = sum(n for n, _ in results)
    failures = [f for _, fs in results for f in fs]
    disagreements = sum(len(found) for _, found in failures)
    classes: dict[str, list[str]] = {}
    for reproducer, found in failures:
        for klass in dict.fromkeys(k for k, _ in found):
            classes.setdefault(klass, []).append(reproducer)
    print(f"\n{total} networks in {seconds:.1f} s: {total / seconds:.1f} networks/second")
    print(f"{disagreements} disagreement(s) in {len(failures)} network(s), {len(classes)} class(es)")
    for klass, reproducers in sorted(classes.items(), key=lambda item: -len(item[1])):
        smallest = min(reproducers, key=len)
        print(f"\n=== {klass}: {len(reproducers)} network(s); the smallest:\n{smallest}")
    return 1 if disagreements else 0


if __name__ == "__main__":
    sys.exit(main())
