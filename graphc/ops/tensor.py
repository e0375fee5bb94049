"""Tensor ops: sources, matmul, transpose, reshape, reductions, broadcast, stop_gradient.

Each entry keeps its shape rule, its numpy template, its reference definition (for the
reference interpreter) and its VJP rule side by side. VJP rules build the backward graph
with the IR editor (``ops/editor.py``) and return a cotangent of the operand's exact
shape (see ``ops/vjp.py``).
"""

from __future__ import annotations

import numpy as np
import sympy

from .. import ir, shapes
from ..errors import ShapeError, describe
from .base import Op, register
from .vjp import NO_GRADIENT, broadcast_back, unbroadcast

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
    batch = shapes.broadcast([a[:-2], b[:-2]], node, op) if len(a) > 2 or len(b) > 2 else ()  # (matrices: none)
    rows = a[-2:-1] if len(a) >= 2 else ()
    cols = b[-1:] if len(b) >= 2 else ()
    return batch + rows + cols


def _swap_last(x):
    if len(x.shape) == 2:
        return x.T
    axes = tuple(range(len(x.shape) - 2)) + (len(x.shape) - 1, len(x.shape) - 2)
    return x.editor.transpose(x, axes)


def _matmul_vjp(node, args, g, k):
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


# ndarray.dot and @ call the same BLAS routine on 2-D float arrays of one dtype, but @ is a
# generalized ufunc whose dispatch costs ~0.6 us a call (1.0 us against 0.35 us on a 4x2 @ 2x2,
# numpy 2.4): a tiny network's step is a third matmul overhead. Bit-identical whenever both
# operands are C- or F-contiguous (every array the generated code makes, its .T, contiguous
# feeds; tests/test_matmul_lowering.py) but for a 1x1 @ 1x1 product, which dot multiplies as
# two numbers (3 * -0.0 is -0.0, where BLAS adds the product to +0.0): dot is printed only
# when some dim is known to exceed 1. For a feed strided in both axes (or broadcast), @ runs
# its own loop where dot copies it and calls BLAS: the same product, rounded in another order.
_DOT_DTYPES = ("float64", "float32")


def _lower_matmul(ctx, args, attrs, node):
    """``a.dot(b)`` for two matrices of one BLAS float dtype that are not both 1x1, else
    ``a @ b`` (batched, vector, integer and half-precision operands keep matmul's own
    semantics and loops)."""
    nodes = ctx.graph._node
    a, b = (nodes[n] for n in ctx.operands(node))  # the printer's (remembered) operands
    if (len(a[ir.SHAPE]) == len(b[ir.SHAPE]) == 2 and a[ir.DTYPE] == b[ir.DTYPE] in _DOT_DTYPES
            and any(_exceeds_one(d) for d in (*a[ir.SHAPE], b[ir.SHAPE][1]))):
        return f"{args[0]}.dot({args[1]})"
    return f"{args[0]} @ {args[1]}"


def _exceeds_one(dim) -> bool:
    """Whether a dim is known to be more than 1 (a symbolic dim, the batch, may be 1)."""
    return isinstance(dim, (int, sympy.Integer)) and int(dim) > 1


register(Op(
    "matmul", 2, _matmul_shape, doc="a @ b (numpy matmul semantics)", function="matmul",
    reference=lambda values, attrs: np.matmul(*values),
    lower=_lower_matmul, vjp=_matmul_vjp,
))


def _attrs(node) -> dict:
    return node.editor.graph.nodes[node.id][ir.ATTRS]


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


def _transpose_vjp(node, args, g, k):
    if not g.shape:
        return g
    axes = _attrs(node).get("axes")
    if axes is None:
        return g.T if len(g.shape) == 2 else g.editor.transpose(g)
    inverse = [0] * len(axes)
    for position, axis in enumerate(axes):
        inverse[axis % len(axes)] = position
    return g.editor.transpose(g, inverse)


register(Op(
    "transpose", 1, _transpose_shape, attrs={"axes": None}, lower=_lower_transpose, vjp=_transpose_vjp,
    function="transpose",
    reference=lambda values, attrs: np.transpose(values[0], attrs.get("axes")),
    doc="permute axes (reverse them when axes is None)",
))


def _reshape_shape(arg_shapes, attrs, node=None, op=None):
    (a,) = arg_shapes
    target = shapes.normalize(attrs.get("shape"))
    # sizes are products of ints and positive symbols: sympy's canonical Mul decides
    # equality at once (simplify took seconds on many symbolic dims)
    if shapes.size(target) != shapes.size(a):
        raise ShapeError(
            f"{describe(node, op)}: cannot reshape {shapes.fmt(a)} into {shapes.fmt(target)}: "
            "the number of elements differs"
        )
    return target


def _lower_reshape(ctx, args, attrs, node):
    return f"{args[0]}.reshape({ctx.shape(attrs['shape'])})"


def _reshape_vjp(node, args, g, k):
    return g.editor.reshape(g, args[0].shape)


