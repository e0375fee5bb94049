"""simplify: stability rewrites, then algebra with sympy over elementwise regions.

First the stability patterns of ``passes/stable.py`` (log-sigmoid, bce on logits,
log-softmax, logsumexp with its max shift), each counted by name. Then every elementwise
*region* (algebraic elementwise ops joined through values used once, at most
``MAX_REGION`` nodes) becomes one sympy expression, built from each op's own definition
(``ops.definition``) over a symbol per value entering the region. sympy's automatic
evaluation simplifies it (``(x + y) - y = x``, ``2 x / 2 = x``, ``log(exp(x)) = x``,
``x * x = x**2``): no ``sympy.simplify`` (slow, and it turns sigmoid into cosh forms). The
region is rebuilt from the result only when that takes strictly fewer op nodes and gives
the same shape; this is counted as ``algebra``.

Guarantees: values unchanged wherever the original is finite and inside each op's real
domain (``exp(log(x)) = x`` also for x < 0, where the original gives NaN); outputs keep
their ids; rebuilt nodes are marked "created" and take the phase of the region's root;
stop_gradient, reductions and other tensor ops bound the regions, so gradients keep their
meaning. Linear in the size of the graph (regions are bounded).

Before: ``y = exp(log(x + w) - log(w)) * w`` (five op nodes). After: ``y = x + w``.

>>> import graphc as gc
>>> g = gc.Graph("doc"); x = g.input("x", shape=(2,)); w = g.input("w", shape=(2,))
>>> _ = g.output("y", gc.exp(gc.log(x + w) - gc.log(w)) * w)
>>> out = simplify(g.nx)
>>> out.graph["stats"]["passes"], out.nodes["y"]["op"], ir.operands(out, "y")
({'simplify': {'algebra': 1}}, 'add', ['x', 'w'])
"""

from __future__ import annotations

import functools

import networkx as nx
import numpy as np
import sympy

from .. import ir
from ..ops.base import OPS, const_number, definition, freeze, op_for
from ..ops.editor import Editor, change_log
from .edit import MAX_CONST_SIZE, begin, concrete_size, const_node, is_const, new_node, order, protected, replace
from .stable import PRIMITIVE_RULES, apply_rules
from .stats import Stats

__all__ = ["simplify", "simplify_in_place", "ALGEBRAIC", "MAX_REGION"]

# Ops whose definitions sympy manipulates well and that can be rebuilt from its results
# (the op table's ``algebraic`` trait). The rest (maximum, leaky_relu, losses, custom ops)
# bound regions: they keep their kink conventions and operand order exactly as written.
ALGEBRAIC = frozenset(name for name, op in OPS.items() if op.algebraic)
MAX_REGION = 24  # nodes per region: keeps every sympy expression small



def _unary_functions() -> dict:
    """sympy function -> the algebraic one-operand op whose definition is that function."""
    out = {}
    for name, op in OPS.items():
        if op.algebraic and op.arity == 1 and not op.attrs:
            body = definition(name)
            if isinstance(body.expr, sympy.Function) and body.expr.args == body.variables:
                out.setdefault(body.expr.func, name)
    return out


_UNARY = _unary_functions()  # exp -> "exp", sigmoid -> "sigmoid", Abs -> "abs", ...


class _Unbuildable(Exception):
    """The sympy result uses something no op computes: keep the region as it was."""


def _regions(graph: nx.MultiDiGraph) -> list[list[str]]:
    """Regions as node lists in topological order, the root last; consumers first overall."""
    named = protected(graph)
    ordered = order(graph)
    nodes, readers, pred = graph._node, graph._succ, graph._pred  # the dicts themselves: a view per look costs

    def algebraic(n):
        return nodes[n][ir.OP] in ALGEBRAIC

    def interior(n):  # may be inlined into its one consumer's expression (readers: a dict by reader)
        return algebraic(n) and n not in named and len(readers[n]) == 1

    position = dict(zip(ordered, range(len(ordered))))
    taken: set[str] = set()
    regions = []
    for root in reversed(ordered):
        if root in taken or nodes[root][ir.OP] not in ALGEBRAIC:  # (algebraic(root), inline: asked of every node)
            continue
        region, stack = [], [root]
        taken.add(root)
        while stack:
            node = stack.pop()
            region.append(node)
            if not any(a not in taken and nodes[a][ir.OP] in ALGEBRAIC and len(readers[a]) == 1 and a not in named
                       for a in pred[node]):
                continue  # no operand can join (interior, asked inline of each): their order is not needed
            for a in ir.operands(graph, node):
                if a not in taken and interior(a) and len(region) + len(stack) < MAX_REGION:
                    taken.add(a)
                    stack.append(a)
        if len(region) > 1:
            regions.append(sorted(region, key=position.__getitem__))
    return regions


