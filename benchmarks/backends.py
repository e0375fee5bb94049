#!/usr/bin/env python
"""PyTorch on the CPU against numpy: the same compiled program on both, one run.

Usage::

    python benchmarks/backends.py [--cases xor mlp_small ...] [--repeats 15] [--quick]

For each of the five networks of ``benchmarks/run.py`` (and the zoo's ``digits_cnn``) the program is compiled once,
``gc.compile(g)``, and moved with ``prog.to("torch")``; ``value_and_grad`` is timed on
each (numpy arrays for numpy, torch tensors for torch: no conversion inside the timing),
interleaved round-robin in one process. Both run on one thread (numpy's BLAS limited
before numpy is imported, ``torch.set_num_threads(1)``). Numbers are medians; the ratio is
torch / numpy (below 1: torch is faster). The largest gradient difference between the two
is recorded: the tests hold it to 1e-12 relative in float64.
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

import graphc as gc  # noqa: E402

ZOO = {"digits_cnn": gc.zoo.digits_cnn}  # zoo networks (graph and feeds from the zoo), beside the five
CASES = list(hw.CASES) + list(ZOO)


def graph_and_feeds(case):
    """The case's graph and its numpy feeds (inputs and params)."""
    if case in ZOO:
        return ZOO[case]()
    feeds, params = hw.CASES[case][0](np.random.default_rng(0))
    return run.BUILDERS[case](gc, feeds, params), {**feeds, **params}


def run_case(case, torch, repeats, warmup):
    graph, numpy_feeds = graph_and_feeds(case)
    prog = gc.compile(graph)
    on_torch = prog.to("torch")
    torch_feeds = {k: torch.from_numpy(np.array(v, copy=True)) for k, v in numpy_feeds.items()}
    _, want = prog.value_and_grad(numpy_feeds)
    _, got = on_torch.value_and_grad(torch_feeds)
    worst = max(float(np.max(np.abs(got[k].numpy() - want[k]))) / max(float(np.max(np.abs(want[k]))), 1e-300)
                for k in want)
    contenders = {"numpy": lambda: prog.value_and_grad(numpy_feeds),
                  "torch": lambda: on_torch.value_and_grad(torch_feeds)}
    number = harness.calibrate_number(contenders["numpy"], target=0.02)
    times = harness.round_robin(contenders, repeats=repeats, warmup=warmup, number=number)
    med = {name: harness.median(t) for name, t in times.items()}
    row = {"case": case, "numpy (ms)": f"{med['numpy'] * 1e3:.4g}", "torch (ms)": f"{med['torch'] * 1e3:.4g}",
           "ratio torch/numpy": f"{med['torch'] / med['numpy']:.2f}", "max grad rel. diff": f"{worst:.1e}"}
    note = f"{case}: {repeats} rounds x {number} call(s) per sample; min/median/max (ms) " + "; ".join(
        f"{name} {min(t) * 1e3:.4g}/{med[name] * 1e3:.4g}/{max(t) * 1e3:.4g}" for name, t in times.items())
    return row, note


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", choices=CASES, default=CASES)
    parser.add_argument("--repeats", type=int, default=None, help="recorded rounds (default 15, 3 with --quick)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--output", default=os.path.join(HERE, "results-backends.md"))
    args = parser.parse_args(argv)
    try:
        import torch
    except ImportError:
        print("torch is not installed: pip install 'graphc[torch]'")
        return 1
    torch.set_num_threads(1)
    repeats = args.repeats or (3 if args.quick else 15)
    header = [
        f"Date: {datetime.datetime.now().isoformat(timespec='seconds')}",
        f"Python {platform.python_version()}, numpy {np.__version__}, torch {torch.__version__} "
        f"({torch.get_num_threads()} thread), {platform.machine()} with {os.cpu_count()} CPU(s); load average "
        f"{os.getloadavg()[0]:.1f} when it started (a shared machine: others ran tests meanwhile, so the numbers "
        "are noisy)",
        BLAS_REPORT,
        f"float64, prog.value_and_grad, {repeats} recorded rounds after 1 warm-up, interleaved round-robin",
    ]
    print("\n".join(header), flush=True)
    rows, notes = [], []
    for case in args.cases:
        print(f"running {case} ...", flush=True)
        row, note = run_case(case, torch, repeats, 1)
        rows.append(row)
        notes.append(note)
        print(row, flush=True)
    table = harness.format_table(rows)
    print("\n" + table)
    command = "python benchmarks/backends.py" + (" --quick" if args.quick else "") + \
        (f" --cases {' '.join(args.cases)}" if args.cases != CASES else "") + \
        (f" --repeats {args.repeats}" if args.repeats else "")
    with open(args.output, "w") as fh:
        fh.write("# Backends: the same program on PyTorch (CPU) and on numpy\n\n")
        fh.write(f"Produced by `{command}`.\n\n")
        fh.write("\n".join(f"- {line}" for line in header) + "\n\n" + table + "\n\n")
        fh.write("Medians of one value_and_grad call (forward and backward). ratio = torch / numpy (below 1: torch "
                 "is faster). The torch program is the module printed for the array API standard, run through "
                 "array-api-compat's torch namespace; the numpy program is graphc's default module, with its "
                 "in-place kernels.\n\n## Notes\n\n")
        fh.write("\n".join(f"- {note}" for note in notes) + "\n")
        fh.write(f"- after the cases the load average was {os.getloadavg()[0]:.1f}\n")
    print(f"\nwritten to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
