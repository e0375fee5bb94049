"""Random networks for the differential corpus, drawn by Hypothesis over every op in the table.

A network is written as builder code, one line per node, and each line is run as it is
drawn: the code is the reproducer, and the values of the nodes so far (computed by the
reference interpreter on the feeds, which are drawn first) steer what comes next, so that
domains stay valid (log, sqrt and a division's denominator see values >= 0.1), values stay
moderate (exp sees values below 20) and kinks stay away (relu, abs, leaky_relu see values
at least ``MARGIN`` from 0, maximum's operands differ by at least ``MARGIN`` or not at all,
a max reduction's runner-up is ``MARGIN`` below the top or tied exactly, as copies are).

Shapes are built from the batch dim ``B`` (the symbolic ``"N"`` or a concrete 1 or 3),
features ``K`` (2 or 4) and hidden ``H`` (3); params take the broadcast patterns users
write: (), (1,), (K,), (1, K), (K, 1), and matrices for matmul.

``OP_GENERATORS`` has one generator per op of the table; the tests fail for an op without one.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np
import sympy
from hypothesis import strategies as st

import graphc as gc
from graphc.ops import OPS

MARGIN = 1e-3  # how far from a kink values stay (central differences step 1e-6)
BLOCKED_ROWS = 2  # rows per block of the networks compiled with blocking forced
PREAMBLE = '''import numpy as np
import sympy

import graphc as gc

N = sympy.Symbol("N", integer=True, positive=True)


def fused(fn, *operands):
    """A fused elementwise node carrying its expression fn(a0, a1, ...), as the backward pass makes."""
    node = gc.apply("fused", *operands, kink="")
    symbols = tuple(sympy.Symbol(f"a{k}", real=True) for k in range(len(operands)))
    node.graph.nx.nodes[node.id]["expr"] = (sympy.sympify(fn(*symbols)), symbols)
    return node

'''


@dataclass
class Value:
    """A node of the network under construction: its variable in the code, shape, value."""

    var: str
    shape: tuple
    value: np.ndarray  # float64, at the feeds
    depends: bool = True  # on a param (a gradient flows) or only on inputs and consts


@dataclass
class Case:
    """One drawn network: its builder code, graph, feeds and what the checks need to know."""

    code: str
    graph: gc.Graph
    feeds: dict  # name -> float64 array (float32-representable for float32 nets)
    dtype: str
    smooth: bool  # no kink op: a Hessian-vector product is checked
    ops: tuple = ()  # ops used, in order
    seed: float = 2.5  # the cotangent value_and_grad(seed=...) is given

    @property
    def blocking(self) -> str | int:
        """The ``blocking=`` it is compiled with: one network in four runs every elementwise
        region two rows at a time (graphc/lower/blocking.py), picked by its code."""
        return BLOCKED_ROWS if zlib.crc32(self.code.encode("utf-8")) % 4 == 0 else "auto"

    @property
    def reproducer(self) -> str:
        feeds = ", ".join(f"{k!r}: np.array({v.tolist()!r})" for k, v in self.feeds.items())
        note = f"# compiled with gc.compile(g, blocking={self.blocking!r})\n" if self.blocking != "auto" else ""
        return f"{self.code}feeds = {{{feeds}}}\n{note}"


@dataclass
class Net:
    """The network being drawn: the namespace its code runs in, the code so far, the pool."""

    draw: object
    dtype: str
    batch: object  # "N" or an int
    size: int  # the batch size fed
    k: int
    rng: np.random.Generator
    lines: list = field(default_factory=list)
    pool: list = field(default_factory=list)
    feeds: dict = field(default_factory=dict)
    ops: list = field(default_factory=list)
    names: int = 0

    def __post_init__(self):
        self.scope = {"np": np, "sympy": sympy, "gc": gc}
        exec(PREAMBLE, self.scope)  # noqa: S102 - our own code
        self.run('g = gc.Graph("net")')

    # -- code ----------------------------------------------------------------------------
    def run(self, line: str) -> None:
        self.lines.append(line)
        exec(line, self.scope)  # noqa: S102 - a line this module wrote

    def fresh(self, stem: str = "v") -> str:
        self.names += 1
        return f"{stem}{self.names}"

    def dims(self, shape) -> tuple:
        """A shape as the feeds have it (the batch dim at its fed size)."""
        return tuple(self.size if d == "N" else d for d in shape)

    def shape_text(self, shape) -> str:
        items = [repr(d) for d in shape]
        return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"

    def value_of(self, var: str) -> np.ndarray:
        node = self.scope[var]
        return gc.evaluate(self.scope["g"], self.feeds, nodes=[node.id], dtype="float64")[node.id]

    def add(self, expression: str, op: str, depends: bool, stem: str = "v") -> Value | None:
        var = self.fresh(stem)
        self.run(f"{var} = {expression}")
        node = self.scope[var]
        value = self.value_of(var)
        self.ops.append(op)
        item = Value(var, tuple("N" if not isinstance(d, int) else d for d in node.shape), value, depends)
        self.pool.append(item)
        return item

    def _round(self, array: np.ndarray) -> np.ndarray:
        return array.astype(self.dtype).astype(np.float64)

    # -- sources -------------------------------------------------------------------------
    def input(self, shape, role: str = "data") -> Value:
        var = self.fresh("x")
        dtype = f", dtype={self.dtype!r}" if self.dtype != "float64" else ""
        self.run(f'{var} = g.input("{var}", shape={self.shape_text(shape)}{dtype})')
        dims = self.dims(shape)
        if role == "soft_labels":  # label rows summing to anything, not only 1
            value = 3.0 * self.rng.uniform(0.0, 1.0, size=dims) ** 4
        elif role == "prob":
            value = self.rng.uniform(0.0, 1.0, size=dims)
        else:
            value = self.rng.uniform(-1.5, 1.5, size=dims)
        self.feeds[var] = self._round(value)
        self.ops.append("input")
        item = Value(var, tuple(shape), self.feeds[var], depends=False)
        if role == "data":
            self.pool.append(item)
        return item

    def labels(self, shape, axis: int) -> Value:
        """An int64 input of class labels for values of ``shape`` with classes on ``axis``."""
        axis = axis % len(shape)
        var = self.fresh("y")
        label_shape = tuple(shape[:axis]) + tuple(shape[axis + 1:])
        self.run(f'{var} = g.input("{var}", shape={self.shape_text(label_shape)}, dtype="int64")')
        classes = self.dims(shape)[axis]
        self.feeds[var] = self.rng.integers(0, classes, size=self.dims(label_shape))
        self.ops.append("input")
        return Value(var, label_shape, self.feeds[var].astype(np.float64), depends=False)

    def param(self, shape) -> Value:
        var = self.fresh("p")
        dtype = f", dtype={self.dtype!r}" if self.dtype != "float64" else ""
        self.run(f'{var} = g.param("{var}", shape={self.shape_text(shape)}{dtype})')
        self.feeds[var] = self._round(self.rng.uniform(-1.2, 1.2, size=shape))
        self.ops.append("param")
        item = Value(var, tuple(shape), self.feeds[var])
        self.pool.append(item)
        return item

    def const(self, shape) -> Value:
        value = self._round(self.rng.uniform(-1.5, 1.5, size=shape)).round(2)
        text = repr(float(value)) if not shape else f"np.array({value.tolist()!r})"
        var = self.fresh("c")
        self.run(f"{var} = g.const({text})")
        self.ops.append("const")
        item = Value(var, tuple(shape), value, depends=False)
        self.pool.append(item)
        return item

    # -- choosing operands ---------------------------------------------------------------
    def pick(self, accept=lambda v: True, prefer_depends: bool = True) -> Value | None:
        options = [v for v in self.pool if accept(v)]
        if not options:
            return None
        live = [v for v in options if v.depends]
        if prefer_depends and live and self.draw(st.booleans()):
            options = live
        if self.draw(st.booleans()):  # the newest: networks grow deep, not only wide
            return options[-1]
        return self.draw(st.sampled_from(options))

    def param_pattern(self) -> tuple:
        k = self.k
        return self.draw(st.sampled_from([(), (1,), (k,), (1, k), (k, 1)]))

    def partner(self, a: Value) -> Value:
        """An operand that broadcasts with ``a``: an existing one, or a new param or const."""
        choice = self.draw(st.sampled_from(["pool", "pool", "param", "const"]))
        if choice == "pool":
            found = self.pick(lambda v: v is not a and broadcasts(a.shape, v.shape))
            if found is not None:
                return found
        shapes = [s for s in ([(), (1,), (self.k,), (1, self.k), (self.k, 1)] + [a.shape])
                  if broadcasts(a.shape, s) and "N" not in s]
        shape = self.draw(st.sampled_from(shapes))
        return self.param(shape) if choice != "const" else self.const(shape)

    # -- domains -------------------------------------------------------------------------
    def positive(self, a: Value) -> Value:
        """``a`` itself when it is >= 0.1 everywhere, else ``square(a) + 0.5``."""
        if np.min(a.value) >= 0.1:
            return a
        return self.add(f"gc.square({a.var}) + 0.5", "square", a.depends)

    def moderate(self, a: Value, limit: float = 20.0) -> Value:
        if np.max(np.abs(a.value)) <= limit:
            return a
        return self.add(f"gc.tanh({a.var})", "tanh", a.depends)

    def off_zero(self, a: Value) -> Value | None:
        """``a``, or ``a`` shifted, with every element at least MARGIN away from 0."""
        if np.min(np.abs(a.value)) >= MARGIN:
            return a
        for shift in (0.25, -0.35, 0.6):
            if np.min(np.abs(a.value + shift)) >= MARGIN:
                return self.add(f"{a.var} + {shift!r}", "add", a.depends)
        return None

    def probability(self, a: Value) -> Value:
        """``a`` when it is in [0.05, 0.95], else ``0.05 + 0.9 * sigmoid(a)``."""
        if np.min(a.value) >= 0.05 and np.max(a.value) <= 0.95:
            return a
        return self.add(f"0.05 + 0.9 * gc.sigmoid({a.var})", "sigmoid", a.depends)


def broadcasts(a: tuple, b: tuple) -> bool:
    """Whether numpy broadcasts shapes a and b (a symbolic dim only against itself or 1)."""
    for x, y in zip(reversed(a), reversed(b)):
        if x != y and x != 1 and y != 1:
            return False
    return True


def broadcast_shape(a: tuple, b: tuple) -> tuple:
    rank = max(len(a), len(b))
    a, b = (1,) * (rank - len(a)) + tuple(a), (1,) * (rank - len(b)) + tuple(b)
    return tuple(y if x == 1 else x for x, y in zip(a, b))


# -- one generator per op: each adds a node using its op, or returns None ---------------------

def _unary(op: str, domain=None):
    def generate(net: Net) -> Value | None:
        a = net.pick(lambda v: True)
        if domain is not None:
            a = domain(net, a)
            if a is None:
                return None
        return net.add(f"gc.{op}({a.var})", op, a.depends)

    return generate


def _binary(op: str, expression: str = "gc.{op}({a}, {b})", first=None, second=None):
    def generate(net: Net) -> Value | None:
        a = net.pick(lambda v: True)
        b = net.partner(a)
        if first is not None:
            a = first(net, a)
        if second is not None:
            b = second(net, b)
        return net.add(expression.format(op=op, a=a.var, b=b.var), op, a.depends or b.depends)

    return generate


def _maximum(net: Net) -> Value | None:
    a = net.pick(lambda v: True)
    b = net.partner(a)
    gap = np.abs(np.broadcast_to(a.value, np.broadcast_shapes(a.value.shape, b.value.shape)) - b.value)
    if b is not a and np.min(gap) < MARGIN:
        b = net.add(f"{b.var} + 0.5", "add", b.depends) if np.min(np.abs(gap - 0.5)) >= MARGIN else a
    return net.add(f"gc.maximum({a.var}, {b.var})", "maximum", a.depends or b.depends)


def _pow(net: Net) -> Value | None:
    a = net.positive(net.pick(lambda v: True))
    if net.draw(st.booleans()):  # a constant exponent: differentiated with the constant substituted
        exponent = net.draw(st.sampled_from([2, 3, 0.5, -1.5]))
        return net.add(f"{a.var} ** {exponent!r}", "pow", a.depends)
    b = net.moderate(net.partner(a), 2.0)
    return net.add(f"{a.var} ** {b.var}", "pow", a.depends or b.depends)


def _matmul(net: Net) -> Value | None:
    a = net.pick(lambda v: len(v.shape) >= 1 and v.shape[-1] != "N")
    if a is None:
        return None
    inner = a.shape[-1]
    right = net.pick(lambda v: len(v.shape) in (1, 2) and v.shape[0] == inner and "N" not in v.shape and v is not a)
    if right is None or net.draw(st.booleans()):
        right = net.param(net.draw(st.sampled_from([(inner, 3), (inner,), (inner, 1)])))
    if net.draw(st.booleans()) and len(a.shape) == 1:
        return net.add(f"gc.matmul({a.var}, {right.var})", "matmul", a.depends or right.depends)
    return net.add(f"{a.var} @ {right.var}", "matmul", a.depends or right.depends)


def _transpose(net: Net) -> Value | None:
    a = net.pick(lambda v: len(v.shape) >= 2)
    if a is None:
        return None
    if len(a.shape) == 2 or net.draw(st.booleans()):
        return net.add(f"gc.transpose({a.var})" if net.draw(st.booleans()) else f"{a.var}.T", "transpose", a.depends)
    axes = tuple(net.draw(st.permutations(range(len(a.shape)))))
    return net.add(f"gc.transpose({a.var}, {axes!r})", "transpose", a.depends)


def _reshape_targets(shape: tuple) -> list[tuple]:
    out = [shape + (1,), (1,) + shape]
    if "N" not in shape and len(shape) >= 1:
        size = int(np.prod(shape))
        out += [(size,)] + ([(shape[-1], size // shape[-1])] if len(shape) >= 2 else [])
    if len(shape) >= 2 and shape[-1] == 1:
        out.append(shape[:-1])
    return [t for t in out if t != shape]


def _reshape(net: Net) -> Value | None:
    a = net.pick(lambda v: True)
    target = net.draw(st.sampled_from(_reshape_targets(a.shape)))
    return net.add(f"gc.reshape({a.var}, {net.shape_text(target)})", "reshape", a.depends)


def _axis(net: Net, rank: int):
    if rank == 0:
        return None
    options = [None] + list(range(rank)) + [-1] + ([tuple(range(rank))[::-1][:2]] if rank >= 2 else [])
    return net.draw(st.sampled_from(options))


def _reduction(op: str):
    def generate(net: Net) -> Value | None:
        a = net.pick(lambda v: True)
        if op == "logsumexp":
            a = net.moderate(a)
        axis = _axis(net, len(a.shape))
        keepdims = net.draw(st.booleans())
        if op == "max" and not _clear_max(a.value, axis):
            return None
        options = ("" if axis is None else f", axis={axis!r}") + (", keepdims=True" if keepdims else "")
        return net.add(f"gc.{op}({a.var}{options})", op, a.depends)

    return generate


def _clear_max(value: np.ndarray, axis) -> bool:
    """Whether every max over ``axis`` has its runner-up MARGIN below or tied exactly (copies)."""
    if value.ndim == 0:
        return True
    axes = tuple(range(value.ndim)) if axis is None else ((axis,) if isinstance(axis, int) else axis)
    axes = tuple(a % value.ndim for a in axes)
    moved = np.moveaxis(value, axes, tuple(range(len(axes)))).reshape((-1,) + tuple(
        d for i, d in enumerate(value.shape) if i not in axes))
    if moved.shape[0] < 2:
        return True
    ordered = np.sort(moved, axis=0)
    gap = ordered[-1] - ordered[-2]
    return bool(np.all((gap == 0) | (gap >= MARGIN)))


def _broadcast(net: Net) -> Value | None:
    """Size-1 dims grow (the first to the batch), and maybe a new leading dim."""
    a = net.pick(lambda v: True)
    target = tuple((net.batch if i == 0 and len(a.shape) >= 2 else net.k) if d == 1 else d
                   for i, d in enumerate(a.shape))
    if net.draw(st.booleans()) or target == a.shape:
        target = (net.draw(st.sampled_from([net.batch, 3])),) + target
    return net.add(f"gc.broadcast_to({a.var}, {net.shape_text(target)})", "broadcast", a.depends)


def _softmax(op: str):
    def generate(net: Net) -> Value | None:
        a = net.pick(lambda v: len(v.shape) >= 1)
        if a is None:
            return None
        a = net.moderate(a)
        axis = net.draw(st.sampled_from(list(range(-1, len(a.shape)))))
        return net.add(f"gc.{op}({a.var}{'' if axis == -1 else f', axis={axis}'})", op, a.depends)

    return generate


def _loss(op: str):
    def generate(net: Net) -> Value | None:
        accept = (lambda v: len(v.shape) >= 1) if op == "softmax_cross_entropy" else (lambda v: True)
        a = net.pick(accept)
        if a is None:
            return None
        axis = -1
        if op == "softmax_cross_entropy":
            a = net.moderate(a)
            axis = net.draw(st.sampled_from(list(range(-1, len(a.shape)))))
        if op == "bce":
            a = net.probability(a)
        role = {"softmax_cross_entropy": "soft_labels", "bce": "prob", "bce_with_logits": "prob"}.get(op, "data")
        if op == "softmax_cross_entropy" and net.draw(st.booleans()):  # int64 class labels, one per row
            target = net.labels(a.shape, axis)
        else:
            target = net.input(a.shape, role=role)
        extra = f", axis={axis}" if axis != -1 else ""
        return net.add(f"gc.{op}({a.var}, {target.var}{extra})", op, a.depends)

    return generate


FUSED_FORMS = [
    ("lambda a0: a0 * sympy.tanh(a0) + a0 ** 2 / 2", 1),
    ("lambda a0, a1: a0 * a1 + sympy.sin(a0)", 2),
    ("lambda a0, a1: sympy.exp(a0 / 4) * a1 / N", 2),
]


def _fused(net: Net) -> Value | None:
    form, arity = net.draw(st.sampled_from(FUSED_FORMS))
    if "N" in form and net.batch != "N":
        form = form.replace(" / N", f" / {net.size}")
    a = net.moderate(net.pick(lambda v: True))
    operands = [a] if arity == 1 else [a, net.partner(a)]
    return net.add(f"fused({form}, {', '.join(o.var for o in operands)})", "fused",
                   any(o.depends for o in operands))


def _bce_terms(net: Net) -> Value | None:
    p = net.probability(net.pick(lambda v: True))
    y = net.input(p.shape, role="prob")
    return net.add(f'gc.apply("bce_terms", {p.var}, {y.var})', "bce_terms", p.depends)


def _neg(net: Net) -> Value | None:
    a = net.pick()
    return net.add(f"-{a.var}", "neg", a.depends)


def _leaky_relu(net: Net) -> Value | None:
    a = net.off_zero(net.pick())
    if a is None:
        return None
    alpha = net.draw(st.sampled_from([0.01, 0.2]))
    return net.add(f"gc.leaky_relu({a.var}, alpha={alpha})", "leaky_relu", a.depends)


def _zeros_like(net: Net) -> Value | None:
    a = net.pick()
    return net.add(f'gc.apply("zeros_like", {a.var})', "zeros_like", False)


def _source(kind: str):
    def generate(net: Net) -> Value | None:
        if kind == "param":
            return net.param(net.param_pattern())
        if kind == "const":
            return net.const(net.draw(st.sampled_from([(), (net.k,), (1, net.k)])))
        return net.input((net.batch, net.draw(st.sampled_from([1, net.k]))))

    return generate


OP_GENERATORS = {
    "input": _source("input"), "param": _source("param"), "const": _source("const"),
    "add": _binary("add", "{a} + {b}"), "sub": _binary("sub", "{a} - {b}"), "mul": _binary("mul", "{a} * {b}"),
    "div": _binary("div", "{a} / {b}", second=Net.positive), "pow": _pow,
    "neg": _neg,
    "identity": _unary("identity"), "square": _unary("square"), "sqrt": _unary("sqrt", Net.positive),
    "exp": _unary("exp", Net.moderate), "log": _unary("log", Net.positive),
    "log1p": _unary("log1p", lambda net, a: net.add(f"gc.sigmoid({a.var})", "sigmoid", a.depends)
                    if np.min(a.value) <= -0.9 else a),
    "sin": _unary("sin"), "cos": _unary("cos"), "abs": _unary("abs", Net.off_zero),
    "maximum": _maximum, "relu": _unary("relu", Net.off_zero),
    "leaky_relu": _leaky_relu,
    "sigmoid": _unary("sigmoid"), "tanh": _unary("tanh"), "softplus": _unary("softplus"),
    "squared_error": _binary("squared_error", 'gc.apply("squared_error", {a}, {b})'),
    "bce_terms": _bce_terms,
    "bce_logits_terms": _binary("bce_logits_terms", 'gc.apply("bce_logits_terms", {a}, {b})'),
    "fused": _fused,
    "matmul": _matmul, "transpose": _transpose, "reshape": _reshape,
    "sum": _reduction("sum"), "mean": _reduction("mean"), "max": _reduction("max"),
    "logsumexp": _reduction("logsumexp"),
    "broadcast": _broadcast,
    "stop_gradient": _unary("stop_gradient"), "zeros_like": _zeros_like,
    "softmax": _softmax("softmax"), "log_softmax": _softmax("log_softmax"),
    "mse": _loss("mse"), "bce": _loss("bce"), "bce_with_logits": _loss("bce_with_logits"),
    "softmax_cross_entropy": _loss("softmax_cross_entropy"),
}
# -- indexing, joining, comparisons and the reductions of issue 13 ------------------------------
def _concrete_axes(shape) -> list[int]:
    return [k for k, d in enumerate(shape) if d != "N"]


def _index(net: Net) -> Value | None:
    a = net.pick(lambda v: bool(_concrete_axes(v.shape)))
    if a is None:
        return None
    axis = net.draw(st.sampled_from(_concrete_axes(a.shape)))
    size = a.shape[axis]
    item = net.draw(st.sampled_from([str(size - 1), "-1", "0:1", f"{size - 1}::-1", "None, 0"]))
    return net.add(f"{a.var}[{':, ' * axis}{item}]", "index", a.depends)


def _index_grad(net: Net) -> Value | None:
    a = net.pick(lambda v: "N" not in v.shape)  # an internal op: its shape attr is concrete here
    if a is None:
        return None
    index = ("slice", None, None, None)
    target = (*a.shape, 2)
    return net.add(f'gc.apply("index_grad", {a.var}, index=({index!r},) * {len(a.shape)} + (1,), '
                   f"shape={net.shape_text(tuple(target))})", "index_grad", a.depends)


def _take(net: Net) -> Value | None:
    a = net.pick(lambda v: bool(_concrete_axes(v.shape)))
    if a is None:
        return None
    axis = net.draw(st.sampled_from(_concrete_axes(a.shape)))
    indices = [int(i) for i in net.rng.integers(0, a.shape[axis], size=3)]
    return net.add(f"{a.var}[{':, ' * axis}{indices!r}]", "take", a.depends)


def _take_grad(net: Net) -> Value | None:
    a = net.pick(lambda v: v.shape and "N" not in v.shape)  # an internal op: its shape attr is concrete here
    if a is None:
        a = net.param((net.k,))
    axis = net.draw(st.sampled_from(_concrete_axes(a.shape)))
    indices = [int(i) for i in net.rng.integers(0, 2, size=a.shape[axis])]
    target = tuple(2 if k == axis else d for k, d in enumerate(a.shape))
    return net.add(f'gc.apply("take_grad", {a.var}, indices=np.array({indices!r}), axis={axis}, '
                   f"shape={net.shape_text(target)})", "take_grad", a.depends)


def _joined(op: str):
    def generate(net: Net) -> Value | None:
        a = net.pick(lambda v: op == "stack" or bool(_concrete_axes(v.shape)))
        if a is None:
            return None
        b = net.pick(lambda v: v.shape == a.shape)  # a itself at worst
        if op == "stack":
            axis = net.draw(st.sampled_from(list(range(-1, len(a.shape) + 1))))
        else:
            axis = net.draw(st.sampled_from(_concrete_axes(a.shape)))
        return net.add(f"gc.{op}([{a.var}, {b.var}], axis={axis})", op, a.depends or b.depends)

    return generate


def _comparison(op: str):
    """``where(a OP b, a, b)`` with a and b MARGIN apart (or copies): the selection never flips."""
    symbol = {"less": "<", "less_equal": "<=", "greater": ">", "greater_equal": ">="}[op]

    def generate(net: Net) -> Value | None:
        a = net.pick()
        b = net.partner(a)
        gap = np.abs(np.broadcast_to(a.value, np.broadcast_shapes(a.value.shape, b.value.shape)) - b.value)
        if b is not a and np.min(gap) < MARGIN:
            return None
        return net.add(f"gc.where({a.var} {symbol} {b.var}, {a.var}, {b.var})", op, a.depends or b.depends)

    return generate


def _where(net: Net) -> Value | None:
    c = net.off_zero(net.pick())
    if c is None:
        return None
    a = net.partner(c)
    b = net.partner(c)
    if not broadcasts(a.shape, b.shape):  # each broadcasts with c, not always with the other
        b = net.param(())
    return net.add(f"gc.where({c.var} > 0, {a.var}, {b.var})", "where", c.depends or a.depends or b.depends)


def _argmax(net: Net) -> Value | None:
    a = net.pick(lambda v: len(v.shape) >= 1)
    if a is None:
        return None
    axis = net.draw(st.sampled_from(list(range(-1, len(a.shape)))))
    # as a condition (argmax * 1.0 itself is tested in tests/test_trust_regressions.py)
    return net.add(f"gc.where(gc.argmax(gc.stop_gradient({a.var}), axis={axis}) > 0, 1.0, -1.0)", "argmax", False)


def _moment(op: str):
    # std's derivative is infinite where the variance is 0: std reads a value with spread
    spread = (lambda v: np.size(v.value) >= 2 and np.var(v.value) >= 0.01) if op == "std" else (lambda v: True)

    def generate(net: Net) -> Value | None:
        a = net.pick(spread)
        if a is None:
            return None
        axis = _axis(net, len(a.shape))
        axes = tuple(range(len(a.shape))) if axis is None else ((axis,) if isinstance(axis, int) else axis)
        symbolic = any(a.shape[k] == "N" for k in axes)
        ddof = 0 if symbolic or net.draw(st.booleans()) else 1
        count = int(np.prod([a.value.shape[k] for k in axes]))
        if count - ddof <= 0 or (op == "std" and np.min(np.var(a.value, axis=axis, ddof=ddof)) < 0.01):
            axis, ddof = None, 0  # the drawn axes hold one entry or no spread: the whole value's
        keep = net.draw(st.booleans())
        options = ("" if axis is None else f", axis={axis!r}") + (", keepdims=True" if keep else "") + \
            (", ddof=1" if ddof else "")
        return net.add(f"gc.{op}({a.var}{options})", op, a.depends)

    return generate


def _min(net: Net) -> Value | None:
    a = net.pick()
    axis = _axis(net, len(a.shape))
    if not _clear_max(-a.value, axis):
        return None
    options = ("" if axis is None else f", axis={axis!r}") + (", keepdims=True" if net.draw(st.booleans()) else "")
    return net.add(f"gc.min({a.var}{options})", "min", a.depends)


def _pick(net: Net) -> Value | None:
    a = net.pick(lambda v: len(v.shape) >= 1)
    if a is None:
        return None
    axis = net.draw(st.sampled_from(list(range(-1, len(a.shape)))))
    labels = f"gc.argmax(gc.stop_gradient({a.var}), axis={axis})"  # int64 labels from a value
    return net.add(f'gc.apply("pick", {a.var}, {labels}, axis={axis})', "pick", a.depends)


def _pick_grad(net: Net) -> Value | None:
    a = net.pick(lambda v: len(v.shape) >= 1 and "N" not in v.shape)  # its shape attr is concrete here
    if a is None:
        a = net.param((net.k,))
    axis = net.draw(st.sampled_from(list(range(len(a.shape)))))
    labels = f"gc.argmax(gc.stop_gradient({a.var}), axis={axis})"
    return net.add(f'gc.apply("pick_grad", gc.sum({a.var}, axis={axis}), {labels}, axis={axis}, '
                   f"shape={net.shape_text(a.shape)})", "pick_grad", a.depends)


def _features_of(net: Net, width) -> Value:
    return net.param((width,))


def _layer_norm(net: Net) -> Value | None:
    # float32: a fresh input is normalized (the gradient into normalized values cancels to
    # float32's eps relative to its terms, beyond gc.check_gradients' rtol of 1e-5)
    a = net.pick(lambda v: len(v.shape) >= 1 and v.shape[-1] != "N" and v.shape[-1] >= 3) \
        if net.dtype == "float64" else None
    if a is None or np.min(np.var(a.value, axis=-1)) < 0.01:  # a constant row: sqrt(var + eps) is flat
        a = net.input((net.batch, 4))
        if np.min(np.var(a.value, axis=-1)) < 0.01:
            return None
    gamma, beta = _features_of(net, a.shape[-1]), _features_of(net, a.shape[-1])
    return net.add(_degenerate_in_float32(net, f"gc.layer_norm({a.var}, {gamma.var}, {beta.var})"), "layer_norm", True)


def _degenerate_in_float32(net: Net, expression: str) -> str:
    """A normalization summed over its axis has gradient exactly 0 into what it normalizes;
    float32 computes it as ~1e-7, which gc.check_gradients' float64 atol of 1e-7 calls a
    failure. Under float32 the value goes through tanh, so that no gradient is 0 by symmetry."""
    return f"gc.tanh({expression})" if net.dtype == "float32" else expression


def _batch_norm(op: str):
    def generate(net: Net) -> Value | None:
        a = net.pick(lambda v: len(v.shape) == 2 and v.shape[1] != "N") if net.dtype == "float64" else None
        if a is None or (op == "batch_norm" and (a.value.shape[0] < 2 or np.min(np.var(a.value, axis=0)) < 0.01)):
            a = net.input((3, net.k))  # a batch of 3 rows: its variance is not 0
        width = a.shape[1]
        gamma, beta = _features_of(net, width), _features_of(net, width)
        if op == "batch_norm":
            if a.value.shape[0] < 2 or np.min(np.var(a.value, axis=0)) < 0.01:
                return None
            return net.add(_degenerate_in_float32(net, f"gc.batch_norm({a.var}, {gamma.var}, {beta.var})"), op, True)
        mean, var = net.input((width,)), net.input((width,))
        return net.add(f"gc.batch_norm({a.var}, {gamma.var}, {beta.var}, mean={mean.var}, "
                       f"var=gc.square({var.var}) + 0.5)", op, True)

    return generate


def _dropout(net: Net) -> Value | None:
    a = net.pick()
    mask = net.input(a.shape, role="mask")
    net.feeds[mask.var] = (net.rng.uniform(size=net.dims(a.shape)) > 0.3) * 1.0
    mask.value = net.feeds[mask.var]
    rate = net.draw(st.sampled_from([0.0, 0.3, 0.5]))
    return net.add(f"gc.dropout({a.var}, {mask.var}, {rate})", "dropout", a.depends)


OP_GENERATORS.update({
    "layer_norm": _layer_norm, "batch_norm": _batch_norm("batch_norm"),
    "batch_norm_given": _batch_norm("batch_norm_given"), "dropout": _dropout,
    "pick": _pick, "pick_grad": _pick_grad,
    "index": _index, "index_grad": _index_grad, "take": _take, "take_grad": _take_grad,
    "concat": _joined("concat"), "stack": _joined("stack"),
    **{name: _comparison(name) for name in ("less", "less_equal", "greater", "greater_equal")},
    "where": _where, "argmax": _argmax, "min": _min, "var": _moment("var"), "std": _moment("std"),
})


def _windowed(op: str):
    """conv2d and pooling (and their gradient ops) over fresh 4-d (NCHW) params, summed over
    height and width so that the value joins the pool as an (n, c) matrix."""
    def generate(net: Net) -> Value | None:
        x, w = net.param((1, 2, 5, 4)), net.param((2, 2, 3, 2))
        conv = "stride=(2, 1), padding=(1, 2), dilation=(2, 1)"  # x (5, 4) -> (2, 7)
        pool = "kernel=(3, 2), stride=1"  # (5, 4) -> (3, 3)
        if op == "conv2d":
            body = f"gc.conv2d({x.var}, {w.var}, {conv})"
        elif op == "conv2d_patches":
            return net.add(f'gc.sum(gc.apply("conv2d_patches", {x.var}, kernel=(3, 2), {conv}), axis=0)', op, True)
        elif op == "conv2d_patches_grad":
            body = f'gc.apply("conv2d_patches_grad", {net.param((12, 1, 14)).var}, kernel=(3, 2), {conv}, shape=(5, 4))'
        elif op == "conv2d_matmul":
            body = f'gc.apply("conv2d_matmul", {net.param((12, 1, 14)).var}, {w.var}, size=(2, 7))'
        elif op == "conv2d_matmul_grad_patches":
            g = net.param((1, 2, 2, 7))
            return net.add(f'gc.sum(gc.apply("conv2d_matmul_grad_patches", {g.var}, {w.var}), axis=0)', op, True)
        elif op == "conv2d_matmul_grad_kernel":
            p, g = net.param((12, 1, 14)), net.param((1, 2, 2, 7))
            body = f'gc.apply("conv2d_matmul_grad_kernel", {p.var}, {g.var}, shape=(2, 2, 3, 2))'
        elif op in ("max_pool2d", "avg_pool2d"):
            body = f"gc.{op}({x.var}, {pool})"
        elif op == "avg_pool2d_grad":
            body = f'gc.apply("avg_pool2d_grad", {net.param((1, 2, 3, 3)).var}, {pool}, shape=(5, 4))'
        else:  # max_pool2d_grad has no VJP of its own: its operands are inputs
            x, g = net.input((1, 2, 5, 4)), net.input((1, 2, 3, 3))
            grad = f'gc.apply("max_pool2d_grad", {x.var}, gc.max_pool2d({x.var}, {pool}), {g.var}, {pool})'
            return net.add(f"gc.sum({grad}, axis=(2, 3))", op, False)
        return net.add(f"gc.sum({body}, axis=(2, 3))", op, True)

    return generate


OP_GENERATORS.update({"erf": _unary("erf"), "gelu": _unary("gelu"), **{name: _windowed(name) for name in (
    "conv2d", "conv2d_patches", "conv2d_patches_grad", "conv2d_matmul", "conv2d_matmul_grad_patches",
    "conv2d_matmul_grad_kernel", "max_pool2d", "max_pool2d_grad", "avg_pool2d",
    "avg_pool2d_grad")}})


def _dense(net: Net) -> Value | None:
    """The layer users write most: act(h @ W + b), b in a broadcast pattern of the layer's width."""
    h = net.pick(lambda v: len(v.shape) == 2 and v.shape[-1] != "N")
    if h is None:
        return None
    width = net.draw(st.sampled_from([1, 3]))
    weights = net.pick(lambda v: v.shape == (h.shape[-1], width) and v.depends, prefer_depends=False)
    weights = weights or net.param((h.shape[-1], width))
    bias = net.param(net.draw(st.sampled_from([(), (1,), (width,), (1, width)])))
    act = net.draw(st.sampled_from(["tanh", "sigmoid", "softplus", "identity"]))
    net.ops.extend(["matmul", "add"])
    return net.add(f"gc.{act}({h.var} @ {weights.var} + {bias.var})", act, True)


