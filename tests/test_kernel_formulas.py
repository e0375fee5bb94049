"""A kernel's formula comment is printed once per expression and order of names
(graphc/lower/emit.py ``_real_formula``); it must be the text sympy prints over the real
names, whatever they are and however they sort."""

import itertools

import pytest
import sympy

from graphc.lower.backend import NUMPY
from graphc.lower.emit import _real_formula

a0, a1, a2 = (sympy.Symbol(f"__a{k}", real=True) for k in range(3))
d0 = sympy.Symbol("__d0", positive=True)

EXPRESSIONS = [
    a0 * (1 - a1**2),
    a0 - a1 + 2 * a2,
    sympy.tanh(a0 + a1) * a2 / d0,
    sympy.exp(-a0) * a1 - a2 * sympy.log(a1) + a0 * a2,
    sympy.Max(a0, a1) - sympy.Min(a1, a2),
    a0 * a1 * (a2 - a0) / (2 * d0),
    sympy.Heaviside(a0, 1) * a1 + a2**3,
]
NAMES = ["h", "W_1", "d_h", "x", "add_2", "Z", "a", "zz", "x.T", "_t0"]


def direct(expr, names):
    real = {s: sympy.Symbol(v, positive=True) if s.name.startswith("__d") else sympy.Symbol(v, real=True)
            for s, v in ((sympy.Symbol(k, positive=True) if k.startswith("__d") else sympy.Symbol(k, real=True), v)
                         for k, v in names.items())}
    return (NUMPY.formula or NUMPY.expression)(expr.xreplace(real), "float64")  # the comment's printer


@pytest.mark.parametrize("expr", EXPRESSIONS, ids=range(len(EXPRESSIONS)))
def test_the_formula_is_the_one_printed_over_the_real_names(expr):
    for chosen in itertools.permutations(NAMES, 3):  # every order of names, short and long, upper and lower
        names = {"__a0": chosen[0], "__a1": chosen[1], "__a2": chosen[2], "__d0": "N"}
        assert _real_formula(NUMPY, expr, names, "float64") == direct(expr, names), names


def test_a_value_read_twice_prints_as_one_name():
    names = {"__a0": "h", "__a1": "h", "__a2": "g"}
    expr = a0 * a1 + a2
    assert _real_formula(NUMPY, expr, names, "float64") == direct(expr, names) == "g + h**2"


def test_an_argument_named_like_a_dim_is_printed_directly():
    names = {"__a0": "N", "__a1": "x", "__a2": "y", "__d0": "N"}
    expr = a0 * a1 / d0 + a2
    assert _real_formula(NUMPY, expr, names, "float64") == direct(expr, names)
