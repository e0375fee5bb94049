"""canonicalize: identities of one op at a time, and a stable operand order.

Guarantees, for every op node:
- commutative ops (``add``, ``mul``) have constants last (``2 * x`` -> ``x * 2``), other
  operands in the order written (``cse`` matches ``a + b`` with ``b + a`` on its own);
- a ``sum`` over axes that a ``broadcast`` under it stretched is a product by the count
  (``sum(broadcast(c, (N, 3)), axis=0)`` -> ``c * N``): the backward pass broadcasts a
  cotangent back over summed axes, and this keeps it from building copies it only sums;
- an elementwise op reads ``c`` instead of ``broadcast(c)`` (``broadcast(c, (N, 3)) * y``
  with y of shape (N, 3) -> ``c * y``), and is broadcast itself when its other operands
  do not give it its shape (``-broadcast(c, S)`` -> ``broadcast(-c, S)``); a reshape or
  transpose of a broadcast one number is that number broadcast to the new shape;
- these identities are applied where the result keeps the node's shape and dtype (so a
  broadcast is never lost): ``x + 0``, ``x - 0``, ``x * 1``, ``x / 1``, ``x ** 1``,
  ``identity(x)``, ``-(-x)`` -> ``x``; ``x - x``, ``x * 0`` -> zeros (assuming finite
  values, as every optimizing compiler's fast path does); ``0 - x``, ``x * -1`` -> ``-x``;
  ``x + (-y)`` -> ``x - y``; ``x - (-y)`` -> ``x + y``; a transpose of a transpose (both
  reversing), a reshape or broadcast to the same shape -> ``x``;
  ``stop_gradient(stop_gradient(x))`` -> ``stop_gradient(x)``.
Outputs and gradients keep their ids; nodes made here are marked "created". Each rule
is counted by name in the stats. One pass in topological order: linear.

Before: ``y = 1 * (x + 0)``. After: ``y = identity(x)`` (an output named "y" keeps its id).

>>> import graphc as gc
>>> g = gc.Graph("doc"); x = g.input("x", shape=(2,)); w = g.input("w", shape=(2,))
>>> _ = g.output("y", 1 * (x + 0) - (-w))
>>> out = canonicalize(g.nx)
>>> out.graph["stats"]["passes"]["canonicalize"]
{'add_zero': 1, 'mul_one': 1, 'sub_neg': 1}
>>> out.nodes["y"]["op"], ir.operands(out, "y")
('add', ['x', 'w'])
"""

from __future__ import annotations

from collections.abc import Callable

import networkx as nx
import numpy as np
import sympy

from .. import ir
from ..ops.base import op_for
from ..ops.editor import Editor
from ..ops.tensor import normalize_axes
from .edit import (
    MAX_CONST_SIZE,
    Revisit,
    begin,
    concrete_size,
    const_node,
    const_value,
    fused_node,
    is_const,
    is_source,
    new_node,
    order,
    protected,
    replace,
)
from .stats import Stats

__all__ = ["canonicalize", "canonicalize_in_place", "RULES"]

Rule = Callable[[nx.MultiDiGraph, str, list], "str | None"]


def _reads(op: str) -> Callable[[Rule], Rule]:
    """Say that a rule applies only where an operand is an ``op`` node: the node's operand
    ops are read once, and the rules none of them can fire for are not called (most nodes
    read no const, neg or broadcast; a canonicalize sweep asks every node every rule)."""
    def mark(rule: Rule) -> Rule:
        rule.reads = op
        return rule
    return mark


def _all(graph, node, value) -> bool:
    return is_const(graph, node) and bool(np.all(const_value(graph, node) == value))


def _fits(graph, node, value) -> bool:
    """Can ``value`` stand for ``node``: same shape and dtype (no broadcast lost)?"""
    a, b = graph._node[node], graph._node[value]
    return tuple(a[ir.SHAPE]) == tuple(b[ir.SHAPE]) and a.get(ir.DTYPE) == b.get(ir.DTYPE)


def _op(graph, node, name) -> bool:
    return graph._node[node][ir.OP] == name


def _zeros(graph, node):
    shape = graph._node[node][ir.SHAPE]
    size = concrete_size(shape)
    if size is None or size > MAX_CONST_SIZE:
        return None
    return const_node(graph, np.zeros(shape), like=node)


