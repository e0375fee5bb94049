"""What the VJP rules of tensor ops share: unbroadcast, and the marker of no gradient.

The rules themselves sit on each op's entry in ``ops/tensor.py``, next to its shape rule.
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

__all__ = ["unbroadcast", "broadcast_back", "NO_GRADIENT"]


def unbroadcast(g, shape: tuple):
    """Sum ``g`` over the axes numpy broadcast a value of ``shape`` along.

    ``g`` has the shape of the broadcast result; the sum runs over its leading axes and
    over the axes where ``shape`` has 1 and ``g`` does not, then drops the leading ones.
    """
    ed = g.editor
    shape, have = tuple(shape), tuple(g.shape)  # (a handle reads its shape from the graph each time)
    if have == shape:
        return g
    lead = len(have) - len(shape)
    # ``shape`` broadcasts to ``have``: each of its dims is 1 or the dim it meets
    assert lead >= 0 and all(d == 1 or d == have[lead + i] for i, d in enumerate(shape)), (have, shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, d in enumerate(shape) if d == 1 and have[lead + i] != 1)
    reduced = ed.sum(g, axis=axes) if axes else g
    return reduced if tuple(reduced.shape) == shape else ed.reshape(reduced, shape)


def broadcast_back(g, shape: tuple):
    """``g`` broadcast to ``shape`` (a no-op when it has that shape already)."""
    return g if tuple(g.shape) == tuple(shape) else g.editor.broadcast(g, shape)


def NO_GRADIENT(node, args, g, k):  # noqa: N802 - a marker rule, compared by identity
    """The rule of ops through which no gradient flows (stop_gradient, zeros_like)."""
    return None
