"""cse: common-subexpression elimination by value numbering.

Guarantees: no two op nodes compute the same value by the same means: same op, same attrs
(frozen), same ``expr`` (fused nodes), same dtype and the same operands in order, or in any order for commutative ops
(``a + b`` and ``b + a``). Constants are equal when shape, dtype and bytes are (``0.0``
and ``-0.0`` stay apart). Inputs and params are never merged. The node that survives is
the first in topological order, marked "merged"; outputs and gradients keep their ids
(see ``edit.replace``). One pass in topological order: linear in the size of the graph.

Value numbers are node ids (each value is named by the node that first computes it), so
after a run the key of every node the run did not touch names its operands by id. While
the graph is watched (``optimize``), that table of keys is kept: a later run first makes
again the keys of the nodes edits touched since the last run began (no other key can have
changed) and, when none of them equals another node's, knows that a sweep would merge
nothing, and skips it.

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
from ..ops.base import OPS, freeze, op_for
from ..ops.editor import Editor, change_log
from .edit import SOURCES, begin, const_value, is_const, is_source, order, protected, replace
from .stats import Stats

__all__ = ["cse", "cse_in_place"]


def _key(graph: nx.MultiDiGraph, node: str, number: dict[str, str]) -> tuple | None:
    data = graph._node[node]
    op = data[ir.OP]
    dtype = data.get(ir.DTYPE, ir.DEFAULT_DTYPE)
    if op == "const":
        value = const_value(graph, node)
        return ("const", dtype, value.shape, np.ascontiguousarray(value).tobytes())
    args = [number[a] for a in ir.operands(graph, node)]
    commutative = _BUILT_IN_COMMUTATIVE.get(op)
    if commutative is None:
        commutative = op_for(graph, op, node).commutative
        if op in OPS:
            _BUILT_IN_COMMUTATIVE[op] = commutative
    if commutative:
        args.sort()
    args = tuple(args)
    # a fused node's expression (``expr``) is part of what it computes
    attrs = data.get(ir.ATTRS)
    return (op, freeze(attrs) if attrs else (), dtype, args, data.get(ir.EXPR))  # freeze({}) is ()


# A built-in op's trait by name (op_for finds built-in names first, and a built-in op stays
# what it is): asked of every node, and op_for's lookup costs more.
_BUILT_IN_COMMUTATIVE: dict[str, bool] = {}


def cse(graph: nx.MultiDiGraph) -> nx.MultiDiGraph:
    out = begin(graph)
    return cse_in_place(out).attach(graph, out)


def cse_in_place(out: nx.MultiDiGraph) -> Stats:
    log = change_log(out)
    kept = log.memo.pop("cse", None) if log is not None else None
    if kept is not None and _still_distinct(out, log, kept):
        log.memo["cse"] = kept
        return Stats()
    number: dict[str, str] = {}  # node id -> value number: the id of the value's first node
    table: dict[tuple, str] = {}  # key -> the node that holds the value now
    keys: dict[str, tuple] = {}  # node -> its key (for the table a watched graph keeps)
    # every key names its operands by their ids, or names a renamed one and is then a key of
    # a node the rename touched (the next run makes those again): no identity, no exception
    exact = True
    start = len(log.touched) if log is not None else 0
    merged = 0
    keep = protected(out)
    nodes = out._node  # the node dicts themselves: a view per look costs
    for node in order(out):
        if node in number:  # a representative renamed to an output's id, seen already
            continue
        if nodes[node][ir.OP] in SOURCES:
            number[node] = node
            continue
        key = _key(out, node, number)
        first = table.get(key)
        if first is not None and is_const(out, node) and node in keep:
            # merging would turn a named const into identity(const), which fold turns back
            first = None
            number[node] = node
            exact = False
            continue
        if first is None:
            table[key] = node
            keys[node] = key
            number[node] = node
            continue
        holder = replace(out, node, first)  # may rename ``first`` to ``node`` (an output id)
        merged += 1
        number[holder] = number[first]
        Editor(out).retag(holder, **{ir.MARK: "merged"})
        if holder != first:
            table[key] = holder
            if first not in out:  # renamed to an output's id: its readers were touched
                del number[first]
            else:  # an output made identity(first): its readers' keys name first
                exact = False
    if log is not None and exact:
        log.memo["cse"] = [start, table, keys]  # the nodes this run touched are checked again
    stats = Stats()
    stats.count("cse", "merged", merged)
    return stats


class _Identity(dict):
    """Value numbers when every value has one node: its id."""

    def __missing__(self, node: str) -> str:
        return node


def _still_distinct(graph: nx.MultiDiGraph, log, kept: list) -> bool:
    """Update the kept table with the keys of the nodes touched since; False as soon as one
    equals another node's (a sweep would merge it), True when every key is still unique."""
    seen, table, keys = kept
    touched = dict.fromkeys(log.touched[seen:])
    for node in touched:  # first take out every stale key: a touched node may take another's old one
        old = keys.pop(node, None)
        if old is not None and table.get(old) == node:
            del table[old]
    identity = _Identity()
    for node in touched:
        if node not in graph or is_source(graph, node):
            continue
        key = _key(graph, node, identity)
        if table.get(key, node) != node:
            return False
        table[key] = node
        keys[node] = key
    kept[0] = len(log.touched)
    return True
