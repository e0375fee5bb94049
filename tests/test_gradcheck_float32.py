"""gc.check_gradients on float32 programs: the derivation on the float64 twin, then the rounding.

The derivation step holds the float64 twin (the same graph compiled in float64) to
central differences; the rounding step holds the float32 gradients to the twin's, within
the float32 rounding noise measured around the point (graphc/rounding.py). Each test says
what it proves: false failures gone (a fast-turning network, a sigmoid near 1), true
failures kept (a wrong derivative, a wrong VJP, a float16 cast in the float32 backward, a
gradient off by a factor) and blamed on the right step and node.
"""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
import graphc.differentiate
from graphc.ops import Op


def _same_shape(shapes, attrs, node=None, op=None):
    return shapes[0]


def conv_exp_cos(dtype: str) -> gc.Graph:
    """The differential corpus's float32 false-failure class: cos(|exp(conv2d_matmul(..))|)."""
    g = gc.Graph("net")
    x1 = g.input("x1", shape=(1, 2), dtype=dtype)
    p2 = g.param("p2", shape=(1, 2), dtype=dtype)
    _ = gc.maximum(p2, x1)
    p6 = g.param("p6", shape=(2, 2, 3, 2), dtype=dtype)
    p7 = g.param("p7", shape=(12, 1, 14), dtype=dtype)
    v8 = gc.sum(gc.apply("conv2d_matmul", p7, p6, size=(2, 7)), axis=(2, 3))
    g.output("loss", gc.mean(gc.cos(gc.abs(gc.exp(v8)))))
    g.output("out", p2)
    return g


