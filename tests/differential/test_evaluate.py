"""gc.evaluate, the reference interpreter: every op against numpy written by hand, every
stage of a compiled program against the declared graph, dtypes, feeds and typed errors."""

from __future__ import annotations

import ast
import math
import sys
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
import sympy

import graphc as gc
from graphc import ir
from graphc.evaluate import numpy_function
from graphc.ops import OPS
from graphc.ops.fused import fused_symbols

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the conv and pooling loops
import conv_reference as conv  # noqa: E402

RNG = np.random.default_rng(0)
X = RNG.uniform(0.2, 1.8, size=(2, 3))  # positive (log, sqrt, pow) and away from kinks
B = RNG.uniform(-1.5, 1.5, size=(3,))


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


UNARY = {
    "neg": lambda a: -a, "identity": lambda a: a, "square": lambda a: a * a, "sqrt": np.sqrt,
    "exp": np.exp, "log": np.log, "log1p": lambda a: np.log(1 + a), "sin": np.sin, "cos": np.cos,
    "abs": lambda a: np.where(a < 0, -a, a), "relu": lambda z: np.where(z > 0, z, 0.0),
    "leaky_relu": lambda z: np.where(z >= 0, z, 0.01 * z), "sigmoid": _sigmoid, "tanh": np.tanh,
    "softplus": lambda z: np.log(1 + np.exp(z)),
}
BINARY = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b, "pow": lambda a, b: np.exp(b * np.log(a)),
    "maximum": lambda a, b: np.where(a >= b, a, b), "squared_error": lambda g, y: (g - y) ** 2,
    "bce_terms": lambda p, y: -(y * np.log(p) + (1 - y) * np.log(1 - p)),
    "bce_logits_terms": lambda z, y: np.log(1 + np.exp(z)) - y * z,
}


def _unary_case(name):
    g = gc.Graph(name); x = g.input("x", shape=(2, 3))
    g.output("y", gc.apply(name, x - 1.0 if name in ("abs", "relu", "leaky_relu") else x))
    arg = X - 1.0 if name in ("abs", "relu", "leaky_relu") else X
    return g, {"x": X}, UNARY[name](arg)


def _binary_case(name):
    g = gc.Graph(name); x = g.input("x", shape=(2, 3)); b = g.param("b", shape=(3,))
    second = _sigmoid(B) if name == "bce_terms" else B  # bce's target in [0, 1], p = x / 2 in (0, 1)
    first = X / 2 if name == "bce_terms" else X
    g.output("y", gc.apply(name, x / 2 if name == "bce_terms" else x, b))
    return g, {"x": X, "b": second}, BINARY[name](first, second)


def _reduction_cases(name, hand):
    x3 = RNG.standard_normal((2, 3, 4))
    for axis in (None, 0, 1, 2, -1, (0, 2), (0, 1, 2)):
        for keepdims in (False, True):
            g = gc.Graph(name); x = g.input("x", shape=(2, 3, 4))
            g.output("y", gc.apply(name, x, axis=axis, keepdims=keepdims))
            yield g, {"x": x3}, hand(x3, axis=axis, keepdims=keepdims)


def _lse(x, axis=None, keepdims=False):
    return np.log(np.sum(np.exp(x), axis=axis, keepdims=keepdims))


def _fused_case():
    g = nx.MultiDiGraph(name="fused")
    a0, a1 = fused_symbols(2)
    n = sympy.Symbol("N", integer=True, positive=True)
    ir.add_op(g, "x", "input", [], {}, (n, 3))
    ir.add_op(g, "b", "param", [], {}, (3,))
    ir.add_op(g, "k", "fused", ["x", "b"], {"kink": ""}, (n, 3), expr=(a0 * sympy.tanh(a1) / n, (a0, a1)))
    g.graph.update(inputs=["x"], params=["b"], outputs=["k"])
    return g, {"x": X, "b": B}, X * np.tanh(B) / 2


