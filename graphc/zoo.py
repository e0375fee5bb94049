"""The lecture's networks, built with graphc, each with default feeds."""

from __future__ import annotations

import numpy as np

from . import functional as F
from .builder import Graph

__all__ = ["recall_xor", "XOR_INPUTS"]

XOR_INPUTS = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])


def recall_xor() -> tuple[Graph, dict[str, np.ndarray]]:
    """The lecture's "Recall" network on the XOR inputs.

    sigma1 = sigmoid(5 x1 - 5 x2 + 1), sigma2 = sigmoid(-5 x1 + 5 x2 + 1), and the output
    unit, with identity activation, gives -3 (sigma1 + sigma2).
    """
    g = Graph("recall_xor")
    x = g.input("x", shape=("N", 2))
    W = g.param("W", shape=(2, 2))
    b = g.param("b", shape=(2,))
    v = g.param("v", shape=(2, 1))
    hidden = F.sigmoid(x @ W + b).named("sigma")
    g.output("out", F.identity(hidden @ v))
    feeds = {
        "x": XOR_INPUTS.copy(),
        "W": np.array([[5.0, -5.0], [-5.0, 5.0]]),
        "b": np.array([1.0, 1.0]),
        "v": np.array([[-3.0], [-3.0]]),
    }
    return g, feeds
