#!/usr/bin/env python
"""Benchmark a training step with an optimizer: graphc against hand-written numpy (and torch).

Usage::

    python benchmarks/optimizers.py [--batch 32 1437] [--repeats N] [--quick]

The network is the zoo's ``digits_mlp`` (64 -> 64 ReLU -> 10, softmax cross-entropy on
one-hot rows) on the shipped digits, each step on the next batch of the training set. Timed in one process, interleaved
round-robin, each on its own copy of the params, medians over the rounds:

* ``hand adam``: forward, backward and the Adam update written in numpy as an expert
  writes it (in-place updates, one mask, the softmax gradient from the saved exponentials);
* ``graphc adam``: ``prog.train_step(gc.optim.Adam(...))``: one generated function, the
  program's forward and backward passes, then the optimizer's rule for every param;
* ``graphc adam, two calls``: the same step as two calls from Python,
  ``prog.value_and_grad`` then the step's generated update (``step.apply``), as
  ``train_step`` ran before its update moved into its generated function;
* ``torch adam`` (when torch is installed): eager float64 autograd and ``torch.optim.Adam``;
* ``hand sgd``, ``graphc sgd`` (``train_step(gc.optim.SGD)``) and ``graphc sgd_step``
  (the lecture's update fused into the generated step): what a separate update costs.

BLAS (and torch) use one thread. The table is printed and written to
``benchmarks/results-optimizers.md`` (``--output`` to change).
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
for path in (HERE, ROOT):
    if path not in sys.path:
        sys.path.insert(0, path)

import harness  # noqa: E402  (must come before numpy: it sets the BLAS thread limit)

BLAS = harness.limit_blas_threads(1)

import numpy as np  # noqa: E402

import graphc as gc  # noqa: E402

LR, BETAS, EPS = 1e-3, (0.9, 0.999), 1e-8
PARAMS = ("W1", "b1", "W2", "b2")


def make_case(batch: int):
    """(feeds of one batch, starting params) for the digits MLP."""
    graph, feeds = gc.zoo.digits_mlp()
    inputs = {"x": feeds["x"][:batch].copy(), "y": feeds["y"][:batch].copy()}
    return graph, inputs, {name: feeds[name].copy() for name in PARAMS}


def _forward_backward(x, y, p):
    """The loss and the gradients of the digits MLP, by hand."""
    h = x @ p["W1"]
    h += p["b1"]
    np.maximum(h, 0.0, out=h)
    logits = h @ p["W2"]
    logits += p["b2"]
    logits -= logits.max(axis=1, keepdims=True)  # softmax is shift-invariant; exp cannot overflow
    e = np.exp(logits)
    total = e.sum(axis=1, keepdims=True)
    n = len(x)
    loss = float(np.sum(np.log(total)) / n - np.sum(y * logits) / n)
    d = e
    d /= total
    d -= y
    d /= n  # d loss / d logits = (softmax - y) / N
    grads = {"W2": h.T @ d, "b2": d.sum(axis=0)}
    dh = d @ p["W2"].T
    dh *= h > 0
    grads["W1"] = x.T @ dh
    grads["b1"] = dh.sum(axis=0)
    return loss, grads


class HandAdam:
    """torch.optim.Adam's step by hand, in place."""

    def __init__(self, params):
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}
        self.t = 0

    def __call__(self, x, y, params):
        loss, grads = _forward_backward(x, y, params)
        self.t += 1
        b1, b2 = BETAS
        step = LR / (1 - b1 ** self.t)
        root = np.sqrt(1 - b2 ** self.t)
        for name, g in grads.items():
            m, v = self.m[name], self.v[name]
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * (g * g)
            denom = np.sqrt(v)
            denom /= root
            denom += EPS
            params[name] -= step * m / denom
        return loss


def hand_sgd(x, y, params):
    loss, grads = _forward_backward(x, y, params)
    for name, g in grads.items():
        g *= LR
        params[name] -= g
    return loss


