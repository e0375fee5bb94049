"""fuse: merge each maximal region of elementwise ops into one ``fused`` node.

Guarantees: values are unchanged; every node that is not elementwise is untouched; a
fused node holds ``expr = (expression, symbols)`` over its operands (the region's inputs),
keeps the id of the region's last node (so outputs and gradients keep their ids), and is
marked "fused". A node joins its consumer's region only when that consumer is its only
reader and the graph does not name it (an output, a gradient); a region holds at most
``MAX_REGION`` nodes, so expressions stay small enough to simplify and print quickly and
never nest deeply. Inside a region a cheap rewrite (``sympy.factor_terms``) is kept when
it shortens the expression: (exp/s)/N - y/N becomes (exp/s - y)/N.

Before: ``a = x @ W; b = a + c; h = relu(b)``. After: ``a = x @ W``,
``h = fused(a, c) = Max(a0 + a1, 0)``.
"""

from __future__ import annotations

import functools

import networkx as nx
import sympy

from .. import ir
from ..ops.base import OPS, const_number, definition, freeze, op_for
from ..ops.editor import Editor
from ..ops.fused import fused_symbols
from .edit import begin, is_const, order, protected
from .stats import Stats

__all__ = ["fuse", "MAX_REGION"]

MAX_REGION = 24


def _size(graph: nx.MultiDiGraph, node: str) -> int:
    return graph._node[node].get(ir.FUSED_SIZE, 1)


def _elementwise(graph: nx.MultiDiGraph, node: str) -> bool:
    name = graph._node[node][ir.OP]
    known = _BUILT_IN_ELEMENTWISE.get(name)
    if known is None:
        op = OPS.get(name)
        if op is None:  # one of the graph's custom ops
            return op_for(graph, name, node).elementwise
        known = _BUILT_IN_ELEMENTWISE[name] = op.elementwise
    return known


class _Elementwise(dict):
    """op name -> whether the graph's op of that name is elementwise, found once per name:
    the sweeps ask it of every node (a dict lookup, no call, once a name is known)."""

    def __init__(self, graph: nx.MultiDiGraph):
        super().__init__()
        self.graph = graph

    def __missing__(self, name: str) -> bool:
        found = self[name] = op_for(self.graph, name).elementwise
        return found


# A built-in op's answer by name (op_for finds built-in names first, and a built-in op stays
# what it is): a sweep asks it of every node several times, and op_for's lookup costs more.
_BUILT_IN_ELEMENTWISE: dict[str, bool] = {}


def _read_by_only(graph: nx.MultiDiGraph, node: str, reader: str) -> bool:
    readers = graph._succ[node]  # a dict by reader: no set to build per question
    return len(readers) == 1 and reader in readers


def _scalar_const(graph: nx.MultiDiGraph, node: str):
    if is_const(graph, node):
        value = graph._node[node][ir.ATTRS]["value"]
        if getattr(value, "ndim", 0) == 0:
            return const_number(value)
    return None


def _node_expression(graph: nx.MultiDiGraph, node: str, operands: list[sympy.Expr]) -> sympy.Expr:
    data = graph._node[node]
    if ir.EXPR in data:
        expr, symbols = data[ir.EXPR]
        return _substituted(expr, symbols, tuple(operands))
    attrs = data[ir.ATTRS]
    return _called(definition(op_for(graph, data[ir.OP], node), freeze(attrs) if attrs else ()), tuple(operands))


# A region's leaves are named by position (_leaf0, _leaf1...), so the layers of a deep
# network ask for the same expressions again and again: each is built once (sympy's own
# cache is small and a big graph pushes them out of it).
@functools.lru_cache(maxsize=4096)
def _substituted(expr: sympy.Expr, symbols: tuple, operands: tuple) -> sympy.Expr:
    return expr.xreplace(dict(zip(symbols, operands)))


@functools.lru_cache(maxsize=4096)
def _called(lam: sympy.Lambda, operands: tuple) -> sympy.Expr:
    return lam(*operands)  # keyed by the definition itself: an op defined again is another key