def _keep_operand(index: int, value: float) -> Rule:
    """``op(x, c)`` -> ``x`` when the other operand is the constant ``value`` everywhere."""
    @_reads("const")
    def rule(graph, node, args):
        other = args[1 - index]
        if _all(graph, other, value) and _fits(graph, node, args[index]):
            return args[index]
        return None
    return rule


def _sub_self(graph, node, args):
    return _zeros(graph, node) if args[0] == args[1] else None


@_reads("const")
def _mul_zero(graph, node, args):
    return _zeros(graph, node) if any(_all(graph, a, 0) for a in args) else None


def _negate(index: int, value: float) -> Rule:
    """``op(.., c, ..)`` -> ``-x`` when ``c`` is ``value`` everywhere and ``-x`` has the node's shape."""
    @_reads("const")
    def rule(graph, node, args):
        x = args[index]
        if _all(graph, args[1 - index], value) and _fits(graph, node, x):
            return new_node(graph, "neg", [x], like=node)
        return None
    return rule


def _through_neg(op: str) -> Rule:
    """``x + (-y)`` -> ``x - y`` and ``x - (-y)`` -> ``x + y``."""
    @_reads("neg")
    def rule(graph, node, args):
        if _op(graph, args[1], "neg"):
            return new_node(graph, op, [args[0], ir.operands(graph, args[1])[0]], like=node)
        return None
    return rule


def _twice(inner: str, same: bool) -> Rule:
    """``f(f(x))`` -> ``x`` (an involution) or -> ``f(x)`` (idempotent, ``same``)."""
    @_reads(inner)
    def rule(graph, node, args):
        if _op(graph, args[0], inner) and not (graph._node[args[0]][ir.ATTRS] or {}).get("axes") \
                and not (graph._node[node][ir.ATTRS] or {}).get("axes"):
            return args[0] if same else ir.operands(graph, args[0])[0]
        return None
    return rule


def _same_shape(graph, node, args):
    return args[0] if _fits(graph, node, args[0]) else None


@_reads("broadcast")
def _sum_of_broadcast(graph, node, args):
    """``sum(broadcast(c, S), axes)`` -> ``broadcast(sum(c, unstretched axes) * count)``."""
    (spread,) = args
    if not _op(graph, spread, "broadcast"):
        return None
    (c,) = ir.operands(graph, spread)
    small, full = tuple(graph._node[c][ir.SHAPE]), tuple(graph._node[spread][ir.SHAPE])
    lead = len(full) - len(small)
    attrs = graph._node[node][ir.ATTRS] or {}
    axes = normalize_axes(attrs.get("axis"), len(full))
    stretched = [a for a in axes if a < lead or (small[a - lead] == 1 and full[a] != 1)]
    if not stretched:
        return None
    value = c
    summed = [a - lead for a in axes if a not in stretched and full[a] != 1]
    if summed:
        value = new_node(graph, "sum", [c], {"axis": tuple(summed), "keepdims": True}, like=node)
    count = sympy.Integer(1)
    for a in stretched:
        count *= full[a]
    if count.is_Integer:
        value = new_node(graph, "mul", [value, const_node(graph, float(count), like=node)], like=node)
    else:  # a symbolic count (N) is a number only a fused expression can hold
        a0 = sympy.Symbol("a0", real=True)
        value = fused_node(graph, a0 * count, [value], like=node)
    return _shaped(graph, value, full, axes, tuple(graph._node[node][ir.SHAPE]), like=node)


def _shaped(graph, value, full, axes, out_shape, like):
    """``value`` (of ``full``'s rank or less, size 1 or full along each kept axis) as the
    reduction's result of ``out_shape``."""
    shape = tuple(graph._node[value][ir.SHAPE])
    if shape == out_shape:
        return value
    if all(d == 1 for d in shape):
        return _spread_number(graph, value, out_shape, like)
    kept = tuple(1 if a in axes else d for a, d in enumerate(full))
    if (1,) * (len(kept) - len(shape)) + shape != kept:
        value = new_node(graph, "broadcast", [value], {"shape": kept}, like=like)
    return new_node(graph, "reshape", [value], {"shape": out_shape}, like=like)


