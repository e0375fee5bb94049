"""Second derivatives: gc.grad puts a gradient into the graph, which can be differentiated again.

References are numeric: the Hessian of the loss from second-order central differences of
the loss alone, so no first-order gradient code is trusted by the reference.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

import graphc as gc

PARAMS = {"W1": (2, 3), "b1": (3,), "W2": (3, 1), "b2": (1,)}


def mlp() -> gc.Graph:
    g = gc.Graph("mlp2")
    x, y = g.input("x", shape=("N", 2)), g.input("y", shape=("N", 1))
    p = {name: g.param(name, shape=shape) for name, shape in PARAMS.items()}
    h = gc.tanh(x @ p["W1"] + p["b1"])
    g.output("loss", gc.mse(gc.sigmoid(h @ p["W2"] + p["b2"]), y))
    return g


@functools.cache
def feeds() -> dict:
    rng = np.random.default_rng(7)
    out = {"x": rng.standard_normal((4, 2)), "y": rng.uniform(0, 1, (4, 1))}
    out.update({name: rng.standard_normal(shape) for name, shape in PARAMS.items()})
    return out


def flat(values: dict) -> np.ndarray:
    return np.concatenate([np.ravel(values[name]) for name in PARAMS])


def unflat(vector: np.ndarray) -> dict:
    out, start = {}, 0
    for name, shape in PARAMS.items():
        size = int(np.prod(shape))
        out[name] = vector[start:start + size].reshape(shape)
        start += size
    return out


@functools.cache
def numeric_hessian() -> np.ndarray:
    """d2 loss / d theta_i d theta_j by the four-point central difference of the loss."""
    prog = gc.compile(mlp())
    theta = flat(feeds())
    eps = 1e-4

    def loss(t):
        return float(prog.forward({**feeds(), **unflat(t)})["loss"])

    n = theta.size
    hessian = np.zeros((n, n))
    for i in range(n):
        for j in range(i, n):
            ei, ej = np.eye(n)[i] * eps, np.eye(n)[j] * eps
            value = (loss(theta + ei + ej) - loss(theta + ei - ej) - loss(theta - ei + ej) + loss(theta - ei - ej))
            hessian[i, j] = hessian[j, i] = value / (4 * eps * eps)
    return hessian


def with_directional_gradient() -> gc.Graph:
    """The MLP plus ``gv = <grad loss, v>`` over every param, v fed as inputs ``v_<name>``."""
    g2 = gc.grad(mlp(), "loss", wrt=list(PARAMS))
    gv = None
    for name, shape in PARAMS.items():
        term = gc.sum(g2.node(f"dloss/d{name}") * g2.input(f"v_{name}", shape=shape))
        gv = term if gv is None else gv + term
    g2.output("gv", gv)
    return g2


def test_grad_adds_the_gradients_as_outputs_equal_to_value_and_grad():
    g2 = gc.grad(mlp(), "loss", wrt=list(PARAMS))
    assert g2.outputs == ["loss"] + [f"dloss/d{name}" for name in PARAMS]
    out = gc.compile(g2, of="loss").forward(feeds())
    _, grads = gc.compile(mlp()).value_and_grad(feeds())
    for name in PARAMS:
        np.testing.assert_allclose(out[f"dloss/d{name}"], grads[name], rtol=1e-12, atol=1e-15)


def test_hessian_vector_products_match_numeric_second_derivatives():
    prog = gc.compile(with_directional_gradient(), of="gv")
    hessian = numeric_hessian()
    rng = np.random.default_rng(0)
    for v in [rng.standard_normal(hessian.shape[0]) for _ in range(3)] + [np.eye(hessian.shape[0])[4]]:
        direction = {f"v_{k}": a for k, a in unflat(v).items()}
        _, hv = prog.value_and_grad({**feeds(), **direction})
        np.testing.assert_allclose(flat(hv), hessian @ v, rtol=1e-5, atol=1e-6)


def test_the_whole_hessian_row_by_row_is_symmetric_and_numeric():
    prog = gc.compile(with_directional_gradient(), of="gv")
    n = numeric_hessian().shape[0]
    rows = []
    for i in range(n):
        direction = {f"v_{k}": a for k, a in unflat(np.eye(n)[i]).items()}
        rows.append(flat(prog.value_and_grad({**feeds(), **direction})[1]))
    hessian = np.array(rows)
    np.testing.assert_allclose(hessian, hessian.T, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(hessian, numeric_hessian(), rtol=1e-5, atol=1e-6)


def test_second_derivatives_pass_check_gradients():
    # the gradient of gv (a Hessian-vector product) against central differences of gv
    rng = np.random.default_rng(1)
    direction = {f"v_{k}": rng.standard_normal(s) for k, s in PARAMS.items()}
    gc.check_gradients(gc.compile(with_directional_gradient(), of="gv"), {**feeds(), **direction})


def test_gradient_of_a_gradient_graph_twice_over():
    # gc.grad of gc.grad: the Hessian-vector product as a graph output, compiled forward
    g3 = gc.grad(with_directional_gradient(), "gv", wrt=["W2"])
    rng = np.random.default_rng(2)
    v = rng.standard_normal(numeric_hessian().shape[0])
    direction = {f"v_{k}": a for k, a in unflat(v).items()}
    out = gc.compile(g3, of="gv").forward({**feeds(), **direction})
    expected = unflat(numeric_hessian() @ v)["W2"]
    np.testing.assert_allclose(out["dgv/dW2"], expected, rtol=1e-5, atol=1e-6)


def test_a_gradient_penalty_trains_through_the_gradient():
    # total = loss + 0.1 * |dloss/dW1|^2: its gradient needs d2 loss / dW1 dtheta
    g2 = gc.grad(mlp(), "loss", wrt=["W1"])
    penalty = gc.sum(gc.square(g2.node("dloss/dW1")))
    g2.output("total", g2.node("loss") + 0.1 * penalty)
    prog = gc.compile(g2, of="total")
    gc.check_gradients(prog, feeds())
    # and by the Hessian: d total = d loss + 0.2 * H[:, W1] @ dloss/dW1
    _, grads = prog.value_and_grad(feeds())
    _, first = gc.compile(mlp()).value_and_grad(feeds())
    hessian = numeric_hessian()
    w1 = slice(0, 6)
    expected = flat(first) + 0.2 * hessian[:, w1] @ np.ravel(first["W1"])
    np.testing.assert_allclose(flat(grads), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("build", "second"), [
    (lambda x: x**3, lambda x: 6 * x),
    (gc.sin, lambda x: -np.sin(x)),
    (gc.tanh, lambda x: -2 * np.tanh(x) * (1 - np.tanh(x) ** 2)),
    (gc.sigmoid, lambda x: (s := 1 / (1 + np.exp(-x))) * (1 - s) * (1 - 2 * s)),
    (gc.exp, np.exp),
    (gc.relu, np.zeros_like),  # the derivative of a step is 0 wherever it exists
    (gc.abs, np.zeros_like),
    (lambda x: gc.maximum(x, 0.1 * x * x), lambda x: np.where(x >= 0.1 * x * x, 0.0, 0.2)),
], ids=["cube", "sin", "tanh", "sigmoid", "exp", "relu", "abs", "maximum"])
def test_scalar_second_derivatives_match_closed_forms(build, second):
    g = gc.Graph("scalar")
    x = g.param("x", shape=(3,))
    g.output("y", gc.sum(build(x)))
    g2 = gc.grad(g, "y", wrt=["x"])
    g2.output("s", gc.sum(g2.node("dy/dx")))  # d/dx_i of sum_j f'(x_j) = f''(x_i)
    point = np.array([-0.7, 0.2, 1.3])
    _, grads = gc.compile(g2, of="s").value_and_grad({"x": point})
    np.testing.assert_allclose(grads["x"], second(point), rtol=1e-12)


def test_a_gradient_penalty_through_relu_layers():
    # second derivatives through ReLU kinks: d step = 0, so only the smooth ops contribute
    g = gc.Graph("relu_mlp")
    x, y = g.input("x", shape=("N", 2)), g.input("y", shape=("N", 1))
    W1, W2 = g.param("W1", shape=(2, 3)), g.param("W2", shape=(3, 1))
    g.output("loss", gc.mse(gc.relu(gc.relu(x @ W1) @ W2), y))
    g2 = gc.grad(g, "loss", wrt=["W1", "W2"])
    g2.output("total", g2.node("loss") + gc.sum(gc.square(g2.node("dloss/dW1"))))
    rng = np.random.default_rng(4)
    point = {"x": rng.standard_normal((5, 2)), "y": rng.standard_normal((5, 1)),
             "W1": rng.standard_normal((2, 3)), "W2": np.abs(rng.standard_normal((3, 1)))}
    report = gc.check_gradients(gc.compile(g2, of="total"), point)
    assert report.ok and not report.kinks
