"""The reference interpreter: the value of every node of any stage's graph, node by node.

``evaluate(graph, feeds)`` walks the graph in dependency order and computes each node
from the op table's own definitions, with no pass run and no code generated:

- an elementwise op from its scalar sympy definition (``ops.definition``), a fused kernel
  from the sympy expression it carries (``expr``), both turned into numpy calls by the
  small tree walker below (sympy's ``Add`` is ``+``, ``exp`` is ``numpy.exp``, ...);
- a tensor or composite op from its direct numpy definition (the op's ``reference``), the
  textbook formula rather than the stable expansion the compiler uses, so that the
  interpreter checks that expansion instead of sharing it.

It is the oracle the compiled paths are compared with (forward, gradients, the saved
module), and the evaluator constant folding uses. It shares nothing with the code
generator, so a wrong printed formula cannot agree with itself here.

>>> import graphc as gc
>>> g = gc.Graph("neuron"); x = g.input("x", shape=("N",)); w = g.param("w", shape=())
>>> _ = g.output("loss", gc.mean((w * x - 6) ** 2))
>>> values = gc.evaluate(g, {"x": [3.0, 1.0], "w": 1.5})
>>> values["mul"], float(values["loss"])
(array([4.5, 1.5]), 11.25)
>>> gc.evaluate(g, {"x": [3.0], "w": 2.0}, nodes=["loss"])
{'loss': array(0.)}

Every value has the node's declared dtype, computed in it (``dtype="float64"`` computes a
float32 graph in float64 instead, for numeric gradients). Symbolic dims (``N``) are bound
from the shapes of the feeds.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Mapping

import networkx as nx
import numpy as np
import sympy

from . import ir
from .errors import FeedError, GraphError, describe
from .ops.base import definition, freeze, op_for
from .ops.functions import sigmoid, softplus, where

__all__ = ["evaluate", "UnboundDimError", "numpy_function"]

SOURCES = ("input", "param")  # values that come from the feeds


class UnboundDimError(FeedError):
    """A node needs the size of a symbolic dim that no feed's shape tells."""


def evaluate(graph, feeds: Mapping, nodes: Iterable[str] | str | None = None, *,
             dtype: str | None = None) -> dict[str, np.ndarray]:
    """{node id: value} for every node of ``graph`` (or for ``nodes``), given ``feeds``.

    ``graph`` is a ``gc.Graph`` or a networkx graph of any stage (declared, optimized,
    differentiated, fused, scheduled); ``feeds`` maps input and param names (and, in a
    seeded joint graph, the seed input) to arrays. Only the nodes the requested ones
    depend on are computed, so only their sources need feeds.
    """
    graph = getattr(graph, "nx", graph)
    if not isinstance(graph, nx.DiGraph):
        raise GraphError(f"evaluate takes a gc.Graph or a networkx graph, found {type(graph).__name__}")
    wanted = _wanted(graph, nodes)
    needed = set(graph.nodes) if nodes is None else _upstream(graph, wanted)
    order = [n for n in _order(graph) if n in needed]
    values, dims = _bind_feeds(graph, feeds, [n for n in order if ir.op_of(graph, n) in SOURCES], dtype)
    with np.errstate(all="ignore"):  # log(0) is -inf here, as in the compiled program
        for node in order:
            if node not in values:
                values[node] = _value(graph, node, values, dims, dtype)
    return {node: values[node] for node in wanted}


def _wanted(graph: nx.DiGraph, nodes) -> list[str]:
    if nodes is None:
        return list(graph.nodes)
    wanted = [nodes] if isinstance(nodes, str) else list(nodes)
    for node in wanted:
        if node not in graph:
            raise GraphError(f"{describe(node)} is not in graph {graph.graph.get(ir.NAME)!r}; "
                             "ask evaluate for nodes of this graph")
    return wanted


def _upstream(graph: nx.DiGraph, wanted: list[str]) -> set[str]:
    """``wanted`` and everything they depend on, in one walk (linear in the graph)."""
    seen, stack = set(wanted), list(wanted)
    while stack:
        for source in graph.pred[stack.pop()]:
            if source not in seen:
                seen.add(source)
                stack.append(source)
    return seen


