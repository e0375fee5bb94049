"""Values and gradients drawn on the nodes: data the caller computed, assembled per stage.

Drawing does not run graphs. Its caller evaluates each stage's graph on the feeds (see
:mod:`graphc.explore.annotate`) and hands the values in; this module only decides what
each stage shows. Gradients are read from the joint forward+backward graph the
differentiation pass leaves: the gradient of forward node X is the value of the last
node, in dependency order, tagged ``grad_of == X`` (the last accumulation of X's
cotangent), and graph attr ``grads`` names each wrt value's gradient. Node ids name the
same value in every stage (passes preserve them), so values found in one stage are shown
on the same ids in the others (the declared stage, whose composite ops cannot run before
expansion, borrows them this way).

>>> import numpy as np, networkx as nx
>>> g = nx.MultiDiGraph(); g.add_node("x", op="input"); g.add_node("y", op="relu")
>>> _ = g.add_edge("x", "y", arg=0)
>>> notes = annotate_stages({"only": g}, {"only": {"x": np.array(-1.0), "y": np.array(0.0)}})
>>> sorted(notes["only"].values), notes["only"].grads
(['x', 'y'], {})
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import networkx as nx
import numpy as np

from .. import ir
from ..schedule import levels

__all__ = ["Annotations", "gradients_from_joint", "annotate_stages", "has_backward", "edge_is_dead"]


@dataclass
class Annotations:
    """What is drawn on one stage: node id -> forward value, node id -> gradient."""

    values: dict[str, np.ndarray] = field(default_factory=dict)
    grads: dict[str, np.ndarray] = field(default_factory=dict)


def has_backward(graph: nx.MultiDiGraph) -> bool:
    """Whether the graph holds gradients to draw: those of a scalar output (d out / d out = 1)."""
    seed = graph.graph.get(ir.SEED)
    if seed in graph and tuple(graph.nodes[seed][ir.SHAPE]):
        return False  # a cotangent of a non-scalar output: there is no one gradient to draw
    return bool(graph.graph.get(ir.GRADS)) or any(
        d.get(ir.PHASE) == ir.BACKWARD for _, d in graph.nodes(data=True))


def gradients_from_joint(graph: nx.MultiDiGraph, values: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Forward node id -> its gradient, read from a joint graph's backward nodes.

    Only a node tagged ``grad_of`` holds a gradient; helpers of the backward pass (a
    transpose of a weight) carry no tag and so no label.
    """
    grads: dict[str, np.ndarray] = {}
    for level in levels(graph):
        for node in level:
            target = graph.nodes[node].get(ir.GRAD_OF)
            if target is not None and node in values:
                grads[target] = values[node]  # later levels overwrite: the last accumulation wins
    for name, node in (graph.graph.get(ir.GRADS) or {}).items():
        if node in values:
            grads[name] = values[node]
    return grads


def annotate_stages(stages: Mapping[str, nx.MultiDiGraph],
                    own: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, Annotations]:
    """Annotations for every stage from each stage's own values (``own[stage]``, possibly
    empty); values and gradients missing from a stage are borrowed by node id."""
    shared_values: dict[str, np.ndarray] = {}
    shared_grads: dict[str, np.ndarray] = {}
    for name, graph in stages.items():
        mine = own.get(name) or {}
        for node, value in mine.items():
            shared_values.setdefault(node, value)
        if has_backward(graph) and mine:
            for node, grad in gradients_from_joint(graph, mine).items():
                shared_grads.setdefault(node, grad)
    out = {}
    for name, graph in stages.items():
        mine = own.get(name) or {}
        values = {n: mine.get(n, shared_values.get(n)) for n in graph.nodes}
        grads = {n: shared_grads[n] for n in graph.nodes
                 if n in shared_grads and graph.nodes[n].get(ir.PHASE) != ir.BACKWARD}
        out[name] = Annotations({n: v for n, v in values.items() if v is not None}, grads)
    return out


def _all_zero(value) -> bool:
    return value is not None and not np.any(np.asarray(value))


def edge_is_dead(annotations: Annotations, source: str, target: str) -> bool:
    """No gradient flows along ``source -> target``: either end's gradient is exactly zero.

    The consumer's gradient being zero means nothing reaches its operands through it (the
    dead ReLU's input edge); the producer's being zero means the contributions it receives
    are all zero (a weight that gets no update).
    """
    grads = annotations.grads
    if source not in grads and target not in grads:
        return False
    return _all_zero(grads.get(source)) or _all_zero(grads.get(target))
