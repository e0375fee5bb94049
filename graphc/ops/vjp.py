"""VJP rules of the tensor ops, written as graph construction.

Each rule takes the node's handle, its operands' handles, the cotangent ``g`` of its
output and an operand position ``k``, and returns the cotangent of operand ``k`` or
``None`` when no gradient flows. Handles are the IR editor's (``ops/editor.py``): rules
add nodes through it, never through the user API. Elementwise ops need no rule: their partials come from
``sympy.diff`` of their definition.

Every cotangent has exactly the shape of the value it belongs to: the cotangent of a sum
is the incoming one broadcast back over the summed axes (an explicit ``broadcast`` node),
never a scalar that "stands for any shape". So :func:`unbroadcast` always knows what it
sums over; ``canonicalize`` rewrites a ``sum`` of such a ``broadcast`` to a product by the
count, so the backward pass never builds the copies it only sums.
"""

from __future__ import annotations

import dataclasses

import sympy

from .. import ir, shapes
from .base import OPS, register
from .tensor import normalize_axes

__all__ = ["unbroadcast", "broadcast_back", "VJPS"]


def unbroadcast(g, shape: tuple):
    """Sum ``g`` over the axes numpy broadcast a value of ``shape`` along.

    ``g`` has the shape of the broadcast result; the sum runs over its leading axes and
    over the axes where ``shape`` has 1 and ``g`` does not, then drops the leading ones.
    """
    ed = g.editor
    shape = tuple(shape)
    if tuple(g.shape) == shape:
        return g
    lead = len(g.shape) - len(shape)
    assert lead >= 0 and shapes.broadcast([g.shape, shape]) == tuple(g.shape), (g.shape, shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, d in enumerate(shape) if d == 1 and g.shape[lead + i] != 1
    )
    reduced = ed.sum(g, axis=axes) if axes else g
    return reduced if tuple(reduced.shape) == shape else ed.reshape(reduced, shape)


def broadcast_back(g, shape: tuple):
    """``g`` broadcast to ``shape`` (a no-op when it has that shape already)."""
    return g if tuple(g.shape) == tuple(shape) else g.editor.broadcast(g, shape)


def _swap_last(x):
    if len(x.shape) == 2:
        return x.T
    axes = tuple(range(len(x.shape) - 2)) + (len(x.shape) - 1, len(x.shape) - 2)
    return x.editor.transpose(x, axes)


def _matmul(node, args, g, k):
    ed = node.editor
    a, b = args
    if len(a.shape) == 1 and len(b.shape) == 1:  # inner product: out is a scalar
        return broadcast_back(g, a.shape) * (b if k == 0 else a)
    if len(a.shape) == 1:  # (k,) @ (..., k, m) -> (..., m)
        if k == 0:
            return unbroadcast(ed.reshape(b @ ed.reshape(g, g.shape + (1,)), b.shape[:-1]), a.shape)
        return unbroadcast(ed.reshape(a, (a.shape[0], 1)) @ ed.reshape(g, g.shape[:-1] + (1, g.shape[-1])), b.shape)
    if len(b.shape) == 1:  # (..., n, k) @ (k,) -> (..., n)
        if k == 0:
            return unbroadcast(ed.reshape(g, g.shape + (1,)) @ ed.reshape(b, (1, b.shape[0])), a.shape)
        column = ed.reshape(g, g.shape + (1,))
        return unbroadcast(ed.reshape(_swap_last(a) @ column, a.shape[:-2] + (a.shape[-1],)), b.shape)
    if k == 0:
        return unbroadcast(g @ _swap_last(b), a.shape)
    return unbroadcast(_swap_last(a) @ g, b.shape)


def _attrs(node) -> dict:
    return node.editor.graph.nodes[node.id][ir.ATTRS]


def _transpose(node, args, g, k):
    if not g.shape:
        return g
    axes = _attrs(node).get("axes")
    if axes is None:
        return g.T if len(g.shape) == 2 else g.editor.transpose(g)
    inverse = [0] * len(axes)
    for position, axis in enumerate(axes):
        inverse[axis % len(axes)] = position
    return g.editor.transpose(g, inverse)


def _reshape(node, args, g, k):
    return g.editor.reshape(g, args[0].shape)


def _reduced_axes(node, x) -> tuple[int, ...]:
    return normalize_axes(_attrs(node).get("axis"), len(x.shape))


def _kept(node, x, g):
    """The reduction's cotangent ``g`` with the reduced axes back as size-1 dims.

    No reshape when numpy aligns ``g`` with ``x`` by itself (reduced axes that lead).
    """
    axes = _reduced_axes(node, x)
    kept = tuple(1 if i in axes else d for i, d in enumerate(x.shape))
    lead = len(kept) - len(g.shape)
    if kept[lead:] == tuple(g.shape) and all(d == 1 for d in kept[:lead]):
        return g
    return g.editor.reshape(g, kept)


def _sum(node, args, g, k):
    (x,) = args
    return broadcast_back(_kept(node, x, g), x.shape)


def _mean(node, args, g, k):
    (x,) = args
    count = sympy.Integer(1)
    for axis in _reduced_axes(node, x):
        count *= x.shape[axis]
    return broadcast_back(node.editor.fused(lambda a: a / count, [_kept(node, x, g)]), x.shape)


def _max(node, args, g, k):
    ed = node.editor
    (x,) = args
    axes = _reduced_axes(node, x)
    keep = _attrs(node).get("keepdims")
    peak = node if keep else ed.reshape(node, tuple(1 if i in axes else d for i, d in enumerate(x.shape)))
    # 1 where x is maximal: x - max is never positive, so x >= max means x == max
    mask = ed.fused(lambda v, m: sympy.Heaviside(v - m, 1), [x, peak])
    ties = ed.sum(mask, axis=axes, keepdims=True)
    return ed.fused(lambda a, e, n: a * e / n, [_kept(node, x, g), mask, ties], f"d max: {OPS['max'].kink}")


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
