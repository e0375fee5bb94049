"""The sympy functions sigmoid and softplus evaluate numerically and know their sign."""

from __future__ import annotations

import math

import sympy

from graphc.ops.functions import sigmoid, softplus


def test_numeric_values():
    assert abs(float(sigmoid(2).evalf()) - 1 / (1 + math.exp(-2))) < 1e-15
    assert abs(float(softplus(1).evalf()) - math.log1p(math.e)) < 1e-15


def test_they_compare_and_fold():
    x = sympy.Symbol("x", real=True)
    assert softplus(x).is_positive and sigmoid(x).is_positive
    assert sympy.Max(softplus(1), softplus(2)) == softplus(2)
    assert (softplus(1) < 0) is sympy.false
