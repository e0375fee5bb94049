"""The op functions users call: ``gc.relu(x)``, ``gc.sum(x, axis=0)``, ``gc.mse(g, y)``...

Each takes node handles (Python numbers become constants) and returns a node handle.
"""

from __future__ import annotations

import builtins
import inspect
from collections.abc import Callable

import sympy

from .builder import Node, apply
from .errors import GraphError
from .ops import OPS, Op
from .ops.base import select_steps
from .ops.elementwise import elementwise_op
from .ops.functions import sigmoid as sigmoid_fn
from .ops.functions import softplus as softplus_fn
from .ops.printing import check_printable
from .shapes import normalize


def _axis(axis):
    return tuple(axis) if isinstance(axis, (list, tuple)) else axis


# How the user functions take each attr (by its name, the same in every op).
ATTR_FORMS: dict[str, Callable] = {
    "axis": _axis,
    "keepdims": builtins.bool,
    "alpha": builtins.float,
    "shape": normalize,
    "axes": lambda axes: None if axes is None else tuple(axes),
}


def _operand_names(op: Op) -> tuple[str, ...]:
    return op.operand_names or (("x",) if op.arity == 1 else ("a", "b"))


def _signature(op: Op) -> inspect.Signature:
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    parameters = [inspect.Parameter(n, kind) for n in _operand_names(op)]
    parameters += [inspect.Parameter(a, kind, default=inspect.Parameter.empty if a in op.required else default)
                   for a, default in op.attrs.items()]
    return inspect.Signature(parameters)


def _doc(op: Op) -> str:
    what = op.doc[:1].upper() + op.doc[1:]
    if op.elementwise:
        return f"Elementwise: {op.doc}" + (" (numpy broadcasting)." if op.arity > 1 else ".")
    return f"{what}."


def _apply_variadic(op: Op, target, operands, attrs: dict) -> Node:
    if isinstance(operands, (Node, str)) or not hasattr(operands, "__iter__"):
        raise GraphError(f"gc.{op.function} takes a list of nodes (gc.{op.function}([a, b], axis=0)), "
                         f"found {type(operands).__name__}")
    return apply(target, *list(operands), **attrs)