def _matmul_cases():
    for sa, sb in (((3, 2), (2, 4)), ((2,), (2, 4)), ((3, 2), (2,)), ((2,), (2,)), ((5, 3, 2), (2, 4))):
        a, b = RNG.standard_normal(sa), RNG.standard_normal(sb)
        g = gc.Graph("mm"); x = g.input("x", shape=sa); w = g.param("w", shape=sb)
        g.output("y", x @ w)
        yield g, {"x": a, "w": b}, np.einsum("...i,i...->...", a, b) if len(sa) == len(sb) == 1 else a @ b


def _softmax_hand(x, axis=-1):
    e = np.exp(x)
    return e / np.sum(e, axis=axis, keepdims=True)


def _cases(name):
    """Graphs using op ``name``, their feeds and the value of output "y" by hand."""
    x3 = RNG.standard_normal((2, 3, 4))
    if name in UNARY:
        yield _unary_case(name)
    elif name in BINARY:
        yield _binary_case(name)
    elif name in ("sum", "mean", "max", "logsumexp"):
        yield from _reduction_cases(name, {"sum": np.sum, "mean": np.mean, "max": np.max, "logsumexp": _lse}[name])
    elif name == "matmul":
        yield from _matmul_cases()
    elif name == "fused":
        yield _fused_case()
    elif name in ("input", "param", "const"):
        g = gc.Graph(name); src = g.input("x", shape=(3,)) if name == "input" else g.param("x", shape=(3,))
        g.output("y", src * g.const([1.0, 2.0, 3.0]))
        yield g, {"x": B}, B * [1.0, 2.0, 3.0]
    elif name == "transpose":
        for axes in (None, (1, 0, 2), (2, 0, 1)):
            g = gc.Graph(name); x = g.input("x", shape=(2, 3, 4))
            g.output("y", gc.transpose(x, axes))
            yield g, {"x": x3}, np.einsum({None: "ijk->kji", (1, 0, 2): "ijk->jik", (2, 0, 1): "ijk->kij"}[axes], x3)
    elif name == "reshape":
        g = gc.Graph(name); x = g.input("x", shape=("N", 3, 4))
        g.output("y", gc.reshape(x, ("N", 12)))
        yield g, {"x": x3}, x3.reshape(2, 12)
    elif name == "broadcast":
        g = gc.Graph(name); b = g.param("b", shape=(3, 1))
        g.output("y", gc.broadcast_to(b, (2, 3, 4)))
        yield g, {"b": B.reshape(3, 1)}, np.tile(B.reshape(1, 3, 1), (2, 1, 4))
    elif name in ("stop_gradient", "zeros_like"):
        g = gc.Graph(name); x = g.input("x", shape=(2, 3))
        g.output("y", gc.apply(name, x))
        yield g, {"x": X}, X if name == "stop_gradient" else np.zeros((2, 3))
    elif name in ("softmax", "log_softmax"):
        for axis in (-1, 0, 1):
            g = gc.Graph(name); x = g.input("x", shape=(2, 3, 4))
            g.output("y", gc.apply(name, x, axis=axis))
            s = _softmax_hand(x3, axis)
            yield g, {"x": x3}, s if name == "softmax" else np.log(s)
    elif name in ("mse", "bce", "bce_with_logits", "softmax_cross_entropy"):
        g = gc.Graph(name); p = g.input("p", shape=("N", 3)); t = g.input("t", shape=("N", 3))
        g.output("y", gc.apply(name, p, t))
        probs, onehot = _sigmoid(X), np.eye(3)[[0, 2]]
        hand = {
            "mse": lambda: np.mean((X - onehot) ** 2),
            "bce": lambda: np.mean(-(onehot * np.log(probs) + (1 - onehot) * np.log(1 - probs))),
            "bce_with_logits": lambda: np.mean(-(onehot * np.log(probs) + (1 - onehot) * np.log(1 - probs))),
            "softmax_cross_entropy": lambda: -np.mean(np.sum(onehot * np.log(_softmax_hand(X)), axis=1)),
        }[name]
        yield g, {"p": probs if name == "bce" else X, "t": onehot}, hand()
    elif name in ISSUE_13:
        yield from ISSUE_13[name](x3)
    else:
        pytest.fail(f"op {name!r} has no interpreter case in {__file__}: add one (numpy written by hand)")


