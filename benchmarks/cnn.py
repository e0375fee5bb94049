#!/usr/bin/env python
"""Benchmark the digits CNN's training step: graphc against hand-written numpy (and torch).

Usage::

    python benchmarks/cnn.py [--batch 32 256] [--repeats N] [--quick]

The network is the zoo's ``digits_cnn`` (8x8 -> conv 3x3 (8) -> ReLU -> max-pool ->
conv 3x3 (16) -> ReLU -> max-pool -> dense 10, softmax cross-entropy on int labels),
each step on the next batch of the shipped training set. One step is the loss, its
gradients and the SGD update p -= lr * grad. Timed in one process, interleaved
round-robin, each contender on its own copy of the params, medians over the rounds:

* ``hand``: the step written in numpy as an expert writes it: im2col through an
  ``as_strided`` view and one matmul per convolution, channels-first (C, N, H, W) inside
  so no layer transposes its output, the patches kept from the forward pass for the
  kernel gradient, 2x2 max-pooling by its four strided taps, the masks of the first
  maximum of each window kept from the forward pass for the gradient;
* ``graphc sgd_step``: the generated ``sgd_step`` (value_and_grad and the update in one
  generated function);
* ``graphc train_step``: ``prog.train_step(gc.optim.SGD(lr))`` (one generated function:
  the program's forward and backward passes, then the optimizer's rule for every param);
* ``graphc two calls``: the same optimizer's step as two calls from Python,
  ``prog.value_and_grad`` then the step's generated update (``step.apply``), as
  ``train_step`` ran before its update moved into its generated function;
* ``torch`` (when PyTorch is installed): eager float64 autograd and ``torch.optim.SGD``.

Before timing, one step of each is checked to give the same loss and params (1e-12).
BLAS (and torch) use one thread. The table is printed and written to
``benchmarks/results-cnn.md`` (``--output`` to change).
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
from numpy.lib.stride_tricks import as_strided  # noqa: E402

import graphc as gc  # noqa: E402

LR = 0.05
PARAMS = ("K1", "b1", "K2", "b2", "W3", "b3")


def make_case():
    graph, feeds = gc.zoo.digits_cnn()
    return graph, {name: feeds[name].copy() for name in PARAMS}


def batches(batch: int):
    _, feeds = gc.zoo.digits_cnn()
    return [(feeds["x"][k:k + batch].copy(), feeds["y"][k:k + batch].copy())
            for k in range(0, len(feeds["x"]) - batch + 1, batch)]


# -- the hand-written step ---------------------------------------------------------------------
def im2col(x):
    """(C, N, H, W) -> the (C*9, N*H*W) patches of a 3x3 convolution with padding 1."""
    c, n, h, w = x.shape
    xp = np.zeros((c, n, h + 2, w + 2))
    xp[:, :, 1:-1, 1:-1] = x
    sc, sn, sy, sx = xp.strides
    view = as_strided(xp, (c, 3, 3, n, h, w), (sc, sy, sx, sn, sy, sx), writeable=False)
    return view.reshape(c * 9, n * h * w)


def col2im(d_cols, shape):
    """The transpose of im2col: each tap's patch cotangents added back where they were read."""
    c, n, h, w = shape
    d = d_cols.reshape(c, 3, 3, n, h, w)
    dxp = np.zeros((c, n, h + 2, w + 2))
    for i in range(3):
        for j in range(3):
            dxp[:, :, i:i + h, j:j + w] += d[:, i, j]
    return dxp[:, :, 1:-1, 1:-1]


def conv_relu(x, K, b):
    """relu(conv3x3(x) + b) in (C, N, H, W); returns (a, its patches, the mask z >= 0)."""
    cols = im2col(x)
    o = K.shape[0]
    z = (K.reshape(o, -1) @ cols).reshape(o, *x.shape[1:])
    z += b.reshape(o, 1, 1, 1)
    mask = z >= 0  # graphc's ReLU convention: dReLU/dz = 1 at z = 0
    np.maximum(z, 0.0, out=z)
    return z, cols, mask


TAPS = ((0, 0), (0, 1), (1, 0), (1, 1))  # the four elements of a 2x2 window, in row-major order


def pool(a):
    """2x2 max-pool of (C, N, H, W): the maxima, and for each tap the windows whose first
    maximum it holds (a tie goes to the first, as graphc and PyTorch route it)."""
    taps = [a[:, :, i::2, j::2] for i, j in TAPS]
    pooled = np.maximum(np.maximum(taps[0], taps[1]), np.maximum(taps[2], taps[3]))
    hits, left = [], np.ones(pooled.shape, dtype=bool)
    for tap in taps:
        hit = tap == pooled
        hit &= left
        left &= ~hit
        hits.append(hit)
    return pooled, hits


def unpool(d, hits, shape):
    d_a = np.empty(shape)
    for (i, j), hit in zip(TAPS, hits):
        np.multiply(d, hit, out=d_a[:, :, i::2, j::2])
    return d_a