def user_function(op: Op) -> Callable[..., Node]:
    """The user function of an op: operands (node handles or numbers), then its attrs.

    The function holds the op's record, so a custom op reaches each graph it is applied in
    (the graph then carries it).
    """
    signature = _signature(op)
    operand_names = _operand_names(op)
    target = op.name if op.builtin else op  # a built-in op is named; a custom one goes as its record

    def function(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        attrs = {a: ATTR_FORMS.get(a, lambda v: v)(bound.arguments[a]) for a in op.attrs}
        if op.arity < 0:  # variadic (concat, stack): the operands come as one sequence
            return _apply_variadic(op, target, bound.arguments[operand_names[0]], attrs)
        return apply(target, *(bound.arguments[n] for n in operand_names), **attrs)

    function.__name__ = function.__qualname__ = op.function
    function.__doc__ = _doc(op)
    function.__signature__ = signature
    function.__module__ = __name__
    return function


# One function per op entry that names one (``Op.function``), in the table's order.
OP_FUNCTIONS: list[str] = [op.function for op in OPS.values() if op.function and op.builtin]
globals().update({op.function: user_function(op) for op in OPS.values() if op.function and op.builtin})



def batch_norm(x, gamma, beta, eps: float = 1e-5, mean=None, var=None) -> Node:
    """Batch normalization: the batch's statistics (axis 0), or the given ``mean`` and ``var``.

    (x - mean) / sqrt(var + eps) * gamma + beta; the variance divides by n. Given statistics
    are usually running averages fed as inputs (the inference form).
    """
    if (mean is None) != (var is None):
        raise GraphError("gc.batch_norm: give both mean= and var= (the inference form), or neither")
    if mean is None:
        return apply("batch_norm", x, gamma, beta, eps=builtins.float(eps))
    return apply("batch_norm_given", x, gamma, beta, mean, var, eps=builtins.float(eps))


__all__ = ["apply", "elementwise", "batch_norm", *OP_FUNCTIONS]


def elementwise(name: str, fn: Callable, arity: int | None = None, *, kink: str = "") -> Callable[..., Node]:
    """An elementwise op from a sympy expression; it then works like a built-in one.

    ``fn`` builds a sympy expression from sympy symbols (one per operand). Its derivative,
    numpy code and drawing come from that expression. The op joins no global table: a
    graph it is applied in carries it (copies, compiled programs and saved files too), so
    another graph may define another op of the same name. The function's ``op`` is the
    op's record.

    >>> import sympy, graphc as gc
    >>> swish = gc.elementwise("swish", lambda x: x / (1 + sympy.exp(-x)))
    >>> g = gc.Graph(); x = g.input("x", shape=(3,))
    >>> swish(x).op, list(gc.ops.custom_ops(g)), "swish" in gc.ops.OPS
    ('swish', ['swish'], False)
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise GraphError(f"a custom op needs a name that is a Python identifier, found {name!r}")
    if name in OPS:
        raise GraphError(f"op {name!r} is built in; give the custom op another name")
    if not isinstance(kink, str) or not kink.isprintable():
        raise GraphError(f"custom op {name!r}: kink must be one line of printable text (it is printed as a "
                         f"comment in the generated code), found {kink!r:.80}")
    arity = _arity(fn) if arity is None else arity
    symbols = tuple(sympy.Symbol(f"x{k}", real=True) for k in range(arity))
    try:
        expr = sympy.sympify(fn(*symbols), strict=True)
    except Exception as error:  # noqa: BLE001 - anything fn raises is the user's error
        raise GraphError(f"custom op {name!r}: fn must build a sympy expression from sympy symbols: {error}") from None
    if not isinstance(expr, sympy.Expr) or not expr.free_symbols <= set(symbols):
        raise GraphError(
            f"custom op {name!r}: fn returned {expr!r}, which is not an expression of its "
            f"{arity} operand(s) only"
        )
    expr = recognize_activations(expr)
    check_printable(expr, name)
    for k, symbol in enumerate(symbols):  # the backward pass prints the derivatives too
        partial = select_steps(sympy.diff(expr, symbol)).replace(sympy.DiracDelta, lambda *_: sympy.S.Zero)
        check_printable(partial, name, f"its derivative in operand {k},")
    definition_expr = expr
    op: Op = elementwise_op(name, arity, lambda *xs: definition_expr.xreplace(dict(zip(symbols, xs))),
                            kink=kink, doc=str(expr), builtin=False)

    def function(*operands):
        return apply(op, *operands)

    function.__name__ = function.__qualname__ = name
    function.__doc__ = f"Custom elementwise op {name}: {expr}."
    function.op = op
    return function


def _sigmoid_of(e: sympy.Expr):
    """u when ``e`` is 1/(1 + exp(-u)), else None."""
    if e.is_Pow and e.exp == -1 and e.base.is_Add and len(e.base.args) == 2:
        one, other = sorted(e.base.args, key=lambda a: not a.is_Number)
        if one == 1 and isinstance(other, sympy.exp):
            return -other.args[0]
    return None


def _softplus_of(e: sympy.Expr):
    """u when ``e`` is log(1 + exp(u)), else None."""
    if isinstance(e, sympy.log) and e.args[0].is_Add and len(e.args[0].args) == 2:
        one, other = sorted(e.args[0].args, key=lambda a: not a.is_Number)
        if one == 1 and isinstance(other, sympy.exp):
            return other.args[0]
    return None


def recognize_activations(expr: sympy.Expr) -> sympy.Expr:
    """Rewrite 1/(1 + exp(-u)) as sigmoid(u) and log(1 + exp(u)) as softplus(u).

    Their derivatives then come out through the function itself (sigmoid' = s (1 - s))
    and they print in their stable forms.

    >>> x = sympy.Symbol("x", real=True)
    >>> recognize_activations(x / (1 + sympy.exp(-x)))
    x*sigmoid(x)
    """
    expr = expr.replace(lambda e: _sigmoid_of(e) is not None, lambda e: sigmoid_fn(_sigmoid_of(e)))
    return expr.replace(lambda e: _softplus_of(e) is not None, lambda e: softplus_fn(_softplus_of(e)))


def _arity(fn: Callable) -> int:
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 1  # sympy functions such as sympy.sin take one argument
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
                  and p.default is p.empty]
    return builtins.max(1, len(positional))
