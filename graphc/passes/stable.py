"""Stability rewrites: forms that overflow or lose every digit, replaced by stable ones.

sympy does not find these (naive log(sigmoid(x)) is -inf at x = -800), so they are
patterns, each counted by name. On primitive (expanded) graphs, used by ``simplify``:

- ``log_sigmoid``:   log(sigmoid(x))               -> -softplus(-x)
- ``log1m_sigmoid``: log(1 - sigmoid(x)), log1p(-sigmoid(x)) -> -softplus(x)
- ``bce_logits``:    bce_terms(sigmoid(z), y)      -> bce_logits_terms(z, y)
- ``log_softmax``:   log(exp(a) / sum(exp(a)))     -> a - log(sum(exp(a)))  (the expanded
  softmax, whose ``a = x - max`` makes the log of the sum finite)
- ``logsumexp``:     log(sum(exp(x)))              -> log(sum(exp(x - m))) + m with
  ``m = stop_gradient(max(x))`` over the same axes (left alone when x is already shifted)

Before ``expand`` (:func:`rewrite_composites`), composite ops are matched as they were
declared, and the primitive patterns above apply too:

- ``log_softmax``: log(softmax(x)) -> log_softmax(x)
- ``bce_logits``:  bce(sigmoid(z), y) -> bce_with_logits(z, y)

Guarantees: values are unchanged where the naive form is finite, and finite where the
stable form is; shapes, outputs' ids and phases are kept; new nodes are marked "created".

>>> import graphc as gc, numpy as np
>>> g = gc.Graph("doc"); x = g.input("x", shape=(2,))
>>> _ = g.output("y", gc.log(gc.sigmoid(x)))
>>> out = stabilize(g.nx)
>>> out.graph["stats"]["passes"], out.nodes["y"]["op"]
({'simplify': {'log_sigmoid': 1}}, 'neg')
"""

from __future__ import annotations

from collections.abc import Callable

import networkx as nx
import numpy as np

from .. import ir
from .edit import begin, const_value, is_const, new_node, order, replace
from .stats import Stats

__all__ = ["stabilize", "rewrite_composites", "PRIMITIVE_RULES", "COMPOSITE_RULES"]

Rule = Callable[[nx.MultiDiGraph, str, list], "str | None"]


def _op(graph, node, name) -> bool:
    return graph._node[node][ir.OP] == name


def _arg(graph, node) -> str:
    return ir.operands(graph, node)[0]


def _same_shape(graph, a, b) -> bool:
    return tuple(graph._node[a][ir.SHAPE]) == tuple(graph._node[b][ir.SHAPE])


def _log_sigmoid(graph, node, args):
    (s,) = args
    if not _op(graph, s, "sigmoid"):
        return None
    x = _arg(graph, s)
    return new_node(graph, "neg", [new_node(graph, "softplus", [new_node(graph, "neg", [x], like=node)], like=node)],
                    like=node)


def _one_minus_sigmoid(graph, node, args) -> str | None:
    """The x of ``1 - sigmoid(x)`` (log) or of ``-sigmoid(x)`` (log1p), else None."""
    (inner,) = args
    if _op(graph, node, "log") and _op(graph, inner, "sub"):
        one, s = ir.operands(graph, inner)
        if is_const(graph, one) and np.all(const_value(graph, one) == 1) and _op(graph, s, "sigmoid") \
                and _same_shape(graph, inner, s):
            return _arg(graph, s)
    if _op(graph, node, "log1p") and _op(graph, inner, "neg") and _op(graph, _arg(graph, inner), "sigmoid"):
        return _arg(graph, _arg(graph, inner))
    return None


def _log1m_sigmoid(graph, node, args):
    x = _one_minus_sigmoid(graph, node, args)
    if x is None:
        return None
    return new_node(graph, "neg", [new_node(graph, "softplus", [x], like=node)], like=node)


def _logits_of(target: str) -> Rule:
    """``loss(sigmoid(z), y)`` -> ``target(z, y)``."""
    def rule(graph, node, args):
        p, y = args
        if not _op(graph, p, "sigmoid"):
            return None
        return new_node(graph, target, [_arg(graph, p), y], like=node)
    return rule