def _expression(graph: nx.MultiDiGraph, region: list[str]) -> tuple[sympy.Expr, dict[sympy.Symbol, str]]:
    exprs: dict[str, sympy.Expr] = {}
    leaves: dict[str, sympy.Symbol] = {}

    def value(a):
        if a in exprs:
            return exprs[a]
        if is_const(graph, a) and np.ndim(graph._node[a][ir.ATTRS]["value"]) == 0:
            return const_number(graph._node[a][ir.ATTRS]["value"])
        if a not in leaves:
            leaves[a] = _leaf(len(leaves))
        return leaves[a]

    for node in region:
        data = graph._node[node]
        lam = definition(op_for(graph, data[ir.OP], node), freeze(data[ir.ATTRS] or {}))
        exprs[node] = _called(lam, tuple(value(a) for a in ir.operands(graph, node)))
    return exprs[region[-1]], {s: n for n, s in leaves.items()}


@functools.cache
def _leaf(k: int) -> sympy.Symbol:
    return sympy.Symbol(f"v{k}", real=True)


@functools.lru_cache(maxsize=4096)
def _called(lam: sympy.Lambda, operands: tuple) -> sympy.Expr:
    """``lam(*operands)``, built once: leaves are named by position (v0, v1...), so the
    regions of a deep network's layers ask for the same expressions again and again (sympy's
    own cache is small and a big graph pushes them out of it). Keyed by the definition
    itself: an op defined again is another key."""
    return lam(*operands)


class _Plan:
    """Nodes to create, as (op, args, attrs); args are node ids or earlier step indices."""

    def __init__(self, graph: nx.MultiDiGraph, leaves: dict[sympy.Symbol, str]):
        self.graph, self.leaves = graph, leaves
        self.steps: list[tuple[str, list, dict]] = []
        self.shapes: list[tuple] = []
        self.memo: dict[sympy.Expr, object] = {}

    def shape(self, ref) -> tuple:
        return tuple(self.shapes[ref]) if isinstance(ref, int) else tuple(self.graph._node[ref][ir.SHAPE])

    def add(self, op: str, args: list, attrs: dict | None = None) -> int:
        spec = op_for(self.graph, op)
        full = {**spec.attrs, **(attrs or {})}
        shape = () if op == "const" else spec.shape([self.shape(a) for a in args], full, None, op)
        self.steps.append((op, args, full))
        self.shapes.append(shape)
        return len(self.steps) - 1

    @property
    def ops(self) -> int:
        return sum(op != "const" for op, _, _ in self.steps)

    def number(self, value) -> int:
        number = float(value)
        if not np.isfinite(number):
            raise _Unbuildable(value)
        return self.add("const", [], {"value": number})

    def build(self, expr: sympy.Expr):
        if expr in self.memo:
            return self.memo[expr]
        ref = self._build(expr)
        self.memo[expr] = ref
        return ref

    def _build(self, expr):
        if expr in self.leaves:
            return self.leaves[expr]
        if expr.is_number:
            return self.number(expr)
        if expr.is_Add:
            return self._sum(expr)
        if expr.is_Mul:
            return self._product(expr)
        if expr.is_Pow:
            return self._power(expr.base, expr.exp)
        if expr.func in _UNARY:
            return self.add(_UNARY[expr.func], [self.build(expr.args[0])])
        if isinstance(expr, sympy.Max) and len(expr.args) == 2 and sympy.S.Zero in expr.args:
            (z,) = [a for a in expr.args if a != 0]
            return self.add("relu", [self.build(z)])
        raise _Unbuildable(expr)

    def _sum(self, expr):
        plus, minus = [], []
        for term in sorted(expr.args, key=lambda t: t.is_number):  # numbers last
            coeff, _ = term.as_coeff_Mul()
            (minus if coeff.is_negative else plus).append(-term if coeff.is_negative else term)
        acc = self.build(plus[0]) if plus else self.add("neg", [self.build(minus.pop(0))])
        for term in plus[1:]:
            acc = self.add("add", [acc, self.build(term)])
        for term in minus:
            acc = self.add("sub", [acc, self.build(term)])
        return acc

    def _product(self, expr):
        coeff, rest = expr.as_coeff_Mul()
        if coeff == -1:
            return self.add("neg", [self.build(rest)])
        top, bottom = [], []
        for factor in sympy.Mul.make_args(rest):
            if factor.is_Pow and factor.exp.is_number and factor.exp.is_negative:
                bottom.append(sympy.Pow(factor.base, -factor.exp))
            else:
                top.append(factor)
        acc = None
        for factor in top:
            acc = self.build(factor) if acc is None else self.add("mul", [acc, self.build(factor)])
        if coeff != 1:
            acc = self.number(coeff) if acc is None else self.add("mul", [acc, self.number(coeff)])
        if acc is None:
            acc = self.number(1)
        for factor in bottom:
            acc = self.add("div", [acc, self.build(factor)])
        return acc

    def _power(self, base, exponent):
        if exponent == 2:
            return self.add("square", [self.build(base)])
        if exponent == sympy.S.Half:
            return self.add("sqrt", [self.build(base)])
        if exponent == -1:
            return self.add("div", [self.number(1), self.build(base)])
        if base == sympy.E:
            return self.add("exp", [self.build(exponent)])
        return self.add("pow", [self.build(base), self.build(exponent)])


