#!/usr/bin/env python
"""Compile time of graphc in a cold process.

Usage::

    python benchmarks/compile_time.py [--runs 3] [--output benchmarks/results.md]

Every measurement runs in a fresh interpreter (``python -c``): it imports graphc, builds
the network with the builder, and times ``gc.compile`` alone; the parent also times the
whole child process (interpreter start, import, build, compile: what a user waits for
the first time). Each number is the median of ``--runs`` processes.

Cases:

* ``mlp_784``: MLP 784-256-256-10, ReLU, softmax cross-entropy (target: compile <= 0.1 s);
* ``residual50``: 50 layers of ``h = h + tanh(h @ W + b)``, width 32, MSE (target <= 2 s);
* growth: MLP-like chains of ``tanh(h @ W_k + b_k)`` layers (width 8) sized to ~1,000 to
  ~20,000 declared nodes (``prog.stages["declared"]``, ``--sizes``); each row gives the
  compile time per declared node (target: <= 0.25 ms a node at every size), and the
  growth line compares the largest size's ms per node with the smallest's (linear: the same);
* from the disk cache: the MLP and the ~10,000-node chain compiled with ``cache_dir`` in a
  process after one that wrote the entry (``--disk-sizes``; docs/compile-cache.md).

Every child checks that no cache served a real compile (memory and disk hits 0; the disk
rows: one disk hit), so the compile rows time the whole pipeline.

The markdown table is printed and written into ``benchmarks/results.md`` as its
"## Compile time" section (replacing that section if present, else appended).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
HEADING = "## Compile time"

# The child's program (case and size are filled in); it prints one JSON line.
CHILD = """
import time
start = time.perf_counter()
import graphc as gc
import compile_time
gc.Graph, gc.compile  # the package loads its parts when first used: importing is timed here
imported = time.perf_counter()
graph = compile_time.build(gc, {case!r}, {size!r})
built, built_cpu = time.perf_counter(), time.process_time()
prog = gc.compile(graph, cache_dir={cache_dir!r})
done, done_cpu = time.perf_counter(), time.process_time()
import json
from graphc import compile_cache, disk_cache
print(json.dumps({{"import": imported - start, "build": built - imported, "compile": done - built,
                  "cpu": done_cpu - built_cpu, "nodes": prog.graph.number_of_nodes(),
                  "memory_hits": compile_cache.MEMORY.hits, "disk_hits": disk_cache.COUNTS.hits}}))
