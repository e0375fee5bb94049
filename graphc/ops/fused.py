"""The ``fused`` op: an elementwise kernel that carries its own sympy expression.

A fused node holds ``expr = (expression, symbols)`` (node attribute ``ir.EXPR``): the
expression is over ``symbols``, one per operand in order, and may mention symbolic dims
(``N``) as numbers. The backward pass writes each elementwise partial derivative as one,
and the fusion pass merges regions of elementwise ops into one. Being elementwise with an
explicit expression, a fused node differentiates like any other elementwise op, so
gradients of gradients work.
"""

from __future__ import annotations

import functools

import sympy

from .base import Op, _through_output, register, select_steps
from .elementwise import elementwise_shape

__all__ = ["fused_partials", "fused_symbols"]

register(Op(
    "fused", -1, elementwise_shape, elementwise=True, attrs={"kink": ""},
    doc="an elementwise kernel with its own expression (attribute expr)",
))


def fused_symbols(count: int) -> tuple[sympy.Symbol, ...]:
    """The operand symbols ``a0, a1, ...`` of a fused expression."""
    return tuple(sympy.Symbol(f"a{k}", real=True) for k in range(count))


@functools.lru_cache(maxsize=4096)
def fused_partials(expr: sympy.Expr, symbols: tuple) -> tuple[sympy.Expr, ...]:
    """d expr / d symbol_k for each operand, via ``sympy.diff`` (cached per expression)."""
    return tuple(_through_output(select_steps(sympy.powsimp(sympy.diff(expr, s))), expr) for s in symbols)
