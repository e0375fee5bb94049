#!/usr/bin/env python
"""Levels on threads: the training step at parallel=2 against the sequential step, one run.

Usage::

    python benchmarks/parallel.py [--cases towers mlp_large ...] [--repeats 15] [--quick]

Cases: ``towers``, a wide network of four independent towers (256 inputs -> 1,024 ->
1,024 -> 1, tanh) whose outputs are summed into one squared loss, batch 512; and the five
networks of ``benchmarks/run.py`` (the lecture's XOR net and MLPs, the 50-layer residual
net, the elementwise chain). Each is compiled twice, ``gc.compile(g)`` and
``gc.compile(g, parallel=2)``, and one SGD step (``prog.sgd_step``) of each is timed,
interleaved round-robin in one process, each on its own copy of the params. BLAS runs on
one thread in both (set before numpy is imported; the parallel program also holds it to
one thread while it runs), so the comparison is one core against two: a third contender,
the sequential step with a two-thread BLAS, shows what BLAS's own threads give instead.
Numbers are medians; the ratio is sequential / parallel (above 1: the pool is faster).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]

import harness  # noqa: E402  (before numpy: it sets the BLAS thread limit)

BLAS_REPORT = harness.limit_blas_threads(1)

import handwritten as hw  # noqa: E402
import numpy as np  # noqa: E402
import run  # noqa: E402
from threadpoolctl import ThreadpoolController  # noqa: E402

import graphc as gc  # noqa: E402

LR = 0.01
CASES = ["towers", *hw.CASES]


def towers(width=1024, count=4, inputs=256, batch=512, seed=0):
    """Four independent tanh towers joined at the loss: every level has four big statements."""
    g = gc.Graph("towers")
    x, y = g.input("x", shape=("N", inputs)), g.input("y", shape=("N", 1))
    rng = np.random.default_rng(seed)
    feeds = {"x": rng.normal(size=(batch, inputs)), "y": rng.normal(size=(batch, 1))}
    total = None
    for k in range(count):
        shapes = {f"A{k}": (inputs, width), f"B{k}": (width, width), f"C{k}": (width, 1)}
        A, B, C = (g.param(name, shape=shape) for name, shape in shapes.items())
        feeds.update({name: rng.normal(size=shape) / np.sqrt(shape[0]) for name, shape in shapes.items()})
        out = gc.tanh(gc.tanh(x @ A) @ B) @ C
        total = out if total is None else total + out
    g.output("loss", gc.mse(total, y))
    return g, feeds


def build(case):
    if case == "towers":
        return towers()
    make = hw.CASES[case][0]
    feeds, params = make(np.random.default_rng(0))
    return run.BUILDERS[case](gc, feeds, params), {**feeds, **params}


def stepper(prog, feeds, blas=None):
    mine = {k: np.array(v, copy=True) for k, v in feeds.items()}
    if blas is None:
        return lambda: prog.sgd_step(mine, LR)

    def step():
        with blas():
            return prog.sgd_step(mine, LR)

    return step


def run_case(case, repeats, warmup):
    graph, feeds = build(case)
    sequential, parallel = gc.compile(graph), gc.compile(graph, parallel=2)
    groups = parallel.plan.parallel.groups
    check = {k: np.array(v, copy=True) for k, v in feeds.items()}
    _, want = sequential.value_and_grad(check)
    _, got = parallel.value_and_grad(check)
    identical = all(np.array_equal(want[k], got[k]) for k in want)
    controller = ThreadpoolController()
    contenders = {
        "sequential": stepper(sequential, feeds),
        "parallel=2": stepper(parallel, feeds),
        "sequential, BLAS 2 threads": stepper(sequential, feeds, lambda: controller.limit(limits=2, user_api="blas")),
    }
    number = harness.calibrate_number(contenders["sequential"], target=0.02)
    times = harness.round_robin(contenders, repeats=repeats, warmup=warmup, number=number)
    med = {name: harness.median(t) for name, t in times.items()}
    pooled = sum(len(g.nodes) for g in groups)
    return {
        "case": case,
        "sequential (ms)": f"{med['sequential'] * 1e3:.4g}",
        "parallel=2 (ms)": f"{med['parallel=2'] * 1e3:.4g}",
        "speed-up": f"{med['sequential'] / med['parallel=2']:.2f}",
        "BLAS 2 threads (ms)": f"{med['sequential, BLAS 2 threads'] * 1e3:.4g}",
        "its speed-up": f"{med['sequential'] / med['sequential, BLAS 2 threads']:.2f}",
        "groups (statements)": f"{len(groups)} ({pooled})",
        "bit-identical grads": "yes" if identical else "NO",
    }, f"{case}: {repeats} rounds x {number} step(s) per sample; min/median/max (ms) " + "; ".join(
        f"{name} {min(t) * 1e3:.4g}/{med[name] * 1e3:.4g}/{max(t) * 1e3:.4g}" for name, t in times.items())


def ceiling(repeats):
    """What two threads give plain numpy here and now: four independent matmuls, one after
    another against two at a time (the most a level of four matmuls can gain)."""
    import concurrent.futures

    rng = np.random.default_rng(0)
    pairs = [(rng.normal(size=(512, 1024)), rng.normal(size=(1024, 1024))) for _ in range(4)]
    pool = concurrent.futures.ThreadPoolExecutor(2)
    contenders = {"one thread": lambda: [a @ b for a, b in pairs],
                  "two threads": lambda: list(pool.map(lambda p: p[0] @ p[1], pairs))}
    times = harness.round_robin(contenders, repeats=repeats, warmup=1)
    one, two = (harness.median(times[k]) for k in contenders)
    pool.shutdown()
    return (f"ceiling: four independent 512x1024 @ 1024x1024 matmuls with BLAS on one thread took "
            f"{one * 1e3:.4g} ms one after another and {two * 1e3:.4g} ms two at a time on a plain thread "
            f"pool: {one / two:.2f}x is what two threads could give in this run")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", choices=CASES, default=CASES)
    parser.add_argument("--repeats", type=int, default=None, help="recorded rounds (default 15, 3 with --quick)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--output", default=os.path.join(HERE, "results-parallel.md"))
    args = parser.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 15)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    header = [
        f"Date: {datetime.datetime.now().isoformat(timespec='seconds')}",
        f"Python {platform.python_version()}, numpy {np.__version__}, {platform.machine()} with "
        f"{os.cpu_count()} CPU(s); load average {load:.1f} when it started (a shared machine: others ran "
        "tests meanwhile, so the numbers are noisy)",
        BLAS_REPORT,
        f"float64, one SGD step (lr {LR}), {repeats} recorded rounds after 1 warm-up, interleaved round-robin",
    ]
    print("\n".join(header), flush=True)
    rows, notes = [], [ceiling(repeats)]
    print(notes[0], flush=True)
    for case in args.cases:
        print(f"running {case} ...", flush=True)
        row, note = run_case(case, repeats, 1)
        rows.append(row)
        notes.append(note)
        print(row, flush=True)
    table = harness.format_table(rows)
    print("\n" + table)
    command = "python benchmarks/parallel.py" + (" --quick" if args.quick else "") + \
        (f" --cases {' '.join(args.cases)}" if args.cases != CASES else "") + \
        (f" --repeats {args.repeats}" if args.repeats else "")
    with open(args.output, "w") as fh:
        fh.write("# Levels on threads: parallel=2 against the sequential step\n\n")
        fh.write(f"Produced by `{command}`.\n\n")
        fh.write("\n".join(f"- {line}" for line in header) + "\n\n" + table + "\n\n")
        fh.write("Medians of one training step's wall time. speed-up = sequential / parallel=2 (above 1: the pool "
                 "is faster); both run BLAS on one thread. 'BLAS 2 threads' is the sequential step with a "
                 "two-thread BLAS instead, and its speed-up is against the same sequential step. 'groups' counts "
                 "the levels (and statements) the plan runs together in all three functions.\n\n## Notes\n\n")
        fh.write("\n".join(f"- {note}" for note in notes) + "\n")
        fh.write(f"- after the cases the load average was {os.getloadavg()[0]:.1f}\n")
    print(f"\nwritten to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
