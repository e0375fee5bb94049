"""What each op attribute may hold, checked by ``verify`` before any shape rule reads it.

An attribute keeps one meaning in every op that takes it (``axis`` of sum and of softmax,
``shape`` of reshape and of broadcast), so the kinds are a table by attribute name. A
value of the wrong kind (transpose ``axes=(1.0, 0.0)``, leaky_relu ``alpha="0.1"``,
``keepdims="yes"``, a const whose value is a str) is a GraphError naming the node, the
attribute, what it must be and what was found; an attribute not in the table is left to
its op's shape rule.

>>> check_attrs("t", "transpose", {"axes": (1, 0)})
>>> check_attrs("t", "transpose", {"axes": (1.0, 0.0)})
Traceback (most recent call last):
...
graphc.errors.GraphError: node 't' (op transpose): attr 'axes' must be None or a tuple of ints, found (1.0, 0.0)
"""

from __future__ import annotations

import numbers

import numpy as np
import sympy

from ..errors import GraphError, describe

__all__ = ["ATTR_KINDS", "check_attrs"]

NUMPY_MAX_RANK = 64


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _is_real(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _ints(value: object) -> bool:
    return isinstance(value, (tuple, list)) and len(value) <= NUMPY_MAX_RANK and all(_is_int(v) for v in value)


def _axis(value: object) -> bool:
    return value is None or _is_int(value) or _ints(value)


def _axes(value: object) -> bool:
    return value is None or _ints(value)


def _shape(value: object) -> bool:
    items = value if isinstance(value, (tuple, list)) else (value,)
    return len(items) <= NUMPY_MAX_RANK and all(_is_int(d) or isinstance(d, (str, sympy.Symbol)) for d in items)


def _flag(value: object) -> bool:
    return isinstance(value, (bool, np.bool_))


def _const_value(value: object) -> bool:
    if isinstance(value, np.ndarray):
        return value.dtype.kind in "biuf" and value.ndim <= NUMPY_MAX_RANK
    return isinstance(value, numbers.Real)


# attribute name -> (test, what it must be, for the message)
ATTR_KINDS: dict[str, tuple] = {
    "axis": (_axis, "None, an int or a tuple of ints"),
    "axes": (_axes, "None or a tuple of ints"),
    "keepdims": (_flag, "True or False"),
    "shape": (_shape, f"a tuple of at most {NUMPY_MAX_RANK} dims (ints or names)"),
    "alpha": (_is_real, "a real number"),
    "value": (_const_value, "a real number or an array of real numbers"),
    "kink": (lambda value: isinstance(value, str), "a str"),
}


def check_attrs(node: object, op: str, attrs: dict) -> None:
    """Raise a GraphError for the first attribute whose value is not of its kind."""
    for key, value in attrs.items():
        kind = ATTR_KINDS.get(key)
        if kind is None or value is None and key in _LEFT_TO_THE_OP:
            continue
        test, what = kind
        if not test(value):
            raise GraphError(f"{describe(node, op)}: attr {key!r} must be {what}, found {value!r:.80}")


_LEFT_TO_THE_OP = ("shape", "value")  # None there is the op's own error ("a const needs a value")