def _order(graph: nx.DiGraph) -> list[str]:
    """A topological order (any will do: each value depends only on its operands)."""
    try:
        return list(nx.topological_sort(graph))
    except nx.NetworkXUnfeasible:
        raise GraphError("the graph has a cycle; a computational graph must be acyclic (gc.verify names it)") from None


# -- feeds ------------------------------------------------------------------------------------

def _bind_feeds(graph: nx.DiGraph, feeds: Mapping, sources: list[str], dtype) -> tuple[dict, dict]:
    """The fed sources as arrays of their declared dtype, and {symbolic dim: size}."""
    if not isinstance(feeds, Mapping):
        raise FeedError(f"feeds must be a dict of name -> array, found {type(feeds).__name__}")
    for name in feeds:
        if name not in graph or ir.op_of(graph, name) not in SOURCES:
            known = sorted(n for n in graph.nodes if ir.op_of(graph, n) in SOURCES)
            raise FeedError(f"feed {name!r} is not an input or param of graph {graph.graph.get(ir.NAME)!r}; "
                            f"its inputs and params are {known!r}")
    values: dict[str, np.ndarray] = {}
    dims: dict[sympy.Symbol, int] = {}
    for name in sorted(feeds, key=str):  # every feed binds dims, needed or not
        values[name] = _fed(graph, name, feeds[name], dims, dtype)
    for name in sources:
        if name not in values:
            data = graph.nodes[name]
            raise FeedError(f"missing feed for {describe(name, data[ir.OP])} of shape {tuple(data[ir.SHAPE])}; "
                            f"add {name!r} to the feeds")
    return values, dims


def _fed(graph: nx.DiGraph, name: str, value, dims: dict, dtype) -> np.ndarray:
    data = graph.nodes[name]
    kind = np.dtype(dtype or data.get(ir.DTYPE, ir.DEFAULT_DTYPE))
    try:
        array = np.array(value, dtype=kind)  # a copy: the caller's array is never read later
    except (TypeError, ValueError):
        raise FeedError(f"feed {describe(name, data[ir.OP])}: cannot read {type(value).__name__} "
                        f"as a {kind.name} array") from None
    declared = tuple(data[ir.SHAPE])
    if array.ndim != len(declared):
        raise FeedError(f"feed {describe(name, data[ir.OP])} has shape {array.shape}, expected rank "
                        f"{len(declared)} (declared shape {declared})")
    for want, got in zip(declared, array.shape):
        if isinstance(want, sympy.Symbol):
            if dims.setdefault(want, got) != got:
                raise FeedError(f"feed {describe(name, data[ir.OP])} has shape {array.shape}: dim {want} is "
                                f"{got} here but {dims[want]} in another feed")
        elif int(want) != got:
            raise FeedError(f"feed {describe(name, data[ir.OP])} has shape {array.shape}, expected {declared}")
    return array


def _concrete(shape, dims: dict, node: str) -> tuple[int, ...]:
    out = []
    for d in shape:
        if isinstance(d, sympy.Expr) and d.free_symbols:
            unbound = sorted(str(s) for s in d.free_symbols if s not in dims)
            if unbound:
                raise UnboundDimError(f"{describe(node)} needs the size of dim {', '.join(unbound)}, "
                                      "which no feed's shape tells; feed a value that has it")
            d = d.xreplace(dims)
        out.append(int(d))
    return tuple(out)


# -- one node ---------------------------------------------------------------------------------

