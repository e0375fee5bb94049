"""Every generated function comes from one set of stages and one seeded backward.

forward, value_and_grad (with and without seed), sgd_step, the saved module and gc.grad
are checked against hand-written numpy and float64 central differences; sgd_step is
all-or-nothing and every returned array is the caller's own.
"""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

import graphc as gc

LR = 0.1


def central(f, point: dict, name: str, eps: float = 1e-6) -> np.ndarray:
    """d f / d point[name] by float64 central differences, entry by entry."""
    base = {k: np.array(v, dtype=np.float64) for k, v in point.items()}
    out = np.zeros_like(base[name])
    for index in np.ndindex(base[name].shape):
        up, down = dict(base), dict(base)
        up[name], down[name] = base[name].copy(), base[name].copy()
        up[name][index] += eps
        down[name][index] -= eps
        out[index] = (f(up) - f(down)) / (2 * eps)
    return out


def affine_mean(dtype="float64"):
    g = gc.Graph("affine_mean")
    x = g.input("x", shape=("N", 2), dtype=dtype)
    W = g.param("W", shape=(2, 3), dtype=dtype)
    b = g.param("b", shape=(3,), dtype=dtype)
    g.output("loss", gc.mean(x @ W + b))
    return g


def affine_feeds(dtype=np.float64, n=4):
    rng = np.random.default_rng(0)
    return {"x": rng.normal(size=(n, 2)).astype(dtype), "W": rng.normal(size=(2, 3)).astype(dtype),
            "b": rng.normal(size=3).astype(dtype)}


# -- defect: sgd_step read a symbolic dim it never bound (NameError 'N') --------------------------
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_sgd_step_binds_the_batch_dim_it_reads(dtype):
    prog = gc.compile(affine_mean(dtype))
    feeds = affine_feeds(np.dtype(dtype))
    x, W, b = (feeds[k].astype(np.float64) for k in ("x", "W", "b"))
    n = x.shape[0]
    d_W = x.T @ np.ones((n, 3)) / (n * 3)  # d mean(x W + b) / d W, by hand
    d_b = np.ones(3) / 3
    out = prog.sgd_step(feeds, LR)
    tol = 1e-12 if dtype == "float64" else 1e-5
    np.testing.assert_allclose(out["loss"], np.mean(x @ W + b), rtol=tol)
    np.testing.assert_allclose(feeds["W"], W - LR * d_W, rtol=tol, atol=tol)
    np.testing.assert_allclose(feeds["b"], b - LR * d_b, rtol=tol, atol=tol)
    assert feeds["W"].dtype == np.dtype(dtype)


def test_every_generated_function_binds_every_dim_it_reads():
    """Each plan binds its dims from its own arguments: no function depends on another's."""
    prog = gc.compile(affine_mean())
    for fn in prog.plan.functions:
        bound = {d for d, _, _ in fn.binds} | set(fn.dim_args)
        for step in fn.steps:
            shape = prog.plan.joint.nodes[step.node]["shape"] if fn.name != "forward_pass" else \
                prog.plan.forward.nodes[step.node]["shape"]
            assert {d for d in shape if not isinstance(d, int)} <= bound, (fn.name, step.node)


# -- defect: the saved module ignored seed and turned float32 into float64 -----------------------
def _saved_module(prog, tmp_path, name):
    path = prog.save(tmp_path / f"{name}.py")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tanh_net(dtype="float64"):
    g = gc.Graph("tanh_net")
    x = g.input("x", shape=(3,), dtype=dtype)
    W = g.param("W", shape=(3,), dtype=dtype)
    g.output("loss", gc.sum(gc.tanh(x * W)))
    return g


def test_the_saved_module_honours_seed_like_the_program(tmp_path):
    prog = gc.compile(tanh_net())
    feeds = {"x": np.array([0.0, 0.5, -1.0]), "W": np.array([1.0, 2.0, 0.5])}
    by_hand = feeds["x"] * (1 - np.tanh(feeds["x"] * feeds["W"]) ** 2)
    module = _saved_module(prog, tmp_path, "seeded_module")
    for seed in (None, 10.0, -0.5):
        scale = 1.0 if seed is None else seed
        _, saved = module.value_and_grad(feeds, seed=seed)
        _, program = prog.value_and_grad(feeds, seed=seed)
        np.testing.assert_allclose(saved["W"], scale * by_hand, rtol=1e-13)
        np.testing.assert_allclose(program["W"], scale * by_hand, rtol=1e-13)


