"""Tensor ops: sources, matmul, transpose, reshape, reductions, broadcast, stop_gradient.

Each entry keeps its shape rule and its numpy template side by side; the VJP rules, also
graph construction, are attached in ``graphc/ops/vjp.py``.
"""

from __future__ import annotations

import numpy as np
import sympy

from .. import shapes
from ..errors import ShapeError, describe
from .base import Op, register

__all__ = ["normalize_axes"]


def _source_shape(arg_shapes, attrs, node=None, op=None):
    raise AssertionError("source shapes are declared, not inferred")  # pragma: no cover


def _const_shape(arg_shapes, attrs, node=None, op=None):
    value = attrs.get("value")
    return tuple(getattr(value, "shape", ()))


register(Op("input", 0, _source_shape, doc="a value fed at run time (data)"))
register(Op("param", 0, _source_shape, doc="a learnable value fed at run time"))
register(Op("const", 0, _const_shape, attrs={"value": None}, doc="a constant value"))


def normalize_axes(axis, rank: int, node=None, op=None) -> tuple[int, ...]:
    """Axes as a sorted tuple of non-negative ints (None: every axis)."""
    if axis is None:
        return tuple(range(rank))
    items = axis if isinstance(axis, (tuple, list)) else (axis,)
    out = []
    for a in items:
        if isinstance(a, bool) or not isinstance(a, int) or not -rank <= a < max(rank, 1):
            raise ShapeError(
                f"{describe(node, op)}: axis {a!r} is out of range for rank {rank}; "
                f"use an int in [{-rank}, {rank - 1}] or None"
            )
        out.append(a % rank if rank else 0)
    if len(set(out)) != len(out):
        raise ShapeError(f"{describe(node, op)}: axis {axis!r} repeats an axis")
    return tuple(sorted(out))


def _matmul_shape(arg_shapes, attrs, node=None, op=None):
    a, b = arg_shapes
    if not a or not b:
        raise ShapeError(
            f"{describe(node, op)}: matmul needs operands of rank >= 1, found {shapes.fmt(a)} "
            f"and {shapes.fmt(b)}; use mul for scalars"
        )
    inner_a = a[-1]
    inner_b = b[-2] if len(b) >= 2 else b[0]
    if inner_a != inner_b:
        raise ShapeError(
            f"{describe(node, op)}: shapes {shapes.fmt(a)} @ {shapes.fmt(b)} do not match: "
            f"the last dim of the left ({inner_a}) must equal the "
            f"{'second to last' if len(b) >= 2 else 'only'} dim of the right ({inner_b}); "
            "transpose one operand or fix the declared shapes"
        )
    batch = shapes.broadcast([a[:-2], b[:-2]], node, op)
    rows = a[-2:-1] if len(a) >= 2 else ()
    cols = b[-1:] if len(b) >= 2 else ()
    return batch + rows + cols


register(Op(
    "matmul", 2, _matmul_shape, doc="a @ b (numpy matmul semantics)",
    reference=lambda values, attrs: np.matmul(*values),
    lower=lambda ctx, args, attrs, node: f"{args[0]} @ {args[1]}",
))


def _transpose_shape(arg_shapes, attrs, node=None, op=None):
    (a,) = arg_shapes
    axes = attrs.get("axes")
    if axes is None:
        return tuple(reversed(a))
    axes = tuple(axes)
    if sorted(ax % max(len(a), 1) for ax in axes) != list(range(len(a))):
        raise ShapeError(
            f"{describe(node, op)}: axes {axes!r} is not a permutation of the {len(a)} axes "
            f"of shape {shapes.fmt(a)}"
        )
    return tuple(a[ax] for ax in axes)


def _lower_transpose(ctx, args, attrs, node):
    axes = attrs.get("axes")
    if axes is None:
        return f"{args[0]}.T"
    return f"{ctx.numpy}.transpose({args[0]}, {tuple(axes)!r})"


register(Op(
    "transpose", 1, _transpose_shape, attrs={"axes": None}, lower=_lower_transpose,
    reference=lambda values, attrs: np.transpose(values[0], attrs.get("axes")),
    doc="permute axes (reverse them when axes is None)",
))


