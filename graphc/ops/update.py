"""``update``: the SGD update of one param, ``p -= g``, written into the param's own array.

It is not a built-in op: no user graph holds it. The schedule's eager step graph (see
:func:`graphc.schedule.schedule`) carries it as a custom op, one node per param, reading
the param and its gradient seeded with ``lr`` (so ``g = lr * grad``). Its value is the
param's new value, left in the param's buffer: nothing reads the node, and the schedule
places it after every read of the param's old value.

>>> UPDATE.name, UPDATE.builtin, UPDATE.elementwise
('update', False, False)
"""

from __future__ import annotations

import numpy as np

from ..errors import GradientError, describe
from .base import Op

__all__ = ["UPDATE"]


def _shape(arg_shapes, attrs, node=None, op=None):
    return arg_shapes[0]  # the param's


def _lower(ctx, args, attrs, node) -> list[str]:
    # one subtraction into the param: the same arithmetic as p - g computed elsewhere, so the
    # param ends bit-identical to the all-or-nothing step's (numpy buffers g when it overlaps p);
    # ``p -= g`` is numpy's subtract(p, g, out=p) (the in-place operator), without parsing out=
    return [f"{args[0]} -= {args[1]}"]


def _reference(arrays, attrs):
    param, step = arrays
    return np.subtract(param, step)


def _vjp(node, args, g, k):
    raise GradientError(f"{describe(node.id, node.op)}: a param's update has no gradient (it ends a step)")


UPDATE = Op(
    "update", 2, _shape, lower=_lower, reference=_reference, vjp=_vjp, builtin=False,
    doc="p -= g, into the param's array (g: the gradient times lr); the step's last use of p",
)
