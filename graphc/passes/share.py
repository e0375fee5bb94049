"""share: compute a costly part that several kernels repeat once, as a node of its own.

Fusion writes each kernel as one expression, so a forward kernel and a backward kernel may
both hold sigmoid(z) (silu's forward value and its derivative): the backward pass would
recompute the exponential the forward pass already paid for. This pass finds function
applications (exp, log, tanh, sin, sigmoid, ...) that occur, over the same graph values,
in two or more fused nodes, and moves each into a fused node read by all of them.

Guarantees: values are unchanged; only fused nodes change; a shared node reads only
values its readers read (no cycle can form); it takes the forward phase when any reader
is forward (the training forward computes it, the backward reuses it).

Before: ``t = fused(z) = tanh(z*sigmoid(z))``, ``d = fused(z, g) = g*sigmoid(z)*(...)``.
After: ``s = fused(z) = sigmoid(z)``, ``t = tanh(z*s)``, ``d = g*s*(...)``.
"""

from __future__ import annotations

import functools

import networkx as nx
import sympy

from .. import ir
from ..ops.editor import Editor
from ..ops.fused import fused_symbols
from .edit import begin, by_name, order
from .stats import Stats

__all__ = ["share"]


def _canonical(graph: nx.MultiDiGraph, node: str, token: dict[str, sympy.Symbol]) -> sympy.Expr:
    """The node's expression over symbols that name graph values (the same for every node)."""
    expr, symbols = graph._node[node][ir.EXPR]
    return expr.xreplace({s: token[a] for s, a in zip(symbols, ir.operands(graph, node))})


def _reading_a_value_read_twice(graph: nx.MultiDiGraph, nodes: list[str]) -> set[str]:
    """The kernels among ``nodes`` that read a value some other of them reads too."""
    kernels_reading: dict[str, list[str]] = {}
    pred = graph._pred  # each value a kernel reads, once: the keys of its predecessor dict
    for n in nodes:
        for a in pred[n]:
            kernels_reading.setdefault(a, []).append(n)
    return {n for kernels in kernels_reading.values() if len(kernels) > 1 for n in kernels}


def _costly(part: sympy.Expr, values: set) -> bool:
    return isinstance(part, sympy.Function) and bool(part.free_symbols & values)


def _sort_keys():
    """``sympy.default_sort_key``, remembered for every expression asked about.

    Each part's key is asked for twice (per node, then over all parts); sympy's own cache
    keeps the last thousand only, so on a graph of thousands of kernels the second asking
    missed and sorted the terms of every sum again: calls per node grew with the graph."""
    keys: dict[sympy.Expr, tuple] = {}

    def key(expr: sympy.Expr) -> tuple:
        found = keys.get(expr)
        if found is None:
            found = keys[expr] = sympy.default_sort_key(expr)
        return found
    return key


class _Tokens(dict):
    """node -> its value's symbol ``_v{k}``, k its place among the graph's nodes (a node added
    later comes after all of them), made when first asked for; ``value_of`` and ``values``
    learn each symbol made."""

    def __init__(self, nodes, value_of: dict, values: set):
        super().__init__()
        self.place = dict(zip(nodes, range(len(nodes))))
        self.value_of, self.values = value_of, values

    def __missing__(self, node: str) -> sympy.Symbol:
        symbol = self[node] = _token(self.place[node])
        self.value_of[symbol] = node
        self.values.add(symbol)
        return symbol

    def add(self, node: str) -> None:
        """A node made after the others: the next place."""
        self.place[node] = len(self.place)


@functools.cache
def _token(k: int) -> sympy.Symbol:
    return sympy.Symbol(f"_v{k}", real=True)


def share(graph: nx.MultiDiGraph) -> nx.MultiDiGraph:
    out = begin(graph)
    stats = Stats()
    nodes = [n for n in order(out) if ir.EXPR in out._node[n]]
    # a symbol per value, named by the value's place in the graph; made only for the values
    # the candidate kernels read (the others never appear in an expression)
    value_of: dict[sympy.Symbol, str] = {}
    values: set[sympy.Symbol] = set()
    token = _Tokens(out.nodes, value_of, values)
    # only a node reading a value another kernel reads can share a part (a part reads values
    # both its readers read): the others keep their expressions, which need no rewriting
    candidates = _reading_a_value_read_twice(out, nodes)
    nodes = [n for n in nodes if n in candidates]
    exprs = {n: _canonical(out, n, token) for n in nodes}
    readers: dict[sympy.Expr, list[str]] = {}
    sort_key = _sort_keys()
    for n in nodes:
        for part in sorted({p for p in sympy.preorder_traversal(exprs[n]) if _costly(p, values)}, key=sort_key):
            readers.setdefault(part, []).append(n)
    shared = 0
    changed: set[str] = set()
    for part in sorted(readers, key=lambda p: (-sympy.count_ops(p), sort_key(p))):
        users = [n for n in readers[part] if exprs[n].has(part)]  # earlier extractions may have taken it
        if len(users) < 2:
            continue
        node = _add_shared(out, part, users, value_of)
        changed.update(users)
        token.add(node)
        for n in users:
            exprs[n] = exprs[n].xreplace({part: token[node]})
        shared += 1
    for n in nodes:
        if n in changed:
            _rewrite(out, n, exprs[n], value_of, token)
    stats.count("share", "shared", shared)
    return stats.attach(graph, out)


def _add_shared(graph: nx.MultiDiGraph, part: sympy.Expr, users: list[str], value_of: dict) -> str:
    reads = [value_of[s] for s in by_name(part.free_symbols) if s in value_of]
    symbols = fused_symbols(len(reads))
    node = ir.fresh_id(graph, type(part).__name__)  # sigmoid, exp...: what it computes
    phases = {graph._node[u].get(ir.PHASE) for u in users}
    tags = {ir.MARK: "created"}
    if phases != {None}:
        tags[ir.PHASE] = ir.FORWARD if ir.FORWARD in phases or None in phases else ir.BACKWARD
    editor = Editor(graph)
    expr = part.xreplace({s: symbols[k] for k, s in enumerate(by_name(part.free_symbols)) if s in value_of})
    with editor.tagging(**tags):
        editor.add("fused", [editor.ref(r) for r in reads], {"kink": ""}, node_id=node,
                   dtype=graph._node[users[0]][ir.DTYPE], expr=(expr, symbols))
    return node


def _rewrite(graph: nx.MultiDiGraph, node: str, expr: sympy.Expr, value_of: dict, token: dict) -> None:
    """Set ``node``'s expression (over value symbols) and its operand edges to match it."""
    reads = [value_of[s] for s in by_name(expr.free_symbols) if s in value_of]
    symbols = fused_symbols(len(reads))
    mapping = {token[r]: symbols[k] for k, r in enumerate(reads)}
    data = graph._node[node]
    Editor(graph).rewrite(node, "fused", reads, data[ir.ATTRS], expr=(expr.xreplace(mapping), symbols),
                          size=data.get(ir.FUSED_SIZE))