def _reshape_shape(arg_shapes, attrs, node=None, op=None):
    (a,) = arg_shapes
    target = shapes.normalize(attrs.get("shape"))
    if sympy.simplify(shapes.size(target) - shapes.size(a)) != 0:
        raise ShapeError(
            f"{describe(node, op)}: cannot reshape {shapes.fmt(a)} into {shapes.fmt(target)}: "
            "the number of elements differs"
        )
    return target


def _lower_reshape(ctx, args, attrs, node):
    return f"{args[0]}.reshape({ctx.shape(attrs['shape'])})"


register(Op(
    "reshape", 1, _reshape_shape, attrs={"shape": None}, lower=_lower_reshape,
    reference=lambda values, attrs: np.reshape(values[0], attrs["shape"]),
    doc="the same elements in a new shape",
))


def _reduce_shape(arg_shapes, attrs, node=None, op=None):
    (a,) = arg_shapes
    axes = normalize_axes(attrs.get("axis"), len(a), node, op)
    if attrs.get("keepdims", False):
        return tuple(1 if k in axes else d for k, d in enumerate(a))
    return tuple(d for k, d in enumerate(a) if k not in axes)


def _reducer(function):
    # the array method (x.sum(axis=0)) skips numpy.sum's Python-level dispatch
    def lower(ctx, args, attrs, node):
        axis = attrs.get("axis")
        axis = tuple(axis) if isinstance(axis, list) else axis
        if isinstance(axis, tuple) and len(axis) == 1:
            axis = axis[0]
        options = [] if axis is None else [f"axis={axis!r}"]
        if attrs.get("keepdims", False):
            options.append("keepdims=True")
        return f"{args[0]}.{function}({', '.join(options)})"

    return lower


def _lower_mean(ctx, args, attrs, node):
    # sum / count: numpy's mean() runs Python code that costs microseconds per call
    from .. import ir

    shape = ctx.graph.nodes[ir.operands(ctx.graph, node)[0]][ir.SHAPE]
    axes = normalize_axes(attrs.get("axis"), len(shape))
    count = [ctx.dim(shape[a]) for a in axes if shape[a] != 1]
    total = _reducer("sum")(ctx, args, attrs, node)
    return f"{total} / {'*'.join(count) if count else '1'}" if len(count) <= 1 else f"{total} / ({'*'.join(count)})"


def _reference_reduction(function):
    def reference(values, attrs):
        (x,) = values
        return function(x, axis=normalize_axes(attrs.get("axis"), x.ndim), keepdims=bool(attrs.get("keepdims")))

    return reference


for _name, _lower, _reference, _doc, _kink in (
    ("sum", _reducer("sum"), np.sum, "sum over axes", ""),
    ("mean", _lower_mean, np.mean, "mean over axes", ""),
    ("max", _reducer("max"), np.max, "largest element over axes",
     "ties split the gradient evenly among the maximal elements"),
):
    register(Op(
        _name, 1, _reduce_shape, attrs={"axis": None, "keepdims": False}, lower=_lower, doc=_doc, kink=_kink,
        reference=_reference_reduction(_reference),
    ))


def _broadcast_shape(arg_shapes, attrs, node=None, op=None):
    (a,) = arg_shapes
    target = shapes.normalize(attrs.get("shape"))
    if shapes.broadcast([a, target], node, op) != target:
        raise ShapeError(f"{describe(node, op)}: cannot broadcast {shapes.fmt(a)} to {shapes.fmt(target)}")
    return target


register(Op(
    "broadcast", 1, _broadcast_shape, attrs={"shape": None},
    lower=lambda ctx, args, attrs, node: f"{ctx.numpy}.broadcast_to({args[0]}, {ctx.shape(attrs['shape'])})",
    reference=lambda values, attrs: np.broadcast_to(values[0], attrs["shape"]),
    doc="numpy broadcast to a larger shape",
))

register(Op(
    "stop_gradient", 1, lambda arg_shapes, attrs, node=None, op=None: arg_shapes[0],
    lower=lambda ctx, args, attrs, node: args[0],
    reference=lambda values, attrs: values[0],
    doc="the identity whose gradient is zero (used by stable expansions)",
))

register(Op(
    "zeros_like", 1, lambda arg_shapes, attrs, node=None, op=None: arg_shapes[0],
    lower=lambda ctx, args, attrs, node: f"{ctx.numpy}.zeros_like({args[0]})",
    reference=lambda values, attrs: np.zeros_like(values[0]),
    doc="zeros of the operand's shape (the gradient of a value that does not reach the output)",
))