def _softmax_log(graph, node, args):
    (q,) = args
    if not _op(graph, q, "div"):
        return None
    e, s = ir.operands(graph, q)
    if not (_op(graph, e, "exp") and _op(graph, s, "sum") and _arg(graph, s) == e
            and (graph._node[s][ir.ATTRS] or {}).get("keepdims")):
        return None
    a = _arg(graph, e)
    if not _same_shape(graph, a, q):
        return None
    return new_node(graph, "sub", [a, new_node(graph, "log", [s], like=node)], like=node)


def _is_shifted(graph, x) -> bool:
    """Is ``x`` already ``a - stop_gradient(max(...))``?"""
    if not _op(graph, x, "sub"):
        return False
    shift = ir.operands(graph, x)[1]
    return _op(graph, shift, "stop_gradient") and _op(graph, _arg(graph, shift), "max")


def _logsumexp(graph, node, args):
    (s,) = args
    if not (_op(graph, s, "sum") and _op(graph, _arg(graph, s), "exp")):
        return None
    x = _arg(graph, _arg(graph, s))
    if _is_shifted(graph, x):
        return None
    attrs = graph._node[s][ir.ATTRS] or {}
    axis = attrs.get("axis")
    m = new_node(graph, "stop_gradient", [new_node(graph, "max", [x], {"axis": axis, "keepdims": True}, like=node)],
                 like=node)
    shifted = new_node(graph, "exp", [new_node(graph, "sub", [x, m], like=node)], like=node)
    total = new_node(graph, "sum", [shifted], {"axis": axis, "keepdims": True}, like=node)
    result = new_node(graph, "add", [new_node(graph, "log", [total], like=node), m], like=node)
    if not attrs.get("keepdims"):
        result = new_node(graph, "reshape", [result], {"shape": tuple(graph._node[node][ir.SHAPE])}, like=node)
    return result


def _composite_log_softmax(graph, node, args):
    (s,) = args
    if not _op(graph, s, "softmax"):
        return None
    return new_node(graph, "log_softmax", [_arg(graph, s)], dict(graph._node[s][ir.ATTRS]), like=node)


PRIMITIVE_RULES: dict[str, list[tuple[str, Rule]]] = {
    "log": [("log_sigmoid", _log_sigmoid), ("log1m_sigmoid", _log1m_sigmoid), ("log_softmax", _softmax_log),
            ("logsumexp", _logsumexp)],
    "log1p": [("log1m_sigmoid", _log1m_sigmoid)],
    "bce_terms": [("bce_logits", _logits_of("bce_logits_terms"))],
}

COMPOSITE_RULES: dict[str, list[tuple[str, Rule]]] = {
    "log": [("log_softmax", _composite_log_softmax)],
    "bce": [("bce_logits", _logits_of("bce_with_logits"))],
}


def apply_rules(graph: nx.MultiDiGraph, rules: dict, stats: Stats, pass_name: str) -> None:
    """One sweep in topological order; each rule's result replaces the node (in place)."""
    nodes = graph._node  # the node dicts themselves: a view per look costs
    for node in order(graph):
        data = nodes.get(node)
        if data is None:  # taken out by an earlier rewrite
            continue
        candidates = rules.get(data[ir.OP])
        if not candidates:
            continue
        args = ir.operands(graph, node)
        for name, rule in candidates:
            result = rule(graph, node, args)
            if result is not None:
                replace(graph, node, result)
                stats.count(pass_name, name)
                break


def stabilize(graph: nx.MultiDiGraph) -> nx.MultiDiGraph:
    """The primitive stability rewrites alone (``simplify`` runs them first)."""
    out = begin(graph)
    stats = Stats()
    apply_rules(out, PRIMITIVE_RULES, stats, "simplify")
    return stats.attach(graph, out)


def rewrite_composites(graph: nx.MultiDiGraph) -> nx.MultiDiGraph:
    """Stability rewrites over composite ops as declared; run it before ``expand``."""
    out = begin(graph)
    stats = Stats()
    apply_rules(out, {**PRIMITIVE_RULES, **{k: COMPOSITE_RULES.get(k, []) + PRIMITIVE_RULES.get(k, [])
                                           for k in COMPOSITE_RULES}}, stats, "rewrite_composites")
    return stats.attach(graph, out)