def _one(name, shapes, build, hand):
    """A graph of inputs x0, x1.. of ``shapes`` and output y = build(*inputs); y by hand."""
    def cases(x3):
        arrays = [RNG.standard_normal(s) for s in shapes]
        g = gc.Graph(name)
        g.output("y", build(*[g.input(f"x{k}", shape=s) for k, s in enumerate(shapes)]))
        yield g, {f"x{k}": a for k, a in enumerate(arrays)}, hand(*arrays)

    return cases


def _hand_min(x, axis=None, keepdims=False):
    return -np.max(-x, axis=axis, keepdims=keepdims)


def _hand_var(x, axis=None, keepdims=False, ddof=0):
    count = x.size if axis is None else np.prod([x.shape[a] for a in np.atleast_1d(axis)])
    centred = x - np.sum(x, axis=axis, keepdims=True) / count
    return np.sum(centred * centred, axis=axis, keepdims=keepdims) / (count - ddof)


def _reductions_and(name, hand, ddof=False):
    def cases(x3):
        yield from _reduction_cases(name, hand)
        if ddof:
            g = gc.Graph(name); x = g.input("x", shape=(2, 3, 4))
            g.output("y", gc.apply(name, x, axis=1, ddof=1))
            yield g, {"x": x3}, hand(x3, axis=1, ddof=1)

    return cases


