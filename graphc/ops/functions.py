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


__all__ = ["sigmoid", "softplus"]