@_reads("broadcast")
def _unbroadcast_operands(graph, node, args):
    """An elementwise op over the values under its broadcast operands, broadcast after.

    Copies are the last thing to make: ``f(broadcast(c), y)`` computes ``f(c, y)`` and
    broadcasts that (not at all when ``y`` gives the shape already).
    """
    if not any(_op(graph, a, "broadcast") for a in args):
        return None
    inner = [ir.operands(graph, a)[0] if _op(graph, a, "broadcast") else a for a in args]
    shape = tuple(graph._node[node][ir.SHAPE])
    data = graph._node[node]
    value = new_node(graph, data[ir.OP], inner, data[ir.ATTRS], like=node, expr=data.get(ir.EXPR))
    if tuple(graph._node[value][ir.SHAPE]) == shape:
        return value
    return new_node(graph, "broadcast", [value], {"shape": shape}, like=node)


@_reads("broadcast")
def _one_number_spread(graph, node, args):
    """``reshape(broadcast(c), T)`` or its transpose, c one number -> ``broadcast(c, T)``."""
    (spread,) = args
    if not _op(graph, spread, "broadcast"):
        return None
    (c,) = ir.operands(graph, spread)
    small = tuple(graph._node[c][ir.SHAPE])
    shape = tuple(graph._node[node][ir.SHAPE])
    if any(d != 1 for d in small):
        return None
    return _spread_number(graph, c, shape, like=node)


def _spread_number(graph, value, shape, like):
    """``value`` (one number, of any rank) as an array of ``shape``.

    A broadcast only adds leading axes, so a number of higher rank than ``shape`` is
    reshaped to ``shape``'s rank first (``(1, 1)`` -> ``(1,)`` -> ``(4,)``).
    """
    if tuple(graph._node[value][ir.SHAPE]) == shape:
        return value
    if len(graph._node[value][ir.SHAPE]) > len(shape):
        value = new_node(graph, "reshape", [value], {"shape": (1,) * len(shape)}, like=like)
        if all(d == 1 for d in shape):
            return value
    return new_node(graph, "broadcast", [value], {"shape": shape}, like=like)


@_reads("neg")
def _neg_neg(graph, node, args):
    return ir.operands(graph, args[0])[0] if _op(graph, args[0], "neg") else None


def _identity(graph, node, args):
    if node in protected(graph) and (is_source(graph, args[0]) or args[0] in protected(graph)):
        return None  # an output naming an input or another output: the identity is needed
    return args[0]


RULES: dict[str, list[tuple[str, Rule]]] = {
    "add": [("add_zero", _keep_operand(0, 0)), ("add_zero", _keep_operand(1, 0)), ("add_neg", _through_neg("sub"))],
    "sub": [("sub_zero", _keep_operand(0, 0)), ("sub_self", _sub_self), ("zero_sub", _negate(1, 0)),
            ("sub_neg", _through_neg("add"))],
    "mul": [("mul_one", _keep_operand(0, 1)), ("mul_one", _keep_operand(1, 1)), ("mul_zero", _mul_zero),
            ("mul_minus_one", _negate(0, -1)), ("mul_minus_one", _negate(1, -1))],
    "div": [("div_one", _keep_operand(0, 1))],
    "pow": [("pow_one", _keep_operand(0, 1))],
    "neg": [("neg_neg", _neg_neg)],
    "identity": [("identity", _identity)],
    "transpose": [("transpose_transpose", _twice("transpose", same=False)),
                  ("broadcast_late", _one_number_spread)],
    "reshape": [("reshape_same", _same_shape), ("broadcast_late", _one_number_spread)],
    "broadcast": [("broadcast_same", _same_shape)],
    "sum": [("sum_of_broadcast", _sum_of_broadcast)],
    "stop_gradient": [("stop_gradient_twice", _twice("stop_gradient", same=True))],
}


def _reorder(graph: nx.MultiDiGraph, node: str, args: list[str]) -> bool:
    """Put a commutative op's operands (``args``, in order) in canonical order; True when they moved."""
    ordered = sorted(args, key=lambda a: is_const(graph, a))  # stable: the rest keep their order
    if ordered == args:
        return False
    Editor(graph).set_operands(node, ordered)
    return True


ELEMENTWISE_RULES: list[tuple[str, Rule]] = [("broadcast_late", _unbroadcast_operands)]


