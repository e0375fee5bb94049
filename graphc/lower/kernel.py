"""Elementwise kernels as in-place ufunc calls: what an expert writes for big arrays.

``a*b + c`` printed as one numpy expression allocates a fresh array for every operation.
A kernel instead calls one ufunc per operation and writes into a buffer it already owns
(``out=``) whenever the result has that buffer's shape: the first operation allocates,
the rest reuse. Operands that die at this statement (``donors``) are owned too, so a
backward step such as ``d_a = d_add * x`` can write straight into ``d_add``. Parts the
kernel has no ufunc for are printed by the printer as one expression.

Shapes decide every reuse: the shape of a part is the broadcast of its operands' shapes,
and a buffer is reused only for a result of exactly its shape (never a scalar).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import sympy
from sympy.codegen.cfunctions import expm1, log1p

from .. import shapes
from ..ops.functions import STABLE_FORMS, logaddexp, sigmoid, stable_form
from ..ops.printing import guard_poles
from .printer import print_expr

__all__ = ["kernel_lines", "repeats"]

UNARY = {
    sympy.exp: "exp", sympy.log: "log", sympy.tanh: "tanh", sympy.sin: "sin", sympy.cos: "cos",
    sympy.Abs: "absolute", sympy.sign: "sign", log1p: "log1p", expm1: "expm1",
}


# past 40, 1/(1 + exp(-z)) rounds to 1 in float64 (exp(-37.5) is half an ulp of 1) and in
# float32, and exp(40) is finite in both: the sigmoid kernel's cap on its exponent
SIGMOID_CAP = "40.0"
# a sigmoid of at most this many elements known when compiling (a symbolic dim, the batch,
# counts as 1: an (N, 2) layer is small, an (N, 4096) one is not) is written in four calls
# and a fresh buffer, a bigger one in place in five: on small arrays the calls are the
# time, on big ones the passes over memory and the buffers (512x4096 is 16 MB)
SMALL = 256


@dataclass
class Value:
    text: str  # a name or a literal
    shape: tuple | None  # None: a number
    owned: bool  # a buffer this statement may overwrite
    boolean: bool = False  # a comparison's result: a factor, never a buffer or a result


class _Kernel:
    def __init__(self, leaf_shapes: dict[sympy.Symbol, tuple], donors: set[str], numpy: str = "numpy",
                 dtype: str = "float64", shared_donors: dict[str, int] | None = None):
        self.leaf_shapes = dict(leaf_shapes)  # shared parts are added: never the caller's dict
        # 0-d leaves (a cotangent seed, a saved scalar) are numbers to the kernel: they join
        # the coefficient (``(2/3)*d_loss``) instead of costing a pass over the array
        self.arrays = {s for s, shape in self.leaf_shapes.items() if tuple(shape)}
        self.donors = set(donors)
        # donors read more than once: name -> reads not yet made. The read that makes it 0
        # may write into the buffer once no value printed earlier still stands for it
        # (``pending``): s*(1 - s) multiplies by s first, then writes 1 - s into s
        self.reads_left = dict(shared_donors or {})
        self.pending: dict[str, int] = {}
        self.np = numpy
        self.dtype = dtype  # the result's: a comparison becomes 0/1 of it
        self.lines: list[str] = []
        self.buffers: list[str] = []
        self._shape_cache: dict[sympy.Expr, tuple] = {}

    # -- shapes ----------------------------------------------------------------------------
    def shape(self, expr: sympy.Expr) -> tuple:
        if expr not in self._shape_cache:
            parts = [self.leaf_shapes[s] for s in expr.free_symbols if s in self.leaf_shapes]
            self._shape_cache[expr] = shapes.broadcast(parts) if parts else ()
        return self._shape_cache[expr]

    # -- emission --------------------------------------------------------------------------
    def fresh(self) -> str:
        name = f"_k{len(self.buffers)}"
        self.buffers.append(name)
        return name

    def call(self, function: str, args: list[Value], shape: tuple) -> Value:
        """``numpy.function(*args)``, into an owned operand's buffer when shapes allow."""
        floats = [a for a in args if not a.boolean and a.shape is not None]
        if any(a.boolean for a in args) and not (function == "multiply" and floats):
            # a comparison is only a factor of a float array; anywhere else numpy's bool
            # arithmetic (logical or, int64 products, float16 sines) would leak through
            args = [_materialized(self, a) for a in args]
        printed = ", ".join(a.text for a in args)
        for a in args:  # these reads are made now: a buffer whose last read this is becomes ours
            if a.text in self.pending:
                self.pending[a.text] -= 1
        args = [Value(a.text, a.shape, True) if self._free(a) else a for a in args]
        if shape:
            for k, a in enumerate(args):
                if a.owned and a.shape == shape:
                    self.lines.append(_in_place(self.np, function, printed, args, k))
                    return Value(a.text, shape, True)
        name = self.fresh()
        self.lines.append(f"{name} = {self.np}.{function}({printed})")
        return Value(name, shape, bool(shape))

    def _free(self, a: Value) -> bool:
        """A donor read several times, at its last read, with no earlier read still to use."""
        return self.reads_left.get(a.text, -1) == 0 and self.pending.get(a.text) == 0 and not a.owned

    def value(self, expr: sympy.Expr) -> Value:
        if expr.is_Symbol:
            if expr.name in self.reads_left:
                self.reads_left[expr.name] -= 1
                self.pending[expr.name] = self.pending.get(expr.name, 0) + 1
            if expr in self.arrays:
                return Value(expr.name, self.leaf_shapes[expr], expr.name in self.donors)
            return Value(print_expr(expr, self.dtype), None, False)  # a symbolic dim or a 0-d leaf: a number
        if expr.is_Number or not expr.free_symbols & self.arrays:
            return Value(_parenthesized(print_expr(expr, self.dtype)), None, False)
        rule = self._rules().get(expr.func)
        if rule is None:
            rule = next((r for f, r in self._rules().items() if isinstance(expr, f)), None)
        if rule is None:
            return self.opaque(expr)
        return rule(expr)

    def opaque(self, expr: sympy.Expr) -> Value:
        """A part without a ufunc rule: the printer's one expression (a fresh array)."""
        name = self.fresh()
        self.lines.append(f"{name} = {print_expr(expr, self.dtype)}")
        shape = self.shape(expr)
        return Value(name, shape, bool(shape))

    def _rules(self) -> dict[type, Callable[[sympy.Expr], Value]]:
        return {
            sympy.Add: self.add, sympy.Mul: self.mul, sympy.Pow: self.pow,
            **{f: self.stable for f in STABLE_FORMS}, sigmoid: self.sigmoid, logaddexp: self.logaddexp,
            sympy.Max: self.extremum,
            sympy.Min: self.extremum, sympy.Heaviside: self.step, **{f: self.unary for f in UNARY},
        }

    def step(self, expr: sympy.Expr) -> Value:
        """Heaviside(z, 1) is ``z >= 0`` (and Heaviside(z, 0) is ``z > 0``): a boolean factor."""
        at = expr.args[1] if len(expr.args) > 1 else None
        if at not in (0, 1):
            return self.opaque(expr)
        z = self.value(expr.args[0])
        compare = "greater_equal" if at == 1 else "greater"
        return Value(f"{self.np}.{compare}({z.text}, 0)", self.shape(expr), False, boolean=True)

    def add(self, expr: sympy.Expr) -> Value:
        positive, negative = [], []
        for term in sympy.Add.make_args(expr):
            coefficient, rest = term.as_coeff_Mul()
            (negative if coefficient.is_negative else positive).append(term if not coefficient.is_negative else -term)
        if not positive:
            return self.call("negative", [self.value(sympy.Add(*negative))], self.shape(expr))
        acc = self.value(positive[0])
        done = positive[0]
        for term in positive[1:]:
            done = done + term
            acc = self.call("add", [acc, self.value(term)], self.shape(done))
        for term in negative:
            done = done - term
            acc = self.call("subtract", [acc, self.value(term)], self.shape(done))
        return acc

    def mul(self, expr: sympy.Expr) -> Value:
        coefficient, rest = expr.as_coeff_Mul()
        numerator, denominator = [], []
        leaves = self.arrays
        arrays = [f for f in sympy.Mul.make_args(rest) if f.free_symbols & leaves]
        scalars = [f for f in sympy.Mul.make_args(rest) if not f.free_symbols & leaves]
        coefficient = coefficient * sympy.Mul(*scalars)  # 1/(2048 N): one multiplication
        for factor in arrays:
            base, exponent = factor.as_base_exp()
            if exponent.is_Number and exponent.is_negative:
                denominator.append(base ** -exponent)
            else:
                numerator.append(factor)
        if coefficient.could_extract_minus_sign():
            coefficient = -coefficient
            negate = True
        else:
            negate = False
        if numerator:
            acc, done = self.value(numerator[0]), numerator[0]
            for factor in numerator[1:]:
                done = done * factor
                acc = self.call("multiply", [acc, self.value(factor)], self.shape(done))
        else:
            acc, done = None, sympy.Integer(1)
        if coefficient != 1:
            number = Value(_parenthesized(print_expr(coefficient, self.dtype)), None, False)
            acc = number if acc is None else self.call("multiply", [acc, number], self.shape(done))
        for factor in denominator:
            done = done / factor
            top = acc if acc is not None else Value("1.0", None, False)
            acc = self.call("divide", [top, self.value(factor)], self.shape(done))
        if acc is None:
            acc = Value("1.0", None, False)
        if negate:
            acc = self.call("negative", [acc], self.shape(expr))
        return acc

    def pow(self, expr: sympy.Expr) -> Value:
        base, exponent = expr.args
        if exponent == 2:
            return self.call("square", [self.value(base)], self.shape(expr))
        if exponent == sympy.Rational(1, 2):
            return self.call("sqrt", [self.value(base)], self.shape(expr))
        if exponent == -1:
            return self.call("divide", [Value("1.0", None, False), self.value(base)], self.shape(expr))
        return self.call("power", [self.value(base), self.value(exponent)], self.shape(expr))

    def unary(self, expr: sympy.Expr) -> Value:
        return self.call(UNARY[expr.func], [self.value(expr.args[0])], self.shape(expr))

    def stable(self, expr: sympy.Expr) -> Value:
        """A function with a stable numpy form (``ops.functions.STABLE_FORMS``): that form's ufuncs."""
        return self.value(stable_form(expr, self.dtype))

    def sigmoid(self, expr: sympy.Expr) -> Value:
        """sigmoid(z) as ``e / (1 + e)`` with ``e = exp(min(z, SIGMOID_CAP))``: four ufuncs
        (on arrays up to SMALL elements; bigger ones take the table's form, in place).

        The printed form ``1/(1 + exp(min(-z, 709)))`` (88 in float32) is one expression and so reads its
        argument once, at the cost of a negation; a kernel holds ``e`` in a buffer and reads
        it twice instead (``1 + e`` goes to a fresh one). It is as exact (2 ulp) over the
        middle, the positive tail (rounds to 1), and the negative tail, where ``s = e`` down
        to the subnormals (the printed form stops at 1e-308). The cap keeps exp finite in
        float32 too (exp(709) overflows there); nothing over- or underflows but a result
        that is itself below the smallest normal number.
        """
        shape = self.shape(expr)
        if math.prod(int(d) for d in shape if isinstance(d, (int, sympy.Integer))) > SMALL:
            return self.stable(expr)
        e = self.call("minimum", [self.value(expr.args[0]), Value(SIGMOID_CAP, None, False)], shape)
        e = self.call("exp", [e], shape)
        one_plus = self.call("add", [Value(e.text, shape, False), Value("1", None, False)], shape)  # e is read again
        return self.call("divide", [e, one_plus], shape)

    def logaddexp(self, expr: sympy.Expr) -> Value:
        return self.call("logaddexp", [self.value(a) for a in expr.args], self.shape(expr))

    def extremum(self, expr: sympy.Expr) -> Value:
        function = "maximum" if isinstance(expr, sympy.Max) else "minimum"
        args = sorted(expr.args, key=sympy.default_sort_key)
        acc, done = self.value(args[0]), args[0]
        for arg in args[1:]:
            done = expr.func(done, arg)
            acc = self.call(function, [acc, self.value(arg)], self.shape(done))
        return acc


