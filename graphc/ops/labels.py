"""Integer class labels: ``pick`` (each row's entry at its label) and its VJP ``pick_grad``.

``softmax_cross_entropy(logits, labels)`` with int64 labels of shape (N,) expands to
``mean(logsumexp(z) - pick(z, labels))``: the formula of label rows,
``mean(logsumexp(z) * sum(y) - sum(y * z))``, for one-hot rows, without building them.
``pick`` gathers with ``numpy.take_along_axis``; its VJP puts each cotangent back at its
label with ``numpy.put_along_axis`` (one entry per row: no two rows share one). No
gradient flows into the labels.
"""

from __future__ import annotations

import numpy as np

from .. import shapes
from ..errors import ShapeError, describe
from .base import Op, register
from .indexing import statements
from .tensor import normalize_axes

__all__ = ["labels_shape"]


def labels_shape(values: tuple, axis: int) -> tuple:
    """The shape labels of ``values`` have along ``axis`` (that axis dropped)."""
    return tuple(values[:axis]) + tuple(values[axis + 1:])


def _pick_shape(arg_shapes, attrs, node=None, op=None):
    values, labels = arg_shapes
    if not values:
        raise ShapeError(f"{describe(node, op)}: needs values of rank >= 1 (classes on an axis), found ()")
    (axis,) = normalize_axes(attrs.get("axis"), len(values), node, op)
    if tuple(labels) != labels_shape(values, axis):
        raise ShapeError(f"{describe(node, op)}: labels of shape {shapes.fmt(labels)} do not match values of "
                         f"shape {shapes.fmt(values)}: expected {shapes.fmt(labels_shape(values, axis))} "
                         f"(axis {axis} dropped)")
    return tuple(labels)


def _axis(ctx, node) -> int:
    from .. import ir

    values = ctx.graph.nodes[ir.operands(ctx.graph, node)[0]][ir.SHAPE]
    return normalize_axes(ctx.graph.nodes[node][ir.ATTRS].get("axis"), len(values))[0]


def _lower_pick(ctx, args, attrs, node):
    axis = _axis(ctx, node)
    return (f"{ctx.numpy}.take_along_axis({args[0]}, {ctx.numpy}.expand_dims({args[1]}, {axis}), "
            f"axis={axis}).squeeze({axis})")


def _reference_pick(values, attrs):
    z, labels = values
    axis = normalize_axes(attrs.get("axis"), z.ndim)[0]
    labels = labels.astype(np.int64)
    out = np.empty(labels.shape, dtype=z.dtype)
    for position in np.ndindex(*labels.shape):  # by loops: independent of take_along_axis
        full = position[:axis] + (int(labels[position]),) + position[axis:]
        out[position] = z[full]
    return out


def _pick_vjp(node, args, g, k):
    if k == 1:
        return None  # labels are indices: no gradient flows into them
    axis = node.editor.graph.nodes[node.id]["attrs"].get("axis")
    return g.editor.add("pick_grad", [g, args[1]], {"axis": axis, "shape": tuple(args[0].shape)})


register(Op(
    "pick", 2, _pick_shape, attrs={"axis": -1}, lower=_lower_pick, vjp=_pick_vjp, reference=_reference_pick,
    int_operands=(1,), doc="each row's entry at its label (int64 labels, axis dropped)",
))


def _pick_grad_shape(arg_shapes, attrs, node=None, op=None):
    target = shapes.normalize(attrs["shape"])
    picked = _pick_shape([target, arg_shapes[1]], attrs, node, op)
    if tuple(picked) != tuple(arg_shapes[0]):
        raise ShapeError(f"{describe(node, op)}: the cotangent has shape {shapes.fmt(arg_shapes[0])}, "
                         f"expected {shapes.fmt(picked)}")
    return target


def _lower_pick_grad(ctx, args, attrs, node):
    axis = normalize_axes(attrs.get("axis"), len(attrs["shape"]))[0]
    dtype = ctx.graph.nodes[node]["dtype"]
    return statements(
        f"{{out}} = {ctx.numpy}.zeros({ctx.shape(attrs['shape'])}, dtype={ctx.numpy}.{dtype})",
        f"{ctx.numpy}.put_along_axis({{out}}, {ctx.numpy}.expand_dims({args[1]}, {axis}), "
        f"{ctx.numpy}.expand_dims({args[0]}, {axis}), axis={axis})",
    )


def _reference_pick_grad(values, attrs):
    g, labels = values
    out = np.zeros(attrs["shape"], dtype=g.dtype)
    axis = normalize_axes(attrs.get("axis"), out.ndim)[0]
    labels = labels.astype(np.int64)
    for position in np.ndindex(*labels.shape):
        out[position[:axis] + (int(labels[position]),) + position[axis:]] = g[position]
    return out


def _pick_grad_vjp(node, args, g, k):
    if k == 1:
        return None
    axis = node.editor.graph.nodes[node.id]["attrs"].get("axis")
    return g.editor.add("pick", [g, args[1]], {"axis": axis})


register(Op(
    "pick_grad", 2, _pick_grad_shape, attrs={"axis": -1, "shape": None}, lower=_lower_pick_grad,
    vjp=_pick_grad_vjp, reference=_reference_pick_grad, int_operands=(1,),
    doc="zeros of shape with each row's cotangent at its label (the VJP of pick)",
))