def _materialize(graph: nx.MultiDiGraph, plan: _Plan, ref, root: str) -> str:
    made: list[str] = []
    for op, args, attrs in plan.steps:
        ids = [made[a] if isinstance(a, int) else a for a in args]
        if op == "const":
            made.append(const_node(graph, attrs["value"], like=root))
        else:
            made.append(new_node(graph, op, ids, attrs, like=root))
    return made[ref] if isinstance(ref, int) else ref


# Regions known to gain nothing, by what decides it: the region's expression (leaves named
# by position), its size, the shapes and dtypes of its leaves and of its root. A deep
# network's layers are one region again and again; sympy and the plan see it once.
_NO_GAIN: set[tuple] = set()
_NO_GAIN_SIZE = 4096


def _region_template(graph: nx.MultiDiGraph, region: list[str], expr: sympy.Expr, leaves: dict) -> tuple:
    nodes = graph._node
    root = nodes[region[-1]]
    return (expr, len(region), tuple((tuple(nodes[n][ir.SHAPE]), nodes[n][ir.DTYPE]) for n in leaves.values()),
            tuple(root[ir.SHAPE]), root[ir.DTYPE])


def _region_structure(graph: nx.MultiDiGraph, region: list[str]) -> tuple:
    """What ``_expression`` and ``_region_template`` read of a region, without sympy: each
    node's op record, frozen attrs and operands (an earlier node of the region by place, a
    scalar const by value, a leaf by number), then the leaves' and the root's shapes and
    dtypes. Equal structures give equal templates, so a structure seen to gain nothing
    needs no sympy expression the next time (a deep network repeats one layer's)."""
    nodes = graph._node
    place = {n: k for k, n in enumerate(region)}
    leaves: dict[str, int] = {}
    parts = []
    for k, node in enumerate(region):
        data = nodes[node]
        refs = []
        for a in ir.operands(graph, node):
            inner = place.get(a)
            if inner is not None and inner < k:
                refs.append(inner)
                continue
            operand = nodes[a]
            if operand[ir.OP] == "const" and np.ndim(operand[ir.ATTRS]["value"]) == 0:
                refs.append(("const", float(operand[ir.ATTRS]["value"])))  # what const_number reads
            else:
                refs.append(("leaf", leaves.setdefault(a, len(leaves))))
        attrs = data[ir.ATTRS]
        parts.append((op_for(graph, data[ir.OP], node), freeze(attrs) if attrs else (), tuple(refs)))
    root = nodes[region[-1]]
    return (tuple(parts), tuple((tuple(nodes[n][ir.SHAPE]), nodes[n][ir.DTYPE]) for n in leaves),
            tuple(root[ir.SHAPE]), root[ir.DTYPE])


