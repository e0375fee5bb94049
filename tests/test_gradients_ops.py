"""Every differentiable op in the table, checked against central differences.

The cases are keyed by op name and the test is parametrized over ``graphc.ops.OPS``: a
new built-in op without a case here (or a stated reason in ``NOT_CHECKED``) makes
``test_op_gradient`` fail for it. Each case builds a small graph whose operands are all
params, reduces its output to a scalar through a random weighting (so that every output
entry gets a different cotangent) and runs ``gc.check_gradients`` at a point away from
kinks; the check must find no kink there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
import sympy

import graphc as gc
from graphc.differentiate import fused
from graphc.ops import OPS


def normal(rng, shape):
    return rng.standard_normal(shape)


def positive(rng, shape):
    """In [0.5, 2): inside the domain of log, sqrt, division and real powers."""
    return rng.uniform(0.5, 2.0, shape)


def unit(rng, shape):
    """In [0.1, 0.9]: probabilities and soft targets away from the clamps at 0 and 1."""
    return rng.uniform(0.1, 0.9, shape)


def away(rng, shape):
    """|x| in [0.2, 2]: at least 0.2 away from the kink of relu, abs and leaky_relu at 0."""
    return rng.choice([-1.0, 1.0], shape) * rng.uniform(0.2, 2.0, shape)


def small(rng, shape):
    """|x| < 0.1: never within 0.1 of an ``away`` value."""
    return rng.uniform(-0.1, 0.1, shape)


@dataclass(frozen=True)
class Case:
    """``build(*params) -> node`` over params of ``shapes``, fed from ``domains``."""

    id: str
    shapes: tuple
    build: Callable
    domains: tuple = ()

    def domain(self, k: int) -> Callable:
        return self.domains[k] if k < len(self.domains) else normal


def cases(*items: Case) -> list[Case]:
    return list(items)


def unary(op: str, domain=normal, shape=(2, 3)) -> list[Case]:
    function = getattr(gc, op)
    return cases(Case("matrix", (shape,), function, (domain,)), Case("scalar", ((),), function, (domain,)))


def binary(op: str, a=normal, b=normal) -> list[Case]:
    function = getattr(gc, op)
    return cases(
        Case("same", ((2, 3), (2, 3)), function, (a, b)),
        Case("row-broadcast", ((2, 3), (3,)), function, (a, b)),
        Case("outer-broadcast", ((2, 1), (1, 3)), function, (a, b)),
        Case("scalar-left", ((), (2, 3)), function, (a, b)),
    )


CASES: dict[str, list[Case]] = {
    "add": binary("add"),
    "sub": binary("sub"),
    "mul": binary("mul") + cases(Case("x*x", ((4,),), lambda x: x * x)),
    "div": binary("div", b=positive) + cases(Case("number-over", ((3,),), lambda x: 1.0 / x, (positive,))),
    "pow": binary("pow", a=positive) + cases(
        Case("const-exponent-3", ((3,),), lambda x: x**3),
        Case("const-exponent-2.5", ((3,),), lambda x: x**2.5, (positive,)),
        Case("const-base", ((3,),), lambda x: 2.0**x),
    ),
    "neg": unary("neg"),
    "identity": unary("identity"),
    "square": unary("square"),
    "sqrt": unary("sqrt", positive),
    "exp": unary("exp"),
    "log": unary("log", positive),
    "log1p": unary("log1p", positive),
    "sin": unary("sin"),
    "cos": unary("cos"),
    "abs": unary("abs", away),
    # maximum: the second operand is the first plus an offset of |.| >= 0.2: never a tie
    "maximum": cases(
        Case("same", ((2, 3), (2, 3)), lambda a, d: gc.maximum(a, a + d), (normal, away)),
        Case("row-broadcast", ((2, 3), (3,)), gc.maximum, (away, small)),
        Case("mixed-signs", ((2, 3),), lambda a: gc.maximum(a, 0.0), (away,)),
    ),
    "relu": unary("relu", away),
    "leaky_relu": unary("leaky_relu", away) + cases(
        Case("alpha=0.2", ((5,),), lambda x: gc.leaky_relu(x, alpha=0.2), (away,)),
    ),
    "sigmoid": unary("sigmoid"),
    "tanh": unary("tanh"),
    "softplus": unary("softplus"),
    "erf": unary("erf") + cases(Case("wide", ((8,),), gc.erf, (lambda rng, s: rng.uniform(-5.0, 5.0, s),))),
    "gelu": unary("gelu") + cases(Case("wide", ((8,),), gc.gelu, (lambda rng, s: rng.uniform(-6.0, 6.0, s),))),
    "squared_error": cases(
        Case("same", ((2, 3), (2, 3)), lambda a, b: gc.apply("squared_error", a, b)),
        Case("broadcast", ((2, 3), (3,)), lambda a, b: gc.apply("squared_error", a, b)),
    ),
    "bce_terms": cases(Case("same", ((2, 3), (2, 3)), lambda p, y: gc.apply("bce_terms", p, y), (unit, unit))),
    "bce_logits_terms": cases(
        Case("same", ((2, 3), (2, 3)), lambda z, y: gc.apply("bce_logits_terms", z, y), (normal, unit)),
    ),
    "fused": cases(
        Case("expression", ((3,), (2, 3)),
             lambda a, b: fused(lambda x, y: x * sympy.sin(y) + x**2 / (1 + y**2), [a, b])),
        Case("through-tanh", ((2, 3),), lambda a: fused(lambda x: sympy.tanh(x) ** 2 * x, [a])),
    ),
    "matmul": cases(
        Case("2d@2d", ((2, 3), (3, 4)), gc.matmul),
        Case("1d@1d", ((3,), (3,)), gc.matmul),
        Case("1d@2d", ((3,), (3, 2)), gc.matmul),
        Case("2d@1d", ((2, 3), (3,)), gc.matmul),
        Case("3d@3d", ((2, 2, 3), (2, 3, 4)), gc.matmul),
        Case("3d@2d", ((2, 2, 3), (3, 4)), gc.matmul),
        Case("2d@3d", ((2, 3), (2, 3, 4)), gc.matmul),
        Case("1d@3d", ((3,), (2, 3, 4)), gc.matmul),
        Case("3d@1d", ((2, 4, 3), (3,)), gc.matmul),
        Case("batch-broadcast", ((1, 4, 3), (2, 3, 2)), gc.matmul),
        Case("x@x.T", ((2, 3),), lambda x: x @ x.T),
    ),
    "transpose": cases(
        Case("2d", ((2, 3),), gc.transpose),
        Case("3d-reversed", ((2, 3, 4),), gc.transpose),
        Case("3d-axes", ((2, 3, 4),), lambda x: gc.transpose(x, (2, 0, 1))),
        Case("3d-negative-axes", ((2, 3, 4),), lambda x: gc.transpose(x, (-1, 0, 1))),
    ),
    "reshape": cases(
        Case("2d", ((2, 3),), lambda x: gc.reshape(x, (3, 2))),
        Case("3d-to-2d", ((2, 3, 4),), lambda x: gc.reshape(x, (6, 4))),
        Case("flatten", ((2, 3, 4),), lambda x: gc.reshape(x, (24,))),
        Case("to-scalar", ((1, 1),), lambda x: gc.reshape(x, ())),
    ),
    "broadcast": cases(
        Case("row", ((3,),), lambda x: gc.broadcast_to(x, (2, 3))),
        Case("column", ((2, 1),), lambda x: gc.broadcast_to(x, (2, 3))),
        Case("scalar", ((),), lambda x: gc.broadcast_to(x, (2, 2))),
        Case("3d", ((3, 1),), lambda x: gc.broadcast_to(x, (2, 3, 4))),
    ),
    "zeros_like": cases(Case("plus-x", ((3,),), lambda x: gc.apply("zeros_like", x) + x)),
}

for _reduction in ("sum", "mean", "max", "min"):
    _f = getattr(gc, _reduction)
    CASES[_reduction] = cases(
        Case("all", ((2, 3),), _f),
        Case("axis=0", ((2, 3),), lambda x, f=_f: f(x, axis=0)),
        Case("axis=-1,keepdims", ((2, 3),), lambda x, f=_f: f(x, axis=-1, keepdims=True)),
        Case("axes=(0,2)", ((2, 3, 4),), lambda x, f=_f: f(x, axis=(0, 2))),
        Case("axes=(0,2),keepdims", ((2, 3, 4),), lambda x, f=_f: f(x, axis=(0, 2), keepdims=True)),
        Case("vector", ((4,),), lambda x, f=_f: f(x, axis=0)),
    )

# Composites are checked through their expansion, as users meet them.
CASES.update({
    "softmax": cases(
        Case("last-axis", ((2, 3),), gc.softmax),
        Case("axis=0", ((2, 3),), lambda x: gc.softmax(x, axis=0)),
        Case("3d", ((2, 3, 4),), lambda x: gc.softmax(x, axis=1)),
    ),
    "log_softmax": cases(
        Case("last-axis", ((2, 3),), gc.log_softmax),
        Case("3d", ((2, 3, 4),), lambda x: gc.log_softmax(x, axis=1)),
    ),
    "logsumexp": cases(
        Case("all", ((2, 3),), gc.logsumexp),
        Case("axis=1,keepdims", ((2, 3),), lambda x: gc.logsumexp(x, axis=1, keepdims=True)),
        Case("axes=(0,2)", ((2, 3, 4),), lambda x: gc.logsumexp(x, axis=(0, 2))),
        Case("large", ((3,),), lambda x: gc.logsumexp(x * 300.0)),
    ),
    "mse": cases(Case("2d", ((3, 2), (3, 2)), gc.mse), Case("scalar", ((), ()), gc.mse)),
    "bce": cases(Case("2d", ((3, 2), (3, 2)), gc.bce, (unit, unit)),
                 Case("of-sigmoid", ((4,), (4,)), lambda z, y: gc.bce(gc.sigmoid(z), y), (normal, unit))),
    "bce_with_logits": cases(Case("2d", ((3, 2), (3, 2)), gc.bce_with_logits, (normal, unit))),
    "softmax_cross_entropy": cases(
        Case("soft-targets", ((3, 4), (3, 4)), lambda z, t: gc.softmax_cross_entropy(z, gc.softmax(t))),
        Case("axis=0", ((4, 3), (4, 3)), lambda z, t: gc.softmax_cross_entropy(z, gc.softmax(t, axis=0), axis=0)),
    ),
})

# Indexing, joining and the reductions of issue 13.
CASES.update({
    "index": cases(
        Case("column", ((3, 4),), lambda x: x[:, 0]),
        Case("rows", ((4, 3),), lambda x: x[1:3]),
        Case("strided-newaxis", ((5, 2),), lambda x: x[::-2, None, 1]),
        Case("scalar", ((2, 3),), lambda x: x[1, -1]),
    ),
    "index_grad": cases(Case("column", ((3,),), lambda g: gc.apply(
        "index_grad", g, index=(("slice", None, None, None), 1), shape=(3, 4)))),
    "take": cases(
        Case("repeated-rows", ((3, 4),), lambda x: x[[2, 0, 2, 2]]),
        Case("axis1-2d-index", ((2, 3),), lambda x: x[:, np.array([[0, 2], [1, 1]])]),
    ),
    "take_grad": cases(Case("repeated", ((3, 2),), lambda g: gc.apply(
        "take_grad", g, indices=np.array([1, 0, 1]), axis=0, shape=(2, 2)))),
    "concat": cases(
        Case("axis1", ((2, 3), (2, 1)), lambda a, b: gc.concat([a, b], axis=1)),
        Case("same-operand-twice", ((2, 2),), lambda a: gc.concat([a, a * a, a], axis=0)),
    ),
    "stack": cases(
        Case("axis0", ((2, 3), (2, 3)), lambda a, b: gc.stack([a, b])),
        Case("last-axis", ((3,), (3,)), lambda a, b: gc.stack([a, b * a], axis=-1)),
    ),
    # the condition is a comparison of a param: no gradient flows into it, only into a and b
    "where": cases(
        Case("relu-like", ((2, 3),), lambda x: gc.where(x > 0, x, 0.1 * x), (away,)),
        Case("broadcast", ((2, 3), (3,), (2, 1)), lambda c, a, b: gc.where(c <= 0, a, b), (away,)),
    ),
    # labels are the argmax of a second param (no ties at random points): no gradient flows into them
    "pick": cases(Case("rows", ((3, 4), (3, 4)), lambda z, s: gc.apply("pick", z, gc.argmax(s))),
                  Case("axis0", ((4, 2), (4, 2)), lambda z, s: gc.apply("pick", z, gc.argmax(s, axis=0), axis=0))),
    "pick_grad": cases(Case("rows", ((3,), (3, 4)),
                            lambda g, s: gc.apply("pick_grad", g, gc.argmax(s), shape=(3, 4)))),
    "layer_norm": cases(Case("rows", ((3, 4), (4,), (4,)), gc.layer_norm),
                        Case("3d-eps", ((2, 2, 3), (3,), (3,)), lambda x, g, b: gc.layer_norm(x, g, b, eps=0.1))),
    "batch_norm": cases(Case("batch", ((5, 3), (3,), (3,)), gc.batch_norm)),
    "batch_norm_given": cases(Case("given", ((5, 3), (3,), (3,), (3,), (3,)),
                                   lambda x, g, b, m, v: gc.batch_norm(x, g, b, mean=m, var=gc.square(v) + 0.5))),
    "dropout": cases(Case("inverted", ((3, 4),), lambda x: gc.dropout(x, gc.stop_gradient(gc.where(
        x > 0, 1.0, 0.0)), 0.25), (away,))),
    "var": cases(
        Case("all", ((2, 3),), gc.var),
        Case("axis=0,ddof=1", ((3, 2),), lambda x: gc.var(x, axis=0, ddof=1)),
        Case("axes=(0,2),keepdims", ((2, 3, 4),), lambda x: gc.var(x, axis=(0, 2), keepdims=True)),
    ),
    "std": cases(
        Case("all", ((2, 3),), gc.std),
        Case("axis=-1,ddof=1", ((2, 3),), lambda x: gc.std(x, axis=-1, ddof=1)),
    ),
})

# Convolution and pooling, its parts (patches, their product with the kernel) and the gradient
# ops that are linear in their cotangent (their own VJPs: second derivatives of a CNN).
CASES.update({
    # every param at most 64 entries: each entry is checked on its own too
    "conv2d": cases(
        Case("plain", ((1, 2, 5, 4), (2, 2, 3, 2)), gc.conv2d),
        Case("stride-pad-dilation", ((1, 2, 5, 4), (2, 2, 3, 2)),
             lambda x, w: gc.conv2d(x, w, stride=(2, 1), padding=(1, 2), dilation=(2, 1))),
        Case("NHWC", ((1, 5, 4, 2), (2, 2, 3, 2)), lambda x, w: gc.conv2d(x, w, padding=1, layout="NHWC")),
    ),
    "conv2d_patches": cases(Case("stride-pad-dilation", ((1, 2, 5, 4),), lambda x: gc.apply(
        "conv2d_patches", x, kernel=(3, 2), stride=(2, 1), padding=(1, 2), dilation=(2, 1)))),
    "conv2d_patches_grad": cases(Case("dilation", ((8, 1, 4),), lambda d: gc.apply(
        "conv2d_patches_grad", d, kernel=2, dilation=(1, 2), shape=(3, 4)))),
    "conv2d_matmul": cases(Case("2x3-map", ((8, 1, 6), (2, 2, 2, 2)),
                                lambda p, w: gc.apply("conv2d_matmul", p, w, size=(2, 3)))),
    "conv2d_matmul_grad_patches": cases(Case("2x3-map", ((1, 2, 2, 3), (2, 2, 2, 2)),
                                             lambda g, w: gc.apply("conv2d_matmul_grad_patches", g, w))),
    "conv2d_matmul_grad_kernel": cases(Case("2x3-map", ((8, 1, 6), (1, 2, 2, 3)), lambda p, g: gc.apply(
        "conv2d_matmul_grad_kernel", p, g, shape=(2, 2, 2, 2)))),
    # random points: no ties within a window, so each window's maximum is strict
    "max_pool2d": cases(Case("2x2", ((1, 2, 4, 6),), gc.max_pool2d),
                        Case("3x2-overlapping", ((1, 2, 5, 5),), lambda x: gc.max_pool2d(x, kernel=(3, 2), stride=1))),
    "avg_pool2d": cases(Case("2x2", ((1, 2, 4, 6),), gc.avg_pool2d),
                        Case("3x2-overlapping", ((1, 2, 5, 5),), lambda x: gc.avg_pool2d(x, kernel=(3, 2), stride=1))),
    "avg_pool2d_grad": cases(Case("overlapping", ((1, 2, 3, 4),), lambda g: gc.apply(
        "avg_pool2d_grad", g, kernel=(3, 2), stride=1, shape=(5, 5)))),
})

# Built-in ops that are not checked against central differences, and why.
NOT_CHECKED = {
    "input": "a source: it has no operands to differentiate with respect to",
    "param": "a source: it has no operands to differentiate with respect to",
    "const": "a source: it has no operands to differentiate with respect to",
    "stop_gradient": "its gradient is zero by definition, not the identity's; test_stop_gradient checks that",
    "max_pool2d_grad": "a second derivative through max pooling is not provided (a GradientError names it)",
    "argmax": "piecewise constant: a gradient through it is a GradientError (test_no_gradient_flows_through_...)",
    "less": "a comparison (boolean): a gradient through it is a GradientError",
    "less_equal": "a comparison (boolean): a gradient through it is a GradientError",
    "greater": "a comparison (boolean): a gradient through it is a GradientError",
    "greater_equal": "a comparison (boolean): a gradient through it is a GradientError",
}


def builtin_ops() -> list[str]:
    return sorted(name for name, op in OPS.items() if op.builtin)


def _op_cases():
    for name in builtin_ops():
        if name in NOT_CHECKED:
            continue
        for case in CASES.get(name, [None]):
            yield pytest.param(name, case, id=f"{name}-{case.id}" if case else f"{name}-MISSING")


def build_case(op: str, case: Case, seed: int = 0):
    rng = np.random.default_rng(seed)
    g = gc.Graph(f"{op}-{case.id}")
    params = [g.param(f"p{k}", shape=shape) for k, shape in enumerate(case.shapes)]
    out = case.build(*params)
    weights = g.const(rng.standard_normal(out.shape)) if out.shape else 1.25
    g.output("loss", gc.sum(out * weights))
    feeds = {f"p{k}": case.domain(k)(rng, shape) for k, shape in enumerate(case.shapes)}
    return g, feeds


def ops_in(graph: gc.Graph) -> set[str]:
    return {data["op"] for _, data in graph.nx.nodes(data=True)}


@pytest.mark.parametrize(("op", "case"), list(_op_cases()))
def test_op_gradient(op, case):
    assert case is not None, f"built-in op {op!r} has no gradient case: add one to CASES (or a reason to NOT_CHECKED)"
    g, feeds = build_case(op, case)
    assert op in ops_in(g), f"case {case.id!r} does not use op {op!r}"
    prog = gc.compile(g)
    report = gc.check_gradients(prog, feeds, rtol=1e-5, atol=1e-7)
    assert report.ok and not report.kinks, str(report)
    assert report.rows[0].param == "<random direction>"
    assert len(report.rows) == 1 + sum(int(np.prod(s)) for s in case.shapes)


def test_every_builtin_op_has_a_case_or_a_reason():
    missing = [n for n in builtin_ops() if n not in CASES and n not in NOT_CHECKED]
    assert not missing, f"built-in ops without a gradient case: {missing}"
    assert not set(CASES) & set(NOT_CHECKED)
    assert set(CASES) | set(NOT_CHECKED) <= set(OPS), "a case names an op that is not in the table"


def test_stop_gradient_passes_no_gradient():
    g = gc.Graph("stop")
    x = g.param("x", shape=(3,))
    g.output("loss", gc.sum(gc.stop_gradient(x) * x))
    feeds = {"x": np.array([1.0, -2.0, 0.5])}
    _, grads = gc.compile(g).value_and_grad(feeds)
    # d/dx sum(sg(x) * x) = sg(x): the stopped operand contributes nothing
    np.testing.assert_array_equal(grads["x"], feeds["x"])


def test_a_custom_elementwise_op_is_differentiated_from_its_definition():
    swish = gc.elementwise("swish_gradtest", lambda x: x / (1 + sympy.exp(-x)))
    g = gc.Graph("swish")
    x = g.param("x", shape=(4,))
    g.output("loss", gc.sum(swish(x) * g.const(np.array([1.0, -2.0, 0.5, 3.0]))))
    gc.check_gradients(gc.compile(g), {"x": np.array([-1.5, -0.2, 0.3, 2.0])})


@pytest.mark.parametrize("op", ["sigmoid", "softplus", "bce_with_logits", "logsumexp", "softmax_cross_entropy"])
def test_stable_forms_have_finite_gradients_at_800(op):
    g = gc.Graph(f"{op}-800")
    z = g.param("z", shape=(2, 2))
    t = g.input("t", shape=(2, 2))
    out = {"sigmoid": lambda: gc.sum(gc.sigmoid(z) * t), "softplus": lambda: gc.sum(gc.softplus(z) * t),
           "bce_with_logits": lambda: gc.bce_with_logits(z, t), "logsumexp": lambda: gc.logsumexp(z),
           "softmax_cross_entropy": lambda: gc.softmax_cross_entropy(z, t)}[op]()
    g.output("loss", out)
    feeds = {"z": np.array([[800.0, -800.0], [-800.0, 800.0]]), "t": np.array([[1.0, 0.0], [0.0, 1.0]])}
    value, grads = gc.compile(g).value_and_grad(feeds)
    assert np.isfinite(value["loss"]) and np.all(np.isfinite(grads["z"]))


@pytest.mark.parametrize("op", [
    "sigmoid", "softplus", "bce_with_logits", "logsumexp", "softmax_cross_entropy",
])
def test_stable_forms_do_not_overflow_at_800(op):
    g = gc.Graph(f"{op}-800")
    z = g.param("z", shape=(2,))
    t = g.input("t", shape=(2,))
    out = {"sigmoid": lambda: gc.sum(gc.sigmoid(z) * t), "softplus": lambda: gc.sum(gc.softplus(z) * t),
           "bce_with_logits": lambda: gc.bce_with_logits(z, t), "logsumexp": lambda: gc.logsumexp(z),
           "softmax_cross_entropy": lambda: gc.softmax_cross_entropy(z, t)}[op]()
    g.output("loss", out)
    prog = gc.compile(g)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        prog.value_and_grad({"z": np.array([800.0, -800.0]), "t": np.array([1.0, 0.0])})


@pytest.mark.parametrize("through", ["argmax", "greater", "less_equal"])
def test_no_gradient_flows_through_argmax_or_a_comparison(through):
    g = gc.Graph(f"through-{through}")
    p = g.param("p", shape=(2, 3))
    node = {"argmax": lambda: gc.argmax(p), "greater": lambda: p > 0.5, "less_equal": lambda: p <= 0.0}[through]()
    g.output("loss", gc.sum(node * 1.0) + gc.sum(p))
    with pytest.raises(gc.GradientError, match=f"node '{node.id}' \\(op {through}\\).*stop_gradient"):
        gc.compile(g)


def test_a_comparison_behind_stop_gradient_or_as_a_condition_passes_no_gradient():
    g = gc.Graph("mask")
    p = g.param("p", shape=(4,))
    mask = p > 0
    g.output("loss", gc.sum(gc.stop_gradient(mask) * p) + gc.sum(gc.where(mask, p * p, 3.0 * p)))
    value = np.array([-1.0, 0.5, 2.0, -0.25])
    _, grads = gc.compile(g).value_and_grad({"p": value})
    np.testing.assert_allclose(grads["p"], (value > 0) + np.where(value > 0, 2 * value, 3.0), rtol=1e-15)


def test_min_splits_the_gradient_evenly_among_ties_and_says_so():
    g = gc.Graph("min-ties")
    p = g.param("p", shape=(2, 3))
    g.output("loss", gc.sum(gc.min(p, axis=1) * g.const(np.array([1.0, 2.0]))))
    prog = gc.compile(g)
    _, grads = prog.value_and_grad({"p": np.array([[1.0, 1.0, 3.0], [0.5, 0.5, 0.5]])})
    np.testing.assert_array_equal(grads["p"], [[0.5, 0.5, 0.0], [2 / 3, 2 / 3, 2 / 3]])
    assert "ties split the gradient evenly among the minimal elements" in prog.source


def test_a_gather_with_repeated_indices_adds_their_cotangents():
    g = gc.Graph("gather")
    table = g.param("table", shape=(3, 2))
    g.output("loss", gc.sum(table[[2, 0, 2]] * g.const(np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]))))
    prog = gc.compile(g)
    _, grads = prog.value_and_grad({"table": np.zeros((3, 2))})
    np.testing.assert_array_equal(grads["table"], [[3.0, 4.0], [0.0, 0.0], [6.0, 8.0]])
    assert "numpy.add.at(" in prog.source


def test_a_float32_std_with_an_irrational_coefficient_stays_float32():
    # std(x, ddof=1) over 6 entries folds to sqrt(5)/5 * sqrt(sum): printed as numpy.sqrt(5)
    # (a float64 scalar) it widened the float32 result to float64
    g = gc.Graph("std32")
    x = g.input("x", shape=(3, 2), dtype="float32")
    g.output("loss", gc.std(x, ddof=1) * 1.0)
    feed = np.array([[0.0, 1.0], [2.0, 4.0], [-1.0, 3.0]])
    loss = gc.compile(g).forward({"x": feed})["loss"]
    assert loss.dtype == np.float32
    np.testing.assert_allclose(loss, np.std(feed, ddof=1), rtol=1e-6)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("size", [2, 1000])  # small arrays take the kernel's e/(1+e), big ones the table's form
def test_sigmoid_does_not_overflow_in_its_dtype(dtype, size):
    """exp's largest finite argument is 88 in float32, not float64's 709: the cap of the
    stable form follows the dtype, so z = -800 raises nothing and gives 0 and its gradient."""
    g = gc.Graph(f"sigmoid-{dtype}-{size}")
    z = g.param("z", shape=(size,), dtype=dtype)
    g.output("loss", gc.sum(gc.sigmoid(z)))
    feeds = {"z": np.full(size, -800.0, dtype=dtype)}
    feeds["z"][0] = 800.0
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        value, grads = gc.compile(g).value_and_grad(feeds)
    tiny = np.finfo(dtype).tiny
    assert grads["z"].dtype == np.dtype(dtype)
    np.testing.assert_allclose(value["loss"], 1.0, atol=size * tiny)
    assert np.all(grads["z"] <= tiny) and np.all(grads["z"] >= 0)