# the ops of issue 13, each against numpy written by hand (loops and arithmetic, not the op itself)
ISSUE_13 = {
    "index": _one("index", [(3, 4)], lambda x: x[1:, -1], lambda a: np.array([a[1][3], a[2][3]])),
    "index_grad": _one("index_grad", [(3,)], lambda g: gc.apply(
        "index_grad", g, index=(("slice", None, None, None), 1), shape=(3, 2)),
        lambda a: np.array([[0.0, v] for v in a])),
    "take": _one("take", [(3, 2)], lambda x: x[[2, 0, 2]], lambda a: np.array([a[2], a[0], a[2]])),
    "take_grad": _one("take_grad", [(3, 2)], lambda g: gc.apply(
        "take_grad", g, indices=np.array([1, 0, 1]), axis=0, shape=(2, 2)), lambda a: np.array([a[1], a[0] + a[2]])),
    "concat": _one("concat", [(2, 1), (2, 2)], lambda a, b: gc.concat([a, b], axis=1),
                   lambda a, b: np.array([[a[i][0], b[i][0], b[i][1]] for i in range(2)])),
    "stack": _one("stack", [(2,), (2,)], lambda a, b: gc.stack([a, b], axis=1),
                  lambda a, b: np.array([[a[0], b[0]], [a[1], b[1]]])),
    "less": _one("less", [(4,), (4,)], lambda a, b: a < b, lambda a, b: np.array([u < v for u, v in zip(a, b)])),
    "less_equal": _one("less_equal", [(4,)], lambda a: a <= a, lambda a: np.ones(4, dtype=bool)),
    "greater": _one("greater", [(4,), ()], lambda a, b: a > b, lambda a, b: np.array([u > b for u in a])),
    "greater_equal": _one("greater_equal", [(4,)], lambda a: a >= a, lambda a: np.ones(4, dtype=bool)),
    "where": _one("where", [(2, 3), (3,)], lambda c, a: gc.where(c > 0, a, -1.0),
                  lambda c, a: np.array([[a[j] if c[i][j] > 0 else -1.0 for j in range(3)] for i in range(2)])),
    "argmax": _one("argmax", [(3, 4)], lambda x: gc.argmax(x), lambda a: np.array([list(r).index(max(r)) for r in a])),
    "pick": _one("pick", [(3, 4)], lambda z: gc.apply("pick", z, gc.argmax(z * -1.0)),
                 lambda a: np.array([min(row) for row in a])),
    "pick_grad": _one("pick_grad", [(3, 2)],
                      lambda s: gc.apply("pick_grad", gc.sum(s, axis=1), gc.argmax(s), shape=(3, 2)),
                      lambda a: np.array([[a[i].sum() if a[i][j] == max(a[i]) else 0.0 for j in range(2)]
                                          for i in range(3)])),
    "layer_norm": _one("layer_norm", [(2, 3), (3,), (3,)], gc.layer_norm, lambda x, g, b: np.array(
        [[(r[j] - sum(r) / 3) / np.sqrt(sum((v - sum(r) / 3) ** 2 for v in r) / 3 + 1e-5) * g[j] + b[j]
          for j in range(3)] for r in x])),
    "batch_norm": _one("batch_norm", [(3, 2), (2,), (2,)], gc.batch_norm, lambda x, g, b: np.array(
        [[(x[i][j] - sum(x[:, j]) / 3) / np.sqrt(sum((v - sum(x[:, j]) / 3) ** 2 for v in x[:, j]) / 3 + 1e-5)
          * g[j] + b[j] for j in range(2)] for i in range(3)])),
    "batch_norm_given": _one("batch_norm_given", [(3, 2), (2,), (2,), (2,), (2,)],
                             lambda x, g, b, m, v: gc.batch_norm(x, g, b, mean=m, var=v * v),
                             lambda x, g, b, m, v: np.array([[(x[i][j] - m[j]) / np.sqrt(v[j] * v[j] + 1e-5) * g[j]
                                                              + b[j] for j in range(2)] for i in range(3)])),
    "dropout": _one("dropout", [(2, 3), (2, 3)], lambda x, m: gc.dropout(x, m, 0.5), lambda x, m: x * m * 2.0),
    "min": _reductions_and("min", _hand_min),
    "var": _reductions_and("var", _hand_var, ddof=True),
    "std": _reductions_and("std", lambda x, **kw: np.sqrt(_hand_var(x, **kw)), ddof=True),
    "erf": _one("erf", [(2, 3)], gc.erf, lambda a: np.array([[math.erf(v) for v in r] for r in a])),
    "gelu": _one("gelu", [(2, 3)], gc.gelu,
                 lambda a: np.array([[v / 2 * (1 + math.erf(v / math.sqrt(2))) for v in r] for r in a])),
    # convolution and pooling: the one-element-at-a-time loops of tests/conv_reference.py
    "conv2d": _one("conv2d", [(2, 2, 7, 6), (3, 2, 3, 2)],
                   lambda x, w: gc.conv2d(x, w, stride=(2, 1), padding=(1, 2), dilation=(2, 1)),
                   lambda x, w: conv.conv2d(x, w, (2, 1), (1, 2), (2, 1))),
    "conv2d_patches": _one("conv2d_patches", [(2, 2, 7, 6)], lambda x: gc.apply(
        "conv2d_patches", x, kernel=(3, 2), stride=(2, 1), padding=(1, 2), dilation=(2, 1)),
        lambda x: conv.patches(x, (3, 2), (2, 1), (1, 2), (2, 1))),
    "conv2d_patches_grad": _one("conv2d_patches_grad", [(12, 2, 14)], lambda d: gc.apply(
        "conv2d_patches_grad", d, kernel=(3, 2), stride=(2, 1), padding=(1, 2), dilation=(2, 1), shape=(5, 4)),
        lambda d: conv.patches_grad(d, (5, 4), (3, 2), (2, 1), (1, 2), (2, 1))),
    "conv2d_matmul": _one("conv2d_matmul", [(12, 2, 6), (3, 2, 3, 2)],
                          lambda p, w: gc.apply("conv2d_matmul", p, w, size=(2, 3)),
                          lambda p, w: conv.conv_matmul(p, w, (2, 3))),
    "conv2d_matmul_grad_patches": _one("conv2d_matmul_grad_patches", [(2, 3, 2, 3), (3, 2, 3, 2)],
                                       lambda g, w: gc.apply("conv2d_matmul_grad_patches", g, w),
                                       conv.conv_matmul_grad_patches),
    "conv2d_matmul_grad_kernel": _one("conv2d_matmul_grad_kernel", [(12, 2, 6), (2, 3, 2, 3)],
                                      lambda p, g: gc.apply("conv2d_matmul_grad_kernel", p, g, shape=(3, 2, 3, 2)),
                                      lambda p, g: conv.conv_matmul_grad_kernel(p, g, (3, 2, 3, 2))),
    "max_pool2d": _one("max_pool2d", [(1, 2, 5, 5)], lambda x: gc.max_pool2d(x, kernel=(3, 2), stride=1),
                       lambda x: conv.pool(x, (3, 2), 1)),
    "max_pool2d_grad": _one("max_pool2d_grad", [(1, 2, 5, 5), (1, 2, 3, 4)],
                            lambda x, g: gc.apply("max_pool2d_grad", x, gc.max_pool2d(x, kernel=(3, 2), stride=1), g,
                                                  kernel=(3, 2), stride=1),
                            lambda x, g: conv.max_pool2d_grad(x, g, (3, 2), 1)),
    "avg_pool2d": _one("avg_pool2d", [(2, 3, 4, 6)], gc.avg_pool2d, lambda x: conv.pool(x, combine=conv.mean)),
    "avg_pool2d_grad": _one("avg_pool2d_grad", [(1, 2, 3, 4)], lambda g: gc.apply(
        "avg_pool2d_grad", g, kernel=(3, 2), stride=1, shape=(5, 5)),
        lambda g: conv.avg_pool2d_grad(g, (5, 5), (3, 2), 1)),
}