"""


# -- the networks (run in the child) ---------------------------------------------------------
def build_mlp(gc, sizes=(784, 256, 256, 10)):
    g = gc.Graph("mlp_784")
    x = g.input("x", shape=("N", sizes[0]))
    y = g.input("y", shape=("N", sizes[-1]))
    h = x
    for k, (n_in, n_out) in enumerate(zip(sizes, sizes[1:]), start=1):
        W, b = g.param(f"W{k}", shape=(n_in, n_out)), g.param(f"b{k}", shape=(n_out,))
        h = h @ W + b
        if k < len(sizes) - 1:
            h = gc.relu(h)
    g.output("loss", gc.softmax_cross_entropy(h, y))
    return g


def build_residual(gc, depth=50, width=32):
    g = gc.Graph("residual50")
    x = g.input("x", shape=("N", width))
    y = g.input("y", shape=("N", width))
    h = x
    for k in range(depth):
        W, b = g.param(f"W{k}", shape=(width, width)), g.param(f"b{k}", shape=(width,))
        h = h + gc.tanh(h @ W + b)
    g.output("loss", gc.mse(h, y))
    return g


NODES_PER_LAYER = 5  # W, b, matmul, add, tanh
FIXED_NODES = 3  # x, h * h and the mean (the child reports the exact count)


def build_deep(gc, nodes, width=8):
    """An MLP-like chain with about ``nodes`` declared nodes."""
    g = gc.Graph(f"deep_{nodes}")
    h = g.input("x", shape=("N", width))
    for k in range(max(1, (nodes - FIXED_NODES) // NODES_PER_LAYER)):
        W, b = g.param(f"W{k}", shape=(width, width)), g.param(f"b{k}", shape=(width,))
        h = gc.tanh(h @ W + b)
    g.output("loss", gc.mean(h * h))
    return g


def build(gc, case, size=None):
    if case == "mlp_784":
        return build_mlp(gc)
    if case == "residual50":
        return build_residual(gc)
    if case == "deep":
        return build_deep(gc, size)
    raise ValueError(f"unknown case {case!r}")


# -- measuring (in the parent) ---------------------------------------------------------------
def measure_once(case, size=None, cache_dir=None):
    env = {k: v for k, v in os.environ.items() if k not in ("GRAPHC_CACHE_DIR", "GRAPHC_NO_CACHE")}
    env["PYTHONPATH"] = os.pathsep.join([ROOT, HERE] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CHILD.format(case=case, size=size, cache_dir=cache_dir)],
                          env=env, cwd=ROOT, capture_output=True, text=True)
    total = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{case} ({size}) failed:\n{done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["total"] = total
    return result


def measure(case, size, runs, cache_dir=None):
    if cache_dir is not None:
        measure_once(case, size, cache_dir)  # writes the entry the timed processes read
    samples = [measure_once(case, size, cache_dir) for _ in range(runs)]
    hits = 1 if cache_dir is not None else 0
    if any(s["memory_hits"] != 0 or s["disk_hits"] != hits for s in samples):
        raise RuntimeError(f"{case} ({size}): a cache answered where it should not (or did not where it should): "
                           f"{[(s['memory_hits'], s['disk_hits']) for s in samples]}")
    return {key: statistics.median(s[key] for s in samples) for key in samples[0]} | {
        "compile_all": [s["compile"] for s in samples], "cpu_all": [s["cpu"] for s in samples]}


PER_NODE_TARGET = 0.25e-3  # seconds of compile a declared node, from 1,000 to 20,000 nodes


def row(label, result, target=None):
    per_node = result["cpu"] / result["nodes"]
    if target is None:  # a growth graph: the per-node target
        ok = "yes" if per_node <= PER_NODE_TARGET else "NO"
    else:
        ok = "yes" if result["cpu"] <= target else "NO"
    return {"case": label, "declared nodes": f"{result['nodes']:,}", "compile (s)": f"{result['compile']:.3f}",
            "compile CPU (s)": f"{result['cpu']:.3f}", "CPU ms a node": f"{per_node * 1e3:.3f}",
            "import (s)": f"{result['import']:.2f}", "cold total (s)": f"{result['total']:.2f}",
            "target": f"<= {PER_NODE_TARGET * 1e3:g} ms a node" if target is None else f"<= {target:g} s",
            "meets target": ok}


def table(rows):
    head = list(rows[0])
    widths = [max(len(h), *(len(r[h]) for r in rows)) for h in head]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(head, widths)) + " |",
             "| " + " | ".join("-" * w for w in widths) + " |"]
    lines += ["| " + " | ".join(r[h].ljust(w) for h, w in zip(head, widths)) + " |" for r in rows]
    return "\n".join(lines)


def write_section(path, text):
    """Put ``text`` (starting with its "## " heading) in place of the file's section, or append it."""
    heading = text.split("\n", 1)[0]
    old = open(path, encoding="utf-8").read() if os.path.exists(path) else ""
    pattern = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(old):
        new = pattern.sub(lambda _: text, old, count=1)
    else:
        new = old.rstrip("\n") + ("\n\n" if old.strip() else "") + text
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(new.rstrip("\n") + "\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="processes per measurement (median; default 3)")
    parser.add_argument("--sizes", type=lambda text: [int(v) for v in text.split(",")],
                        default=[1_000, 2_000, 5_000, 10_000, 20_000],
                        help="declared nodes of the growth graphs, comma-separated (default 1000,...,20000)")
    parser.add_argument("--disk-sizes", type=lambda text: [int(v) for v in text.split(",") if v],
                        default=[10_000], help="chains also timed from the disk cache (default 10000; '' for none)")
    parser.add_argument("--output", default=os.path.join(HERE, "results.md"))
    args = parser.parse_args(argv)

    began = time.perf_counter()
    rows, notes, growth_results = [], [], []
    cases = [("MLP 784-256-256-10, ReLU, softmax CE", "mlp_784", None, 0.1),
             ("residual 50 x tanh, width 32", "residual50", None, 2.0)]
    cases += [(f"MLP-like chain, ~{size:,} nodes", "deep", size, None) for size in args.sizes]
    folder = tempfile.mkdtemp(prefix="graphc-compile-time-")
    disk = [("MLP 784-256-256-10, from the disk cache", "mlp_784", None, 0.1)]
    disk += [(f"MLP-like chain, ~{size:,} nodes, from the disk cache", "deep", size, None) for size in args.disk_sizes]
    for label, case, size, target in cases + disk:
        print(f"measuring {label} ...", flush=True)
        cache_dir = folder if "disk cache" in label else None
        result = measure(case, size, args.runs, cache_dir)
        rows.append(row(label, result, target))
        notes.append(f"{label}: compile times " + ", ".join(f"{t:.3f}" for t in result["compile_all"]) + " s (CPU "
                     + ", ".join(f"{t:.3f}" for t in result["cpu_all"]) + " s)")
        if case == "deep" and cache_dir is None:
            growth_results.append(result)
    small, large = growth_results[0], growth_results[-1]
    per_node = [r["cpu"] / r["nodes"] for r in (small, large)]
    growth = (f"Growth: {per_node[0] * 1e3:.3f} ms a node at {small['nodes']:,} nodes, {per_node[1] * 1e3:.3f} at "
              f"{large['nodes']:,} (x{per_node[1] / per_node[0]:.2f}; linear is x1.00): "
              + ("linear (within 10 %)" if per_node[1] <= 1.1 * per_node[0] else "NOT linear")
              + f". Target <= {PER_NODE_TARGET * 1e3:g} ms a node at every size: "
              + ("met" if all(r["cpu"] / r["nodes"] <= PER_NODE_TARGET for r in growth_results) else "NOT met"))
    shutil.rmtree(folder, ignore_errors=True)
    text = table(rows)
    elapsed = time.perf_counter() - began
    section = "\n".join([
        HEADING, "",
        f"Produced by `python benchmarks/compile_time.py` on {time.strftime('%Y-%m-%d %H:%M')}: "
        f"Python {platform.python_version()}, {platform.machine()} with {os.cpu_count()} CPU(s). "
        f"Each number is the median of {args.runs} cold processes; \"compile\" times `gc.compile` alone, "
        "\"cold total\" the whole child process (interpreter start, import, build, compile). "
        "Targets are judged on the compile's CPU time (`time.process_time`), which other work on "
        "a shared machine disturbs far less than wall time; both are given.", "",
        text, "", growth, "",
        *[f"- {note}" for note in notes],
        f"- the whole measurement took {elapsed:.0f} s", "",
    ])
    print()
    print(section)
    write_section(args.output, section)
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