def test_the_saved_module_keeps_a_float32_graph_float32(tmp_path):
    prog = gc.compile(tanh_net("float32"))
    feeds = {"x": np.array([0.0, 0.5, -1.0]), "W": np.array([1.0, 2.0, 0.5])}
    module = _saved_module(prog, tmp_path, "float32_module")
    outputs, grads = module.value_and_grad(feeds, seed=2.0)
    assert np.asarray(outputs["loss"]).dtype == np.float32
    assert grads["W"].dtype == np.float32
    assert module.forward(feeds)["loss"].dtype == np.float32
    by_hand = 2.0 * feeds["x"] * (1 - np.tanh(feeds["x"] * feeds["W"]) ** 2)
    np.testing.assert_allclose(grads["W"], by_hand, rtol=1e-5)
    _, program = prog.value_and_grad(feeds, seed=2.0)
    assert program["W"].dtype == np.float32


def test_a_non_scalar_output_is_differentiated_with_its_seed_everywhere(tmp_path):
    g = gc.Graph("vector")
    x = g.input("x", shape=(2, 3))
    W = g.param("W", shape=(3, 2))
    g.output("y", gc.tanh(x @ W))
    prog = gc.compile(g)
    rng = np.random.default_rng(1)
    feeds = {"x": rng.normal(size=(2, 3)), "W": rng.normal(size=(3, 2))}
    seed = rng.normal(size=(2, 2))
    want = central(lambda p: float(np.sum(np.tanh(p["x"] @ p["W"]) * seed)), feeds, "W")
    np.testing.assert_allclose(prog.value_and_grad(feeds, seed=seed)[1]["W"], want, rtol=1e-7, atol=1e-9)
    module = _saved_module(prog, tmp_path, "vector_module")
    np.testing.assert_allclose(module.value_and_grad(feeds, seed=seed)[1]["W"], want, rtol=1e-7, atol=1e-9)
    with pytest.raises(gc.GradientError, match="no scalar output"):
        prog.value_and_grad(feeds)


# -- defect: gc.grad took another path than gc.compile ----------------------------------------
def test_grad_runs_the_stability_rewrites_of_compile():
    g = gc.Graph("log_softmax")
    x = g.input("x", shape=(3,))
    g.output("y", gc.sum(gc.log(gc.softmax(x))))
    g2 = gc.grad(g, "y", wrt=["x"])
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # exp(-1600) may underflow to 0
        out = gc.compile(g2).forward({"x": np.array([800.0, -800.0, 0.0])})
    # d/dx sum_i log softmax(x)_i = 1 - k softmax(x), k = 3; softmax is (1, 0, 0) here
    np.testing.assert_allclose(out["dy/dx"], [-2.0, 1.0, 1.0], atol=1e-12)
    np.testing.assert_allclose(out["y"], -2400.0, rtol=1e-12)


GRAD_NETS = {
    "mse_ab": lambda x, y, a, b, W: gc.mse(x + a + b, y),
    "mlp": lambda x, y, a, b, W: gc.mse(gc.tanh(x @ W + a) + b, y),
    "shared": lambda x, y, a, b, W: gc.sum(gc.tanh(x @ W) @ W),
    "sce": lambda x, y, a, b, W: gc.softmax_cross_entropy(x @ W + b, y),
    "twice": lambda x, y, a, b, W: gc.sum(a + a + b * x),
}


@pytest.mark.parametrize("name", sorted(GRAD_NETS))
def test_grad_agrees_with_compile_and_central_differences(name):
    g = gc.Graph(name)
    x, y = g.input("x", shape=(2, 3)), g.input("y", shape=(2, 3))
    a, b, W = g.param("a", shape=(3,)), g.param("b", shape=(3,)), g.param("W", shape=(3, 3))
    g.output("loss", GRAD_NETS[name](x, y, a, b, W))
    rng = np.random.default_rng(2)
    feeds = {"x": rng.normal(size=(2, 3)), "y": np.eye(3)[[0, 2]], "a": rng.normal(size=3),
             "b": rng.normal(size=3), "W": rng.normal(size=(3, 3))}
    prog = gc.compile(g)
    through_grad = gc.compile(gc.grad(g, "loss")).forward(feeds)
    _, grads = prog.value_and_grad(feeds)
    for param in ("a", "b", "W"):
        want = central(lambda p: float(prog.forward(p)["loss"]), feeds, param)
        np.testing.assert_allclose(through_grad[f"dloss/d{param}"], want, rtol=1e-6, atol=1e-8, err_msg=param)
        np.testing.assert_allclose(grads[param], want, rtol=1e-6, atol=1e-8, err_msg=param)


