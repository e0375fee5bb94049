"""Central differences, the independent reference of the gradient tests (no graphc in it)."""

from __future__ import annotations

import numpy as np


def numeric_grad(f, x, eps=1e-6):
    """Central differences of the scalar function f at x, in float64."""
    x = np.array(x, dtype=np.float64)
    out = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[index] += eps
        down[index] -= eps
        out[index] = (f(up) - f(down)) / (2 * eps)
    return out


def feed_grad(loss, feeds, name, eps=1e-6):
    """Central differences of ``loss(feeds)`` in ``feeds[name]``, every feed in float64."""
    point = {k: np.asarray(v, dtype=np.float64) for k, v in feeds.items()}
    return numeric_grad(lambda value: loss({**point, name: value}), point[name], eps)
