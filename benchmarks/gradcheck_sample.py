"""The report's gradient check, entry by entry against sampled, on a 2,000-node graph.

    .venv/bin/python benchmarks/gradcheck_sample.py [--layers 400] [--sample 64]

400 layers h = tanh(h * w_k + b_k) (w_k, b_k of shape (4,)) make 2,003 nodes and 3,200
param entries: the full check runs two forward passes per entry, the sampled one a fixed
number. Both runs check the same program on the same feeds, in the same process.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import graphc as gc


def deep(layers: int):
    g = gc.Graph("deep")
    h = g.input("x", shape=("N", 4))
    feeds = {"x": np.random.default_rng(0).standard_normal((3, 4))}
    for k in range(layers):
        w, b = g.param(f"w{k}", shape=(4,)), g.param(f"b{k}", shape=(4,))
        h = gc.tanh(h * w + b)
        feeds[f"w{k}"], feeds[f"b{k}"] = np.full(4, 0.9), np.full(4, 0.01)
    g.output("loss", gc.mean(h * h))
    return g, feeds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", type=int, default=400)
    parser.add_argument("--sample", type=int, default=64)
    args = parser.parse_args(argv)
    graph, feeds = deep(args.layers)
    prog = gc.compile(graph)
    print(f"{graph.nx.number_of_nodes()} nodes, {sum(v.size for k, v in feeds.items() if k != 'x')} param entries")
    for label, options in (("sampled", {"sample": args.sample}), ("every entry", {})):
        started = time.perf_counter()
        report = gc.check_gradients(prog, feeds, raise_on_failure=False, **options)
        print(f"{label:<12} {time.perf_counter() - started:7.2f} s  {len(report.rows):5d} rows  ok={report.ok}")


if __name__ == "__main__":
    main()