def repeats(expr: sympy.Expr) -> bool:
    """Whether some compound part occurs twice (only then is ``sympy.cse`` worth its time)."""
    seen = set()
    for part in sympy.preorder_traversal(expr):
        if part.args and not part.is_Number:
            if part in seen:
                return True
            seen.add(part)
    return False


class _HeldAbs(sympy.Function):
    """``Abs`` that ``shared_parts`` holds unevaluated while it names the shared parts."""

    nargs = 1


def shared_parts(expr: sympy.Expr) -> tuple[list[tuple[sympy.Symbol, sympy.Expr]], sympy.Expr]:
    """``sympy.cse`` of ``expr``: (name, part) pairs in order, and the reduced expression.

    cse rebuilds each expression around the names it gives, and a name knows nothing
    of the part it stands for (that ``0.9 sigmoid(p) + 0.05`` is positive). sympy then
    re-evaluates ``Abs(log(t)**p)`` over a ``t`` it cannot show real as
    ``sqrt(conjugate(...) * ...)``, which has no numpy form (and is not ``abs``). Every
    ``Abs`` is held as it was written while the names are made.

    >>> x = sympy.Symbol("x", real=True)
    >>> shared_parts(sympy.exp(x) * sympy.Abs(sympy.exp(x) - 2))
    ([(_t0, exp(x))], _t0*Abs(_t0 - 2))
    """
    held = expr.replace(sympy.Abs, _HeldAbs)
    shared, (reduced,) = sympy.cse(held, symbols=sympy.numbered_symbols("_t"), optimizations=None)

    def release(e: sympy.Expr) -> sympy.Expr:
        return e.replace(_HeldAbs, lambda a: sympy.Abs(a, evaluate=False))

    return [(name, release(part)) for name, part in shared], release(reduced)


