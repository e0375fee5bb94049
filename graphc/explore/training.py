"""Training playback: SGD steps computed ahead, recorded for the explorer to replay.

Each step runs the program's own ``value_and_grad`` on the whole data set and applies the
lecture's update W <- W - lr dL/dW. Before each update it records the loss, each param's
gradient magnitude (the vanishing-gradient story layer by layer), each forward node's mean
absolute gradient (read off the joint graph, for edges coloured by gradient, exactly zero
greyed), and, for a 2-D data set, the prediction over a grid (the decision boundary).

>>> import graphc as gc
>>> g, feeds = gc.zoo.relu_neuron(w=1.5)
>>> history = train(gc.compile(g), feeds, steps=3, lr=0.01)
>>> len(history.loss), history.loss[0] > history.loss[-1]
(4, True)
>>> history.param_norms["w"][0] > 0
True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from .. import ir
from ..errors import FeedError, GradientError
from ..render.values import gradients_from_joint
from .annotate import stage_values
from .summary import tensor_summary

__all__ = ["History", "Boundary", "train", "boundary_of", "GRID"]

GRID = 48  # cells per side of the decision-boundary heat map


@dataclass
class Boundary:
    """The prediction over a GRID x GRID square of the plane, one frame per step."""

    input: str
    output: str
    extent: tuple[float, float, float, float]  # x0, x1, y0, y1
    points: list[tuple[float, float, int]]  # the data: x, y, class
    classes: int
    frames: list[list[float]] = field(default_factory=list)  # per step: class score per cell, or class index


@dataclass
class History:
    steps: int
    lr: float
    loss: list[float] = field(default_factory=list)
    param_norms: dict[str, list[float]] = field(default_factory=dict)
    node_grads: dict[str, list[float]] = field(default_factory=dict)  # node id -> mean |grad| per step
    param_values: dict[str, list[dict]] = field(default_factory=dict)  # param -> its summary at each step
    param_grads: dict[str, list[dict]] = field(default_factory=dict)  # param -> its gradient's, each step
    boundary: Boundary | None = None


def _loss_name(prog) -> str:
    outputs = prog.outputs
    return prog.of if prog.of is not None else ("loss" if "loss" in outputs else outputs[0])


def _prediction_name(prog, loss: str) -> str | None:
    others = [o for o in prog.outputs if o != loss]
    return "g" if "g" in others else (others[0] if others else None)


def _labels(target: np.ndarray) -> tuple[np.ndarray, int]:
    if target.ndim == 2 and target.shape[1] > 1:
        return target.argmax(axis=1), target.shape[1]
    flat = target.reshape(len(target), -1)[:, 0]
    return (flat > 0.5).astype(int), 2


def boundary_of(prog, feeds: Mapping) -> Boundary | None:
    """A Boundary to fill when the data are 2-D points (an input of shape (N, 2)) with
    labels (another input with N rows) and a prediction output; else None."""
    loss = _loss_name(prog)
    prediction = _prediction_name(prog, loss)
    inputs = list(prog.graph.graph[ir.INPUTS])
    points = [n for n in inputs if np.ndim(feeds.get(n)) == 2 and np.shape(feeds[n])[1] == 2]
    if prediction is None or not points:
        return None
    x = np.asarray(feeds[points[0]], dtype=float)
    labels = [n for n in inputs if n != points[0] and np.shape(feeds.get(n))[:1] == x.shape[:1]]
    classes_of, classes = _labels(np.asarray(feeds[labels[0]], dtype=float)) if labels else (np.zeros(len(x), int), 1)
    pad = 0.15 * (x.max(axis=0) - x.min(axis=0) + 1e-9)
    x0, y0 = x.min(axis=0) - pad
    x1, y1 = x.max(axis=0) + pad
    cloud = [(round(float(a), 4), round(float(b), 4), int(c)) for (a, b), c in zip(x, classes_of)]
    return Boundary(points[0], prediction, (float(x0), float(x1), float(y0), float(y1)), cloud, classes)


def _grid_feeds(boundary: Boundary, feeds: Mapping) -> dict[str, np.ndarray]:
    x0, x1, y0, y1 = boundary.extent
    xs, ys = np.meshgrid(np.linspace(x0, x1, GRID), np.linspace(y1, y0, GRID))  # row 0 at the top
    grid = np.stack([xs.ravel(), ys.ravel()], axis=1)
    rows = len(np.asarray(feeds[boundary.input]))
    out = {}
    for name, value in feeds.items():
        array = np.asarray(value, dtype=float)
        batched = array.ndim >= 1 and len(array) == rows and name != boundary.input
        out[name] = np.zeros((len(grid),) + array.shape[1:]) if batched else array
    out[boundary.input] = grid
    return out


def _frame(prog, boundary: Boundary, grid_feeds: dict) -> list[float]:
    with np.errstate(all="ignore"):
        pred = np.asarray(prog.forward(grid_feeds)[boundary.output], dtype=float)
    pred = pred.reshape(GRID * GRID, -1)
    if pred.shape[1] > 1:  # several classes: the winning one, with its margin as the shade
        exp = np.exp(pred - pred.max(axis=1, keepdims=True))
        prob = exp / exp.sum(axis=1, keepdims=True)
        # class index + its probability, the probability kept below 1 so the index survives floor()
        return [round(float(c + min(p, 0.999)), 3) for c, p in zip(prob.argmax(axis=1), prob.max(axis=1))]
    return [round(float(v), 4) for v in pred[:, 0]]


def _mean_abs(value) -> float:
    array = np.abs(np.asarray(value, dtype=float))
    return float(array.mean()) if array.size else 0.0


def train(prog, feeds: Mapping, steps: int, lr: float = 0.1, joint=None) -> History:
    """``steps`` full-batch SGD steps from ``feeds``; the caller's arrays are not changed.

    ``joint`` is the joint graph whose backward nodes give each node's gradient (default:
    the program's "differentiated" stage).
    """
    if not prog.has_gradient:
        raise GradientError(f"program {prog.name!r} has no gradient to train with: it needs a scalar output "
                            "(explore it without train=)")
    if steps < 0:
        raise FeedError(f"train needs a number of steps >= 0, found {steps}")
    params = list(prog.wrt)
    current = {k: np.array(v, dtype=float) for k, v in feeds.items()}
    graph = joint if joint is not None else prog.stages["differentiated"]
    history = History(steps, lr, param_norms={p: [] for p in params})
    history.boundary = boundary_of(prog, current)
    grid = _grid_feeds(history.boundary, current) if history.boundary else None
    loss_name = _loss_name(prog)
    for step in range(steps + 1):
        outputs, grads = prog.value_and_grad(current)
        history.loss.append(float(np.sum(outputs[loss_name])))
        for name in params:
            history.param_norms[name].append(float(np.sqrt(np.sum(np.square(grads[name])))))
            history.param_values.setdefault(name, []).append(tensor_summary(current[name]))
            history.param_grads.setdefault(name, []).append(tensor_summary(grads[name]))
        node_grads = gradients_from_joint(graph, stage_values(graph, current))
        for node, grad in node_grads.items():
            if node in graph and graph.nodes[node].get(ir.PHASE) != ir.BACKWARD:
                history.node_grads.setdefault(node, []).append(_mean_abs(grad))
        if grid is not None:
            grid.update({p: current[p] for p in params})
            history.boundary.frames.append(_frame(prog, history.boundary, grid))
        if step < steps:
            for name in params:
                current[name] -= lr * grads[name]
    return history