class _Region:
    """One region being grown from its last node towards its inputs."""

    def __init__(self, graph: nx.MultiDiGraph, keep: set[str], absorbed: set[str]):
        self.graph, self.keep, self.absorbed = graph, keep, absorbed
        self.values: dict[str, sympy.Expr] = {}
        self.size = 0  # ops in the region so far (a fused member counts all it holds)
        self.leaves: dict[str, sympy.Symbol] = {}
        self.inlined: set[str] = set()
        self.members: list[str] = []
        self.kinks: list[str] = []

    def joins(self, operand: str, consumer: str) -> bool:
        g = self.graph
        return (_elementwise(g, operand) and operand not in self.keep and operand not in self.absorbed
                and self.size + _size(g, operand) <= MAX_REGION and _read_by_only(g, operand, consumer))

    def leaf(self, operand: str) -> sympy.Expr:
        number = _scalar_const(self.graph, operand)
        if number is not None:
            return number
        data = self.graph._node[operand]
        if ir.EXPR in data and not self.graph._pred[operand]:  # a number such as 1/N: copy it in
            self.inlined.add(operand)
            return data[ir.EXPR][0]
        if operand not in self.keep and _scalar_op(self.graph, operand) and self.size < MAX_REGION:
            self.inlined.add(operand)  # a scalar such as d_loss/N: copy it in, whoever else reads it
            self.size += _size(self.graph, operand)
            return _node_expression(self.graph, operand, [self.leaf(a) for a in ir.operands(self.graph, operand)])
        if operand not in self.leaves:
            self.leaves[operand] = _leaf(len(self.leaves))
        return self.leaves[operand]

    def grow(self, node: str) -> sympy.Expr:
        data = self.graph._node[node]
        self.members.append(node)
        self.size += data.get(ir.FUSED_SIZE, 1)
        kink = data[ir.ATTRS].get("kink") if data[ir.OP] == "fused" else ""
        if kink and kink not in self.kinks:
            self.kinks.append(kink)
        operands = []
        for operand in ir.operands(self.graph, node):
            if operand in self.members:  # x * x: the same merged value twice
                operands.append(self.values[operand])
            elif self.joins(operand, node):
                operands.append(self.grow(operand))
            else:
                operands.append(self.leaf(operand))
        value = _node_expression(self.graph, node, operands)
        self.values[node] = value
        return value


@functools.lru_cache(maxsize=4096)
def _finished(expr: sympy.Expr, count: int) -> tuple[sympy.Expr, tuple]:
    """A region's expression over its ``count`` leaves (``_leaf0``...) as a fused node's,
    over ``a0``..., shortened: a pure function of the expression, so a deep network's
    layers (one expression again and again) pay for it once."""
    symbols = fused_symbols(count)
    return _shorter(expr.xreplace({_leaf(k): s for k, s in enumerate(symbols)})), symbols


@functools.cache
def _leaf(k: int) -> sympy.Symbol:
    return sympy.Symbol(f"_leaf{k}", real=True)


def _has_common_factor(add: sympy.Add) -> bool:
    """Whether the terms of a sum share a factor (a symbol, a function, or a number != 1)."""
    terms = [sympy.Mul.make_args(t) for t in add.args]
    shared = set(terms[0]).intersection(*map(set, terms[1:]))
    if any(not f.is_Number for f in shared):
        return True
    coefficients = [t.as_coeff_Mul()[0] for t in add.args]
    return all(c.is_Rational and abs(c) != 1 for c in coefficients) and sympy.gcd(coefficients) != 1


def _shorter(expr: sympy.Expr) -> sympy.Expr:
    # factor_terms is costly; run it only where a sum has a factor to pull out
    if not any(_has_common_factor(p) for p in sympy.preorder_traversal(expr) if p.is_Add):
        return expr
    candidate = sympy.factor_terms(expr)
    return candidate if sympy.count_ops(candidate) < sympy.count_ops(expr) else expr


def fuse(graph: nx.MultiDiGraph) -> nx.MultiDiGraph:
    out = begin(graph)
    stats = Stats()
    keep = protected(out)
    _numbers_first(out)  # the sweep reuses its order when it changed no edge (edit.order)
    _sweep(out, keep, stats)
    _drop_unread_scalars(out, keep)
    return stats.attach(graph, out)


def _drop_unread_scalars(graph: nx.MultiDiGraph, keep: set[str]) -> None:
    """Remove the numbers and scalars every reader copied in (1/N, d_loss/N, consts)."""
    unread = [n for n in graph.nodes if not graph._succ[n] and n not in keep and _copied(graph, n)]
    editor = Editor(graph)
    while unread:
        operands = {a for n in unread for a in ir.operands(graph, n)}
        editor.remove(unread)
        unread = [n for n in operands if n in graph and not graph._succ[n] and n not in keep
                  and _copied(graph, n)]


def _copied(graph: nx.MultiDiGraph, node: str) -> bool:
    """Is ``node`` a value every kernel reading it copies in: a number, or a scalar op?"""
    if _scalar_const(graph, node) is not None:
        return True
    data = graph._node[node]
    return ir.EXPR in data and not graph._pred[node] or _scalar_op(graph, node)


def _scalar_op(graph: nx.MultiDiGraph, node: str) -> bool:
    """An elementwise op of scalars (``d_loss / N``): cheaper to repeat in each kernel
    than to read as its own statement, and fused alike wherever it is read."""
    return (_elementwise(graph, node) and tuple(graph._node[node][ir.SHAPE]) == ()
            and all(tuple(graph._node[a][ir.SHAPE]) == () for a in ir.operands(graph, node)))