_NO_GAIN_STRUCTURES: set[tuple] = set()


def _simplify_region(graph: nx.MultiDiGraph, region: list[str]) -> bool:
    structure = _region_structure(graph, region)
    if structure in _NO_GAIN_STRUCTURES:
        return False
    expr, leaves = _expression(graph, region)
    template = _region_template(graph, region, expr, leaves)
    if template not in _NO_GAIN:
        if _rebuild_region(graph, region, expr, leaves):
            return True
        if len(_NO_GAIN) >= _NO_GAIN_SIZE:
            _NO_GAIN.clear()
        _NO_GAIN.add(template)
    if len(_NO_GAIN_STRUCTURES) >= _NO_GAIN_SIZE:
        _NO_GAIN_STRUCTURES.clear()
    _NO_GAIN_STRUCTURES.add(structure)
    return False


def _rebuild_region(graph: nx.MultiDiGraph, region: list[str], expr: sympy.Expr, leaves: dict) -> bool:
    """Rebuild the region from ``expr`` when that takes fewer ops; False (and no edit) if not."""
    root = region[-1]
    plan = _Plan(graph, leaves)
    try:
        ref = plan.build(expr)
    except (_Unbuildable, TypeError, ValueError):
        return False
    if plan.ops >= len(region):
        return False
    if isinstance(ref, str) and graph._node[ref][ir.DTYPE] != graph._node[root][ir.DTYPE]:
        return False  # argmax(x) * 1.0 is not argmax(x): the product is a float
    root_shape = tuple(graph._node[root][ir.SHAPE])
    if plan.shape(ref) != root_shape:
        if not (isinstance(ref, int) and plan.steps[ref][0] == "const"):
            return False  # the result would lose a broadcast: keep the region
        size = concrete_size(root_shape)
        if size is None or size > MAX_CONST_SIZE:
            return False
        plan.steps[ref] = ("const", [], {"value": np.full(root_shape, plan.steps[ref][2]["value"])})
    replace(graph, root, _materialize(graph, plan, ref, root))
    editor = Editor(graph)
    for node in reversed(region[:-1]):  # the region's inner values fed the old root only
        if node in graph and graph.out_degree(node) == 0:
            editor.remove([node])
    return True


def simplify(graph: nx.MultiDiGraph) -> nx.MultiDiGraph:
    out = begin(graph)
    return simplify_in_place(out).attach(graph, out)


def simplify_in_place(out: nx.MultiDiGraph) -> Stats:
    stats = Stats()
    apply_rules(out, PRIMITIVE_RULES, stats, "simplify")
    log = change_log(out)
    settled = _Settled(out, log)
    gained_nothing = []
    for region in _regions(out):
        key = tuple(region)
        if settled.holds(key):
            gained_nothing.append(key)
        elif all(n in out for n in region):
            if _simplify_region(out, region):
                stats.count("simplify", "algebra")
            else:
                gained_nothing.append(key)
    if log is not None:
        log.memo["simplify"] = (settled.start, gained_nothing)
    return stats


class _Settled:
    """The regions the last run found no gain in (while the graph is watched: ``optimize``)
    that no edit has reached since, this run's own rebuilds included: none of their nodes
    was touched, nor an operand of one (a touched value's readers are reached). What a
    region's rebuild decides depends on its nodes, their operands and those operands'
    shapes and dtypes only, so such a region would gain nothing again; a region found now
    with other nodes is looked at anew."""

    def __init__(self, graph: nx.MultiDiGraph, log):
        self.graph, self.log = graph, log
        self.start = len(log.touched) if log is not None else 0
        kept = log.memo.get("simplify") if log is not None else None
        self.regions: set[tuple] = set()
        if kept is not None:
            self.regions = set(kept[1])
            self.read = kept[0]
        self.reached: set[str] = set()

    def holds(self, region: tuple) -> bool:
        if region not in self.regions:
            return False
        touched = self.log.touched
        if self.read < len(touched):
            readers = self.graph._succ
            fresh = touched[self.read:]
            self.read = len(touched)
            self.reached.update(fresh)
            self.reached.update(*(readers[n] for n in fresh if n in readers))
        return self.reached.isdisjoint(region)