def test_grad_gives_two_params_with_one_gradient_node_an_output_each():
    g = gc.Graph("one_node")  # d a and d b are the same value: one node after differentiation
    a, b, t = g.param("a", shape=(4,)), g.param("b", shape=(4,)), g.input("t", shape=(4,))
    g.output("loss", gc.mse(gc.softplus(a + b), t))
    rng = np.random.default_rng(4)
    feeds = {"a": rng.normal(size=4), "b": rng.normal(size=4), "t": rng.normal(size=4)}
    out = gc.compile(gc.grad(g, "loss")).forward(feeds)
    s = feeds["a"] + feeds["b"]
    by_hand = 2 * (np.logaddexp(0, s) - feeds["t"]) / 4 / (1 + np.exp(-s))
    np.testing.assert_allclose(out["dloss/da"], by_hand, rtol=1e-12)
    np.testing.assert_allclose(out["dloss/db"], by_hand, rtol=1e-12)
    assert not np.shares_memory(out["dloss/da"], out["dloss/db"])


# -- defect: check_gradients on float32 took its differences in float32 ------------------------
def test_check_gradients_on_a_float32_program_differences_in_float64():
    g = gc.Graph("f32")
    x = g.input("x", shape=(3,), dtype="float32")
    a = g.param("a", shape=(3,), dtype="float32")
    g.output("loss", gc.mean(gc.tanh(x * a)))
    rng = np.random.default_rng(3)
    report = gc.check_gradients(gc.compile(g), {"x": rng.normal(size=3), "a": rng.normal(size=3)}, rtol=1e-4)
    # two steps of 4 rows: the float64 twin against the differences, then float32 against the twin
    assert report.ok and [r.check for r in report.rows] == ["derivation"] * 4 + ["rounding"] * 4


def test_check_gradients_on_a_float32_program_still_finds_a_wrong_gradient(monkeypatch):
    g = gc.Graph("f32_wrong")
    x = g.input("x", shape=(3,), dtype="float32")
    a = g.param("a", shape=(3,), dtype="float32")
    g.output("loss", gc.mean(gc.tanh(x * a)))
    prog = gc.compile(g)
    real = prog.value_and_grad

    def doubled(feeds, seed=None):
        outputs, grads = real(feeds, seed)
        return outputs, {k: 2 * v for k, v in grads.items()}

    monkeypatch.setattr(prog, "value_and_grad", doubled)
    rng = np.random.default_rng(3)
    with pytest.raises(gc.GradientError):
        gc.check_gradients(prog, {"x": rng.normal(size=3), "a": rng.normal(size=3)}, rtol=1e-4)


# -- defects: sgd_step aliased a param, scaled a shared gradient twice; returns aliased state ----
def mse_ab():
    g = gc.Graph("mse_ab")
    x, y = g.input("x", shape=(3,)), g.input("y", shape=(3,))
    a, b = g.param("a", shape=(3,)), g.param("b", shape=(3,))
    g.output("loss", gc.mse(x + a + b, y))
    return g


def test_a_gradient_shared_by_two_params_is_applied_once_to_each():
    prog = gc.compile(mse_ab())
    feeds = {"x": np.array([1.0, 2.0, 3.0]), "y": np.zeros(3), "a": np.array([0.5, 1.0, -1.0]),
             "b": np.array([1.0, -2.0, 0.25])}
    before = {k: v.copy() for k, v in feeds.items()}
    grad = 2 * (before["x"] + before["a"] + before["b"] - before["y"]) / 3  # by hand: the same for a and b
    _, grads = prog.value_and_grad(feeds)
    assert grads["a"] is not grads["b"]
    out = prog.sgd_step(feeds, LR)
    np.testing.assert_allclose(out["loss"], np.mean((before["x"] + before["a"] + before["b"]) ** 2), rtol=1e-13)
    np.testing.assert_allclose(feeds["a"], before["a"] - LR * grad, rtol=1e-13)
    np.testing.assert_allclose(feeds["b"], before["b"] - LR * grad, rtol=1e-13)


