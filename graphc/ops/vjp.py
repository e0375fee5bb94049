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

__all__ = ["unbroadcast", "materialize", "VJPS"]


def _f():
    from .. import functional

    return functional


def unbroadcast(g, shape: tuple):
    """Sum ``g`` back over the axes numpy broadcast it along, so it fits ``shape``.

    Cotangents need only *broadcast* to the shape of the value they belong to (a mean's
    cotangent is a scalar over N, not an (N, k) array of copies): the result is summed
    over leading axes and over axes where ``shape`` has 1, keeping the rest as it is.
    """
    f = _f()
    shape = tuple(shape)
    if tuple(g.shape) == shape:
        return g
    lead = max(len(g.shape) - len(shape), 0)
    offset = len(shape) - (len(g.shape) - lead)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, d in enumerate(g.shape[lead:]) if d != 1 and shape[offset + i] == 1
    )
    if not axes:
        return g
    kept = tuple(1 if i in axes else d for i, d in enumerate(g.shape))[lead:]
    reduced = f.sum(g, axis=axes)
    return reduced if tuple(reduced.shape) == kept else f.reshape(reduced, kept)


def materialize(g, shape: tuple):
    """``g`` with exactly ``shape`` (for rules such as matmul's that need every element)."""
    return g if tuple(g.shape) == tuple(shape) else _f().broadcast_to(g, tuple(shape))


def _swap_last(x):
    f = _f()
    if len(x.shape) == 2:
        return x.T
    axes = tuple(range(len(x.shape) - 2)) + (len(x.shape) - 1, len(x.shape) - 2)
    return f.transpose(x, axes)


def _matmul(node, args, g, k):
    f = _f()
    a, b = args
    g = materialize(g, node.shape)
    if len(a.shape) == 1 and len(b.shape) == 1:  # inner product: out is a scalar
        return g * (b if k == 0 else a)
    if len(a.shape) == 1:  # (k,) @ (..., k, m) -> (..., m)
        if k == 0:
            return unbroadcast(f.reshape(f.matmul(b, f.reshape(g, g.shape + (1,))), b.shape[:-1]), a.shape)
        return unbroadcast(f.reshape(a, (a.shape[0], 1)) @ f.reshape(g, g.shape[:-1] + (1, g.shape[-1])), b.shape)
    if len(b.shape) == 1:  # (..., n, k) @ (k,) -> (..., n)
        if k == 0:
            return unbroadcast(f.reshape(g, g.shape + (1,)) @ f.reshape(b, (1, b.shape[0])), a.shape)
        column = f.reshape(g, g.shape + (1,))
        return unbroadcast(f.reshape(_swap_last(a) @ column, a.shape[:-2] + (a.shape[-1],)), b.shape)
    if k == 0:
        return unbroadcast(g @ _swap_last(b), a.shape)
    return unbroadcast(_swap_last(a) @ g, b.shape)


def _transpose(node, args, g, k):
    f = _f()
    if not g.shape:
        return g
    g = materialize(g, node.shape)
    axes = node.graph.nx.nodes[node.id]["attrs"].get("axes")
    if axes is None:
        return g.T if len(g.shape) == 2 else f.transpose(g)
    inverse = [0] * len(axes)
    for position, axis in enumerate(axes):
        inverse[axis % len(axes)] = position
    return f.transpose(g, tuple(inverse))


def _reshape(node, args, g, k):
    if not g.shape:  # a scalar stands for a constant cotangent of any shape
        return g
    return _f().reshape(materialize(g, node.shape), args[0].shape)


def _expand_reduced(node, x, g):
    """``g`` (the reduction's cotangent) shaped to broadcast against the operand ``x``.

    The reduced axes come back as size-1 dims, unless they lead (numpy then aligns the
    rest by itself) or ``g`` is a scalar.
    """
    f = _f()
    attrs = node.graph.nx.nodes[node.id]["attrs"]
    axes = normalize_axes(attrs.get("axis"), len(x.shape))
    if not g.shape or attrs.get("keepdims") or axes == tuple(range(len(axes))):
        return g, axes
    out_shape = node.shape
    full = (1,) * (len(out_shape) - len(g.shape)) + tuple(g.shape)  # g broadcasts to out_shape
    kept, position = [], 0
    for i in range(len(x.shape)):
        if i in axes:
            kept.append(1)
        else:
            kept.append(full[position])
            position += 1
    return f.reshape(g, tuple(kept)), axes


def _sum(node, args, g, k):
    (x,) = args
    kept, _ = _expand_reduced(node, x, g)
    return kept


def _mean(node, args, g, k):
    from ..differentiate import fused

    (x,) = args
    kept, axes = _expand_reduced(node, x, g)
    count = sympy.Integer(1)
    for axis in axes:
        count *= x.shape[axis]
    return fused(lambda a: a / count, [kept])


def _max(node, args, g, k):
    from ..differentiate import fused

    (x,) = args
    kept, axes = _expand_reduced(node, x, g)
    peak = node if node.graph.nx.nodes[node.id]["attrs"].get("keepdims") else _f().reshape(
        node, tuple(1 if i in axes else d for i, d in enumerate(x.shape)))
    # the lecture's kink convention for ties: every maximal element takes the gradient
    return fused(lambda a, v, m: a * sympy.Heaviside(v - m, 1), [kept, x, peak],
                 "d max: every maximal element gets the gradient")


def _broadcast(node, args, g, k):
    return unbroadcast(g, args[0].shape)


def NO_GRADIENT(node, args, g, k):  # noqa: N802 - a marker rule, compared by identity
    """The rule of ops through which no gradient flows (stop_gradient, zeros_like)."""
    return None


VJPS = {
    "matmul": _matmul,
    "transpose": _transpose,
    "reshape": _reshape,
    "sum": _sum,
    "mean": _mean,
    "max": _max,
    "broadcast": _broadcast,
    "stop_gradient": NO_GRADIENT,
    "zeros_like": NO_GRADIENT,
}

for _name, _rule in VJPS.items():
    register(dataclasses.replace(OPS[_name], vjp=_rule), replace=True)