KINKS = {"relu", "leaky_relu", "abs", "maximum", "max", "bce", "bce_terms",
         "min", "where", "less", "less_equal", "greater", "greater_equal", "argmax",
         "max_pool2d", "max_pool2d_grad"}  # no Hessian check through these
STEP_OPS = sorted(name for name in OPS if name in OP_GENERATORS)


def missing_generators() -> list[str]:
    """Ops of the table that no generator covers (the corpus test fails on any)."""
    return sorted(set(OPS) - set(OP_GENERATORS))


@st.composite
def networks(draw, op: str | None = None, cotangent: str | None = None, max_steps: int = 5) -> Case:
    """A random network; with ``op``, one that applies it last, right under the loss.

    ``cotangent``: "constant" (the loss is a sum or mean directly over the last node: a
    constant cotangent reaches it), "random" (a weighted sum, a loss function), or None
    (either).
    """
    net = Net(
        draw=draw,
        dtype=draw(st.sampled_from(["float64", "float32"])),
        batch=draw(st.sampled_from(["N", 1, 3])),
        size=0, k=draw(st.sampled_from([2, 4])),
        rng=np.random.default_rng(draw(st.integers(0, 2**32 - 1))),
    )
    net.size = draw(st.sampled_from([1, 3])) if net.batch == "N" else net.batch
    net.input((net.batch, net.k))
    for _ in range(draw(st.integers(1, 2))):
        net.param(net.param_pattern())
    steps = draw(st.lists(st.sampled_from(STEP_OPS + ["dense"] * 4), min_size=0, max_size=max_steps))
    for name in steps + ([op] if op is not None else []):
        made = None
        for _ in range(3):  # an op may not fit the pool drawn so far: try again, then a mul
            made = (_dense if name == "dense" else OP_GENERATORS[name])(net)
            if made is not None:
                break
        if made is None:
            OP_GENERATORS["mul"](net)
    last = net.pool[-1]
    style = cotangent or draw(st.sampled_from(["constant", "random"]))
    _loss_over(net, last, style)
    if draw(st.booleans()):  # a second output, not a scalar: forward paths return it too
        other = net.pick(lambda v: v.shape != () and v is not last, prefer_depends=False)
        if other is not None:
            net.run(f'g.output("out", {other.var})')
    smooth = not (set(net.ops) & KINKS)
    code = PREAMBLE + "\n".join(net.lines) + "\n"
    return Case(code=code, graph=net.scope["g"], feeds=dict(net.feeds), dtype=net.dtype, smooth=smooth,
                ops=tuple(net.ops), seed=draw(st.sampled_from([2.5, -0.5])))


def _loss_over(net: Net, last: Value, style: str) -> None:
    if style == "constant" or last.shape == ():
        reduce = net.draw(st.sampled_from(["sum", "mean"]))
        net.run(f'g.output("loss", gc.{reduce}({last.var}))' if last.shape != () else
                f'g.output("loss", {last.var} * 1.0)')
        return
    how = net.draw(st.sampled_from(["weights", "mse"]))
    if how == "weights":  # sum(out * r): a random cotangent r
        weights = net.input(last.shape, role="weights")
        net.run(f'g.output("loss", gc.sum({last.var} * {weights.var}))')
    else:
        target = net.input(last.shape, role="target")
        net.run(f'g.output("loss", gc.mse({last.var}, {target.var}))')
