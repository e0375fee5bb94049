"""The benchmark cases written for PyTorch (eager, autograd), when it is installed.

``contenders(case, feeds, params, lr)`` returns ``(step, grads)`` for PyTorch, or
raises ImportError: ``step()`` is one training step (forward, backward, SGD update in
place of the params), ``grads()`` returns ``(loss, {name: gradient as numpy})`` for the
params it was given, unchanged. Same data, same initial params (copied from the numpy
arrays), same loss reductions (means) as ``handwritten.py``; float64; one thread.
"""

from __future__ import annotations

import numpy as np


def _torch():
    import torch

    torch.set_num_threads(1)
    return torch


def _forward(torch, case, x, y, p):
    """The loss of ``case`` on tensors (``p`` maps names to tensors)."""
    F = torch.nn.functional
    if case == "xor":
        h = torch.sigmoid(x @ p["W1"] + p["b1"])
        out = torch.sigmoid(h @ p["W2"] + p["b2"])
        return ((out - y) ** 2).mean()
    if case in ("mlp_small", "mlp_large"):
        n = len(p) // 2
        h = x
        for i in range(1, n + 1):
            h = h @ p[f"W{i}"] + p[f"b{i}"]
            if i < n:
                h = torch.relu(h)
        return F.cross_entropy(h, y)  # y: one-hot probabilities, mean over rows
    if case == "residual50":
        h = x
        for i in range(len(p) // 2):
            h = h + torch.tanh(h @ p[f"W{i}"] + p[f"b{i}"])
        return ((h - y) ** 2).mean()
    if case == "elementwise":
        z = x * p["a"] + p["c"]
        return torch.sin(torch.square(torch.log1p(torch.exp(torch.tanh(F.silu(z)))))).mean()
    raise KeyError(case)


def contenders(case, feeds, params, lr):
    torch = _torch()
    x = torch.from_numpy(np.array(feeds["x"], copy=True))
    y = torch.from_numpy(np.array(feeds["y"], copy=True)) if "y" in feeds else None

    def fresh():
        return {k: torch.from_numpy(np.array(v, copy=True)).requires_grad_() for k, v in params.items()}

    stepped, fixed = fresh(), fresh()

    def step():
        loss = _forward(torch, case, x, y, stepped)
        grads = torch.autograd.grad(loss, list(stepped.values()))
        with torch.no_grad():
            for param, grad in zip(stepped.values(), grads):
                param.sub_(grad, alpha=lr)
        return float(loss.detach())

    def grads():
        loss = _forward(torch, case, x, y, fixed)
        got = torch.autograd.grad(loss, list(fixed.values()))
        return float(loss.detach()), {k: g.numpy() for k, g in zip(fixed, got)}

    return step, grads, f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)"
