"""sympy functions for activations that keep expressions short and their derivatives exact.

Both are positive for real arguments and evaluate numerically through their ``exp``
forms, so sympy can compare and fold them like any built-in function.

``sigmoid(x)`` and ``softplus(x)`` stay as single functions (instead of ``1/(1+exp(-x))``)
so that derivatives come out through the op's own output (sigmoid' = sigmoid (1 - sigmoid))
and the printer can emit numerically stable numpy for them.
"""

from __future__ import annotations

import sympy


class sigmoid(sympy.Function):  # noqa: N801 - sympy function classes are lower case
    """The logistic function 1 / (1 + exp(-x))."""

    def fdiff(self, argindex=1):
        return self * (1 - self)

    @classmethod
    def eval(cls, arg):
        if arg.is_zero:
            return sympy.Rational(1, 2)

    def _eval_rewrite_as_exp(self, arg, **kwargs):
        return 1 / (1 + sympy.exp(-arg))

    def _eval_is_real(self):
        return self.args[0].is_real

    def _eval_is_positive(self):
        return True if self.args[0].is_real else None

    def _eval_evalf(self, prec):
        return self.rewrite(sympy.exp)._eval_evalf(prec)


class softplus(sympy.Function):  # noqa: N801
    """log(1 + exp(x)), printed as the stable ``numpy.logaddexp(0, x)``."""

    def fdiff(self, argindex=1):
        return sigmoid(self.args[0])

    def _eval_rewrite_as_exp(self, arg, **kwargs):
        return sympy.log(1 + sympy.exp(arg))

    def _eval_is_real(self):
        return self.args[0].is_real

    def _eval_is_positive(self):
        return True if self.args[0].is_real else None

    def _eval_evalf(self, prec):
        return self.rewrite(sympy.exp)._eval_evalf(prec)


class logaddexp(sympy.Function):  # noqa: N801
    """log(exp(a) + exp(b)) without overflow: numpy's ``logaddexp``, a form to print, not to simplify."""

    def _eval_rewrite_as_exp(self, a, b, **kwargs):
        return sympy.log(sympy.exp(a) + sympy.exp(b))


# The one table of numerically stable numpy forms: each function is printed, and lowered
# into ufunc calls, as this expression of its argument in a dtype. sigmoid: 1/(1 + exp(-z))
# is exact in both tails, with the exponent capped at the dtype's largest finite argument
# of exp (EXP_LIMITS: 709 in float64, 88 in float32) so that z below it gives about the
# smallest normal number (1e-308, 1e-38) without an overflow. softplus: numpy.logaddexp(0, z). One
# exception: an in-place kernel holds a part in a buffer and may read it twice, so it
# writes a small array's sigmoid as e/(1 + e), e = exp(min(z, 40)), one ufunc fewer
# (lower/kernel.py).
# floor(log(finfo(dtype).max)): exp of anything above overflows in that dtype
EXP_LIMITS = {"float64": 709.0, "float32": 88.0, "float16": 11.0}

STABLE_FORMS = {
    sigmoid: lambda z, dtype: 1 / (1 + sympy.exp(sympy.Min(-z, sympy.Float(EXP_LIMITS.get(dtype, 709.0))))),
    softplus: lambda z, dtype: logaddexp(sympy.Integer(0), z),
}


def stable_form(expr: sympy.Expr, dtype: str = "float64") -> sympy.Expr | None:
    """``expr`` (a call of a function in STABLE_FORMS) in its stable form for ``dtype``, or None."""
    form = STABLE_FORMS.get(expr.func)
    return None if form is None else form(*expr.args, dtype)


__all__ = ["sigmoid", "softplus", "logaddexp", "EXP_LIMITS", "STABLE_FORMS", "stable_form"]


class where(sympy.Function):  # noqa: N801
    """``where(c, a, b)``: a where the condition c holds, else b, as ``numpy.where``.

    A form to print, never evaluated (but for a condition sympy has decided) or folded:
    unlike ``Piecewise``, which sympy pushes into powers (``1/Piecewise((p, c), (1, True))``
    becomes ``Piecewise((1/p, c), (1, True))``), it keeps a safe operand where it was put (``ops.base.select_steps``).
    Its derivative is taken branch by branch (the condition is piecewise constant).
    """

    nargs = 3

    @classmethod
    def eval(cls, condition, a, b):
        if condition is sympy.true:  # a condition sympy decided (Eq(p, 0) of a positive p)
            return a
        if condition is sympy.false:
            return b
        return None

    def _eval_derivative(self, s):
        condition, a, b = self.args
        return where(condition, a.diff(s), b.diff(s))

    # a selection between real arrays (graphc's values are real): real, so Max can compare it
    # even where its branches read names cse made, which know nothing of the parts they stand for
    def _eval_is_real(self):
        return True

    def _eval_is_extended_real(self):
        return True
