"""The zoo reproduces the lecture's numbers; references are closed forms and numeric gradients."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from graphc import zoo

LECTURE = ["linear_regression", "logistic_classifier", "relu_neuron", "wide_relu", "residual", "recall_xor",
           "mlp", "deep_sigmoid", "deep_residual"]


def loss_of(prog, feeds) -> float:
    out = prog.forward(feeds)
    return float(np.sum(out["loss"] if "loss" in out else out[prog.outputs[0]]))


def numeric_grad(prog, feeds, name, eps=1e-6) -> np.ndarray:
    """Central differences of the loss with respect to one param, entry by entry."""
    base = {k: np.array(v, dtype=float) for k, v in feeds.items()}
    grad = np.zeros_like(base[name])
    for index in np.ndindex(grad.shape):
        up, down = dict(base), dict(base)
        up[name], down[name] = base[name].copy(), base[name].copy()
        up[name][index] += eps
        down[name][index] -= eps
        grad[index] = (loss_of(prog, up) - loss_of(prog, down)) / (2 * eps)
    return grad


def build(name, **options):
    graph, feeds = zoo.get(name)(**options)
    return gc.compile(graph), feeds


def test_the_registry_holds_the_lecture_and_real_networks():
    assert set(LECTURE) <= set(zoo.NAMES)
    assert {"two_moons", "blobs"} <= set(zoo.NAMES)
    with pytest.raises(gc.GraphcError, match="no zoo graph named 'nope'; the zoo has linear_regression"):
        zoo.get("nope")


@pytest.mark.parametrize("name", zoo.NAMES)
def test_every_zoo_graph_compiles_and_its_feeds_fit(name):
    function = zoo.get(name)
    assert function.__doc__ and zoo.summary(name)
    graph, feeds = function()
    assert isinstance(graph, gc.Graph)
    assert sorted(feeds) == sorted(graph.inputs + graph.params)
    out = gc.compile(graph).forward(feeds)
    assert all(np.all(np.isfinite(v)) for v in out.values())
    if name != "recall_xor":
        assert graph.outputs[:2] == ["loss", "g"] and np.shape(out["loss"]) == ()


def test_linear_regression_has_the_lecture_gradient():
    prog, feeds = build("linear_regression")
    assert loss_of(prog, feeds) == pytest.approx((1.5 * 3 - 6) ** 2)
    assert numeric_grad(prog, feeds, "w")[0, 0] == pytest.approx(-9.0, abs=1e-6)


@pytest.mark.parametrize("w,want", [(1.5, -9.0), (-1.0, 0.0)])
def test_relu_neuron_alive_and_dead(w, want):
    prog, feeds = build("relu_neuron", w=w)
    assert loss_of(prog, feeds) == pytest.approx((max(w * 3, 0) - 6) ** 2)
    grad = numeric_grad(prog, feeds, "w")[0, 0]
    assert grad == pytest.approx(want, abs=1e-6)
    if w < 0:
        assert grad == 0.0  # dead: not small, exactly zero


def test_wide_relu_greys_out_the_dead_unit_only():
    prog, feeds = build("wide_relu")
    assert (feeds["x"] @ feeds["W1"])[0, 1] < 0 < (np.maximum(feeds["x"] @ feeds["W1"], 0) @ feeds["W2"])[0, 0]
    g1, g2 = numeric_grad(prog, feeds, "W1"), numeric_grad(prog, feeds, "W2")
    assert g1[0, 1] == 0.0 and g2[1, 0] == 0.0
    assert np.all(np.delete(g1.ravel(), 1) != 0) and np.all(np.delete(g2.ravel(), 1) != 0)
    # Closed form: dL/dg = 2 (g - y) = -6; dW2 = a1 * -6, dW1 = x * W2 * relu'(z1) * -6.
    np.testing.assert_allclose(g2.ravel(), [3 * -6, 0, 1.5 * -6], atol=1e-5)
    np.testing.assert_allclose(g1.ravel(), [3 * 0.5 * -6, 0, 3 * 1.0 * -6], atol=1e-5)


def test_wide_relu_with_a_dead_output_updates_nothing():
    prog, feeds = build("wide_relu", dead_output=True)
    assert (np.maximum(feeds["x"] @ feeds["W1"], 0) @ feeds["W2"])[0, 0] < 0
    for name in ("W1", "W2"):
        assert np.all(numeric_grad(prog, feeds, name) == 0.0)


def test_the_skip_connection_keeps_the_first_layer_learning():
    prog, feeds = build("residual")
    assert numeric_grad(prog, feeds, "w2")[0, 0] == 0.0
    assert numeric_grad(prog, feeds, "w1")[0, 0] == pytest.approx(2 * (4.5 - 6) * 3, abs=1e-6)
    plain, plain_feeds = build("residual", skip=False)
    for name in ("w1", "w2"):
        assert numeric_grad(plain, plain_feeds, name)[0, 0] == 0.0


def test_recall_network_matches_the_lecture_formula():
    prog, feeds = build("recall_xor")
    x1, x2 = zoo.XOR_INPUTS.T
    sigmoid = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    want = -3 * (sigmoid(5 * x1 - 5 * x2 + 1) + sigmoid(-5 * x1 + 5 * x2 + 1))
    np.testing.assert_allclose(prog.forward(feeds)["out"].ravel(), want, rtol=1e-12)


def test_logistic_classifier_loss_is_the_nll():
    prog, feeds = build("logistic_classifier")
    p = 1 / (1 + np.exp(-(feeds["x"] @ feeds["w"] + feeds["b"])))
    y = feeds["y"]
    want = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    assert loss_of(prog, feeds) == pytest.approx(want, rel=1e-12)


def test_deep_sigmoid_gradient_vanishes_and_the_residual_twin_does_not():
    deep, feeds = build("deep_sigmoid")
    first, last = numeric_grad(deep, feeds, "W1"), numeric_grad(deep, feeds, "W20")
    assert np.abs(first).max() < 1e-8 < 1e-3 < np.abs(last).max()
    twin, twin_feeds = build("deep_residual")
    assert all(np.array_equal(feeds[k], twin_feeds[k]) for k in feeds)  # same weights and data
    assert np.abs(numeric_grad(twin, twin_feeds, "W1")).max() > 1e-3


def test_depth_is_an_option():
    graph, feeds = zoo.deep_sigmoid(depth=3)
    assert graph.params == ["W1", "b1", "W2", "b2", "W3", "b3"]
    with pytest.raises(gc.GraphcError, match="depth must be at least 1"):
        zoo.deep_sigmoid(depth=0)


def test_data_sets_are_deterministic_and_balanced():
    x, y = zoo.make_moons(100, seed=3)
    again, _ = zoo.make_moons(100, seed=3)
    assert x.shape == (100, 2) and y.shape == (100, 1) and y.sum() == 50
    np.testing.assert_array_equal(x, again)
    xb, yb = zoo.make_blobs(90, classes=3)
    assert xb.shape == (90, 2) and yb.shape == (90, 3) and list(yb.sum(axis=0)) == [30, 30, 30]


def test_the_blobs_loss_is_softmax_cross_entropy():
    prog, feeds = build("blobs")
    h = np.maximum(feeds["x"] @ feeds["W1"] + feeds["b1"], 0)
    logits = h @ feeds["W2"] + feeds["b2"]
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    assert loss_of(prog, feeds) == pytest.approx(-np.mean(np.sum(feeds["y"] * log_p, axis=1)), rel=1e-12)


def _analytic(prog, feeds):
    if prog.has_gradient:
        return prog.value_and_grad(feeds)[1]
    out = prog.forward(feeds)[prog.outputs[0]]  # no scalar loss: the gradient of sum(out)
    return prog.value_and_grad(feeds, seed=np.ones(np.shape(out)))[1]


@pytest.mark.parametrize("w,want", [(1.5, -9.0), (-1.0, 0.0)])
def test_compiled_gradients_give_the_lecture_values(w, want):
    prog, feeds = build("relu_neuron", w=w)
    assert float(np.ravel(_analytic(prog, feeds)["w"])[0]) == want


@pytest.mark.parametrize("name", LECTURE + ["two_moons", "blobs"])
def test_compiled_gradients_match_numeric_ones(name):
    prog, feeds = build(name)
    grads = _analytic(prog, feeds)
    for param in prog.graph.graph["params"][:4]:
        np.testing.assert_allclose(grads[param], numeric_grad(prog, feeds, param), rtol=1e-5, atol=1e-7)