register(Op(
    "reshape", 1, _reshape_shape, attrs={"shape": None}, lower=_lower_reshape, vjp=_reshape_vjp,
    function="reshape", required=("shape",),
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
    return f"{_reducer('sum')(ctx, args, attrs, node)} / {_count(ctx, attrs, node)}"


def _count(ctx, attrs, node) -> str:
    """How many elements a mean averages, printed (``N``, ``(N*4)``)."""
    shape = ctx.graph.nodes[ir.operands(ctx.graph, node)[0]][ir.SHAPE]
    axes = normalize_axes(attrs.get("axis"), len(shape))
    count = [ctx.dim(shape[a]) for a in axes if shape[a] != 1]
    return ("*".join(count) if count else "1") if len(count) <= 1 else f"({'*'.join(count)})"


def lower_sum_of_squares(ctx, args, attrs, node):
    """``sum(square(u))`` or ``mean(square(u))`` (``node``, whose square the schedule folded
    into it) from ``u`` (``args``): numpy.vdot, one BLAS call, no array of squares."""
    total = f"numpy.vdot({args[0]}, {args[0]})"
    return total if ir.op_of(ctx.graph, node) == "sum" else f"{total} / {_count(ctx, attrs, node)}"


def _reference_reduction(function):
    def reference(values, attrs):
        (x,) = values
        return function(x, axis=normalize_axes(attrs.get("axis"), x.ndim), keepdims=bool(attrs.get("keepdims")))

    return reference


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


def _sum_vjp(node, args, g, k):
    (x,) = args
    return broadcast_back(_kept(node, x, g), x.shape)


def _mean_vjp(node, args, g, k):
    (x,) = args
    count = sympy.Integer(1)
    for axis in _reduced_axes(node, x):
        count *= x.shape[axis]
    return broadcast_back(node.editor.fused(lambda a: a / count, [_kept(node, x, g)]), x.shape)


_MAX_TIES = "ties split the gradient evenly among the maximal elements"


def extremum_vjp(which: str, ties: str):
    """The VJP of a max or min reduction (``which``): the gradient goes to the elements equal
    to the result, split evenly among ties (``ties`` is the printed convention)."""

    def vjp(node, args, g, k):
        ed = node.editor
        (x,) = args
        axes = _reduced_axes(node, x)
        keep = _attrs(node).get("keepdims")
        extreme = node if keep else ed.reshape(node, tuple(1 if i in axes else d for i, d in enumerate(x.shape)))
        # 1 where x equals the result: x - max (min - x) is never positive, so >= 0 means equal
        pair = [x, extreme] if which == "max" else [extreme, x]
        mask = ed.fused(lambda a, b: sympy.Heaviside(a - b, 1), pair)
        count = ed.sum(mask, axis=axes, keepdims=True)
        return ed.fused(lambda a, e, n: a * e / n, [_kept(node, x, g), mask, count], f"d {which}: {ties}")

    return vjp


_max_vjp = extremum_vjp("max", _MAX_TIES)


for _name, _lower, _reference, _vjp, _doc, _kink in (
    ("sum", _reducer("sum"), np.sum, _sum_vjp, "sum over axes", ""),
    ("mean", _lower_mean, np.mean, _mean_vjp, "mean over axes", ""),
    ("max", _reducer("max"), np.max, _max_vjp, "largest element over axes", _MAX_TIES),
):
    register(Op(
        _name, 1, _reduce_shape, attrs={"axis": None, "keepdims": False}, lower=_lower, doc=_doc, kink=_kink,
        vjp=_vjp, function=_name,
        reference=_reference_reduction(_reference),
    ))


def _broadcast_shape(arg_shapes, attrs, node=None, op=None):
    (a,) = arg_shapes
    target = shapes.normalize(attrs.get("shape"))
    if shapes.broadcast([a, target], node, op) != target:
        raise ShapeError(f"{describe(node, op)}: cannot broadcast {shapes.fmt(a)} to {shapes.fmt(target)}")
    return target


def _broadcast_vjp(node, args, g, k):
    return unbroadcast(g, args[0].shape)


register(Op(
    "broadcast", 1, _broadcast_shape, attrs={"shape": None}, vjp=_broadcast_vjp,
    function="broadcast_to", required=("shape",),
    lower=lambda ctx, args, attrs, node: f"{ctx.numpy}.broadcast_to({args[0]}, {ctx.shape(attrs['shape'])})",
    reference=lambda values, attrs: np.broadcast_to(values[0], attrs["shape"]),
    doc="numpy broadcast to a larger shape",
))

register(Op(
    "stop_gradient", 1, lambda arg_shapes, attrs, node=None, op=None: arg_shapes[0],
    lower=lambda ctx, args, attrs, node: args[0],
    reference=lambda values, attrs: values[0],
    vjp=NO_GRADIENT, doc="the identity whose gradient is zero (used by stable expansions)", function="stop_gradient",
))

register(Op(
    "zeros_like", 1, lambda arg_shapes, attrs, node=None, op=None: arg_shapes[0],
    lower=lambda ctx, args, attrs, node: f"{ctx.numpy}.zeros_like({args[0]})",
    reference=lambda values, attrs: np.zeros_like(values[0]),
    vjp=NO_GRADIENT, doc="zeros of the operand's shape (the gradient of a value that does not reach the output)",
))
