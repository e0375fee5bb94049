"""Shapes: tuples of ints and sympy Symbols (symbolic dims such as the batch size ``N``).

A ``str`` dim becomes a positive integer ``sympy.Symbol`` of that name, so the same name
is the same dim everywhere. Broadcasting follows numpy's rule; a symbolic dim only matches
itself or ``1``.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Sequence

import sympy

from .errors import ShapeError, describe

Dim = int | sympy.Symbol
Shape = tuple[Dim, ...]

__all__ = ["Dim", "Shape", "dim", "normalize", "broadcast", "fmt", "size", "symbols_of"]


def dim(value: object) -> Dim:
    """One dim: a non-negative int, or a symbol made from a name.

    >>> dim("N"), dim(3)
    (N, 3)
    """
    if isinstance(value, sympy.Symbol):
        return value
    if isinstance(value, str):
        if not value:
            raise ShapeError("a symbolic dim needs a non-empty name, found ''")
        return sympy.Symbol(value, integer=True, positive=True)
    if isinstance(value, bool) or not isinstance(value, (int, sympy.Integer)) and not hasattr(value, "__index__"):
        raise ShapeError(f"a dim must be an int or a name (str), found {value!r}")
    number = int(value)  # numpy integers too
    if number < 0:
        raise ShapeError(f"a dim must be >= 0, found {number}")
    return number


def normalize(shape: object) -> Shape:
    """A shape from a tuple/list of dims (an int alone is a 1-d shape).

    >>> normalize(("N", 2))
    (N, 2)
    """
    if shape is None:
        raise ShapeError("a shape is required, e.g. shape=('N', 2)")
    if isinstance(shape, (numbers.Integral, str, sympy.Symbol)):  # numpy integers too, as numpy takes them
        shape = (shape,)
    if not isinstance(shape, Iterable):
        raise ShapeError(f"a shape must be a tuple of dims, found {shape!r}")
    return tuple(dim(d) for d in shape)


def fmt(shape: Sequence[Dim]) -> str:
    """Print a shape the way users wrote it: ``(N, 2)``.

    >>> fmt((sympy.Symbol("N"), 2)), fmt(()), fmt((3,))
    ('(N, 2)', '()', '(3,)')
    """
    inner = ", ".join(str(d) for d in shape)
    return f"({inner},)" if len(shape) == 1 else f"({inner})"


def broadcast(shapes: Sequence[Shape], node: object = None, op: object = None) -> Shape:
    """The numpy broadcast of several shapes, or a ShapeError naming all of them."""
    first = shapes[0] if len(shapes) else None
    if type(first) is tuple and all(s == first for s in shapes) and all(type(d) is int or type(d) is sympy.Symbol
                                                                        for d in first):
        # one shape of ints and symbols (the usual case): itself, with no set of dims per axis
        # (hashing a symbolic dim calls into sympy)
        return first
    rank = max((len(s) for s in shapes), default=0)
    out: list[Dim] = []
    for axis in range(rank):
        dims = {s[axis - rank + len(s)] for s in shapes if axis - rank + len(s) >= 0}
        dims.discard(1)
        if len(dims) > 1:
            listed = " and ".join(fmt(s) for s in shapes)
            raise ShapeError(
                f"{describe(node, op)}: shapes {listed} do not broadcast "
                f"(axis {axis - rank} has dims {', '.join(sorted(map(str, dims)))}); "
                "make the dims equal or 1, or reshape/transpose an operand"
            )
        out.append(dims.pop() if dims else 1)
    return tuple(out)


def size(shape: Sequence[Dim]) -> sympy.Expr | int:
    """Number of elements, symbolic when a dim is."""
    total: sympy.Expr | int = 1
    for d in shape:
        total = total * d
    return total


def symbols_of(shape: Sequence[Dim]) -> list[sympy.Symbol]:
    """The symbolic dims in a shape, in order."""
    return [d for d in shape if isinstance(d, sympy.Symbol)]
