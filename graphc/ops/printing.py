"""The printed form of an elementwise expression: the sympy printer that writes numpy.

A strict :class:`NumPyPrinter` subclass: what it cannot print fails loudly. Its own
methods replace sympy's defaults where those are slow or unstable: ``Max``/``Min`` as
``numpy.maximum``/``minimum`` (not ``functools.reduce``), ``Piecewise`` as nested
``numpy.where`` (not ``select``), ``Heaviside(x, 1)`` as ``(x >= 0)`` cast to float (the
lecture's ReLU convention), floats by their shortest exact ``repr``, and the stable
activation functions; ``erf`` as ``_erf``, the numpy helper a module that calls it carries
(``ops/special.py``).

It belongs to the op table (it is every elementwise op's printed form), so registering a
custom op can check that the op and its derivatives print as numpy over arrays
(:func:`check_printable`), and lowering prints with it.
"""

from __future__ import annotations

import functools

import sympy
from sympy.printing.numpy import NumPyPrinter
from sympy.printing.precedence import PRECEDENCE

from ..errors import GraphError
from .functions import stable_form, where

__all__ = ["GraphcPrinter", "FormulaPrinter", "print_expr", "print_formula", "check_printable", "unprintable_part",
           "guard_poles"]


class GraphcPrinter(NumPyPrinter):
    printmethod = "_graphccode"

    def __init__(self, settings=None, dtype: str = "float64"):
        super().__init__({"strict": True, "fully_qualified_modules": True, **(settings or {})})
        self.dtype = dtype  # the float type steps (masks) are cast to: the node's own

    def _print(self, expr, **kwargs):
        # numpy.sqrt(5) is a numpy.float64 scalar, and numpy widens a float32 array it
        # multiplies to float64; a Python float adopts the array's dtype, so in a node of a
        # narrower dtype an irrational number is printed as its (float64-rounded) value
        if self.dtype != "float64" and _irrational_number(expr):
            return self._print_Float(sympy.Float(expr.evalf(30)))
        return super()._print(expr, **kwargs)

    def _np(self, name: str) -> str:
        return self._module_format(f"numpy.{name}")

    def _print_Float(self, expr):
        number = float(expr)  # a folded constant may overflow float64: numpy's names, not a bare inf
        if number != number:
            return self._np("nan")
        return repr(number) if abs(number) != float("inf") else ("-" if number < 0 else "") + self._np("inf")

    def _print_Pow(self, expr, rational=False):
        # numpy cannot raise ints to negative int powers, so sympy prints x**(-1.0); our
        # values are floats, and 1/x reads better and is faster.
        if expr.exp.is_Integer and expr.exp < 0:
            base = self.parenthesize(expr.base, PRECEDENCE["Pow"])
            return f"1/{base}" if expr.exp == -1 else f"1/{base}**{-expr.exp}"
        return super()._print_Pow(expr, rational=rational)

    def _nested(self, function: str, args) -> str:
        printed = [self._print(a) for a in args]
        out = printed[0]
        for nxt in printed[1:]:
            out = f"{self._np(function)}({out}, {nxt})"
        return out

    def _print_Max(self, expr):
        return self._nested("maximum", sorted(expr.args, key=sympy.default_sort_key))

    def _print_Min(self, expr):
        return self._nested("minimum", sorted(expr.args, key=sympy.default_sort_key))

    def _print_Piecewise(self, expr):
        *branches, (last, last_cond) = expr.args
        if last_cond != sympy.true:
            raise GraphError(f"a Piecewise needs a final branch for 'otherwise': {expr}")
        out = self._branch(last)
        for value, cond in reversed(branches):
            out = f"{self._np('where')}({self._print(cond)}, {self._branch(value)}, {out})"
        return out

    def _branch(self, value):
        # where() of Python numbers alone is float64: a number branch carries the dtype
        if value.is_Number and self.dtype != "float64":
            return f"{self._np(self.dtype)}({self._print(value)})"
        return self._print(value)

    def _print_Heaviside(self, expr):
        arg = expr.args[0]
        at = expr.args[1] if len(expr.args) > 1 else sympy.Rational(1, 2)
        if at == 1:
            return f"({self._print(arg)} >= 0).astype({self._np(self.dtype)})"
        if at == 0:
            return f"({self._print(arg)} > 0).astype({self._np(self.dtype)})"
        return f"{self._np('heaviside')}({self._print(arg)}, {self._print(at)})"

    def _print_sigmoid(self, expr):
        return f"({self._print(stable_form(expr, self.dtype))})"  # the stable form (ops/functions.py)

    def _print_softplus(self, expr):
        return self._print(stable_form(expr, self.dtype))

    def _print_logaddexp(self, expr):
        return f"{self._np('logaddexp')}({', '.join(self._print(a) for a in expr.args)})"

    def _print_where(self, expr):
        condition, a, b = expr.args
        return f"{self._np('where')}({self._print(condition)}, {self._branch(a)}, {self._branch(b)})"

    def _print_sign(self, expr):
        return f"{self._np('sign')}({self._print(expr.args[0])})"

    def _print_erf(self, expr):
        # numpy has no erf: the generated module carries graphc's own (ops/special.py HELPERS)
        return f"_erf({self._print(expr.args[0])})"


