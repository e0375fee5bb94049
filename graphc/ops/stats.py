"""Reductions beyond sum/mean/max: ``min``, and ``var``/``std`` with numpy's conventions.

``min`` splits its gradient evenly among tied minimal elements, as ``max`` does (the
convention is printed next to the derivative). ``var`` and ``std`` divide by ``n - ddof``
(numpy's default ``ddof=0`` divides by ``n``); they are composites that expand into the
two-pass form ``mean((x - mean(x))**2)``, which never loses the digits a one-pass
``mean(x**2) - mean(x)**2`` loses when the mean is large.
"""

from __future__ import annotations

import numpy as np
import sympy

from .. import shapes
from ..errors import ShapeError, describe
from .base import Op, register
from .tensor import (
    _reduce_shape,
    _reducer,
    _reference_reduction,
    extremum_vjp,
    normalize_axes,
)

__all__ = ["MIN_TIES"]

MIN_TIES = "ties split the gradient evenly among the minimal elements"


_min_vjp = extremum_vjp("min", MIN_TIES)


register(Op(
    "min", 1, _reduce_shape, attrs={"axis": None, "keepdims": False}, lower=_reducer("min"),
    doc="smallest element over axes", kink=MIN_TIES, vjp=_min_vjp, function="min",
    reference=_reference_reduction(np.min),
))


def _moments_shape(arg_shapes, attrs, node=None, op=None):
    out = _reduce_shape(arg_shapes, attrs, node, op)
    count = _count(arg_shapes[0], normalize_axes(attrs.get("axis"), len(arg_shapes[0]), node, op))
    ddof = attrs.get("ddof", 0)
    if isinstance(ddof, bool) or not isinstance(ddof, (int, float)) or ddof < 0:
        raise ShapeError(f"{describe(node, op)}: ddof must be a number >= 0, found {ddof!r}")
    if isinstance(count, int) and count - ddof <= 0:
        raise ShapeError(f"{describe(node, op)}: ddof={ddof} leaves no degrees of freedom over {count} "
                         f"element(s) of shape {shapes.fmt(arg_shapes[0])}; use a smaller ddof")
    return out


def _count(shape, axes):
    count = sympy.Integer(1)
    for axis in axes:
        count *= shape[axis]
    return int(count) if count.is_Integer else count


def _expand_var(args, attrs):
    (x,) = args
    ed = x.editor
    axes = normalize_axes(attrs["axis"], len(x.shape))
    centred = x - ed.add("mean", [x], {"axis": axes, "keepdims": True})
    squares = ed.add("square", [centred])
    ddof = attrs.get("ddof", 0)
    if not ddof:
        return ed.add("mean", [squares], {"axis": axes, "keepdims": attrs["keepdims"]})
    divisor = sympy.sympify(_count(x.shape, axes)) - sympy.nsimplify(ddof)
    total = ed.sum(squares, axis=axes, keepdims=attrs["keepdims"])
    return ed.fused(lambda s: s / divisor, [total])


def _expand_std(args, attrs):
    (x,) = args
    ed = x.editor
    return ed.add("sqrt", [ed.add("var", [x], dict(attrs))])


def _reference_moment(function):
    def reference(values, attrs):
        (x,) = values
        return function(x, axis=normalize_axes(attrs.get("axis"), x.ndim), keepdims=bool(attrs.get("keepdims")),
                        ddof=attrs.get("ddof", 0))

    return reference


register(Op(
    "var", 1, _moments_shape, attrs={"axis": None, "keepdims": False, "ddof": 0}, expand=_expand_var,
    reference=_reference_moment(np.var), function="var",
    doc="variance over axes: mean squared deviation, divided by n - ddof (numpy's convention)",
))
register(Op(
    "std", 1, _moments_shape, attrs={"axis": None, "keepdims": False, "ddof": 0}, expand=_expand_std,
    reference=_reference_moment(np.std), function="std",
    doc="standard deviation over axes: sqrt(var), divided by n - ddof (numpy's convention)",
))
