"""sympy functions for activations that keep expressions short and their derivatives exact.

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


class softplus(sympy.Function):  # noqa: N801
    """log(1 + exp(x)), printed as the stable ``numpy.logaddexp(0, x)``."""

    def fdiff(self, argindex=1):
        return sigmoid(self.args[0])

    def _eval_rewrite_as_exp(self, arg, **kwargs):
        return sympy.log(1 + sympy.exp(arg))

    def _eval_is_real(self):
        return self.args[0].is_real


__all__ = ["sigmoid", "softplus"]