# ``a *= b`` is numpy's ``multiply(a, b, out=a)`` (ndarray's in-place operators call the ufunc
# with the array as its out argument): the same call and bits, without parsing out= (about
# 0.05 us of a 0.5-0.9 us call on a small array, numpy 2.4; a tiny network makes ~25 of them)
AUGMENTED = {"add": "+=", "subtract": "-=", "multiply": "*=", "divide": "/="}


def _in_place(numpy: str, function: str, printed: str, args: list[Value], k: int) -> str:
    """The ufunc call writing into ``args[k]``: ``a *= b`` when that is the first of two operands."""
    if k == 0 and len(args) == 2 and function in AUGMENTED:
        return f"{args[0].text} {AUGMENTED[function]} {args[1].text}"
    return f"{numpy}.{function}({printed}, out={args[k].text})"


def _parenthesized(text: str) -> str:
    return text if text.replace(".", "").replace("_", "").isalnum() else f"({text})"


def kernel_lines(expr: sympy.Expr, target: str, leaf_shapes: dict[sympy.Symbol, tuple],
                 donors: set[str] = frozenset(), numpy: str = "numpy", shape_text: str = "",
                 shape: tuple | None = None, dtype: str = "float64") -> list[str]:
    """Statements computing ``expr`` into ``target``, one ufunc call per operation.

    ``leaf_shapes`` maps each operand symbol (named by its identifier) to its shape;
    ``donors`` names operands whose buffers may be overwritten (they die here);
    ``shape`` and ``shape_text`` are the result's shape and its printed form, ``dtype`` its dtype (a result that
    is a number, or whose operands broadcast to less, is widened to it).
    """
    expr = guard_poles(expr)  # a clamped log never computes log(0)
    if repeats(expr):
        shared, reduced = shared_parts(expr)
    else:  # cse costs milliseconds; most kernels have nothing to share
        shared, reduced = [], expr
    parts = [p for _, p in shared] + [reduced]
    # a donor read twice must survive its first reader: only single readers may write into it
    reads = {d: sum(p.count(sympy.Symbol(d, real=True)) for p in parts) for d in donors}
    single = {d for d, n in reads.items() if n == 1}
    kernel = _Kernel(leaf_shapes, single, numpy, dtype, {d: n for d, n in reads.items() if n > 1})
    for name, part in shared:
        value = _materialized(kernel, kernel.value(part))
        kernel.leaf_shapes[name] = kernel.shape(part)
        if kernel.leaf_shapes[name]:
            kernel.arrays.add(name)
        kernel.lines.append(f"{name} = {value.text}")
    result = _materialized(kernel, kernel.value(reduced))
    if shape is not None and result.shape is not None and tuple(result.shape) != tuple(shape):
        # x - x + w reads w only: the value still has the node's full shape
        name = kernel.fresh()
        kernel.lines.append(f"{name} = {numpy}.broadcast_to({result.text}, {shape_text}).copy()")
        result = Value(name, tuple(shape), True)
    lines = kernel.lines
    if result.text in kernel.buffers:  # the last buffer is the result: give it its name
        pattern = re.compile(rf"\b{re.escape(result.text)}\b")
        lines = [pattern.sub(target, line) for line in lines]
        kernel.buffers.remove(result.text)
    elif result.shape is None:  # a number standing for a whole array
        lines.append(f"{target} = {numpy}.full({shape_text}, {result.text}, dtype={numpy}.{dtype})")
    elif result.owned:  # a dying operand's buffer changes hands
        lines.append(f"{target} = {result.text}")
    else:  # another value's array: copy it, so that writing into the result harms nothing
        lines.append(f"{target} = {result.text}.copy()")
    temporaries = kernel.buffers + [str(n) for n, _ in shared]
    if temporaries:
        lines.append("del " + ", ".join(dict.fromkeys(temporaries)))
    return lines


def _materialized(kernel: _Kernel, value: Value) -> Value:
    """A value that can stand alone as a float array (a comparison becomes 0.0/1.0)."""
    if value.boolean:
        name = kernel.fresh()
        kernel.lines.append(f"{name} = {value.text}.astype({kernel.np}.{kernel.dtype})")
        return Value(name, value.shape, True)
    return value
