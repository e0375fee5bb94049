"""interleave: start a long backward product, and kink masks, during the forward pass.

The gradient through a chain of elementwise ops is one product of local derivatives,
c * f1(z1) * f2(z2) * ... : after fusion, one backward node reading every forward value of
the chain, so all of them stay alive until the forward pass ends. This pass splits such a
product into running products, P1 = f1(z1), P2 = P1 * f2(z2), ..., each placed by its
operands, so the schedule computes P_k as soon as z_k exists and z_k dies right after its
last forward reader: the memory of an expert's step that accumulates the derivative while
going forward.

Guarantees: values are unchanged (a product is reassociated, nothing else); only backward
fused nodes whose expression is a product are split; a factor moves early only if the
forward values it reads have no other backward reader (otherwise they stay alive anyway
and an early product would only cost memory); the split node keeps its id; running products
carry ``early=True``, so the training forward computes them and saves only the last.

Before: ``d_add = fused(add, tanh, exp)`` = ``f1(add) * f2(tanh) * f3(exp) * g``.
After: ``d_add_p = f1(add)``, ``d_add_p_1 = d_add_p * f2(tanh)``,
``d_add = d_add_p_1 * f3(exp) * g``.

A kink's step ``Heaviside(z, 1)`` in a backward product (ReLU's derivative) becomes a
boolean node ``z_mask = greater_equal(z, 0)`` with ``early=True`` when nothing else in the
backward pass reads z: the training forward saves one byte per entry instead of z, and z
dies after its forward readers (ReLU then runs in z's buffer), as an expert keeps
``z > 0``. Before: ``d_z = fused(d_a, z)`` = ``d_a * Heaviside(z, 1)``. After:
``z_mask = greater_equal(z, 0)``, ``d_z = fused(d_a, z_mask)`` = ``d_a * z_mask``.
"""

from __future__ import annotations

import networkx as nx
import sympy

from .. import ir
from ..ops.editor import Editor
from ..ops.fused import fused_symbols
from .edit import begin, by_name, order, symbols_in
from .stats import Stats

__all__ = ["interleave", "MIN_GROUPS"]

# A product over fewer forward values frees too little to pay for its extra statements
# (each costs a numpy call: on small arrays, calls are what a step spends its time on).
MIN_GROUPS = 3


def _early(graph: nx.MultiDiGraph, value: str, reader: str) -> bool:
    """A forward value whose only backward reader is ``reader``."""
    if graph._node[value].get(ir.PHASE) == ir.BACKWARD:
        return False
    return all(s == reader or graph._node[s].get(ir.PHASE) != ir.BACKWARD for s in graph.successors(value))


def interleave(graph: nx.MultiDiGraph) -> nx.MultiDiGraph:
    out = begin(graph)
    stats = _interleave(out)  # the second sweep reuses the first's order when the first changed no edge
    return stats.attach(graph, out)


def _interleave(out: nx.MultiDiGraph) -> Stats:
    stats = Stats()
    position = {node: k for k, node in enumerate(order(out))}
    for node in list(position):
        data = out._node[node]
        if data.get(ir.PHASE) != ir.BACKWARD or ir.EXPR not in data or data.get(ir.EARLY):
            continue  # (a running product is split already)
        expr, symbols = data[ir.EXPR]
        if not expr.is_Mul or len(expr.args) < MIN_GROUPS:
            continue  # (each group holds a factor at least: fewer factors, fewer groups)
        args = ir.operands(out, node)
        value_of = dict(zip(symbols, args))
        groups: dict[int, list[sympy.Expr]] = {}
        late: list[sympy.Expr] = []
        for factor in sympy.Mul.make_args(expr):
            used = [value_of[s] for s in symbols_in(factor) if s in value_of]  # any order: all() and max()
            if used and all(_early(out, v, node) for v in used):
                groups.setdefault(max(position[v] for v in used), []).append(factor)
            else:
                late.append(factor)
        if len(groups) < MIN_GROUPS:
            continue
        previous, pending = None, []
        for key in sorted(groups):
            pending += groups[key]
            if previous is None and sympy.Mul(*pending).is_Symbol:
                continue  # a product of one bare value would only copy it: multiply it in later
            previous = _running_product(out, node, previous, pending, value_of)
            pending = []
        late += pending
        _finish(out, node, previous, late, value_of)
        stats.count("interleave", "split", len(groups))
    nodes = out._node
    for node in order(out):
        if ir.EXPR in nodes[node] and _mask_kinks(out, node):  # (the one test most nodes fail, inline)
            stats.count("interleave", "masks")
    return stats