def _sweep(out: nx.MultiDiGraph, keep: set[str], stats: Stats) -> int:
    """One pass over the graph from its end, merging each root's region; the ops merged."""
    merged = 0
    absorbed: set[str] = set()
    editor = Editor(out)
    nodes, kinds = out._node, _Elementwise(out)
    for root in reversed(order(out)):
        if root in absorbed or not kinds[nodes[root][ir.OP]]:
            continue
        if nodes[root][ir.OP] != "fused" and _alone(out, root, keep, absorbed):
            continue  # what growing its region would find: itself, nothing merged or copied in
        region = _Region(out, keep, absorbed)
        expr = region.grow(root)
        if len(region.members) == 1 and ir.op_of(out, root) != "fused" and not region.inlined:
            continue
        absorbed.update(region.members[1:])
        leaves = list(region.leaves)
        expr, symbols = _finished(expr, len(leaves))
        if _passes_through(out, root, expr, symbols, leaves):
            # (p - p)**2 + p is p: an alias says so, and the schedule copies an alias it
            # returns; a kernel printed as `loss = p` would hand out p's own buffer
            editor.rewrite(root, "identity", [leaves[symbols.index(expr)]])
            editor.remove(region.members[1:])
            continue
        editor.rewrite(root, "fused", leaves, {"kink": "; ".join(region.kinks)}, expr=(expr, symbols),
                       size=region.size, mark="fused" if len(region.members) > 1 else None)
        editor.remove(region.members[1:])  # their work is in the root's expression now
        if len(region.members) > 1:
            stats.count("fuse", "fused", len(region.members) - 1)
            merged += len(region.members) - 1
    return merged


def _alone(graph: nx.MultiDiGraph, root: str, keep: set[str], absorbed: set[str]) -> bool:
    """Whether ``root``'s region would hold ``root`` alone and copy nothing in: no operand
    joins it (``_Region.joins``) or is copied in (``_Region.leaf``: a number such as 1/N, or
    a scalar op). Most elementwise nodes of a big graph are such, and growing a region builds
    its expression: asked first, from what the region would start with."""
    size, nodes, pred = _size(graph, root), graph._node, graph._pred
    for operand in pred[root]:
        data = nodes[operand]
        if operand not in keep and _elementwise(graph, operand):
            if operand not in absorbed and size + _size(graph, operand) <= MAX_REGION \
                    and _read_by_only(graph, operand, root):
                return False  # it joins
            if size < MAX_REGION and _scalar_op(graph, operand) and _scalar_const(graph, operand) is None:
                return False  # a scalar op copied in
        if ir.EXPR in data and not pred[operand] and _scalar_const(graph, operand) is None:
            return False  # a number copied in
    return True


def _passes_through(graph: nx.MultiDiGraph, root: str, expr: sympy.Expr, symbols: tuple, leaves: list) -> bool:
    """Whether the region's value is one of its operands, unchanged in shape and dtype."""
    if expr not in symbols:
        return False
    leaf, data = graph._node[leaves[symbols.index(expr)]], graph._node[root]
    return tuple(leaf[ir.SHAPE]) == tuple(data[ir.SHAPE]) and leaf[ir.DTYPE] == data[ir.DTYPE]


def _numbers_first(graph: nx.MultiDiGraph) -> None:
    """Turn elementwise nodes of numbers only (1/N: consts and symbolic dims) into
    operand-less fused nodes, so that every reader can copy the number in."""
    editor = Editor(graph)
    nodes, pred, kinds = graph._node, graph._pred, _Elementwise(graph)
    for node in order(graph):
        if not pred[node] or not kinds[nodes[node][ir.OP]]:
            continue
        for operand in pred[node]:  # is every operand a number? (most nodes read an array: asked first, inline)
            data = nodes[operand]
            if not (ir.EXPR in data and not pred[operand]) and _scalar_const(graph, operand) is None:
                break
        else:
            _number_node(graph, editor, node)


def _number_node(graph: nx.MultiDiGraph, editor: Editor, node: str) -> None:
    """Make ``node``, an elementwise op all of whose operands are numbers, an operand-less fused node."""
    values = []
    for operand in ir.operands(graph, node):
        number = _scalar_const(graph, operand)
        data = graph._node[operand]
        if number is None:  # not a scalar const: an operand-less fused number (1/N)
            number = data[ir.EXPR][0]
        values.append(number)
    expr = _node_expression(graph, node, values)
    data = graph._node[node]
    kink = data[ir.ATTRS].get("kink", "") if data[ir.OP] == "fused" else ""
    editor.rewrite(node, "fused", [], {"kink": kink}, expr=(sympy.sympify(expr), ()))
