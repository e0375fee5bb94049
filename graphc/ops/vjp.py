"""VJP rules of the tensor ops, written as graph construction.

Each rule takes the node's handle, its operands' handles, the cotangent ``g`` of its
output and an operand position ``k``, and returns the cotangent of operand ``k`` (with the
operand's own shape) or ``None`` when no gradient flows. Elementwise ops need no rule:
their partials come from ``sympy.diff`` of their definition.
"""

from __future__ import annotations

import dataclasses

import sympy

from .base import OPS, register
from .tensor import normalize_axes

__all__ = ["unbroadcast", "VJPS"]


def _f():
    from .. import functional

    return functional


def unbroadcast(g, shape: tuple):
    """Sum ``g`` back to ``shape``: the gradient of numpy broadcasting."""
    f = _f()
    shape = tuple(shape)
    if tuple(g.shape) == shape:
        return g
    lead = len(g.shape) - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, d in enumerate(shape) if d == 1 and g.shape[lead + i] != 1
    )
    reduced = f.sum(g, axis=axes) if axes else g
    return reduced if tuple(reduced.shape) == shape else f.reshape(reduced, shape)


def _swap_last(x):
    f = _f()
    if len(x.shape) == 2:
        return x.T
    axes = tuple(range(len(x.shape) - 2)) + (len(x.shape) - 1, len(x.shape) - 2)
    return f.transpose(x, axes)


def _matmul(node, args, g, k):
    f = _f()
    a, b = args
    if len(a.shape) == 1 and len(b.shape) == 1:  # inner product: out is a scalar
        return g * (b if k == 0 else a)
    if len(a.shape) == 1:  # (k,) @ (..., k, m) -> (..., m)
        if k == 0:
            return unbroadcast(f.reshape(f.matmul(b, f.reshape(g, g.shape + (1,))), b.shape[:-1]), a.shape)
        return unbroadcast(f.reshape(a, (a.shape[0], 1)) @ f.reshape(g, g.shape[:-1] + (1, g.shape[-1])), b.shape)
    if len(b.shape) == 1:  # (..., n, k) @ (k,) -> (..., n)
        if k == 0:
            return unbroadcast(f.reshape(g, g.shape + (1,)) @ f.reshape(b, (1, b.shape[0])), a.shape)
        return unbroadcast(f.reshape(_swap_last(a) @ f.reshape(g, g.shape + (1,)), a.shape[:-2] + (a.shape[-1],)), b.shape)
    if k == 0:
        return unbroadcast(g @ _swap_last(b), a.shape)
    return unbroadcast(_swap_last(a) @ g, b.shape)


def _transpose(node, args, g, k):
    f = _f()
    axes = node.graph.nx.nodes[node.id]["attrs"].get("axes")
    if axes is None:
        return g.T if len(g.shape) == 2 else f.transpose(g)
    inverse = [0] * len(axes)
    for position, axis in enumerate(axes):
        inverse[axis % len(axes)] = position
    return f.transpose(g, tuple(inverse))


def _reshape(node, args, g, k):
    return _f().reshape(g, args[0].shape)


def _expand_reduced(node, x, g):
    """``g`` (the reduction's cotangent) with the reduced axes back as size-1 dims."""
    f = _f()
    attrs = node.graph.nx.nodes[node.id]["attrs"]
    axes = normalize_axes(attrs.get("axis"), len(x.shape))
    kept = tuple(1 if i in axes else d for i, d in enumerate(x.shape))
    return (g if tuple(g.shape) == kept else f.reshape(g, kept)), axes


def _sum(node, args, g, k):
    f = _f()
    (x,) = args
    kept, _ = _expand_reduced(node, x, g)
    return f.broadcast_to(kept, x.shape)


def _mean(node, args, g, k):
    from ..differentiate import fused

    (x,) = args
    kept, axes = _expand_reduced(node, x, g)
    count = sympy.Integer(1)
    for axis in axes:
        count *= x.shape[axis]
    return _f().broadcast_to(fused(lambda a: a / count, [kept]), x.shape)


def _max(node, args, g, k):
    from ..differentiate import fused

    (x,) = args
    kept, axes = _expand_reduced(node, x, g)
    peak, _ = _expand_reduced(node, x, node)
    # the lecture's kink convention for ties: every maximal element takes the gradient
    return fused(lambda a, v, m: a * sympy.Heaviside(v - m, 1), [kept, x, peak],
                 "d max: every maximal element gets the gradient")


def _broadcast(node, args, g, k):
    return unbroadcast(g, args[0].shape)


VJPS = {
    "matmul": _matmul,
    "transpose": _transpose,
    "reshape": _reshape,
    "sum": _sum,
    "mean": _mean,
    "max": _max,
    "broadcast": _broadcast,
    "stop_gradient": lambda node, args, g, k: None,
    "zeros_like": lambda node, args, g, k: None,
}

for _name, _rule in VJPS.items():
    register(dataclasses.replace(OPS[_name], vjp=_rule), replace=True)