# A kink's step at 0: H(z) is 1 where z >= 0 (H(0) = 1) or where z > 0 (H(0) = 0)
_STEPS = {sympy.Integer(1): "greater_equal", sympy.Integer(0): "greater"}


def _mask_kinks(graph: nx.MultiDiGraph, node: str) -> bool:
    """Give a backward product's kink factors ``Heaviside(z, h0)`` the forward pass as
    boolean masks (``z >= 0``), when ``z`` is read by nothing else in the backward pass:
    the training forward then saves one byte per entry instead of z's float (an expert
    keeps ``z > 0`` for ReLU, not z), and z dies after its last forward reader (ReLU may
    then write into it). The product is unchanged: ``d * (z >= 0)`` multiplies by True
    or False, as the kernel did by its ``numpy.greater_equal(z, 0)``."""
    data = graph._node[node]
    if data.get(ir.PHASE) != ir.BACKWARD or ir.EXPR not in data or data.get(ir.EARLY):
        return False
    expr, symbols = data[ir.EXPR]
    if not expr.is_Mul or not any(isinstance(factor, sympy.Heaviside) for factor in expr.args):
        return False  # no kink's step to make a mask of (most products)
    value_of = dict(zip(symbols, ir.operands(graph, node)))
    factors = list(sympy.Mul.make_args(expr))
    if not any(_float_array_factor(graph, f, value_of) for f in factors):
        return False  # a product of masks alone would be bool: the kernel multiplies a mask into a float array
    masked = False
    for k, factor in enumerate(factors):
        if not (isinstance(factor, sympy.Heaviside) and factor.args[0] in value_of and factor.args[1] in _STEPS):
            continue
        z = factor.args[0]
        others = [f for j, f in enumerate(factors) if j != k]
        if any(z in f.free_symbols for f in others) or not _early(graph, value_of[z], node):
            continue  # z is needed here anyway, or elsewhere in the backward pass
        editor = Editor(graph)
        with editor.tagging(phase=ir.BACKWARD, mark="created"):
            mask = editor.add(_STEPS[factor.args[1]], [editor.ref(value_of[z]), 0.0],
                              node_id=editor.fresh(f"{value_of[z]}_mask")).id
        editor.retag(mask, **{ir.EARLY: True})  # reads a forward value only: train_forward computes it
        symbol = sympy.Symbol(f"{mask}__mask", real=True)  # renamed by _fused_node
        value_of[symbol] = mask
        factors[k] = symbol
        masked = True
    if masked:
        _fused_node(graph, node, node, factors, None, value_of, data[ir.ATTRS].get("kink", ""))
    return masked


def _float_array_factor(graph: nx.MultiDiGraph, factor: sympy.Expr, value_of: dict) -> bool:
    """Whether ``factor`` is a float array that stays a factor once the kinks are masks (not
    a kink itself, not a 0-d value, which the kernel folds into the coefficient)."""
    if isinstance(factor, sympy.Heaviside):
        return False
    return any(tuple(graph._node[value_of[s]][ir.SHAPE]) != () for s in symbols_in(factor) if s in value_of)


def _fused_node(graph, node_id, like, factors, previous, value_of, kink=""):
    """(Re)write ``node_id`` as fused(previous * prod(factors))."""
    reads = ([previous] if previous is not None else []) + list(dict.fromkeys(
        value_of[s] for f in factors for s in by_name(f.free_symbols) if s in value_of))
    symbols = fused_symbols(len(reads))
    rename = {old: symbols[reads.index(arg)] for old, arg in value_of.items() if arg in reads}
    expr = sympy.Mul(*factors).xreplace(rename)
    if previous is not None:
        expr = symbols[0] * expr
    if node_id not in graph:  # a new step (not a gradient: no grad_of), made by the editor
        editor = Editor(graph)
        with editor.tagging(phase=ir.BACKWARD, mark="created"):
            editor.add("fused", [editor.ref(r) for r in reads], {"kink": kink}, node_id=node_id,
                       dtype=graph._node[like][ir.DTYPE], expr=(expr, symbols))
        return node_id
    data = graph._node[node_id]
    Editor(graph).rewrite(node_id, "fused", reads, {"kink": kink}, expr=(expr, symbols), size=data.get(ir.FUSED_SIZE),
                          mark="created")
    return node_id


def _running_product(graph, node, previous, factors, value_of):
    product = _fused_node(graph, ir.fresh_id(graph, f"{node}_p"), node, factors, previous, value_of)
    Editor(graph).retag(product, **{ir.EARLY: True})  # reads forward values only: train_forward computes it
    return product


def _finish(graph, node, previous, late, value_of):
    kink = graph._node[node][ir.ATTRS].get("kink", "")
    _fused_node(graph, node, node, late, previous, value_of, kink)
