"""cse: common-subexpression elimination by value numbering.

Guarantees: no two op nodes compute the same value by the same means: same op, same attrs
(frozen), same ``expr`` (fused nodes), same dtype and the same operands in order, or in any order for commutative ops
(``a + b`` and ``b + a``). Constants are equal when shape, dtype and bytes are (``0.0``
and ``-0.0`` stay apart). Inputs and params are never merged. The node that survives is
the first in topological order, marked "merged"; outputs and gradients keep their ids
(see ``edit.replace``). One pass in topological order: linear in the size of the graph.

Before: ``h1 = tanh(x @ W)``, ``h2 = tanh(x @ W)``, ``y = h1 + h2``.
After: ``h1 = tanh(x @ W)``, ``y = h1 + h1``.

>>> import graphc as gc
>>> g = gc.Graph("doc"); x = g.input("x", shape=(1, 2)); W = g.param("W", shape=(2, 2))
>>> _ = g.output("y", gc.tanh(x @ W) + gc.tanh(x @ W))
>>> out = cse(g.nx)
>>> out.graph["stats"]["passes"], sorted(out.nodes)
({'cse': {'merged': 2}}, ['W', 'matmul', 'tanh', 'x', 'y'])
>>> ir.operands(out, "y")
['tanh', 'tanh']
"""

from __future__ import annotations

import networkx as nx
import numpy as np

from .. import ir
from ..ops.base import freeze, op_for
from ..ops.editor import Editor
from .edit import begin, const_value, is_const, is_source, order, protected, replace
from .stats import Stats

__all__ = ["cse", "cse_in_place"]


def _key(graph: nx.MultiDiGraph, node: str, number: dict[str, int]) -> tuple | None:
    data = graph.nodes[node]
    op = data[ir.OP]
    dtype = data.get(ir.DTYPE, ir.DEFAULT_DTYPE)
    if op == "const":
        value = const_value(graph, node)
        return ("const", dtype, value.shape, np.ascontiguousarray(value).tobytes())
    args = tuple(number[a] for a in ir.operands(graph, node))
    if op_for(graph, op, node).commutative:
        args = tuple(sorted(args))
    # a fused node's expression (``expr``) is part of what it computes
    return (op, freeze(data.get(ir.ATTRS) or {}), dtype, args, data.get(ir.EXPR))


def cse(graph: nx.MultiDiGraph) -> nx.MultiDiGraph:
    out = begin(graph)
    return cse_in_place(out).attach(graph, out)


def cse_in_place(out: nx.MultiDiGraph) -> Stats:
    number: dict[str, int] = {}  # node id -> value number
    table: dict[tuple, str] = {}  # key -> the node that holds the value now
    merged = 0
    keep = protected(out)
    for node in order(out):
        if node in number:  # a representative renamed to an output's id, seen already
            continue
        if is_source(out, node):
            number[node] = len(number)
            continue
        key = _key(out, node, number)
        first = table.get(key)
        if first is not None and is_const(out, node) and node in keep:
            # merging would turn a named const into identity(const), which fold turns back
            first = None
            number[node] = len(number)
            continue
        if first is None:
            table[key] = node
            number[node] = len(number)
            continue
        holder = replace(out, node, first)  # may rename ``first`` to ``node`` (an output id)
        merged += 1
        number[holder] = number[first]
        Editor(out).retag(holder, **{ir.MARK: "merged"})
        if holder != first:
            table[key] = holder
            if first not in out:
                del number[first]
    stats = Stats()
    stats.count("cse", "merged", merged)
    return stats
