"""The op table: one :class:`Op` entry per op, holding every facet of it side by side.

An entry has its arity, traits (elementwise, commutative), shape rule, and one of
- ``fn``: the scalar sympy definition of an elementwise op (``Lambda`` over symbols),
  from which derivatives come by ``sympy.diff`` (see :func:`local_partials`);
- ``lower``: how a tensor op prints, a short template over printed operands;
- ``expand``: for composite ops, their numerically stable expansion into primitives.
- ``reference``: for tensor and composite ops, their direct numpy definition (the oracle).
VJP rules of tensor ops live in ``graphc/ops/tensor.py`` next to their shape rules.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field

import sympy

from ..errors import GraphError
from .functions import where

__all__ = ["Op", "OPS", "register", "get_op", "definition", "local_partials", "freeze", "const_number",
           "select_steps"]


@dataclass(frozen=True)
class Op:
    name: str
    arity: int  # -1: any number of operands (fused kernels)
    shape: Callable  # (arg_shapes, attrs, node) -> shape
    elementwise: bool = False
    commutative: bool = False
    algebraic: bool = False  # sympy manipulates its definition well and simplify can rebuild it
    fn: Callable | None = None  # elementwise: (*symbols, **attrs) -> sympy expression
    lower: Callable | None = None  # tensor ops: (ctx, args, attrs, node) -> numpy expression
    expand: Callable | None = None  # composite ops: (graph, args, attrs) -> result node
    vjp: Callable | None = None  # tensor ops: (graph, node, cotangent) -> per-operand cotangents
    # tensor and composite ops: (operand arrays, attrs with dims bound) -> array, the op's direct
    # numpy definition, which the reference interpreter (graphc/evaluate.py) runs
    reference: Callable | None = None
    attrs: dict = field(default_factory=dict)  # attribute name -> default (None: required)
    kink: str = ""  # the convention at points where the derivative does not exist
    convention: Callable | None = None  # (partial, operand index) -> partial obeying ``kink``
    doc: str = ""
    builtin: bool = True
    # the user function ``gc.<function>(*operands, **attrs)`` made from this entry ("" for none),
    # its operands' parameter names (default x, or a and b) and the attrs it must be given
    function: str = ""
    operand_names: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    # (operand dtypes) -> the node's dtype, for ops whose value is not of their operands'
    # dtype (a comparison is bool, argmax int64); None: the first non-const operand's
    dtype: Callable | None = None
    # operand positions that may read an int64 input (class labels); everywhere else an
    # int64 input is refused where it is used
    int_operands: tuple[int, ...] = ()

    @property
    def composite(self) -> bool:
        return self.expand is not None

    @property
    def source(self) -> bool:
        return self.arity == 0


OPS: dict[str, Op] = {}


def register(op: Op, replace: bool = False) -> Op:
    """Add an op to the table; a name can be taken once unless ``replace``.

    Built-in ops are final: once registered, no entry replaces them.
    """
    existing = OPS.get(op.name)
    if existing is not None and (existing.builtin or not replace):
        raise GraphError(f"op {op.name!r} is already in the op table{' (built in)' if existing.builtin else ''}; "
                         "choose another name")
    OPS[op.name] = op
    definition.cache_clear()
    local_partials.cache_clear()
    return op


def get_op(name: str, node: object = None) -> Op:
    try:
        return OPS[name]
    except (KeyError, TypeError):
        where = f"node {str(node)!r}: " if node is not None else ""
        raise GraphError(
            f"{where}unknown op {name!r}; known ops are {', '.join(sorted(OPS))}; "
            "add a custom elementwise op with gc.elementwise(name, fn)"
        ) from None


def freeze(value: object) -> object:
    """A hashable, order-stable form of an attrs value (dicts, lists, arrays)."""
    if isinstance(value, dict):
        return tuple(sorted((str(k), freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    if hasattr(value, "tobytes") and hasattr(value, "dtype"):
        return ("array", str(value.dtype), tuple(value.shape), value.tobytes())
    return value


def arg_symbols(arity: int) -> tuple[sympy.Symbol, ...]:
    """The scalar symbols ``x0, x1, ...`` an elementwise definition is written over."""
    return tuple(sympy.Symbol(f"x{k}", real=True) for k in range(arity))


def const_number(value) -> sympy.Expr:
    """A scalar const as a sympy number: integral values as Integer (so ``x**2`` stays so)."""
    number = float(value)
    if number.is_integer() and abs(number) < 2**53:
        return sympy.Integer(int(number))
    return sympy.Float(number)


OUT = sympy.Symbol("y", real=True)  # the op's own output, for derivatives that reuse it


@functools.cache
def definition(name: str, frozen_attrs: tuple = ()) -> sympy.Lambda:
    """The scalar definition of an elementwise op as a ``sympy.Lambda``."""
    op = get_op(name)
    if not op.elementwise:
        raise GraphError(f"op {name!r} is not elementwise and has no scalar definition")
    symbols = arg_symbols(op.arity)
    return sympy.Lambda(symbols, sympy.sympify(op.fn(*symbols, **dict(frozen_attrs))))


@functools.cache
def local_partials(name: str, frozen_attrs: tuple = (), constants: tuple = ()) -> tuple[sympy.Expr, ...]:
    """d out / d operand_k for each operand, over ``x0..`` and the output ``y``.

    Derived once per (op, attrs, constant operands) by ``sympy.diff`` of the definition
    (constant operands, given as ``(index, value)`` pairs, are substituted first, so that
    ``x ** 2`` differentiates to ``2 x``), with the op's kink convention applied, then
    re-expressed through the output where that removes the operands (sigmoid' = y (1 - y),
    tanh' = 1 - y**2, exp' = y): the backward pass then reuses the forward value instead
    of recomputing it.
    """
    op = get_op(name)
    lam = definition(name, frozen_attrs)
    body = lam.expr.subs({lam.variables[k]: value for k, value in constants})
    partials = []
    for symbol in lam.variables:
        partial = sympy.powsimp(sympy.diff(body, symbol))
        if op.convention is not None:
            partial = op.convention(partial, len(partials))
        partials.append(_through_output(select_steps(partial), body))
    return tuple(partials)


def select_steps(partial: sympy.Expr) -> sympy.Expr:
    """Products of a step and a factor that may be infinite where the step is 0, as selections.

    A kink convention says "the derivative is 0 where a branch is not taken" (a clamp's
    flat side): ``Heaviside(c, 1) * (1 - y)/(1 - p)`` must be 0 where ``c < 0``, even where
    ``1/(1 - p)`` is infinite, and 0 * inf is NaN. So such a product becomes
    ``Piecewise((factor, c >= 0), (0, True))``, which selects, and whose factor divides by
    1 where ``c < 0`` (numpy computes the discarded branch too). A polynomial factor (relu's
    ``g * Heaviside(z, 1)``) is finite wherever its operands are, and stays a product.

    >>> p, y = sympy.symbols("p y", real=True)
    >>> select_steps(sympy.Heaviside(sympy.log(p) + 100, 1) * y / p)
    Piecewise((y/where(log(p) + 100 >= 0, p, 1), log(p) >= -100), (0, True))
    >>> select_steps(y * sympy.Heaviside(p, 1))
    y*Heaviside(p, 1)
    """
    def selected(product: sympy.Expr) -> sympy.Expr:
        steps = [f for f in sympy.Mul.make_args(product) if isinstance(f, sympy.Heaviside)]
        if not steps:
            return product
        factor = sympy.Mul(*[f for f in sympy.Mul.make_args(product) if f != steps[0]])
        if factor.is_polynomial(*factor.free_symbols):
            return product
        arg = steps[0].args[0]
        at = steps[0].args[1] if len(steps[0].args) > 1 else sympy.S.Half  # sympy's value at 0
        factor = selected(factor)
        if at == 1:
            return sympy.Piecewise((_divisors_read_where(factor, arg >= 0), arg >= 0), (0, True))
        if at == 0:
            return sympy.Piecewise((_divisors_read_where(factor, arg > 0), arg > 0), (0, True))
        return sympy.Piecewise((_divisors_read_where(factor, arg > 0), arg > 0),
                               (at * _divisors_read_where(factor, sympy.Eq(arg, 0)), sympy.Eq(arg, 0)), (0, True))

    return partial.replace(lambda e: e.is_Mul and any(isinstance(f, sympy.Heaviside) for f in e.args), selected)


def _divisors_read_where(factor: sympy.Expr, condition) -> sympy.Expr:
    """``factor`` with each divisor read as 1 where ``condition`` fails (the safe operand).

    numpy's ``where`` computes both branches: the branch a selection discards must not
    divide by zero (a warning, an error under ``errstate(all="raise")``). Where the
    condition holds, every value is the one written.
    """
    def guarded(power):
        return sympy.Pow(where(condition, power.base, 1), power.exp)

    return factor.replace(lambda e: e.is_Pow and e.exp.is_Number and e.exp.is_negative, guarded)


def _through_output(partial: sympy.Expr, body: sympy.Expr) -> sympy.Expr:
    if body.is_Atom or body.is_Add or body.is_Mul:
        return partial  # the output of a sum or product is no cheaper than its operands
    reused = partial.subs(body, OUT)
    operands_left = reused.free_symbols - {OUT}
    if reused != partial and not operands_left:
        return reused
    return partial
