"""fold: constant folding through each op's own lowering.

Guarantees: every op node whose operands are all constants, and whose result has concrete
dims and at most ``edit.MAX_CONST_SIZE`` elements, becomes a const holding the value the
generated code would compute (the node keeps its id, phase and ``grad_of``; it is marked
"folded"). The value comes from the op's numpy lowering (``lower.emit.Module``), the same
code the compiled program runs: there is no second evaluator. Inputs and params are never
folded. Constants left unused are for ``dce`` to remove.

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
from ..lower.emit import Module
from ..ops.base import get_op
from .edit import MAX_CONST_SIZE, begin, concrete_size, is_const, order
from .stats import Stats

__all__ = ["fold", "fold_in_place", "evaluate_node"]


def evaluate_node(graph: nx.MultiDiGraph, node: str) -> np.ndarray | None:
    """The value of ``node`` (all of whose operands are consts), by its generated numpy code.

    None when the code needs a symbolic dim (a fused ``1/N``): no feed tells its size here.
    """
    args = ir.operands(graph, node)
    tiny = ir.new_graph("fold")
    for a in dict.fromkeys(args):
        tiny.add_node(a, **graph.nodes[a])
    data = graph.nodes[node]
    extra = {ir.EXPR: data[ir.EXPR]} if ir.EXPR in data else {}  # a fused node computes its expr
    ir.add_op(tiny, node, data[ir.OP], args, data[ir.ATTRS], data[ir.SHAPE], data.get(ir.DTYPE, ir.DEFAULT_DTYPE),
              **extra)
    module = Module(tiny)
    code = module.expression(node)
    if module._dims_used:
        return None
    # Array constants are bound to their values by the names the expression uses for them.
    scope = {"numpy": np}
    for a in args:
        if not module.is_scalar_const(a):
            scope[module.atom(a)] = np.asarray(tiny.nodes[a][ir.ATTRS]["value"], dtype=np.float64)
    with np.errstate(all="ignore"):  # a folded log(0) is -inf, as the program would compute
        value = eval(compile(code, f"<graphc fold {node!r}>", "eval"), scope)  # noqa: S307 - code we printed
    return np.asarray(value, dtype=np.float64)


def _foldable(graph: nx.MultiDiGraph, node: str) -> bool:
    data = graph.nodes[node]
    op = get_op(data[ir.OP], node)
    if op.source or op.composite:
        return False
    size = concrete_size(data[ir.SHAPE])
    if size is None or size > MAX_CONST_SIZE:
        return False
    return all(is_const(graph, a) for a in ir.operands(graph, node))


def fold(graph: nx.MultiDiGraph) -> nx.MultiDiGraph:
    out = begin(graph)
    return fold_in_place(out).attach(graph, out)


def fold_in_place(out: nx.MultiDiGraph) -> Stats:
    folded = 0
    for node in order(out):
        if not _foldable(out, node):
            continue
        value = evaluate_node(out, node)
        data = out.nodes[node]
        if value is None or value.shape != tuple(data[ir.SHAPE]):  # an op whose lowering disagrees with its shape rule
            continue
        out.remove_edges_from(list(out.in_edges(node, keys=True)))
        data.update({ir.OP: "const", ir.ATTRS: {"value": float(value) if value.ndim == 0 else value},
                     ir.MARK: "folded"})
        data.pop(ir.EXPR, None)
        folded += 1
    stats = Stats()
    stats.count("fold", "folded", folded)
    return stats