def test_a_gradient_that_is_another_params_value_does_not_write_into_it():
    g = gc.Graph("product")
    p1, p3 = g.param("p1", shape=(3,)), g.param("p3", shape=(3,))
    g.output("loss", gc.sum(p1 * p3))  # d p1 = p3 and d p3 = p1: the gradients are the params
    prog = gc.compile(g)
    feeds = {"p1": np.array([1.0, 2.0, 3.0]), "p3": np.array([-1.0, 0.5, 4.0])}
    before = {k: v.copy() for k, v in feeds.items()}
    _, grads = prog.value_and_grad(feeds)
    assert not any(np.shares_memory(grads[k], feeds[j]) for k in grads for j in feeds)
    prog.sgd_step(feeds, LR)
    np.testing.assert_allclose(feeds["p1"], before["p1"] - LR * before["p3"], rtol=1e-14)
    np.testing.assert_allclose(feeds["p3"], before["p3"] - LR * before["p1"], rtol=1e-14)


def test_every_returned_array_is_the_callers_own():
    g = gc.Graph("owned")
    x = g.input("x", shape=(3,))
    a, b = g.param("a", shape=(3,)), g.param("b", shape=(3,))
    g.output("loss", gc.sum(x * 1.0 + a + b))  # constant gradients, equal for a and b
    g.output("a_out", gc.identity(a))  # an output that is a param
    g.output("c", gc.exp(g.const(np.array([0.0, 1.0, 2.0]))))  # a constant output
    prog = gc.compile(g, of="loss")
    feeds = {"x": np.ones(3), "a": np.ones(3), "b": np.ones(3)}
    outputs, grads = prog.value_and_grad(feeds)
    assert grads["a"] is not grads["b"]
    arrays = list(outputs.values()) + list(grads.values())
    for k, one in enumerate(arrays):
        assert not any(np.shares_memory(one, other) for other in arrays[k + 1:] + list(feeds.values()))
    grads["b"] *= 100
    outputs["c"][...] = -1.0
    outputs["a_out"][...] = 7.0
    again, grads_again = prog.value_and_grad(feeds)
    np.testing.assert_array_equal(grads_again["b"], np.ones(3))
    np.testing.assert_allclose(again["c"], np.exp([0.0, 1.0, 2.0]))
    np.testing.assert_array_equal(feeds["a"], np.ones(3))
    np.testing.assert_allclose(prog.forward(feeds)["c"], np.exp([0.0, 1.0, 2.0]))
    stepped = prog.sgd_step({k: v.copy() for k, v in feeds.items()}, LR)
    assert not np.shares_memory(stepped["a_out"], feeds["a"])


def test_a_value_merged_across_phases_is_computed_where_its_readers_are():
    g = gc.Graph("merged")  # the forward zeros_like(p) and p's zero gradient are one node after cse
    p = g.param("p", shape=(2, 1))
    g.output("loss", gc.mean(gc.apply("zeros_like", p)))
    g.output("out", p)
    prog = gc.compile(g, of="loss")
    feeds = {"p": np.array([[1.0], [2.0]])}
    outputs, grads = prog.value_and_grad(feeds)
    assert float(outputs["loss"]) == 0.0 and np.array_equal(grads["p"], np.zeros((2, 1)))
    assert not np.shares_memory(outputs["out"], feeds["p"])
    prog.sgd_step(feeds, LR)
    np.testing.assert_array_equal(feeds["p"], [[1.0], [2.0]])


def test_a_float32_graph_with_constants_stays_float32():
    g = gc.Graph("f32_const")
    x = g.input("x", shape=(3, 2), dtype="float32")
    w = g.param("w", shape=(), dtype="float32")
    g.output("loss", gc.sum(x * g.const(np.array([[0.15, -1.42]])) * w))
    prog = gc.compile(g)
    feeds = {"x": np.ones((3, 2), np.float32), "w": np.ones((), np.float32)}
    outputs, grads = prog.value_and_grad(feeds)
    assert outputs["loss"].dtype == np.float32 and grads["w"].dtype == np.float32
    assert prog.forward(feeds)["loss"].dtype == np.float32
    np.testing.assert_allclose(grads["w"], 3 * (0.15 - 1.42), rtol=1e-6)