def hand_step(x, y, p):
    n = len(x)
    images = x.reshape(n, 1, 8, 8).transpose(1, 0, 2, 3)  # (C, N, H, W)
    a1, cols1, mask1 = conv_relu(images, p["K1"], p["b1"])
    p1, arg1 = pool(a1)
    a2, cols2, mask2 = conv_relu(p1, p["K2"], p["b2"])
    p2, arg2 = pool(a2)
    flat = p2.transpose(1, 0, 2, 3).reshape(n, -1)
    logits = flat @ p["W3"]
    logits += p["b3"]
    logits -= logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    total = e.sum(axis=1, keepdims=True)
    rows = np.arange(n)
    loss = float((np.log(total[:, 0]) - logits[rows, y]).sum() / n)
    d = e
    d /= total
    d[rows, y] -= 1.0
    d /= n  # d loss / d logits = (softmax - onehot) / N
    grads = {"W3": flat.T @ d, "b3": d.sum(axis=0)}
    d_p2 = (d @ p["W3"].T).reshape(n, *p2.shape[:1], *p2.shape[2:]).transpose(1, 0, 2, 3)
    d_z2 = unpool(d_p2, arg2, a2.shape)
    d_z2 *= mask2
    o2 = p["K2"].shape[0]
    d_z2 = d_z2.reshape(o2, -1)
    grads["K2"] = (d_z2 @ cols2.T).reshape(p["K2"].shape)
    grads["b2"] = d_z2.sum(axis=1).reshape(p["b2"].shape)
    d_p1 = col2im(p["K2"].reshape(o2, -1).T @ d_z2, p1.shape)
    d_z1 = unpool(d_p1, arg1, a1.shape)
    d_z1 *= mask1
    o1 = p["K1"].shape[0]
    d_z1 = d_z1.reshape(o1, -1)
    grads["K1"] = (d_z1 @ cols1.T).reshape(p["K1"].shape)
    grads["b1"] = d_z1.sum(axis=1).reshape(p["b1"].shape)
    for name, g in grads.items():
        g *= LR
        p[name] -= g
    return loss


def _torch_step(data, params):
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    order = itertools.cycle([(torch.tensor(x), torch.tensor(y)) for x, y in data])
    t = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    opt = torch.optim.SGD(t.values(), lr=LR)
    F = torch.nn.functional  # noqa: N806

    def step():
        x, y = next(order)
        opt.zero_grad()
        h = F.max_pool2d(torch.relu(F.conv2d(x.reshape(-1, 1, 8, 8), t["K1"], padding=1) + t["b1"]), 2)
        h = F.max_pool2d(torch.relu(F.conv2d(h, t["K2"], padding=1) + t["b2"]), 2)
        loss = F.cross_entropy(h.reshape(len(x), -1) @ t["W3"] + t["b3"], y)
        loss.backward()
        opt.step()
        return loss.item()

    return step


def contenders(batch: int) -> dict:
    graph, params = make_case()
    data = batches(batch)
    prog = gc.compile(graph)
    names = ("hand", "graphc sgd_step", "graphc train_step", "graphc two calls")
    own = {name: {k: v.copy() for k, v in params.items()} for name in names}
    train_step = prog.train_step(gc.optim.SGD(lr=LR))
    apart = prog.train_step(gc.optim.SGD(lr=LR))

    def two_calls(feeds):
        outputs, grads = prog.value_and_grad(feeds)
        apart.apply(feeds, grads)
        return float(outputs["loss"])

    def hand(params):
        order = itertools.cycle(data)

        def step():
            x, y = next(order)
            return hand_step(x, y, params)
        return step

    def compiled(run, params):
        order, feeds = itertools.cycle(data), dict(params)

        def step():
            feeds["x"], feeds["y"] = next(order)
            return run(feeds)
        return step

    out = {"hand": hand(own["hand"]),
           "graphc sgd_step": compiled(lambda feeds: prog.sgd_step(feeds, LR)["loss"], own["graphc sgd_step"]),
           "graphc train_step": compiled(train_step, own["graphc train_step"]),
           "graphc two calls": compiled(two_calls, own["graphc two calls"])}
    torch_step = _torch_step(data, params)
    if torch_step is not None:
        out["torch"] = torch_step
    return out, own


def check_equal(batch: int) -> None:
    """Three steps of each contender from the same params: the same losses and params (1e-12)."""
    steps, own = contenders(batch)
    for _ in range(3):
        losses = {name: float(steps[name]()) for name in own}
        assert max(losses.values()) - min(losses.values()) < 1e-12, losses
    for name in own:
        for k in PARAMS:
            np.testing.assert_allclose(own[name][k], own["hand"][k], rtol=0, atol=1e-12, err_msg=f"{name} {k}")


def run(batch: int, repeats: int, warmup: int) -> list[dict]:
    check_equal(batch)
    steps, _ = contenders(batch)
    number = harness.calibrate_number(steps["hand"], target=0.005)
    times = harness.round_robin(steps, repeats=repeats, warmup=warmup, number=number)
    medians = {name: harness.median(samples) for name, samples in times.items()}
    return [{"batch": batch, "step": name, "median (ms)": f"{seconds * 1e3:.4g}",
             "ratio to hand-written": f"{seconds / medians['hand']:.2f}"} for name, seconds in medians.items()]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[32, 256])
    parser.add_argument("--repeats", type=int, default=None, help="recorded rounds (default 30, 5 with --quick)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--output", default=os.path.join(HERE, "results-cnn.md"))
    args = parser.parse_args(argv)
    repeats = args.repeats or (5 if args.quick else 30)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())  # a shared machine: say how busy it was
    rows = [row for batch in args.batch for row in run(batch, repeats, warmup=2)]
    try:
        import torch  # noqa: F401
        torch_note = ""
    except ImportError:
        torch_note = " PyTorch is not installed here: no torch column."
    table = harness.format_table(rows)
    command = "python benchmarks/cnn.py " + " ".join(argv if argv is not None else sys.argv[1:])
    text = (f"# Training step (loss, gradients, SGD update): digits CNN, float64\n\n{table}\n\n"
            f"Command: `{command.strip()}`. Medians over {repeats} interleaved rounds; ratios against the "
            f"hand-written step; each step checked equal to the hand-written one (1e-12) before timing."
            f"{torch_note} Python {platform.python_version()}, numpy {np.__version__}, {BLAS}. "
            f"Load average before the run: {load}.\n")
    print(text)
    with open(args.output, "w", encoding="utf-8") as out:
        out.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
