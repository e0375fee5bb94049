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
from .ops.elementwise import add_elementwise
from .ops.printing import check_printable

__all__ = [
    "apply", "relu", "leaky_relu", "sigmoid", "tanh", "softplus", "identity", "exp", "log", "log1p",
    "sin", "cos", "sqrt", "abs", "square", "neg", "maximum", "add", "sub", "mul", "div", "pow",
    "matmul", "transpose", "reshape", "sum", "mean", "max", "broadcast_to", "stop_gradient",
    "softmax", "log_softmax", "logsumexp", "mse", "bce", "bce_with_logits",
    "softmax_cross_entropy", "elementwise",
]


def _unary(name: str) -> Callable[[Node], Node]:
    def function(x):
        return apply(name, x)

    function.__name__ = function.__qualname__ = name
    function.__doc__ = f"Elementwise {OPS[name].doc}."
    return function


def _binary(name: str) -> Callable[[Node, Node], Node]:
    def function(a, b):
        return apply(name, a, b)

    function.__name__ = function.__qualname__ = name
    function.__doc__ = f"Elementwise {OPS[name].doc} (numpy broadcasting)."
    return function


relu = _unary("relu")
sigmoid = _unary("sigmoid")
tanh = _unary("tanh")
softplus = _unary("softplus")
identity = _unary("identity")
exp = _unary("exp")
log = _unary("log")
log1p = _unary("log1p")
sin = _unary("sin")
cos = _unary("cos")
sqrt = _unary("sqrt")
abs = _unary("abs")  # noqa: A001 - the op's name
square = _unary("square")
neg = _unary("neg")
stop_gradient = _unary("stop_gradient")
maximum = _binary("maximum")
add = _binary("add")
sub = _binary("sub")
mul = _binary("mul")
div = _binary("div")
pow = _binary("pow")  # noqa: A001


def leaky_relu(x, alpha: float = 0.01) -> Node:
    """z if z >= 0 else alpha z."""
    return apply("leaky_relu", x, alpha=float(alpha))


def matmul(a, b) -> Node:
    """a @ b."""
    return apply("matmul", a, b)


def transpose(x, axes=None) -> Node:
    """Permute axes; reverse them when ``axes`` is None."""
    return apply("transpose", x, axes=None if axes is None else tuple(axes))


def reshape(x, shape) -> Node:
    """The same elements in a new shape (str dims are symbolic)."""
    from .shapes import normalize

    return apply("reshape", x, shape=normalize(shape))


def _axis(axis):
    return tuple(axis) if isinstance(axis, (list, tuple)) else axis


def sum(x, axis=None, keepdims: bool = False) -> Node:  # noqa: A001
    """Sum over ``axis`` (all axes when None)."""
    return apply("sum", x, axis=_axis(axis), keepdims=builtins.bool(keepdims))


def mean(x, axis=None, keepdims: bool = False) -> Node:
    """Mean over ``axis`` (all axes when None)."""
    return apply("mean", x, axis=_axis(axis), keepdims=builtins.bool(keepdims))


def max(x, axis=None, keepdims: bool = False) -> Node:  # noqa: A001
    """Largest element over ``axis`` (all axes when None)."""
    return apply("max", x, axis=_axis(axis), keepdims=builtins.bool(keepdims))


def broadcast_to(x, shape) -> Node:
    """Broadcast to ``shape`` as numpy does."""
    from .shapes import normalize

    return apply("broadcast", x, shape=normalize(shape))


def softmax(x, axis: int = -1) -> Node:
    """exp(x) / sum(exp(x)) over ``axis``, computed with the max shift."""
    return apply("softmax", x, axis=axis)


def log_softmax(x, axis: int = -1) -> Node:
    """x - logsumexp(x) over ``axis``."""
    return apply("log_softmax", x, axis=axis)


def logsumexp(x, axis=None, keepdims: bool = False) -> Node:
    """log(sum(exp(x))) over ``axis``, computed with the max shift."""
    return apply("logsumexp", x, axis=_axis(axis), keepdims=builtins.bool(keepdims))


def mse(pred, target) -> Node:
    """Mean squared error over all elements: 1/n sum (g - y)**2."""
    return apply("mse", pred, target)


def bce(p, target) -> Node:
    """Binary cross-entropy (the lecture's NLL) of probabilities, mean over all elements."""
    return apply("bce", p, target)


def bce_with_logits(logits, target) -> Node:
    """Binary cross-entropy of sigmoid(logits), computed from the logits, mean over elements."""
    return apply("bce_with_logits", logits, target)


def softmax_cross_entropy(logits, onehot, axis: int = -1) -> Node:
    """Cross-entropy of softmax(logits) against one-hot rows, mean over rows."""
    return apply("softmax_cross_entropy", logits, onehot, axis=axis)


def elementwise(name: str, fn: Callable, arity: int | None = None, *, kink: str = "") -> Callable[..., Node]:
    """Add an elementwise op from a sympy expression; it then works like a built-in one.

    ``fn`` builds a sympy expression from sympy symbols (one per operand). Its derivative,
    numpy code and drawing come from that expression.

    >>> import sympy, graphc as gc
    >>> swish = gc.elementwise("swish", lambda x: x / (1 + sympy.exp(-x)))
    >>> g = gc.Graph(); x = g.input("x", shape=(3,))
    >>> swish(x).op
    'swish'
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise GraphError(f"a custom op needs a name that is a Python identifier, found {name!r}")
    existing = OPS.get(name)
    if existing is not None and existing.builtin:
        raise GraphError(f"op {name!r} is built in; give the custom op another name")
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
    op: Op = add_elementwise(name, arity, lambda *xs: definition_expr.xreplace(dict(zip(symbols, xs))),
                             kink=kink, doc=str(expr), builtin=False, replace=existing is not None)

    def function(*operands):
        return apply(op.name, *operands)

    function.__name__ = function.__qualname__ = name
    function.__doc__ = f"Custom elementwise op {name}: {expr}."
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
    from .ops.functions import sigmoid as sigmoid_fn
    from .ops.functions import softplus as softplus_fn

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