def _value(graph: nx.DiGraph, node: str, values: dict, dims: dict, dtype) -> np.ndarray:
    data = graph.nodes[node]
    op = op_for(graph, data[ir.OP], node)
    attrs = data.get(ir.ATTRS) or {}
    kind = np.dtype(dtype or data.get(ir.DTYPE, ir.DEFAULT_DTYPE))
    # computed in its dtype; a comparison (bool) or argmax (int64) reads its operands as they are
    compute = kind if kind.kind == "f" else None
    args = [values[a].astype(compute or values[a].dtype, copy=False) for a in ir.operands(graph, node)]
    shape = _concrete(data[ir.SHAPE], dims, node)
    if op.name == "const":
        result = np.array(attrs["value"], dtype=kind)
    elif op.elementwise:
        expr, symbols = _elementwise_expr(data, op, attrs)
        env = dict(dims)
        env.update(zip(symbols, args))
        missing = expr.free_symbols - set(env)
        if missing:
            raise UnboundDimError(f"{describe(node, op.name)}: its expression {expr} needs "
                                  f"{', '.join(sorted(map(str, missing)))}, which no feed's shape tells")
        result = np.broadcast_to(numpy_function(expr)(env), shape)  # a kernel may ignore an operand
    elif op.reference is not None:
        bound = {**attrs, "shape": _concrete(attrs["shape"], dims, node)} if attrs.get("shape") is not None else attrs
        result = op.reference(args, bound)
    else:
        how = "expand it first" if op.composite else "give it a reference (its numpy definition)"
        raise GraphError(f"{describe(node, op.name)} has no numpy definition the interpreter can run; {how}")
    result = np.array(result, dtype=kind)  # a copy of its own: no value aliases another
    if result.shape != shape:
        raise GraphError(f"{describe(node, op.name)}: its definition gives shape {result.shape}, but its "
                         f"shape rule says {shape}; the op table entry is inconsistent")
    return result


def _elementwise_expr(data: dict, op, attrs: dict) -> tuple[sympy.Expr, tuple]:
    if ir.EXPR in data:
        expr, symbols = data[ir.EXPR]
        return expr, tuple(symbols)
    lam = definition(op, freeze(attrs))
    return lam.expr, tuple(lam.variables)


# -- sympy expressions as numpy calls ---------------------------------------------------------

def _stable_sigmoid(x):
    # 1 / (1 + e^-x) for x >= 0 and e^x / (1 + e^x) below: neither side overflows
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _elementwise(fn: Callable) -> Callable:
    """A scalar math function applied over arrays (functions numpy lacks: erf, gamma)."""
    vectorized = np.vectorize(lambda v: _nan_on_error(fn, v), otypes=[np.float64])
    return lambda x: vectorized(x).astype(np.result_type(x, np.float32))


def _nan_on_error(fn, v):
    try:
        return fn(v)
    except (ValueError, OverflowError):
        return math.nan


_FUNCTIONS: dict[type, Callable] = {
    sympy.exp: np.exp, sympy.log: np.log, sympy.sin: np.sin, sympy.cos: np.cos, sympy.tan: np.tan,
    sympy.tanh: np.tanh, sympy.sinh: np.sinh, sympy.cosh: np.cosh, sympy.asin: np.arcsin,
    sympy.acos: np.arccos, sympy.atan: np.arctan, sympy.asinh: np.arcsinh, sympy.acosh: np.arccosh,
    sympy.atanh: np.arctanh, sympy.Abs: np.abs, sympy.sign: np.sign, sympy.floor: np.floor,
    sympy.ceiling: np.ceil, sympy.erf: _elementwise(math.erf), sympy.erfc: _elementwise(math.erfc),
    sympy.gamma: _elementwise(math.gamma), sympy.loggamma: _elementwise(math.lgamma),
    sigmoid: _stable_sigmoid, softplus: lambda x: np.logaddexp(0, x), where: np.where,
}
_RELATIONS: dict[type, Callable] = {
    sympy.GreaterThan: np.greater_equal, sympy.StrictGreaterThan: np.greater,
    sympy.LessThan: np.less_equal, sympy.StrictLessThan: np.less,
    sympy.Equality: np.equal, sympy.Unequality: np.not_equal,
}