def test_bce_of_a_scalar_param_compiles_and_matches_its_closed_form():
    g = gc.Graph("bce_scalar")
    p, y = g.param("p", shape=()), g.input("y", shape=())
    g.output("loss", gc.bce(p, y))
    _, grads = gc.compile(g).value_and_grad({"p": np.array(0.3), "y": np.array(1.0)})
    np.testing.assert_allclose(grads["p"], -1 / 0.3, rtol=1e-12)  # d -log p / dp


# -- all-or-nothing steps (issue 10, item 7) ------------------------------------------------
def two_params():
    g = gc.Graph("two")
    x = g.input("x", shape=(3,))
    a, b = g.param("a", shape=(3,)), g.param("b", shape=(3,))
    g.output("loss", gc.sum(a * x) + gc.sum(gc.square(b) * 1e200))
    return g


def test_a_step_that_fails_halfway_changes_no_param():
    prog = gc.compile(two_params())
    feeds = {"x": np.ones(3), "a": np.ones(3), "b": np.full(3, 1e100)}
    before = {k: v.copy() for k, v in feeds.items()}
    with np.errstate(all="raise"), pytest.raises(FloatingPointError):
        prog.sgd_step(feeds, 1.0)  # a's update is fine, b's gradient overflows
    for name, value in before.items():
        np.testing.assert_array_equal(feeds[name], value, err_msg=name)


@pytest.mark.parametrize("lr", [np.ones(3), "0.1", None, True, [0.1]])
def test_a_bad_learning_rate_is_refused_before_any_update(lr):
    prog = gc.compile(mse_ab())
    feeds = {"x": np.ones(3), "y": np.zeros(3), "a": np.ones(3), "b": np.ones(3)}
    with pytest.raises(gc.FeedError, match="lr must be a real number"):
        prog.sgd_step(feeds, lr)
    np.testing.assert_array_equal(feeds["a"], np.ones(3))


def test_the_step_plan_updates_after_every_gradient_and_the_docs_say_what_it_costs():
    plan = gc.compile(mse_ab()).plan
    assert [u.param for u in plan.sgd.updates] == ["a", "b"]
    assert "memory" in type(plan.sgd).__doc__
    source = gc.compile(mse_ab()).source
    step = source[source.index("def sgd_step"):]
    first_write = step.index("[...] =")  # a param written, by name or in a loop over the params
    assert step.index("backward_pass(") < first_write and step.rindex("numpy.subtract") < first_write


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))


def test_check_gradients_holds_a_stopped_value_fixed():
    """stop_gradient defines the gradient with the stopped value held constant: no false alarm."""
    g = gc.Graph("stopped")
    p = g.param("p", shape=(3,))
    x = g.input("x", shape=(3,))
    g.output("loss", gc.sum(gc.stop_gradient(p * p) * x + p * x))
    feeds = {"p": np.array([0.5, -1.0, 2.0]), "x": np.array([1.0, 2.0, -0.5])}
    report = gc.check_gradients(gc.compile(g), feeds)
    assert report.ok
    _, grads = gc.compile(g).value_and_grad(feeds)
    np.testing.assert_allclose(grads["p"], feeds["x"], rtol=1e-14)  # d/dp of (fixed) * x + p x


def test_check_gradients_on_float32_allows_a_zero_gradients_rounding_error():
    """Shifting every logit alike leaves log_softmax unchanged: d/dp is 0 exactly, about 1e-7 in float32."""
    g = gc.Graph("shift")
    p = g.param("p", shape=(1,), dtype="float32")
    z = p - g.const(np.array([-0.16, 0.55, 0.31, -1.09]))
    g.output("loss", gc.mean(gc.broadcast_to(gc.log_softmax(z), (3, 4))))
    report = gc.check_gradients(gc.compile(g), {"p": np.array([0.11237464100122452])})
    assert report.ok
    twin = gc.Graph("shift64")  # the same net in float64 is held to the default tolerances and passes too
    q = twin.param("p", shape=(1,))
    twin.output("loss", gc.mean(gc.broadcast_to(gc.log_softmax(q - twin.const(np.array([-0.16, 0.55, 0.31, -1.09]))),
                                                (3, 4))))
    assert gc.check_gradients(gc.compile(twin), {"p": np.array([0.11237464100122452])}).ok
