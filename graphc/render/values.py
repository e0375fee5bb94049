"""Values and gradients to draw on the nodes: run each stage's own graph on the feeds.

A stage graph is lowered with the compiler's own :mod:`graphc.lower` into a function that
returns every node's value (no second evaluator). Gradients are read from the joint
forward+backward graph the differentiation pass leaves: the gradient of forward node X is
the value of the last node, in dependency order, tagged ``grad_of == X`` (the last
accumulation of X's cotangent), and graph attr ``grads`` names each wrt value's gradient.
Node ids name the same value in every stage (passes preserve them), so values found in
one stage are shown on the same ids in the others (the declared stage, whose composite
ops cannot run before expansion, borrows them this way).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import networkx as nx
import numpy as np

from .. import ir
from ..feeds import check_feeds
from ..lower.emit import FunctionSpec, Module
from ..lower.load import load_source
from ..ops.base import get_op
from ..schedule import levels

__all__ = ["Annotations", "evaluate", "gradients_from_joint", "annotate_stages", "has_backward", "edge_is_dead"]


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


def _runnable(graph: nx.MultiDiGraph) -> bool:
    return all(not get_op(d[ir.OP], n).composite for n, d in graph.nodes(data=True))


def _seed_feeds(graph: nx.MultiDiGraph, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Feeds for source nodes that are not the graph's inputs or params (the backward seed).

    The drawing seeds the backward pass with ones: d output / d output = 1, as
    ``value_and_grad`` does for a scalar output.
    """
    extra = {}
    sizes = {d: n for name, a in arrays.items() for d, n in zip(graph.nodes[name][ir.SHAPE], np.shape(a))
             if hasattr(d, "free_symbols") and d.free_symbols}  # the feeds' sizes of the symbolic dims
    for node, data in graph.nodes(data=True):
        if data[ir.OP] == "input" and node not in arrays:
            shape = tuple(int(d) if not hasattr(d, "free_symbols") or not d.free_symbols else sizes.get(d, 1)
                          for d in data[ir.SHAPE])
            extra[node] = np.ones(shape, dtype=data.get(ir.DTYPE, "float64"))
    return extra


def evaluate(graph: nx.MultiDiGraph, feeds: Mapping) -> dict[str, np.ndarray]:
    """Every node's value for ``feeds``, by running the graph's own generated code.

    >>> import graphc as gc
    >>> g = gc.Graph("doc"); x = g.input("x"); _ = g.output("y", 3 * x + 1)
    >>> values = evaluate(g.nx, {"x": 2.0})
    >>> float(values["y"]), float(values["mul"])
    (7.0, 6.0)
    """
    seed = graph.graph.get(ir.SEED)
    names = [n for n in ir.sources(graph) if n != seed]
    arrays = dict(zip(names, check_feeds(graph, {k: v for k, v in feeds.items() if k in set(names)}, names)))
    arrays.update(_seed_feeds(graph, arrays))
    args = list(arrays)
    module = Module(graph)
    for a in args:
        module.namespace.name(a)
    computed = [n for n in graph.nodes if graph.nodes[n][ir.OP] not in ("input", "param", "const")]
    spec = FunctionSpec("all_values", args, levels(graph), computed or args[:1])
    function = module.function(spec)
    constants = "".join(f"{name} = {value}\n" for name, value in module.constants.items())
    source = "import numpy\n" + constants + "\n\n" + function
    run = load_source(source, f"{graph.graph.get(ir.NAME, 'graph')} values").all_values
    with np.errstate(all="ignore"):  # NaN and Inf are drawn (in red), not warned about
        results = run(*[arrays[a] for a in args]) if computed else ()
    out = {n: np.asarray(v) for n, v in zip(computed, results)}
    out.update({n: np.asarray(v) for n, v in arrays.items()})
    for node, data in graph.nodes(data=True):
        if data[ir.OP] == "const":
            out[node] = np.asarray(data[ir.ATTRS]["value"], dtype=np.float64)
    return out


def gradients_from_joint(graph: nx.MultiDiGraph, values: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Forward node id -> its gradient, read from a joint graph's backward nodes."""
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


def annotate_stages(stages: Mapping[str, nx.MultiDiGraph], feeds: Mapping) -> dict[str, Annotations]:
    """Values and gradients for every stage; ids missing from a stage's own run are borrowed."""
    own: dict[str, dict[str, np.ndarray]] = {}
    for name, graph in stages.items():
        own[name] = evaluate(graph, feeds) if _runnable(graph) else {}
    shared_values: dict[str, np.ndarray] = {}
    shared_grads: dict[str, np.ndarray] = {}
    for name, graph in stages.items():
        for node, value in own[name].items():
            shared_values.setdefault(node, value)
        if has_backward(graph) and own[name]:
            for node, grad in gradients_from_joint(graph, own[name]).items():
                shared_grads.setdefault(node, grad)
    out = {}
    for name, graph in stages.items():
        values = {n: own[name].get(n, shared_values.get(n)) for n in graph.nodes}
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