def _cfunctions() -> dict[str, Callable]:
    from sympy.codegen import cfunctions  # log1p and friends: functions of their own in sympy

    return {cfunctions.log1p: np.log1p, cfunctions.expm1: np.expm1, cfunctions.log2: np.log2,
            cfunctions.exp2: np.exp2, cfunctions.log10: np.log10, cfunctions.Sqrt: np.sqrt,
            cfunctions.Cbrt: np.cbrt, cfunctions.hypot: np.hypot}


_FUNCTIONS.update(_cfunctions())


@functools.lru_cache(maxsize=8192)
def numpy_function(expr: sympy.Expr) -> Callable[[Mapping], np.ndarray]:
    """``expr`` as a function of {symbol: array} that calls numpy, built once per expression.

    >>> x = sympy.Symbol("x")
    >>> numpy_function(sympy.Max(x, 0) + sympy.exp(x))({x: np.array([-1.0, 0.0])})
    array([0.36787944, 1.        ])
    """
    return _walk(sympy.sympify(expr))


def _walk(e) -> Callable:
    if isinstance(e, sympy.Symbol):
        return lambda env: env[e]
    if e is sympy.true or e is sympy.false:
        flag = bool(e)
        return lambda env: flag
    if e.is_Number or e.is_NumberSymbol:
        number = math.nan if e is sympy.zoo or e is sympy.nan else float(e)
        return lambda env: number
    if isinstance(e, sympy.Piecewise):  # the first branch whose condition holds
        values, conditions = [_walk(v) for v, _ in e.args], [_walk(c) for _, c in e.args]
        return lambda env: np.select([np.asarray(c(env)) for c in conditions], [v(env) for v in values], np.nan)
    parts = [_walk(a) for a in e.args]
    if e.is_Add:
        return lambda env: functools.reduce(lambda a, b: a + b, (p(env) for p in parts))
    if e.is_Mul:
        return lambda env: functools.reduce(lambda a, b: a * b, (p(env) for p in parts))
    if e.is_Pow:
        return _power(e, parts)
    if isinstance(e, (sympy.Max, sympy.Min)):
        combine = np.maximum if isinstance(e, sympy.Max) else np.minimum
        return lambda env: functools.reduce(combine, (p(env) for p in parts))
    if isinstance(e, sympy.Heaviside):
        at = parts[1] if len(parts) > 1 else (lambda env: 0.5)  # sympy's Heaviside(0) = 1/2
        return lambda env: np.heaviside(parts[0](env), at(env))
    for kind, function in _RELATIONS.items():
        if isinstance(e, kind):
            return lambda env: function(parts[0](env), parts[1](env))
    if isinstance(e, (sympy.And, sympy.Or)):
        combine = np.logical_and if isinstance(e, sympy.And) else np.logical_or
        return lambda env: functools.reduce(combine, (p(env) for p in parts))
    if isinstance(e, sympy.Not):
        return lambda env: np.logical_not(parts[0](env))
    if isinstance(e, sympy.ITE):  # a condition chosen by a condition (fusing Piecewise into Piecewise)
        return lambda env: np.where(parts[0](env), parts[1](env), parts[2](env))
    function = _FUNCTIONS.get(type(e)) or _FUNCTIONS.get(getattr(e, "func", None))
    if function is not None and len(parts) == 1:
        return lambda env: function(parts[0](env))
    if function is not None:
        return lambda env: function(*(p(env) for p in parts))
    raise GraphError(f"the reference interpreter has no numpy definition for {type(e).__name__} (in {e}); "
                     "write the op with functions numpy has (exp, log, sin, tanh, sqrt, Max, Piecewise, ...)")


def _power(e, parts) -> Callable:
    base, exponent = parts
    if e.exp == sympy.Rational(1, 2):
        return lambda env: np.sqrt(base(env))
    if e.exp == sympy.Rational(-1, 2):
        return lambda env: 1 / np.sqrt(base(env))
    if e.exp.is_Integer:
        k = int(e.exp)  # x**2 as x*x, exactly, and 1/x for negative powers of float arrays
        return (lambda env: np.power(base(env), k)) if k >= 0 else (lambda env: 1 / np.power(base(env), -k))
    return lambda env: np.power(base(env), exponent(env))
