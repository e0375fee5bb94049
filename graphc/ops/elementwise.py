"""Elementwise ops: each is its scalar sympy definition, nothing more.

Derivatives come from ``sympy.diff`` of the definition (``base.local_partials``), the
numpy code from the printer, the drawing's formula from sympy's pretty printer. Operands
broadcast as in numpy. An op whose derivative has a kink declares its convention.
"""

from __future__ import annotations

import sympy
from sympy.codegen.cfunctions import log1p

from .. import shapes
from .base import Op, register
from .functions import sigmoid, softplus

__all__ = ["elementwise_shape", "elementwise_op", "add_elementwise"]


def elementwise_shape(arg_shapes, attrs, node=None, op=None):
    return shapes.broadcast(arg_shapes, node, op)


def heaviside_at(*values):
    """Convention: the k-th partial's Heaviside(e) takes the value ``values[k]`` at e = 0."""

    def convention(partial, index):
        at = sympy.Integer(values[min(index, len(values) - 1)])
        return partial.replace(sympy.Heaviside, lambda arg, *_: sympy.Heaviside(arg, at))

    return convention


def elementwise_op(name, arity, fn, *, commutative=False, attrs=None, kink="", convention=None,
                   doc="", builtin=True, function=None, algebraic=False) -> Op:
    """The record of one elementwise op: its scalar sympy definition is all there is to write.

    ``function`` names the user function made from it (``gc.<name>`` for built-in ops by
    default; "" for none, as for the loss terms the composite losses average);
    ``algebraic`` says that ``simplify`` may rewrite it with sympy and rebuild it.
    ``builtin=False`` makes a custom op, which the graphs using it carry.
    """
    if function is None:
        function = name if builtin else ""
    return Op(name=name, arity=arity, shape=elementwise_shape, elementwise=True,
              commutative=commutative, fn=fn, attrs=dict(attrs or {}), kink=kink,
              convention=convention, doc=doc, builtin=builtin, function=function, algebraic=algebraic)


def add_elementwise(name, arity, fn, **facets) -> Op:
    """Register the built-in elementwise op ``elementwise_op(name, arity, fn, **facets)``."""
    return register(elementwise_op(name, arity, fn, **facets))


# Arithmetic.
add_elementwise("add", 2, lambda a, b: a + b, commutative=True, doc="a + b", algebraic=True)
add_elementwise("sub", 2, lambda a, b: a - b, doc="a - b", algebraic=True)
add_elementwise("mul", 2, lambda a, b: a * b, commutative=True, doc="a * b", algebraic=True)
add_elementwise("div", 2, lambda a, b: a / b, doc="a / b", algebraic=True)
add_elementwise("pow", 2, lambda a, b: a**b, doc="a ** b", algebraic=True)
add_elementwise("neg", 1, lambda a: -a, doc="-a", algebraic=True)
add_elementwise("identity", 1, lambda a: a, doc="the identity (a linear unit's activation)", algebraic=True)
add_elementwise("square", 1, lambda a: a**2, doc="a ** 2", algebraic=True)
add_elementwise("sqrt", 1, sympy.sqrt, doc="square root", algebraic=True)
add_elementwise("exp", 1, sympy.exp, doc="e ** a", algebraic=True)
add_elementwise("log", 1, sympy.log, doc="natural logarithm", algebraic=True)
add_elementwise("log1p", 1, log1p, doc="log(1 + a), accurate for small a", algebraic=True)
add_elementwise("sin", 1, sympy.sin, doc="sine", algebraic=True)
add_elementwise("cos", 1, sympy.cos, doc="cosine", algebraic=True)
add_elementwise(
    "abs", 1, sympy.Abs, doc="|a|",
    kink="d|x|/dx = 0 at x = 0 (the subgradient sign(0))",
    algebraic=True,
)
add_elementwise(
    "maximum", 2, lambda a, b: sympy.Max(a, b), doc="the larger of a and b",
    kink="at a tie a == b the gradient goes to the first operand",
    convention=heaviside_at(1, 0),
)

# Activations.
add_elementwise(
    "relu", 1, lambda z: sympy.Max(z, 0), doc="max(z, 0)",
    kink="dReLU/dz = 0 if z < 0, 1 otherwise (z = 0 included)",
    convention=heaviside_at(1),
    algebraic=True,
)
add_elementwise(
    "leaky_relu", 1,
    lambda z, alpha=0.01: sympy.Piecewise((z, z >= 0), (alpha * z, True)),
    attrs={"alpha": 0.01}, doc="z if z >= 0 else alpha z",
    kink="d/dz = 1 if z >= 0 (z = 0 included), alpha otherwise",
)
add_elementwise("sigmoid", 1, sigmoid, doc="1 / (1 + exp(-z)), stable", algebraic=True)
add_elementwise("tanh", 1, sympy.tanh, doc="hyperbolic tangent", algebraic=True)
add_elementwise("softplus", 1, softplus, doc="log(1 + exp(z)), stable", algebraic=True)
# erf prints as the numpy helper the generated module carries (ops/special.py: why not scipy)
add_elementwise("erf", 1, sympy.erf, doc="the error function 2/sqrt(pi) * integral of exp(-t**2) from 0 to z")
add_elementwise(
    "gelu", 1, lambda z: z / 2 * (1 + sympy.erf(z / sympy.sqrt(2))),
    doc="z * Phi(z) = z/2 (1 + erf(z/sqrt(2))), exact (not the tanh approximation)",
)

# Loss terms (the composite losses average them).
add_elementwise(
    "squared_error", 2, lambda g, y: (g - y) ** 2, doc="(g - y)**2, the lecture's squared loss", function="",
)
add_elementwise(
    "bce_terms", 2,
    lambda p, y: -(y * sympy.Max(sympy.log(p), -100) + (1 - y) * sympy.Max(log1p(-p), -100)),
    doc="-(y log p + (1 - y) log(1 - p)), logs clamped at -100 so p in {0, 1} stays finite", function="",
    kink="where a log is clamped at -100 its derivative is 0",
    convention=heaviside_at(1),
)
add_elementwise(
    "bce_logits_terms", 2, lambda z, y: softplus(z) - y * z,
    doc="binary cross-entropy of sigmoid(z) written through the logit z: softplus(z) - y z", function="",
)
