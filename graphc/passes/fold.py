"""fold: constant folding through the reference interpreter.

Guarantees: every op node whose operands are all constants, and whose result has concrete
dims and at most ``edit.MAX_CONST_SIZE`` elements, becomes a const holding the op's value
(the node keeps its id, phase and ``grad_of``; it is marked "folded"). The value comes
from :func:`graphc.evaluate.evaluate`, the op table's own definitions run node by node:
the evaluator the tests use as the oracle, so there is one evaluator, not two. Inputs and
params are never folded, nor a node whose value needs a symbolic dim (a fused ``1/N``: no
feed tells its size here). Constants left unused are for ``dce`` to remove.

Before: ``y = x * exp(0 * 3)``. After: ``y = x * 1.0`` (``exp`` is now a const; the
``mul`` of two consts under it folded first and is left unused).

>>> import graphc as gc
>>> g = gc.Graph("doc"); x = g.input("x", shape=(2,))
>>> _ = g.output("y", x * gc.exp(g.const(0.0) * 3))
>>> out = fold(g.nx)
>>> out.graph["stats"]["passes"], out.nodes["exp"]["attrs"]["value"], out.nodes["exp"]["mark"]
({'fold': {'folded': 2}}, 1.0, 'folded')
"""

from __future__ import annotations

import networkx as nx
import numpy as np

from .. import ir
from ..evaluate import UnboundDimError, evaluate
from ..ops.base import op_for
from ..ops.editor import Editor
from .edit import MAX_CONST_SIZE, Revisit, begin, concrete_size, order
from .stats import Stats

__all__ = ["fold", "fold_in_place", "evaluate_node"]


def evaluate_node(graph: nx.MultiDiGraph, node: str) -> np.ndarray | None:
    """The value of ``node`` (all of whose operands are consts), in float64, as consts are kept.

    None when the value needs a symbolic dim (a fused ``1/N``): no feed tells its size here.
    """
    tiny = graph.subgraph([node, *ir.operands(graph, node)])
    try:
        return evaluate(tiny, {}, [node], dtype=ir.DEFAULT_DTYPE)[node]
    except UnboundDimError:
        return None


def _foldable(graph: nx.MultiDiGraph, node: str) -> bool:
    # operands first: most nodes read a value that is not a const, and that is the cheap test
    nodes = graph._node
    for operand in graph._pred[node]:
        if nodes[operand][ir.OP] != "const":
            return False
    data = nodes[node]
    op = op_for(graph, data[ir.OP], node)
    if op.source or op.composite:
        return False
    size = concrete_size(data[ir.SHAPE])
    return size is not None and size <= MAX_CONST_SIZE


_LEAVES = frozenset(("input", "param", "const"))  # sources: never folded (and a third of the nodes)


def fold(graph: nx.MultiDiGraph) -> nx.MultiDiGraph:
    out = begin(graph)
    return fold_in_place(out).attach(graph, out)


def fold_in_place(out: nx.MultiDiGraph) -> Stats:
    folded = 0
    editor = Editor(out)
    revisit = Revisit(out, "fold", hops=1)  # a node folds when its operands are consts
    needs = None if revisit.nodes is None else revisit.needs  # None: every node
    nodes, pred = out._node, out._pred  # the dicts themselves: a view per look costs
    for node in order(out):
        if needs is not None and not needs(node):
            continue
        for operand in pred[node]:  # (_foldable's first test, inline: the one most nodes fail)
            if nodes[operand][ir.OP] != "const":
                break
        else:
            if nodes[node][ir.OP] in _LEAVES or not _foldable(out, node):
                continue
            value = evaluate_node(out, node)
            if value is None or value.shape != tuple(out._node[node][ir.SHAPE]):  # a definition that disagrees
                continue                                                          # with its op's shape rule
            editor.fold(node, value)
            folded += 1
    stats = Stats()
    stats.count("fold", "folded", folded)
    return stats
