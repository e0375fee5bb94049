"""Comparisons (``x > 0``), ``where`` and ``argmax``: values no gradient flows through.

A comparison is a boolean node and ``argmax`` an int64 one (their ``dtype`` rules). Their
VJP rules refuse: a gradient asked through them (``gc.argmax(p) * 1.0`` under a loss) is a
``GradientError`` naming the node, never a silent zero. ``where(cond, a, b)`` passes the
cotangent to ``a`` where ``cond`` holds and to ``b`` elsewhere, and none to ``cond``.
"""

from __future__ import annotations

import numpy as np

from .. import shapes
from ..errors import GradientError, ShapeError, describe
from .base import Op, register
from .tensor import normalize_axes
from .vjp import unbroadcast

__all__ = ["COMPARISONS", "no_gradient_through"]


def _broadcast_shape(arg_shapes, attrs, node=None, op=None):
    return shapes.broadcast(list(arg_shapes), node, op)


def no_gradient_through(why: str):
    """A VJP rule that refuses, naming the node: no derivative exists (a step, an index)."""
    def vjp(node, args, g, k):
        raise GradientError(
            f"{describe(node.id, node.op)}: a gradient is asked through it, but none flows through it "
            f"({why}); wrap it in gc.stop_gradient if a zero gradient is meant, or use it as the "
            "condition of gc.where"
        )

    return vjp


# (op name, Python operator, numpy operator): ``x > 0`` on nodes is ``greater(x, 0)``
COMPARISONS = (("less", "<"), ("less_equal", "<="), ("greater", ">"), ("greater_equal", ">="))

for _name, _symbol in COMPARISONS:
    register(Op(
        _name, 2, _broadcast_shape, dtype=lambda dtypes: "bool", int_operands=(0, 1),
        lower=lambda ctx, args, attrs, node, s=_symbol: f"({args[0]} {s} {args[1]})",
        reference=lambda values, attrs, s=_symbol: {"<": np.less, "<=": np.less_equal, ">": np.greater,
                                                    ">=": np.greater_equal}[s](*values),
        vjp=no_gradient_through("a comparison is a step: its derivative is 0 or undefined"),
        doc=f"a {_symbol} b elementwise, a boolean value", function=_name,
    ))


def _where_shape(arg_shapes, attrs, node=None, op=None):
    return shapes.broadcast(list(arg_shapes), node, op)


def _where_vjp(node, args, g, k):
    if k == 0:
        return None  # the condition selects; no gradient flows into it
    ed = node.editor
    cond = args[0]
    picked = [g, 0.0] if k == 1 else [0.0, g]
    return unbroadcast(ed.add("where", [cond, *picked]), args[k].shape)


def _where_dtype(dtypes):
    # the dtype of the values chosen between (the condition is boolean)
    floats = [d for d in dtypes[1:] if np.dtype(d).kind == "f"]
    return floats[0] if floats else "float64"


register(Op(
    "where", 3, _where_shape, dtype=_where_dtype, vjp=_where_vjp,
    lower=lambda ctx, args, attrs, node: f"{ctx.numpy}.where({args[0]}, {args[1]}, {args[2]})",
    reference=lambda values, attrs: np.where(values[0].astype(bool), values[1], values[2]),
    doc="a where cond holds, b elsewhere (numpy broadcasting)", function="where",
    operand_names=("cond", "a", "b"),
))


def _argmax_shape(arg_shapes, attrs, node=None, op=None):
    (a,) = arg_shapes
    axis = attrs.get("axis")
    if isinstance(axis, (tuple, list)) or axis is None:
        raise ShapeError(f"{describe(node, op)}: argmax takes one axis (an int), found {axis!r}")
    if not a:
        raise ShapeError(f"{describe(node, op)}: argmax needs a value of rank >= 1, found shape ()")
    (k,) = normalize_axes(axis, len(a), node, op)
    return tuple(a[:k]) + tuple(a[k + 1:])


register(Op(
    "argmax", 1, _argmax_shape, attrs={"axis": -1}, dtype=lambda dtypes: "int64",
    lower=lambda ctx, args, attrs, node: f"{args[0]}.argmax(axis={attrs['axis']})",
    reference=lambda values, attrs: np.argmax(values[0], axis=attrs["axis"]),
    vjp=no_gradient_through("the position of the largest element is piecewise constant"),
    doc="the index of the largest element along axis (first on ties), an int64 value", function="argmax",
))