@pytest.mark.parametrize("name", sorted(OPS))
def test_every_op_matches_numpy_written_by_hand(name):
    cases = list(_cases(name))
    assert cases
    for graph, feeds, expected in cases:
        got = gc.evaluate(graph, feeds)
        out = (graph.nx if hasattr(graph, "nx") else graph).graph["outputs"][0]
        assert got[out].shape == np.shape(expected)
        np.testing.assert_allclose(got[out], expected, rtol=1e-13, atol=1e-15, err_msg=name)


def test_composites_are_stable_where_the_textbook_formula_overflows():
    g = gc.Graph("wide"); x = g.input("x", shape=(2,))
    g.output("s", gc.softmax(x)); g.output("l", gc.logsumexp(x)); g.output("ls", gc.log_softmax(x))
    got = gc.evaluate(g, {"x": [800.0, -800.0]})
    np.testing.assert_allclose(got["s"], [1.0, 0.0], atol=0)
    assert got["l"] == 800.0 and got["ls"][0] == 0.0 and got["ls"][1] == -1600.0
    assert gc.evaluate(g, {"x": [-np.inf, -np.inf]})["l"] == -np.inf
    g2 = gc.Graph("sig"); z = g2.input("z", shape=(4,))
    g2.output("y", gc.sigmoid(z)); g2.output("sp", gc.softplus(z))
    got = gc.evaluate(g2, {"z": [-800.0, -30.0, 30.0, 800.0]})
    np.testing.assert_allclose(got["y"], [0.0, np.exp(-30) / (1 + np.exp(-30)), 1 / (1 + np.exp(-30)), 1.0], rtol=1e-15)
    np.testing.assert_allclose(got["sp"], [0.0, np.log1p(np.exp(-30.0)), 30.0 + np.log1p(np.exp(-30.0)), 800.0],
                               rtol=1e-15)


def test_bce_keeps_its_declared_clamp_at_0_and_1():
    g = gc.Graph("clamp"); p = g.input("p", shape=(2,)); y = g.input("y", shape=(2,))
    g.output("loss", gc.bce(p, y))
    assert gc.evaluate(g, {"p": [0.0, 1.0], "y": [1.0, 0.0]})["loss"] == 100.0


def test_kink_conventions_are_the_declared_ones():
    x = sympy.Symbol("x")
    step = numpy_function
    np.testing.assert_array_equal(step(sympy.Heaviside(x, 1))({x: np.array([-1.0, 0.0, 2.0])}), [0, 1, 1])
    np.testing.assert_array_equal(step(sympy.Heaviside(x))({x: np.array([-1.0, 0.0, 2.0])}), [0, 0.5, 1])
    pw = sympy.Piecewise((x, x >= 0), (0.5 * x, True))
    np.testing.assert_array_equal(step(pw)({x: np.array([-2.0, 0.0, 3.0])}), [-1.0, 0.0, 3.0])
    nested = sympy.Piecewise((1, sympy.ITE(x >= 0, x >= 0, 0.2 * x >= 0)), (0.2, True))  # fused leaky(leaky(x))'
    np.testing.assert_array_equal(step(nested)({x: np.array([-2.0, 0.0, 3.0])}), [0.2, 1.0, 1.0])


