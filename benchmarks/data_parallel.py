#!/usr/bin/env python
"""Data-parallel training on Dask: steps per second, one process against 1 and 2 workers.

Usage::

    python benchmarks/data_parallel.py [--batches 8192 256] [--repeats 3] [--widths 784 1024 1024 1024 10]

The network is the large MLP of ``benchmarks/run.py`` (784-1024-1024-1024-10, ReLU,
softmax cross-entropy). For each batch size it times one training step (SGD) three
ways, interleaved round-robin: ``train_step`` in this process, and
``graphc.distributed.DataParallelStep`` on a ``LocalCluster`` of 1 and of 2 worker
processes (one thread each). BLAS is limited to one thread everywhere (the workers
inherit the limit), so two workers can at best halve the step on a 2-core machine.
Numbers are medians of ``--repeats`` steps; the ratio is against the one-process step
in the same run.
"""

from __future__ import annotations

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]

import harness  # noqa: E402  (before numpy: it sets the BLAS thread limit)

BLAS_REPORT = harness.limit_blas_threads(1)

import numpy as np  # noqa: E402

import graphc as gc  # noqa: E402
from graphc.distributed import DataParallelStep  # noqa: E402


def build(widths: list[int]):
    g = gc.Graph("mlp_large")
    x, y = g.input("x", shape=("N", widths[0])), g.input("y", shape=("N", widths[-1]))
    rng = np.random.default_rng(0)
    params, h = {}, x
    for k, (fan_in, fan_out) in enumerate(zip(widths, widths[1:]), start=1):
        W, b = g.param(f"W{k}", shape=(fan_in, fan_out)), g.param(f"b{k}", shape=(fan_out,))
        params[f"W{k}"] = rng.normal(scale=(2 / fan_in) ** 0.5, size=(fan_in, fan_out))
        params[f"b{k}"] = np.zeros(fan_out)
        h = h @ W + b
        if k < len(widths) - 1:
            h = gc.relu(h)
    g.output("loss", gc.softmax_cross_entropy(h, y))
    return g, params


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[8192, 256])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--widths", type=int, nargs="+", default=[784, 1024, 1024, 1024, 10])
    args = parser.parse_args(argv)
    from distributed import Client, LocalCluster

    graph, params = build(args.widths)
    prog = gc.compile(graph)
    rng = np.random.default_rng(1)
    rows = max(args.batches)
    inputs = {"x": rng.normal(size=(rows, args.widths[0])),
              "y": np.eye(args.widths[-1])[rng.integers(args.widths[-1], size=rows)]}
    print(BLAS_REPORT)
    clusters = {n: LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0")
                for n in (1, 2)}
    clients = {n: Client(cluster) for n, cluster in clusters.items()}
    table = []
    try:
        for batch in args.batches:
            chosen = np.arange(batch)
            alone = prog.train_step(gc.optim.SGD(lr=1e-3))
            feeds = {"x": inputs["x"][:batch], "y": inputs["y"][:batch], **params}
            steps = {"1 process": lambda s=alone, f=feeds: s(f)}
            for n, client in clients.items():
                parallel = DataParallelStep(prog, prog.train_step(gc.optim.SGD(lr=1e-3)), client, inputs, ["x", "y"])
                steps[f"dask, {n} worker{'s' * (n > 1)}"] = (lambda p=parallel, c=chosen: p(c, params))
            times = harness.round_robin(steps, repeats=args.repeats, warmup=1)
            base = harness.median(times["1 process"])
            for name, samples in times.items():
                t = harness.median(samples)
                table.append({"batch": batch, "run": name, "step (ms)": f"{1e3 * t:.1f}",
                              "steps/s": f"{1 / t:.2f}", "speed-up": f"{base / t:.2f}"})
    finally:
        for client in clients.values():
            client.close()
        for cluster in clusters.values():
            cluster.close()
    print(harness.format_table(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
