"""The lecture's worked examples (MIT 6.390, Neural Networks II), reproduced exactly.

Each network is declared here with the builder; each expected number is worked out by
hand in the test from the lecture's formulas, e.g. for the neuron g = ReLU(w x) with the
squared loss, dL/dw = x * dReLU/dz * 2 (g - y).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest

import graphc as gc

X, Y = 3.0, 6.0  # the lecture's single data point (x, y) = (3, 6)


def neuron(activation):
    """g = f(w x), L = (g - y)**2 with scalar x, w, y."""
    g = gc.Graph("neuron")
    x, y = g.input("x"), g.input("y")
    w = g.param("w")
    out = activation(w * x)
    g.output("loss", (out - y) ** 2)
    g.output("g", out)
    return gc.compile(g, of="loss")


def grad_w(prog, w):
    value, grads = prog.value_and_grad({"x": X, "y": Y, "w": w})
    return value, float(grads["w"])


def test_linear_regressor_at_w_1_5_has_gradient_minus_9():
    w = 1.5
    g = w * X  # identity activation
    expected = X * 2 * (g - Y)  # = 3 * 2 * (4.5 - 6) = -9
    assert expected == -9.0
    value, dw = grad_w(neuron(gc.identity), w)
    assert dw == expected
    assert float(value["loss"]) == (g - Y) ** 2 == 2.25


def test_linear_regressor_in_vector_form_with_mse():
    # x, w in R^d with d = 1; J = 1/n sum L with n = 1: the same -9
    g = gc.Graph("linreg")
    x, y = g.input("x", shape=(1, 1)), g.input("y", shape=(1, 1))
    W = g.param("W", shape=(1, 1))
    g.output("loss", gc.mse(x @ W, y))
    _, grads = gc.compile(g).value_and_grad({"x": [[X]], "y": [[Y]], "W": [[1.5]]})
    assert grads["W"].tolist() == [[-9.0]]


def test_relu_neuron_at_w_1_5_has_gradient_minus_9():
    w = 1.5
    z = w * X
    drelu = 0.0 if z < 0 else 1.0  # the lecture's dReLU/dz
    g = max(z, 0.0)
    expected = X * drelu * 2 * (g - Y)
    assert expected == -9.0
    value, dw = grad_w(neuron(gc.relu), w)
    assert dw == expected
    assert float(value["g"]) == 4.5


def test_relu_neuron_at_w_minus_1_is_dead_with_exactly_zero_gradient():
    value, dw = grad_w(neuron(gc.relu), -1.0)
    assert float(value["g"]) == 0.0 and float(value["loss"]) == 36.0  # z = -3, g = 0, L = 36
    assert dw == 0.0  # exactly zero (possibly -0.0), no tiny leak


def test_relu_kink_follows_the_lecture_convention_at_z_0():
    # dReLU/dz is 1 at z = 0 ("1 otherwise"): with w = 0, g = 0 and dL/dw = x * 1 * 2 (0 - 6) = -36
    _, dw = grad_w(neuron(gc.relu), 0.0)
    assert dw == X * 1.0 * 2 * (0.0 - Y) == -36.0


def logistic(n=4):
    g = gc.Graph("logistic")
    x, y = g.input("x", shape=(n, 2)), g.input("y", shape=(n, 1))
    w, b = g.param("w", shape=(2, 1)), g.param("b", shape=(1,))
    p = gc.sigmoid(x @ w + b)
    g.output("loss", gc.bce(p, y))  # the lecture's NLL, J = 1/n sum L
    return gc.compile(g)


def test_logistic_classifier_nll_matches_its_closed_form():
    rng = np.random.default_rng(3)
    feeds = {"x": rng.standard_normal((4, 2)), "y": np.array([[1.0], [0.0], [1.0], [0.0]]),
             "w": rng.standard_normal((2, 1)), "b": np.array([0.3])}
    value, grads = logistic().value_and_grad(feeds)
    p = 1 / (1 + np.exp(-(feeds["x"] @ feeds["w"] + feeds["b"])))
    y = feeds["y"]
    nll = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    np.testing.assert_allclose(value["loss"], nll, rtol=1e-12)
    # d NLL / dz = g - y: the sigmoid's derivative cancels against the log's
    np.testing.assert_allclose(grads["w"], feeds["x"].T @ (p - y) / 4, rtol=1e-10)
    np.testing.assert_allclose(grads["b"], np.sum(p - y, axis=0) / 4, rtol=1e-10)


def recall_net():
    """sigma1 = s(5x1 - 5x2 + 1), sigma2 = s(-5x1 + 5x2 + 1), output -3 (sigma1 + sigma2), f identity."""
    g = gc.Graph("recall")
    x = g.input("x", shape=("N", 2))
    W = g.param("W", shape=(2, 2))
    b = g.param("b", shape=(2,))
    v = g.param("v", shape=(2, 1))
    out = gc.identity(gc.sigmoid(x @ W + b) @ v)
    g.output("g", out)
    return g


RECALL = {"W": np.array([[5.0, -5.0], [-5.0, 5.0]]), "b": np.array([1.0, 1.0]), "v": np.array([[-3.0], [-3.0]])}


def test_recall_network_values_by_hand():
    x = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    out = gc.compile(recall_net()).forward({"x": x, **RECALL})["g"]

    def s(t):
        return 1 / (1 + math.exp(-t))

    by_hand = [-3 * (s(5 * a - 5 * c + 1) + s(-5 * a + 5 * c + 1)) for a, c in x]
    np.testing.assert_allclose(out[:, 0], by_hand, rtol=1e-14)
    assert out[0, 0] == pytest.approx(-6 * s(1))


def wide_relu():
    """x -> z1 = x W1 (2 units) -> a1 = ReLU(z1) -> z2 = a1 W2 -> g = ReLU(z2), L = (g - y)**2."""
    g = gc.Graph("wide")
    x, y = g.input("x", shape=(1, 1)), g.input("y", shape=(1, 1))
    W1, W2 = g.param("W1", shape=(1, 2)), g.param("W2", shape=(2, 1))
    a1 = gc.relu(x @ W1)
    out = gc.relu(a1 @ W2)
    g.output("loss", gc.sum((out - y) ** 2))
    return gc.compile(g)


def test_wide_relu_dead_unit_gets_exactly_zero():
    W1, W2 = np.array([[1.5, -1.0]]), np.array([[1.0], [0.5]])
    # by hand: z1 = [4.5, -3] (unit 2 dead), a1 = [4.5, 0], z2 = g = 4.5, dL/dg = 2 (4.5 - 6) = -3
    dg = 2 * (4.5 - Y)
    dW2 = [[4.5 * dg], [0.0 * dg]]
    dW1 = [[X * 1.0 * W2[0, 0] * 1.0 * dg, X * 0.0 * W2[1, 0] * 1.0 * dg]]
    _, grads = wide_relu().value_and_grad({"x": [[X]], "y": [[Y]], "W1": W1, "W2": W2})
    assert grads["W1"].tolist() == dW1 == [[-9.0, 0.0]]
    assert grads["W2"].tolist() == dW2 == [[-13.5], [0.0]]
    assert grads["W1"][0, 1] == 0.0 and grads["W2"][1, 0] == 0.0  # the greyed-out weights


def test_wide_relu_with_z2_negative_updates_no_weight():
    W1, W2 = np.array([[1.5, -1.0]]), np.array([[-1.0], [0.5]])  # z2 = -4.5 < 0
    _, grads = wide_relu().value_and_grad({"x": [[X]], "y": [[Y]], "W1": W1, "W2": W2})
    assert not grads["W1"].any() and not grads["W2"].any()


def two_layer(residual: bool):
    """a1 = ReLU(w1 x), z2 = w2 a1, g = a1 + ReLU(z2) (or g = ReLU(z2) without the skip)."""
    g = gc.Graph("residual" if residual else "plain")
    x, y = g.input("x"), g.input("y")
    w1, w2 = g.param("w1"), g.param("w2")
    a1 = gc.relu(w1 * x)
    out = gc.relu(w2 * a1)
    if residual:
        out = a1 + out
    g.output("loss", (out - y) ** 2)
    return gc.compile(g)


def test_residual_connection_keeps_the_first_layer_learning_when_z2_is_negative():
    feeds = {"x": X, "y": Y, "w1": 1.5, "w2": -1.0}  # a1 = 4.5, z2 = -4.5 < 0
    _, plain = two_layer(residual=False).value_and_grad(feeds)
    assert float(plain["w1"]) == 0.0 and float(plain["w2"]) == 0.0  # nothing learns
    _, skip = two_layer(residual=True).value_and_grad(feeds)
    # g = a1 = 4.5; dL/dw1 = 2 (g - y) * (1 + dReLU(z2) w2) * dReLU(z1) * x = -3 * 1 * 1 * 3
    assert float(skip["w1"]) == 2 * (4.5 - Y) * (1 + 0.0 * -1.0) * 1.0 * X == -9.0
    assert float(skip["w2"]) == 0.0  # the ReLU branch itself is still dead


DEPTH, WIDTH = 20, 4


@functools.cache
def deep_stack(residual: bool):
    """Compiled once per module: the 20-layer compile is the slow part of these tests."""
    g = gc.Graph("deep_residual" if residual else "deep_sigmoid")
    h = g.input("x", shape=("N", WIDTH))
    y = g.input("y", shape=("N", WIDTH))
    for k in range(1, DEPTH + 1):
        layer = gc.sigmoid(h @ g.param(f"W{k}", shape=(WIDTH, WIDTH)) + g.param(f"b{k}", shape=(WIDTH,)))
        h = h + layer if residual else layer
    g.output("loss", gc.mse(h, y))
    return gc.compile(g)


def deep_feeds():
    rng = np.random.default_rng(0)
    feeds = {"x": rng.standard_normal((8, WIDTH)), "y": rng.standard_normal((8, WIDTH))}
    for k in range(1, DEPTH + 1):
        feeds[f"W{k}"] = rng.standard_normal((WIDTH, WIDTH))
        feeds[f"b{k}"] = rng.standard_normal(WIDTH)
    return feeds


def numpy_backprop(feeds, residual: bool) -> dict:
    """Backprop written by hand in numpy: the independent reference."""
    hs, ss = [feeds["x"]], []
    for k in range(1, DEPTH + 1):
        s = 1 / (1 + np.exp(-(hs[-1] @ feeds[f"W{k}"] + feeds[f"b{k}"])))
        ss.append(s)
        hs.append(hs[-1] + s if residual else s)
    dh = 2 * (hs[-1] - feeds["y"]) / hs[-1].size
    grads = {}
    for k in range(DEPTH, 0, -1):
        s = ss[k - 1]
        dz = dh * s * (1 - s)
        grads[f"W{k}"], grads[f"b{k}"] = hs[k - 1].T @ dz, dz.sum(axis=0)
        dh = dz @ feeds[f"W{k}"].T + (dh if residual else 0)
    return grads


@pytest.mark.parametrize("residual", [False, True], ids=["sigmoid", "residual"])
def test_deep_stack_gradients_match_hand_written_backprop(residual):
    feeds = deep_feeds()
    _, grads = deep_stack(residual).value_and_grad(feeds)
    expected = numpy_backprop(feeds, residual)
    for name, value in expected.items():
        np.testing.assert_allclose(grads[name], value, rtol=1e-9, atol=1e-300, err_msg=name)


def test_sigmoid_stack_first_layer_gradient_vanishes_but_not_its_residual_twins():
    feeds = deep_feeds()
    norms = {}
    for residual in (False, True):
        _, grads = deep_stack(residual).value_and_grad(feeds)
        norms[residual] = np.linalg.norm(grads["W1"]) / np.linalg.norm(grads[f"W{DEPTH}"])
    assert norms[False] < 1e-8  # many orders of magnitude smaller than the last layer's
    assert norms[True] > 1e-2
    assert norms[True] / norms[False] > 1e6