def _stage_feeds(graph, feeds):
    """The feeds, plus a cotangent of ones for a seed input (a joint graph's d_<of>)."""
    extra = {n: np.ones([d if isinstance(d, int) else 3 for d in graph.nodes[n]["shape"]])
             for n in graph.nodes if graph.nodes[n]["op"] == "input" and n not in feeds}
    return {**feeds, **extra}


@pytest.mark.parametrize("net", ["mlp", "logistic_classifier", "residual", "deep_sigmoid"])
def test_every_stage_of_a_program_computes_what_the_declared_graph_does(net):
    graph, feeds = getattr(gc.zoo, net)()
    prog = gc.compile(graph)
    want = gc.evaluate(graph, feeds)
    for name, stage in prog.stages.items():
        got = gc.evaluate(stage, _stage_feeds(stage, feeds))
        for out in graph.outputs:
            np.testing.assert_allclose(got[out], want[out], rtol=1e-12, atol=1e-14, err_msg=f"{net}, stage {name}")


def test_the_gradients_in_a_joint_graph_are_central_differences_of_the_declared_one():
    graph, feeds = gc.zoo.mlp(widths=(2, 3, 1), n=4)
    joint = gc.compile(graph).stages["scheduled"]
    values = gc.evaluate(joint, _stage_feeds(joint, feeds))
    eps = 1e-6
    for name, node in joint.graph["grads"].items():
        numeric = np.zeros_like(feeds[name])
        for index in np.ndindex(numeric.shape):
            shifted = [{**feeds, name: feeds[name].copy()} for _ in range(2)]
            shifted[0][name][index] += eps
            shifted[1][name][index] -= eps
            plus, minus = (float(gc.evaluate(graph, f, ["loss"])["loss"]) for f in shifted)
            numeric[index] = (plus - minus) / (2 * eps)
        np.testing.assert_allclose(values[node], numeric, rtol=1e-6, atol=1e-9, err_msg=name)


def test_values_have_the_declared_dtype_unless_asked_for_float64():
    g = gc.Graph("f32"); x = g.input("x", shape=(3,), dtype="float32")
    g.output("y", gc.exp(x) * 0.1 + gc.sum(x))
    fed = {"x": [1.0, 2.0, 3.0]}
    got = gc.evaluate(g, fed)
    assert all(got[n].dtype == g.nx.nodes[n]["dtype"] for n in got) and got["y"].dtype == np.float32
    wide = gc.evaluate(g, fed, dtype="float64")
    assert wide["y"].dtype == np.float64
    exact = np.exp([1.0, 2.0, 3.0]) * 0.1 + 6.0
    np.testing.assert_allclose(wide["y"], exact, rtol=1e-15)
    np.testing.assert_allclose(got["y"], exact, rtol=1e-6)
    assert not np.array_equal(got["y"].astype(np.float64), exact)  # really computed in float32


def test_only_what_the_asked_nodes_need_is_computed_and_fed():
    g = gc.Graph("part"); x = g.input("x", shape=(2,)); y = g.input("y", shape=(2,))
    g.output("a", x * 2); g.output("b", gc.log(y))
    assert list(gc.evaluate(g, {"x": [1.0, 2.0]}, nodes=["a"])) == ["a"]
    np.testing.assert_array_equal(gc.evaluate(g, {"x": [1.0, 2.0]}, nodes="a")["a"], [2.0, 4.0])
    with pytest.raises(gc.FeedError, match="missing feed for node 'y'"):
        gc.evaluate(g, {"x": [1.0, 2.0]})


