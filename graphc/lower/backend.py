"""A backend: what lowering needs to print a plan for one array library.

Lowering prints every step of a plan with a backend's three parts: its ``expression``
printer (an elementwise expression as one array expression), its ``kernel`` printer (an
elementwise expression as in-place ufunc calls into owned buffers) and its tensor-op
lowerings (a short template per op: ``a @ b``, ``x.sum(axis=0)``). numpy is the first
backend; its tensor-op lowerings are the numpy forms the op table's entries carry
(``Op.lower``), and a backend may register its own per op.

>>> from graphc.ops.base import get_op
>>> NUMPY.name, NUMPY.module
('numpy', 'numpy')
>>> NUMPY.lowering(get_op("matmul")) is get_op("matmul").lower
True
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import GraphError
from ..ops.base import Op
from ..ops.tensor import lower_sum_of_squares
from .kernel import kernel_lines
from .printer import print_expr, print_formula

__all__ = ["Backend", "NUMPY", "BACKENDS", "register_backend", "get_backend"]


def _numpy_scalar(text: str, dtype: str) -> str:
    return f"numpy.{dtype}({text})"


def _numpy_copy(text: str) -> str:
    return f"{text}.copy()"


def _numpy_array(text: str, dtype: str) -> str:
    return f"numpy.array({text}, dtype=numpy.{dtype})"


def _numpy_transposed(text: str, rank: int) -> str:
    return f"{text}.T"


@dataclass(frozen=True, eq=False)  # one object per backend: hashed by identity (kernel templates cache on it)
class Backend:
    name: str
    module: str  # the module the generated code imports and calls (``numpy.exp``)
    expression: Callable  # (sympy expression, dtype) -> source text
    kernel: Callable  # kernel_lines' signature: (expr, target, leaf shapes, donors, module, shape text, shape, dtype)
    lowerings: dict[str, Callable] = field(default_factory=dict)  # op name -> (ctx, args, attrs, node) -> text
    uses_op_table: bool = False  # fall back on the op table's own (numpy) lowering
    formula: Callable | None = None  # (expr, dtype) -> a kernel's formula comment; None: ``expression``
    # the few forms a statement needs besides expressions and tensor ops
    scalar: Callable[[str, str], str] = _numpy_scalar  # (number text, dtype) -> a 0-d value of that dtype
    copy: Callable[[str], str] = _numpy_copy  # an array the caller will own
    array: Callable[[str, str], str] = _numpy_array  # (value text, dtype) -> a fresh array of that dtype
    transposed: Callable[[str, int], str] = _numpy_transposed  # (value text, rank) -> its axes reversed
    writes_in_place: bool = True  # ``out=`` and ``p[...] = v``: the in-place kernels and sgd_step
    # a bool array multiplies a float one as 0 or 1 (numpy); False: an expression turns it into
    # where(b, 1, 0) first (the array API standard has no arithmetic on bools)
    bool_arithmetic: bool = True

    def lowering(self, op: Op) -> Callable | None:
        """How this backend writes a tensor op, or None when it cannot."""
        own = self.lowerings.get(op.name)
        if own is not None:
            return own
        return op.lower if self.uses_op_table else None

    def register(self, op_name: str, lower: Callable) -> None:
        """Give this backend its own lowering of ``op_name``."""
        self.lowerings[op_name] = lower


BACKENDS: dict[str, Backend] = {}


def register_backend(backend: Backend) -> Backend:
    if backend.name in BACKENDS:
        raise GraphError(f"backend {backend.name!r} is already registered; choose another name")
    BACKENDS[backend.name] = backend
    return backend


def get_backend(name: str) -> Backend:
    try:
        return BACKENDS[name]
    except KeyError:
        raise GraphError(f"unknown backend {name!r}; the backends are {', '.join(sorted(BACKENDS))}") from None


NUMPY = register_backend(Backend("numpy", "numpy", print_expr, kernel_lines, uses_op_table=True,
                                 formula=print_formula, lowerings={"sum_of_squares": lower_sum_of_squares}))