def conv_feeds(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    shapes = {"x1": (1, 2), "p2": (1, 2), "p6": (2, 2, 3, 2), "p7": (12, 1, 14)}
    return {k: rng.standard_normal(s).astype(np.float32).astype(np.float64) for k, s in shapes.items()}


@pytest.mark.parametrize("seed", [0, 6, 8, 9])  # points where 1,000 ulp called the right gradient wrong
def test_the_fast_turning_float32_network_of_the_corpus_passes(seed):
    report = gc.check_gradients(gc.compile(conv_exp_cos("float32")), conv_feeds(seed), raise_on_failure=False)
    assert report.ok, report.table(report.failures)
    rounding = [r for r in report.rows if r.check == "rounding"]
    assert len(rounding) == len(report.rows) // 2  # every derivation row has its rounding row
    # the float32 gradient really is that far from float64: beyond any fixed 1,000 ulp
    assert max(r.error / max(abs(r.numeric), 1e-30) for r in rounding) > 1000 * np.finfo(np.float32).eps
    assert gc.check_gradients(gc.compile(conv_exp_cos("float64")), conv_feeds(seed), raise_on_failure=False).ok


def test_a_sigmoid_near_1_whose_rounding_the_backward_amplifies_passes():
    # 1 - sigmoid(9.7) = 6e-5 carries float32's rounding of the sigmoid (6e-8) as a 1e-3
    # relative error into the cotangent: moving the feeds by ulps cannot stir that rounding,
    # the rounding simulated on the joint graph does
    g = gc.Graph("near_one")
    p = g.param("p", shape=(2, 3), dtype="float32")
    w = g.param("w", shape=(3, 1), dtype="float32")
    g.output("loss", gc.sum(gc.sigmoid(gc.tanh(p) @ w + 8.0)))
    feeds = {"p": np.array([[0.9, -0.7, 0.4], [0.1, 0.8, -0.3]]), "w": np.array([[1.1], [-0.6], [0.9]])}
    report = gc.check_gradients(g, feeds, raise_on_failure=False)
    assert report.ok, report.table(report.failures)


def small_net(dtype: str = "float32") -> gc.Graph:
    g = gc.Graph("small")
    x = g.input("x", shape=("N", 3), dtype=dtype)
    W = g.param("W", shape=(3, 2), dtype=dtype)
    b = g.param("b", shape=(2,), dtype=dtype)
    h = gc.tanh(x @ W + b).named("h")
    g.output("loss", gc.mean(gc.square(h)).named("total"))
    return g


def small_feeds(seed=0):
    rng = np.random.default_rng(seed)
    return {"x": rng.standard_normal((4, 3)), "W": rng.standard_normal((3, 2)), "b": rng.standard_normal(2)}


def test_a_wrong_derivative_fails_the_derivation_step_and_is_blamed_on_its_node(monkeypatch):
    real = graphc.differentiate.local_partials

    def wrong(op, *args):  # tanh's derivative doubled, in every dtype
        partials = real(op, *args)
        return tuple(2 * p for p in partials) if op.name == "tanh" else partials

    monkeypatch.setattr(graphc.differentiate, "local_partials", wrong)
    monkeypatch.setenv("GRAPHC_NO_CACHE", "1")
    prog = gc.compile(small_net())
    report = gc.check_gradients(prog, small_feeds(), raise_on_failure=False)
    assert report.failed_steps == ["derivation"]  # the float32 program agrees with its (wrong) twin
    with pytest.raises(gc.GradientError) as caught:
        gc.check_gradients(prog, small_feeds())
    message = str(caught.value)
    assert "disagree with central differences" in message and "float64 twin" in message
    assert "the first node whose local derivative disagrees: node 'h' (op tanh)" in message


def _doubled_vjp(node, args, g, k):
    return g.editor.add("add", [g, g])  # the fault: twice the cotangent


def test_a_custom_op_with_a_wrong_vjp_fails_in_float32_and_names_the_op():
    doubled = Op("doubled_identity", 1, _same_shape, lower=lambda ctx, args, attrs, node: f"{args[0]}.copy()",
                 reference=lambda values, attrs: values[0].copy(), vjp=_doubled_vjp,
                 doc="the identity with a VJP twice too large", builtin=False)
    g = gc.Graph("custom")
    w = g.param("w", shape=(3,), dtype="float32")
    g.output("loss", gc.sum(gc.sin(gc.apply(doubled, gc.exp(w)).named("d"))))
    with pytest.raises(gc.GradientError, match=r"local derivative disagrees: node 'd' \(op doubled_identity\)"):
        gc.check_gradients(g, {"w": np.array([0.3, -0.2, 0.5])})


def _through_float16(ctx, args, attrs, node):
    """The fault under test: in a float32 program the cotangent passes through float16."""
    if ctx.graph.nodes[node]["dtype"] == "float32":
        return f"{args[0]}.astype('float16').astype('float32')"
    return f"{args[0]}.copy()"


def _pass_grad_vjp(node, args, g, k):
    return g.editor.add(Op("pass_grad", 1, _same_shape, lower=_through_float16,
                           reference=lambda values, attrs: values[0].copy(),
                           doc="the cotangent (through float16 in float32)", builtin=False), [g])


def cast_net(dtype: str) -> gc.Graph:
    passthrough = Op("passthrough", 1, _same_shape, lower=lambda ctx, args, attrs, node: f"{args[0]}.copy()",
                     reference=lambda values, attrs: values[0].copy(), vjp=_pass_grad_vjp,
                     doc="the identity, whose float32 backward rounds to float16", builtin=False)
    g = gc.Graph("cast")
    x = g.input("x", shape=(4, 3), dtype=dtype)
    W = g.param("W", shape=(3, 2), dtype=dtype)
    h = gc.apply(passthrough, gc.tanh(x @ W)).named("h")
    g.output("loss", gc.sum(gc.square(h)))
    return g


def test_a_float16_cast_in_the_float32_backward_fails_the_rounding_step_and_names_its_node():
    rng = np.random.default_rng(0)
    feeds = {"x": rng.standard_normal((4, 3)), "W": rng.standard_normal((3, 2))}
    assert gc.check_gradients(cast_net("float64"), feeds).ok  # float64 lowers it right
    prog = gc.compile(cast_net("float32"))
    report = gc.check_gradients(prog, feeds, raise_on_failure=False)
    assert report.failed_steps == ["rounding"], report.table()
    assert all(r.status == "ok" for r in report.rows if r.check == "derivation")
    with pytest.raises(gc.GradientError) as caught:
        gc.check_gradients(prog, feeds)
    message = str(caught.value)
    assert "float32 gradients of 'loss' in graph 'cast' disagree with its float64 twin's" in message
    assert "the derivation agrees with central differences" in message
    assert "the first node whose float32 backward disagrees with the twin's: node 'h' (op passthrough)" in message
    header = next(line for line in message.splitlines() if line.startswith("check"))
    assert header.split() == ["check", "param", "index", "analytic", "numeric", "error", "tolerance", "status"]


@pytest.mark.parametrize("factor", [2.0, 1.001])
def test_a_float32_gradient_off_by_a_factor_fails_the_rounding_step(factor):
    prog = gc.compile(small_net())
    right = prog.value_and_grad
    prog.value_and_grad = lambda feeds, **kw: (lambda v, gr: (v, {k: g * np.float32(factor) for k, g in gr.items()}))(
        *right(feeds, **kw))
    report = gc.check_gradients(prog, small_feeds(), raise_on_failure=False)
    assert report.failed_steps == ["rounding"]
    assert len([r for r in report.failures if r.param != "<random direction>"]) >= 6  # of 8 entries


def mlp() -> gc.Graph:
    g = gc.Graph("mlp")
    x = g.input("x", shape=("N", 4), dtype="float32")
    y = g.input("y", shape=("N",), dtype="int64")
    W1, b1 = g.param("W1", shape=(4, 5), dtype="float32"), g.param("b1", shape=(5,), dtype="float32")
    W2, b2 = g.param("W2", shape=(5, 3), dtype="float32"), g.param("b2", shape=(3,), dtype="float32")
    h = gc.relu(x @ W1 + b1)
    gamma, beta = g.param("gamma", shape=(5,), dtype="float32"), g.param("beta", shape=(5,), dtype="float32")
    g.output("loss", gc.softmax_cross_entropy(gc.layer_norm(h, gamma, beta) @ W2 + b2, y))
    return g


def convnet() -> gc.Graph:
    g = gc.Graph("convnet")
    x = g.input("x", shape=("N", 1, 6, 6), dtype="float32")
    w = g.param("w", shape=(2, 1, 3, 3), dtype="float32")
    t = g.input("t", shape=("N", 2, 2, 2), dtype="float32")
    pooled = gc.max_pool2d(gc.tanh(gc.conv2d(x, w)), kernel=2)
    g.output("loss", gc.bce(gc.sigmoid(pooled), t))
    return g


def ordinary_feeds(graph: gc.Graph, seed: int = 3) -> dict:
    rng = np.random.default_rng(seed)
    feeds = {}
    for name in graph.nx.graph["inputs"] + graph.nx.graph["params"]:
        data = graph.nx.nodes[name]
        shape = tuple(d if isinstance(d, int) else 3 for d in data["shape"])  # N: a batch of 3
        feeds[name] = rng.integers(0, 3, size=shape) if data["dtype"] == "int64" else rng.uniform(-1, 1, size=shape)
    if "t" in feeds:
        feeds["t"] = (feeds["t"] > 0).astype(np.float64)
    return feeds


@pytest.mark.parametrize("make", [small_net, mlp, convnet], ids=["tanh_mean", "mlp_layer_norm_xent", "conv_pool_bce"])
def test_float32_networks_of_ordinary_ops_pass_both_steps(make):
    graph = make()
    report = gc.check_gradients(graph, ordinary_feeds(graph))
    assert report.ok and {r.check for r in report.rows} == {"derivation", "rounding"}
    assert str(report).splitlines()[1].split()[0] == "check"


def test_the_columns_are_the_twins_then_the_programs_gradient_at_the_float32_point():
    feeds = {**small_feeds(), "W": np.array([[0.1, 0.2], [0.3, -0.4], [1 / 3, 2 / 3]])}  # not float32 numbers
    on_grid = {k: v.astype(np.float32).astype(np.float64) for k, v in feeds.items()}
    prog = gc.compile(small_net())
    report = gc.check_gradients(prog, feeds)
    _, grads32 = prog.value_and_grad(feeds)
    _, grads64 = gc.compile(small_net("float64")).value_and_grad(on_grid)
    rows = {(r.check, r.param, r.index): r for r in report.rows}
    assert rows[("rounding", "W", "(2, 1)")].analytic == grads32["W"][2, 1]
    assert rows[("rounding", "W", "(2, 1)")].numeric == grads64["W"][2, 1]
    assert rows[("derivation", "W", "(2, 1)")].analytic == grads64["W"][2, 1]


def test_the_rounding_benchmark_runs_and_finds_no_failure(capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "gradcheck_rounding.py"
    spec = importlib.util.spec_from_file_location("gradcheck_rounding", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main(["--count", "24", "--seed", "3"]) == 0
    line = capsys.readouterr().out.splitlines()[0]
    assert "float32 networks" in line and "0 fail the derivation step, 0 the rounding step" in line