def test_a_plain_networkx_graph_evaluates():
    g = nx.DiGraph()
    g.add_node("x", op="input", shape=(2,)); g.add_node("y", op="exp", shape=(2,), attrs={})
    g.add_edge("x", "y", arg=0)
    np.testing.assert_allclose(gc.evaluate(g, {"x": [0.0, 1.0]})["y"], [1.0, np.e])


def test_values_are_the_callers_to_keep():
    g = gc.Graph("own"); x = g.input("x", shape=(2,))
    g.output("y", gc.identity(x)); g.output("z", gc.reshape(x, (2, 1)))
    fed = np.array([1.0, 2.0])
    got = gc.evaluate(g, {"x": fed})
    got["y"][0] = 100.0
    assert fed[0] == 1.0 and got["x"][0] == 1.0 and got["z"][0, 0] == 1.0


@pytest.mark.parametrize("feeds, message", [
    ({"x": [[1.0, 2.0]]}, "has shape \\(1, 2\\), expected rank 1"),
    ({"x": [1.0, 2.0], "w": 1.0}, "feed 'w' is not an input or param"),
    ({"x": "abc"}, "cannot read str as a float64 array"),
    ([1.0], "feeds must be a dict"),
])
def test_bad_feeds_are_typed_errors(feeds, message):
    g = gc.Graph("bad"); x = g.input("x", shape=("N",))
    g.output("y", x * 2)
    with pytest.raises(gc.FeedError, match=message):
        gc.evaluate(g, feeds)


def test_a_dim_bound_twice_differently_is_a_feed_error():
    g = gc.Graph("dims"); x = g.input("x", shape=("N", 2)); y = g.input("y", shape=("N", 2))
    g.output("s", gc.sum(x * y))
    with pytest.raises(gc.FeedError, match="dim N is 3 here but 2"):
        gc.evaluate(g, {"x": np.ones((2, 2)), "y": np.ones((3, 2))})


def test_unknown_nodes_and_functions_are_graph_errors():
    g = gc.Graph("t"); x = g.input("x", shape=())
    g.output("y", x + 1)
    with pytest.raises(gc.GraphError, match="node 'nope' is not in graph"):
        gc.evaluate(g, {"x": 1.0}, nodes=["nope"])
    f = sympy.Function("mystery")
    a0 = fused_symbols(1)[0]
    raw = nx.MultiDiGraph(name="t")
    ir.add_op(raw, "x", "input", [], {}, ())
    ir.add_op(raw, "k", "fused", ["x"], {"kink": ""}, (), expr=(f(a0), (a0,)))
    with pytest.raises(gc.GraphError, match="no numpy definition for mystery"):
        gc.evaluate(raw, {"x": 1.0})


def test_functions_numpy_lacks_are_evaluated_elementwise():
    a0 = fused_symbols(1)[0]
    raw = nx.MultiDiGraph(name="t")
    ir.add_op(raw, "x", "input", [], {}, (3,))
    ir.add_op(raw, "k", "fused", ["x"], {"kink": ""}, (3,), expr=(sympy.erf(a0) + sympy.gamma(a0), (a0,)))
    got = gc.evaluate(raw, {"x": [0.5, 1.0, 2.0]})["k"]
    np.testing.assert_allclose(got, [math.erf(v) + math.gamma(v) for v in (0.5, 1.0, 2.0)], rtol=1e-15)


def test_the_interpreter_imports_nothing_of_the_code_generator():
    tree = ast.parse(Path(sys.modules["graphc.evaluate"].__file__).read_text())
    modules = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    modules |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    allowed = {"__future__", "functools", "math", "collections.abc", "networkx", "numpy", "sympy", "sympy.codegen",
               None, "errors", "ops.base", "ops.functions"}
    assert modules <= allowed, modules - allowed


def test_a_cycle_is_a_graph_error():
    g = nx.MultiDiGraph(name="loop")
    ir.add_op(g, "a", "exp", [], {}, ())
    ir.add_op(g, "b", "exp", ["a"], {}, ())
    g.add_edge("b", "a", arg=0)
    with pytest.raises(gc.GraphError, match="cycle"):
        gc.evaluate(g, {})