def _torch_step(data, params):
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    order = itertools.cycle([(torch.tensor(x), torch.tensor(y)) for x, y in data])
    tensors = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    opt = torch.optim.Adam(tensors.values(), lr=LR, betas=BETAS, eps=EPS)

    def step():
        x, y = next(order)
        opt.zero_grad()
        logits = torch.relu(x @ tensors["W1"] + tensors["b1"]) @ tensors["W2"] + tensors["b2"]
        loss = -(y * torch.log_softmax(logits, dim=1)).sum() / len(x)
        loss.backward()
        opt.step()
        return loss.item()

    return step


def batches(batch: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The training set cut into batches of ``batch`` rows (the last partial one dropped).

    Each step takes the next batch, round and round, as training does (a step repeated
    on one batch overfits it, which is not what is timed here)."""
    _, feeds = gc.zoo.digits_mlp()
    return [(feeds["x"][k:k + batch].copy(), feeds["y"][k:k + batch].copy())
            for k in range(0, len(feeds["x"]) - batch + 1, batch)]


def contenders(batch: int) -> dict:
    graph, _, params = make_case(batch)
    data = batches(batch)
    prog = gc.compile(graph)
    own = {name: {k: v.copy() for k, v in params.items()} for name in
           ("hand adam", "graphc adam", "graphc adam, two calls", "hand sgd", "graphc sgd", "graphc sgd_step")}
    adam, adam_step = HandAdam(own["hand adam"]), prog.train_step(gc.optim.Adam(lr=LR, betas=BETAS, eps=EPS))
    apart = prog.train_step(gc.optim.Adam(lr=LR, betas=BETAS, eps=EPS))

    def two_calls(feeds):
        outputs, grads = prog.value_and_grad(feeds)
        apart.apply(feeds, grads)
        return float(outputs["loss"])
    sgd_step = prog.train_step(gc.optim.SGD(lr=LR))

    def hand(update, params):
        order = itertools.cycle(data)

        def step():
            x, y = next(order)
            return update(x, y, params)
        return step

    def compiled(run, params):
        order, feeds = itertools.cycle(data), dict(params)

        def step():
            feeds["x"], feeds["y"] = next(order)
            return run(feeds)
        return step

    out = {
        "hand adam": hand(adam, own["hand adam"]),
        "graphc adam": compiled(adam_step, own["graphc adam"]),
        "graphc adam, two calls": compiled(two_calls, own["graphc adam, two calls"]),
        "hand sgd": hand(hand_sgd, own["hand sgd"]),
        "graphc sgd": compiled(sgd_step, own["graphc sgd"]),
        "graphc sgd_step": compiled(lambda feeds: prog.sgd_step(feeds, LR), own["graphc sgd_step"]),
    }
    torch_step = _torch_step(data, params)
    if torch_step is not None:
        out["torch adam"] = torch_step
    return out


def run(batch: int, repeats: int, warmup: int) -> list[dict]:
    """One row per contender: its median step and its ratio to the hand-written step of its rule."""
    steps = contenders(batch)
    number = harness.calibrate_number(steps["hand adam"], target=0.005)
    times = harness.round_robin(steps, repeats=repeats, warmup=warmup, number=number)
    medians = {name: harness.median(samples) for name, samples in times.items()}
    rows = []
    for name, seconds in medians.items():
        base = medians["hand adam" if "adam" in name else "hand sgd"]
        rows.append({"batch": batch, "step": name, "median (ms)": f"{seconds * 1e3:.4g}",
                     "ratio to hand-written": f"{seconds / base:.2f}"})
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[32, 1437])
    parser.add_argument("--repeats", type=int, default=None, help="recorded rounds (default 30, 5 with --quick)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--output", default=os.path.join(HERE, "results-optimizers.md"))
    args = parser.parse_args(argv)
    repeats = args.repeats or (5 if args.quick else 30)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())  # a shared machine: say how busy it was
    rows = [row for batch in args.batch for row in run(batch, repeats, warmup=2)]
    table = harness.format_table(rows)
    text = (f"# Training step with an optimizer: digits MLP (64-64-10), float64\n\n{table}\n\n"
            f"Medians over {repeats} interleaved rounds; ratios against the hand-written step of the same rule. "
            f"Python {platform.python_version()}, numpy {np.__version__}, {BLAS}. "
            f"Load average before the run: {load}.\n")
    print(text)
    with open(args.output, "w", encoding="utf-8") as out:
        out.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