def _irrational_number(expr) -> bool:
    """A real number sympy keeps exact but not as a ratio of ints (sqrt(5), exp(2), pi)."""
    return (isinstance(expr, sympy.Expr) and expr.is_number and not expr.is_Rational
            and not expr.is_Float and expr.is_real is True)


def _poles() -> dict:
    from sympy.codegen.cfunctions import log1p

    return {sympy.log: (0, 1), log1p: (-1, 0)}  # function: (its argument at -inf, an argument it takes safely)


POLES = _poles()


def _pole_of(e) -> tuple | None:
    """(argument, pole, safe argument) of a log or log1p not yet guarded, else None."""
    if getattr(e, "func", None) in POLES and len(e.args) == 1 and not isinstance(e.args[0], where):
        return (e.args[0], *POLES[e.func])
    return None


def _safe(e, u, pole, safe):
    """``e``'s function of ``u`` read where ``u`` is not its pole (``safe`` there): no -inf."""
    return e.func(where(sympy.Ne(u, pole), u, safe))


def _clamp(e):
    """``Max(c, log(u))`` as ``c`` where ``u`` is the pole, else ``Max(c, log(u read safely))``."""
    numbers = [a for a in e.args if a.is_Number and a.is_finite]
    others = [a for a in e.args if a not in numbers]
    if len(e.args) != 2 or len(numbers) != 1 or _pole_of(others[0]) is None:
        return None
    (c,), (f,) = numbers, others
    u, pole, safe = _pole_of(f)
    return where(sympy.Eq(u, pole), c, e.func(c, _safe(f, u, pole, safe)))


def _comparison(e):
    """``log(u) >= c`` as its value at -inf where ``u`` is the pole, else over ``u`` read safely."""
    offset, f = (e.lhs - e.rhs).as_coeff_Add()  # log(p) + 100 >= 0 is log(p) >= -100
    if not (offset.is_finite and _pole_of(f) is not None):
        return None
    u, pole, safe = _pole_of(f)
    away = e.func(_safe(f, u, pole, safe), -offset)
    if e.func(-sympy.oo, -offset) == sympy.true:
        return sympy.Or(sympy.Eq(u, pole), away)
    return sympy.And(sympy.Ne(u, pole), away)


@functools.lru_cache(maxsize=4096)
def guard_poles(expr: sympy.Expr) -> sympy.Expr:
    """``expr`` with every clamped log read away from its pole: same values, no log(0).

    A clamp such as bce's ``Max(-100, log(p))`` is declared finite at p = 0, and its
    derivative selects on ``log(p) >= -100``; printed as written, both compute log(0)
    (numpy's divide warning, an error under ``errstate(all="raise")``) only for the clamp
    to discard it. Here the log reads a safe argument where its own is the pole and the
    clamp takes its bound there, so the values are exactly those of the expression as
    written (NaN stays NaN: only the pole itself is read elsewhere).

    >>> p = sympy.Symbol("p", real=True)
    >>> guard_poles(sympy.Max(-100, sympy.log(p)))
    where(Eq(p, 0), -100, Max(-100, log(where(Ne(p, 0), p, 1))))
    >>> guard_poles(sympy.log(p) >= -100)
    Ne(p, 0) & (log(where(Ne(p, 0), p, 1)) >= -100)
    """
    def rewrite(e):
        if isinstance(e, (sympy.Max, sympy.Min)):
            return _clamp(e)
        if isinstance(e, sympy.core.relational.Relational):
            return _comparison(e)
        return None

    def walk(e):
        if not isinstance(e, sympy.Basic) or not e.args or not e.has(*POLES):
            return e  # only the parts holding a log are rebuilt
        args = [walk(a) for a in e.args]
        # Abs re-evaluated over an argument sympy cannot show real is sqrt(conjugate(z) z): keep it as written
        e = sympy.Abs(*args, evaluate=False) if isinstance(e, sympy.Abs) else e.func(*args)
        new = rewrite(e)
        return e if new is None else new

    return walk(expr)