def _rules_for(spec) -> list[tuple[str, Rule, str | None]]:
    """The rules tried on a node of op ``spec``: those of its name, and the elementwise ones,
    each with the operand op it needs (``_reads``), if any."""
    key = (spec.name, spec.elementwise)
    found = _RULES_OF.get(key)
    if found is None:
        rules = RULES.get(spec.name, []) + (ELEMENTWISE_RULES if spec.elementwise else [])
        found = _RULES_OF[key] = [(name, rule, getattr(rule, "reads", None)) for name, rule in rules]
    return found


_RULES_OF: dict[tuple[str, bool], list[tuple[str, Rule, str | None]]] = {}


def _apply_rules(graph: nx.MultiDiGraph, node: str, rules: list, args: list[str]) -> tuple[str, str] | None:
    """(rule name, the node now holding the value) for the first rule that applies to
    ``node`` (of operands ``args``); None, and the node as it was, when none does (a rule
    that does not apply changes nothing: it makes nodes only for a result it returns)."""
    nodes, present = graph._node, None
    for name, rule, needed in rules:
        if needed is not None:
            if present is None:
                present = {nodes[a][ir.OP] for a in args}
            if needed not in present:
                continue
        result = rule(graph, node, args)
        if result is not None and result != node:
            return name, replace(graph, node, result)
    return None


def _canonicalize_node(graph: nx.MultiDiGraph, node: str, stats: Stats) -> None:
    # A rule's result may itself be rewritable (``x * 1 + 0``): follow it until none applies,
    # so that one run reaches the fixed point and a second run changes nothing.
    nodes = graph._node  # the node dicts themselves: a view per look costs
    spec = args = None  # node's op record and operands, while node is the one they were read for
    for _ in range(64):
        if node not in nodes:
            return
        spec = op_for(graph, nodes[node][ir.OP], node)
        if spec.source:
            return
        rules = _rules_for(spec)
        if not rules:
            break
        args = ir.operands(graph, node)
        applied = _apply_rules(graph, node, rules, args)
        if applied is None:
            break
        stats.count("canonicalize", applied[0])
        node, spec, args = applied[1], None, None
    if node not in nodes:
        return
    if spec is None:
        spec = op_for(graph, nodes[node][ir.OP], node)
    if spec.commutative and _reorder(graph, node, args if args is not None else ir.operands(graph, node)):
        stats.count("canonicalize", "reordered")


def _triggers(spec) -> tuple[bool, frozenset]:
    """(whether a rule of ``spec``'s nodes may fire whatever its operands are, the operand ops
    one of its rules or its reordering needs): a node none of whose operands is of such an op
    is left as it is by ``_canonicalize_node``, which need not be called (most nodes are)."""
    key = (spec.name, spec.elementwise, spec.commutative)
    found = _TRIGGERS.get(key)
    if found is None:
        rules = _rules_for(spec)
        needed = {reads for _, _, reads in rules if reads is not None}
        if spec.commutative:
            needed.add("const")  # constants go last: only a const operand moves
        found = _TRIGGERS[key] = (any(reads is None for _, _, reads in rules), frozenset(needed))
    return found


_TRIGGERS: dict[tuple[str, bool, bool], tuple[bool, frozenset]] = {}


def canonicalize_in_place(graph: nx.MultiDiGraph) -> Stats:
    stats = Stats()
    revisit = Revisit(graph, "canonicalize", hops=2)  # rules read operands and their operands
    needs = None if revisit.nodes is None else revisit.needs  # None: every node
    nodes, pred = graph._node, graph._pred  # the dicts themselves: a view per look costs
    for node in order(graph):
        if needs is not None and not needs(node):
            continue
        data = nodes.get(node)
        if data is None:  # taken out by a rewrite of an earlier node
            continue
        spec = op_for(graph, data[ir.OP], node)
        if spec.source:
            continue
        always, needed = _triggers(spec)
        if not always and (not needed or needed.isdisjoint([nodes[a][ir.OP] for a in pred[node]])):
            continue  # no rule can fire, and nothing to reorder
        _canonicalize_node(graph, node, stats)
    return stats


def canonicalize(graph: nx.MultiDiGraph) -> nx.MultiDiGraph:
    out = begin(graph)
    return canonicalize_in_place(out).attach(graph, out)
