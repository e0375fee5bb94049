"""The op table: one :class:`Op` entry per op, holding every facet of it side by side.

An entry has its arity, traits (elementwise, commutative), shape rule, and one of
- ``fn``: the scalar sympy definition of an elementwise op (``Lambda`` over symbols),
  from which derivatives come by ``sympy.diff`` (see :func:`local_partials`);
- ``lower``: how a tensor op prints, a short template over printed operands;
- ``expand``: for composite ops, their numerically stable expansion into primitives.
- ``reference``: for tensor and composite ops, their direct numpy definition (the oracle).
VJP rules of tensor ops live in ``graphc/ops/tensor.py`` next to their shape rules.

Two tables answer "which op is this name?", and :func:`op_for` asks both: the built-in
ops (``OPS``, read-only once ``graphc.ops`` is imported), and the custom ops a graph
carries (an :class:`OpRegistry` under the graph attribute ``ir.CUSTOM_OPS``), so two graphs
may each define their own ``swish`` and a graph file's ops never reach another graph.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

import sympy

from .. import ir
from ..errors import GraphError
from .functions import where

__all__ = ["Op", "OPS", "OpRegistry", "register", "seal", "get_op", "op_for", "custom_ops", "with_custom_op",
           "definition", "local_partials", "freeze", "const_number", "select_steps"]


@dataclass(frozen=True, eq=False)  # an op is its record: equal only to itself (and hashable so)
class Op:
    name: str
    arity: int  # -1: any number of operands (fused kernels)
    shape: Callable  # (arg_shapes, attrs, node) -> shape
    elementwise: bool = False
    commutative: bool = False
    algebraic: bool = False  # sympy manipulates its definition well and simplify can rebuild it
    fn: Callable | None = None  # elementwise: (*symbols, **attrs) -> sympy expression
    lower: Callable | None = None  # tensor ops: (ctx, args, attrs, node) -> numpy expression
    expand: Callable | None = None  # composite ops: (graph, args, attrs) -> result node
    vjp: Callable | None = None  # tensor ops: (graph, node, cotangent) -> per-operand cotangents
    # tensor and composite ops: (operand arrays, attrs with dims bound) -> array, the op's direct
    # numpy definition, which the reference interpreter (graphc/evaluate.py) runs
    reference: Callable | None = None
    attrs: dict = field(default_factory=dict)  # attribute name -> default (None: required)
    kink: str = ""  # the convention at points where the derivative does not exist
    convention: Callable | None = None  # (partial, operand index) -> partial obeying ``kink``
    doc: str = ""
    builtin: bool = True
    # the user function ``gc.<function>(*operands, **attrs)`` made from this entry ("" for none),
    # its operands' parameter names (default x, or a and b) and the attrs it must be given
    function: str = ""
    operand_names: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    # (operand dtypes) -> the node's dtype, for ops whose value is not of their operands'
    # dtype (a comparison is bool, argmax int64); None: the first non-const operand's
    dtype: Callable | None = None
    # operand positions that may read an int64 input (class labels); everywhere else an
    # int64 input is refused where it is used
    int_operands: tuple[int, ...] = ()

    @property
    def composite(self) -> bool:
        return self.expand is not None

    @property
    def source(self) -> bool:
        return self.arity == 0


_BUILTINS: dict[str, Op] = {}
OPS: Mapping[str, Op] = types.MappingProxyType(_BUILTINS)  # the built-in ops, read-only
_sealed = False


def register(op: Op) -> Op:
    """Add a built-in op to the table, while ``graphc.ops`` is being imported.

    A name is taken once; built-in ops are final: once ``graphc.ops`` is imported the
    table is sealed, and a new op is a custom op that a graph carries (:func:`with_custom_op`).
    """
    if _sealed:
        raise GraphError(f"op {op.name!r}: the built-in op table is final once graphc is imported; make it a "
                         "custom op (Op(..., builtin=False), used through gc.apply(op, ...)), which the graph "
                         "using it carries")
    if not op.builtin:
        raise GraphError(f"op {op.name!r} is a custom op (builtin=False): a graph carries it, the built-in "
                         "table does not; use it through gc.apply(op, ...)")
    if op.name in _BUILTINS:
        raise GraphError(f"op {op.name!r} is already in the op table (built in); choose another name")
    _BUILTINS[op.name] = op
    return op


def seal() -> None:
    """Freeze the built-in table (``graphc.ops`` calls it once every built-in is registered)."""
    global _sealed
    _sealed = True


class OpRegistry(Mapping):
    """The custom ops one graph carries: an immutable map from name to :class:`Op`.

    Adding an op (:meth:`with_op`) gives a new registry, so a graph and its copies share
    one registry until one of them adds an op, and the others never see it.

    >>> square_plus = Op("square_plus", 1, lambda shapes, attrs, node=None, op=None: shapes[0],
    ...                  elementwise=True, fn=lambda x: x**2 + 1, builtin=False)
    >>> ops = OpRegistry().with_op(square_plus)
    >>> list(ops), ops["square_plus"] is square_plus, len(OpRegistry())
    (['square_plus'], True, 0)
    """

    __slots__ = ("_ops",)

    def __init__(self, ops: Iterable[Op] = ()):
        self._ops: dict[str, Op] = {}
        for op in ops:
            self._ops = self.with_op(op)._ops

    def __getitem__(self, name: str) -> Op:
        return self._ops[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._ops)

    def __len__(self) -> int:
        return len(self._ops)

    def __repr__(self) -> str:
        return f"OpRegistry({sorted(self._ops)})"

    def __copy__(self) -> OpRegistry:
        return self  # immutable: copies of a graph share it

    def __deepcopy__(self, memo) -> OpRegistry:
        return self

    def with_op(self, op: Op) -> OpRegistry:
        """This registry with ``op`` added; a built-in name, or a name this registry gives
        another definition, is refused."""
        if not isinstance(op, Op):
            raise GraphError(f"a custom op must be an Op record, found {type(op).__name__}")
        if op.name in _BUILTINS:
            raise GraphError(f"op {op.name!r} is built in; give the custom op another name")
        known = self._ops.get(op.name)
        if known is op:
            return self
        if known is not None and not same_definition(known, op):
            raise GraphError(f"custom op {op.name!r}: this graph already has an op of that name with another "
                             f"definition ({_shown(known)} vs {_shown(op)}); rename one of them")
        if known is not None:
            return self
        out = OpRegistry()
        out._ops = {**self._ops, op.name: op}
        return out


def _shown(op: Op) -> str:
    return str(definition(op).expr) if op.elementwise and not op.attrs else (op.doc or "a tensor op")


def same_definition(a: Op, b: Op) -> bool:
    """Whether two custom ops of one name compute the same thing (the same elementwise
    expression, arity and kink), so that one graph may meet both."""
    if a is b:
        return True
    return (a.elementwise and b.elementwise and not a.attrs and not b.attrs and a.arity == b.arity
            and a.kink == b.kink and definition(a).expr == definition(b).expr)


EMPTY = OpRegistry()


def custom_ops(graph) -> OpRegistry:
    """The custom ops ``graph`` (an IR graph or a ``gc.Graph``) carries."""
    graph = getattr(graph, "nx", graph)
    return graph.graph.get(ir.CUSTOM_OPS) or EMPTY


def with_custom_op(graph, op: Op) -> Op:
    """Make ``op`` known to ``graph`` (a built-in op needs nothing); return it."""
    if op.builtin and _BUILTINS.get(op.name) is op:
        return op
    graph = getattr(graph, "nx", graph)
    graph.graph[ir.CUSTOM_OPS] = custom_ops(graph).with_op(op)
    return op


def get_op(name: str, node: object = None) -> Op:
    """The built-in op ``name`` (ops of one graph: :func:`op_for`)."""
    try:
        return _BUILTINS[name]
    except (KeyError, TypeError):
        raise _unknown(name, node, EMPTY) from None


def op_for(graph, name: str, node: object = None) -> Op:
    """The op ``name`` as ``graph`` knows it: a built-in op, or one of the graph's custom ops.

    >>> from graphc import ir
    >>> op_for(ir.new_graph(), "relu").kink[:7]
    'dReLU/d'
    """
    try:
        return _BUILTINS[name]
    except KeyError:
        pass
    except TypeError:
        raise _unknown(name, node, EMPTY) from None
    registry = getattr(graph, "nx", graph).graph.get(ir.CUSTOM_OPS)
    if registry is not None and name in registry:
        return registry[name]
    raise _unknown(name, node, registry or EMPTY)


def _unknown(name, node, registry: OpRegistry) -> GraphError:
    where = f"node {str(node)!r}: " if node is not None else ""
    custom = f"; this graph's custom ops are {', '.join(sorted(registry))}" if registry else ""
    return GraphError(
        f"{where}unknown op {name!r}; known ops are {', '.join(sorted(_BUILTINS))}{custom}; "
        "add a custom elementwise op with gc.elementwise(name, fn) and apply it to the graph's nodes"
    )


def _op(op: Op | str) -> Op:
    return op if isinstance(op, Op) else get_op(op)


_ATOMS = frozenset((type(None), bool, int, float, str))


def freeze(value: object) -> object:
    """A hashable, order-stable form of an attrs value (dicts, lists, arrays)."""
    if isinstance(value, dict):  # a number, a name or None is its own frozen form: no call for it
        return tuple(sorted((str(k), v if type(v) in _ATOMS else freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    if hasattr(value, "tobytes") and hasattr(value, "dtype"):
        return ("array", str(value.dtype), tuple(value.shape), value.tobytes())
    return value


def arg_symbols(arity: int) -> tuple[sympy.Symbol, ...]:
    """The scalar symbols ``x0, x1, ...`` an elementwise definition is written over."""
    return tuple(sympy.Symbol(f"x{k}", real=True) for k in range(arity))


def const_number(value) -> sympy.Expr:
    """A scalar const as a sympy number: integral values as Integer (so ``x**2`` stays so)."""
    number = float(value)
    if number.is_integer() and abs(number) < 2**53:
        return sympy.Integer(int(number))
    return sympy.Float(number)


OUT = sympy.Symbol("y", real=True)  # the op's own output, for derivatives that reuse it


def definition(op: Op | str, frozen_attrs: tuple = ()) -> sympy.Lambda:
    """The scalar definition of an elementwise op (an :class:`Op`, or a built-in op's name)
    as a ``sympy.Lambda``."""
    return _definition(_op(op), frozen_attrs)


@functools.lru_cache(maxsize=4096)
def _definition(op: Op, frozen_attrs: tuple) -> sympy.Lambda:
    if not op.elementwise:
        raise GraphError(f"op {op.name!r} is not elementwise and has no scalar definition")
    symbols = arg_symbols(op.arity)
    return sympy.Lambda(symbols, sympy.sympify(op.fn(*symbols, **dict(frozen_attrs))))


def local_partials(op: Op | str, frozen_attrs: tuple = (), constants: tuple = ()) -> tuple[sympy.Expr, ...]:
    """d out / d operand_k for each operand, over ``x0..`` and the output ``y``.

    Derived once per (op, attrs, constant operands) by ``sympy.diff`` of the definition
    (constant operands, given as ``(index, value)`` pairs, are substituted first, so that
    ``x ** 2`` differentiates to ``2 x``), with the op's kink convention applied, then
    re-expressed through the output where that removes the operands (sigmoid' = y (1 - y),
    tanh' = 1 - y**2, exp' = y): the backward pass then reuses the forward value instead
    of recomputing it. ``op`` is an :class:`Op`, or a built-in op's name.
    """
    return _local_partials(_op(op), frozen_attrs, constants)


@functools.lru_cache(maxsize=4096)
def _local_partials(op: Op, frozen_attrs: tuple, constants: tuple) -> tuple[sympy.Expr, ...]:
    lam = _definition(op, frozen_attrs)
    body = lam.expr.subs({lam.variables[k]: value for k, value in constants})
    partials = []
    for symbol in lam.variables:
        partial = sympy.powsimp(sympy.diff(body, symbol))
        if op.convention is not None:
            partial = op.convention(partial, len(partials))
        partials.append(_through_output(select_steps(partial), body))
    return tuple(partials)


def select_steps(partial: sympy.Expr) -> sympy.Expr:
    """Products of a step and a factor that may be infinite where the step is 0, as selections.

    A kink convention says "the derivative is 0 where a branch is not taken" (a clamp's
    flat side): ``Heaviside(c, 1) * (1 - y)/(1 - p)`` must be 0 where ``c < 0``, even where
    ``1/(1 - p)`` is infinite, and 0 * inf is NaN. So such a product becomes
    ``Piecewise((factor, c >= 0), (0, True))``, which selects, and whose factor divides by
    1 where ``c < 0`` (numpy computes the discarded branch too). A polynomial factor (relu's
    ``g * Heaviside(z, 1)``) is finite wherever its operands are, and stays a product.

    >>> p, y = sympy.symbols("p y", real=True)
    >>> select_steps(sympy.Heaviside(sympy.log(p) + 100, 1) * y / p)
    Piecewise((y/where(log(p) + 100 >= 0, p, 1), log(p) >= -100), (0, True))
    >>> select_steps(y * sympy.Heaviside(p, 1))
    y*Heaviside(p, 1)
    """
    def selected(product: sympy.Expr) -> sympy.Expr:
        steps = [f for f in sympy.Mul.make_args(product) if isinstance(f, sympy.Heaviside)]
        if not steps:
            return product
        factor = sympy.Mul(*[f for f in sympy.Mul.make_args(product) if f != steps[0]])
        if factor.is_polynomial(*factor.free_symbols):
            return product
        arg = steps[0].args[0]
        at = steps[0].args[1] if len(steps[0].args) > 1 else sympy.S.Half  # sympy's value at 0
        factor = selected(factor)
        if at == 1:
            return sympy.Piecewise((_divisors_read_where(factor, arg >= 0), arg >= 0), (0, True))
        if at == 0:
            return sympy.Piecewise((_divisors_read_where(factor, arg > 0), arg > 0), (0, True))
        return sympy.Piecewise((_divisors_read_where(factor, arg > 0), arg > 0),
                               (at * _divisors_read_where(factor, sympy.Eq(arg, 0)), sympy.Eq(arg, 0)), (0, True))

    return partial.replace(lambda e: e.is_Mul and any(isinstance(f, sympy.Heaviside) for f in e.args), selected)


def _divisors_read_where(factor: sympy.Expr, condition) -> sympy.Expr:
    """``factor`` with each divisor read as 1 where ``condition`` fails (the safe operand).

    numpy's ``where`` computes both branches: the branch a selection discards must not
    divide by zero (a warning, an error under ``errstate(all="raise")``). Where the
    condition holds, every value is the one written.
    """
    def guarded(power):
        return sympy.Pow(where(condition, power.base, 1), power.exp)

    return factor.replace(lambda e: e.is_Pow and e.exp.is_Number and e.exp.is_negative, guarded)


def _through_output(partial: sympy.Expr, body: sympy.Expr) -> sympy.Expr:
    if body.is_Atom or body.is_Add or body.is_Mul:
        return partial  # the output of a sum or product is no cheaper than its operands
    reused = partial.subs(body, OUT)
    operands_left = reused.free_symbols - {OUT}
    if reused != partial and not operands_left:
        return reused
    return partial