_PRINTERS: dict[str, GraphcPrinter] = {"float64": GraphcPrinter()}  # one per dtype


def print_expr(expr: sympy.Expr, dtype: str = "float64") -> str:
    """numpy source for a sympy expression over symbols named by the namespace; steps
    (``Heaviside``) come out as masks of ``dtype``, the dtype of the node printed.

    >>> z = sympy.Symbol("z", real=True)
    >>> print_expr(sympy.Heaviside(z, 1), "float32")
    '(z >= 0).astype(numpy.float32)'
    >>> print_expr(sympy.Piecewise((1, z >= 0), (0.2, True)), "float32")
    'numpy.where(numpy.greater_equal(z, 0), numpy.float32(1), numpy.float32(0.2))'
    >>> print_expr(sympy.sqrt(5) * sympy.sqrt(z), "float32")  # numpy.sqrt(5) would widen z
    '2.23606797749979*numpy.sqrt(z)'
    """
    printer = _PRINTERS.get(dtype)
    if printer is None:
        printer = _PRINTERS[dtype] = GraphcPrinter(dtype=dtype)
    return printer.doprint(guard_poles(expr))


class FormulaPrinter(GraphcPrinter):
    """The formula a kernel's comment states: the code's expression as a reader says it.

    Steps are the boolean masks the kernel multiplies by (``(z >= 0)``, no cast), and the
    activations are named (``sigmoid(a)``, ``softplus(a)``), not written in the stable
    forms the kernel computes them in.
    """

    def _print_Heaviside(self, expr):
        at = expr.args[1] if len(expr.args) > 1 else sympy.Rational(1, 2)
        if at in (0, 1):
            return f"({self._print(expr.args[0])} {'>=' if at == 1 else '>'} 0)"
        return super()._print_Heaviside(expr)

    def _print_sigmoid(self, expr):
        return f"sigmoid({self._print(expr.args[0])})"

    def _print_softplus(self, expr):
        return f"softplus({self._print(expr.args[0])})"


_FORMULA_PRINTERS: dict[str, FormulaPrinter] = {}


def print_formula(expr: sympy.Expr, dtype: str = "float64") -> str:
    """The formula comment of a kernel computing ``expr``.

    >>> from graphc.ops.functions import sigmoid
    >>> z, g = sympy.symbols("z g", real=True)
    >>> print_formula(2 * g * sympy.Heaviside(z, 1)), print_formula(sympy.Symbol("a") * sigmoid(z))
    ('2*g*(z >= 0)', 'a*sigmoid(z)')
    """
    printer = _FORMULA_PRINTERS.get(dtype)
    if printer is None:
        printer = _FORMULA_PRINTERS[dtype] = FormulaPrinter(dtype=dtype)
    return printer.doprint(expr)


def unprintable_part(expr: sympy.Expr) -> tuple[sympy.Expr, str] | None:
    """The first part of ``expr`` that has no numpy form for arrays, and why; else None.

    A part fails when the strict printer refuses it, or prints it through a module other
    than numpy (sympy writes ``gamma`` as ``math.gamma``, which takes one number, not an array).

    >>> x = sympy.Symbol("x", real=True)
    >>> unprintable_part(sympy.exp(x) + sympy.gamma(x))[0]
    gamma(x)
    >>> unprintable_part(sympy.tanh(x)) is None
    True
    """
    whole = GraphcPrinter()
    try:
        whole.doprint(expr)
    except Exception:  # noqa: BLE001, S110 - find the part below
        pass
    else:
        if set(whole.module_imports) <= {"numpy"}:
            return None
    for part in sympy.postorder_traversal(expr):
        if part.is_Atom:
            continue
        printer = GraphcPrinter()
        try:
            printer.doprint(part)
        except Exception as error:  # noqa: BLE001 - the printer raises several kinds
            return part, str(error).splitlines()[0]
        others = sorted(set(printer.module_imports) - {"numpy"})
        if others:
            return part, f"it prints through {', '.join(others)}, which works on one number, not on arrays"
    return None


def check_printable(expr: sympy.Expr, op_name: str, what: str = "its expression") -> None:
    """Raise a GraphError naming the op and the function when ``expr`` has no numpy form."""
    problem = unprintable_part(expr)
    if problem is None:
        return
    part, why = problem
    function = getattr(part, "func", type(part)).__name__
    raise GraphError(
        f"op {op_name!r}: {what} {expr} uses {function} ({part}), which has no numpy form for arrays ({why}); "
        "write the op with functions numpy has (exp, log, sin, tanh, sqrt, Max, Piecewise, ...)"
    )
