"""A corpus of networks, each one's gradients checked against central differences.

Every network is declared here with the builder and fed from a seeded generator; points
are random, so ReLU units sit away from their kink (the check must report no kink).
"""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from graphc import ir

N = 5  # batch size fed for the symbolic dim "N"


def dense(g, h, n_in, n_out, name, bias_shape=None):
    W = g.param(f"W{name}", shape=(n_in, n_out))
    b = g.param(f"b{name}", shape=bias_shape if bias_shape is not None else (n_out,))
    return h @ W + b


def linear_regression(g):
    x, y = g.input("x", shape=("N", 3)), g.input("y", shape=("N", 1))
    return gc.mse(gc.identity(dense(g, x, 3, 1, "")), y)


def logistic_nll(g):
    x, y = g.input("x", shape=("N", 3)), g.input("y", shape=("N", 1))
    return gc.bce(gc.sigmoid(dense(g, x, 3, 1, "")), y)


def logistic_logits(g):
    x, y = g.input("x", shape=("N", 3)), g.input("y", shape=("N", 1))
    return gc.bce_with_logits(dense(g, x, 3, 1, ""), y)


def recall_xor(g):
    x, y = g.input("x", shape=("N", 2)), g.input("y", shape=("N", 1))
    h = gc.sigmoid(dense(g, x, 2, 2, "1"))
    return gc.mse(gc.identity(h @ g.param("v", shape=(2, 1))), y)


def mlp(activation):
    def build(g):
        x, y = g.input("x", shape=("N", 3)), g.input("y", shape=("N", 2))
        h = activation(dense(g, x, 3, 4, "1"))
        h = activation(dense(g, h, 4, 3, "2"))
        return gc.mse(dense(g, h, 3, 2, "3"), y)

    build.__name__ = f"mlp_{activation.__name__}"
    return build


def mlp_softmax_ce(g):
    x, y = g.input("x", shape=("N", 3)), g.input("y", shape=("N", 3))
    h = gc.tanh(dense(g, x, 3, 4, "1"))
    return gc.softmax_cross_entropy(dense(g, h, 4, 3, "2"), y)


def mlp_softmax_nll(g):
    # the same loss written by hand: -mean(sum(y * log(softmax(z))))
    x, y = g.input("x", shape=("N", 3)), g.input("y", shape=("N", 3))
    z = dense(g, gc.relu(dense(g, x, 3, 4, "1")), 4, 3, "2")
    return -gc.mean(gc.sum(y * gc.log(gc.softmax(z)), axis=1))


def residual_blocks(g):
    x, y = g.input("x", shape=("N", 3)), g.input("y", shape=("N", 3))
    h = x
    for k in range(2):
        h = h + gc.relu(dense(g, gc.tanh(dense(g, h, 3, 3, f"{k}a")), 3, 3, f"{k}b"))
    return gc.mse(h, y)


def shared_weights(g):
    # one W used by two layers, and its transpose by a third: cotangents must add up
    x, y = g.input("x", shape=("N", 3)), g.input("y", shape=("N", 3))
    W = g.param("W", shape=(3, 3))
    h = gc.tanh(x @ W)
    h = gc.sigmoid(h @ W)
    return gc.mse(h @ W.T, y)


def square_by_mul(g):
    x = g.param("x", shape=(4,))
    return gc.sum(x * x)


def broadcast_biases(g):
    x, y = g.input("x", shape=("N", 3)), g.input("y", shape=("N", 4))
    z = dense(g, x, 3, 4, "1", bias_shape=(1, 4))  # a row bias
    z = z + g.param("c", shape=())  # a scalar bias
    z = z * (g.param("s", shape=("N", 1)) + 1.0)  # a per-example scale (N, 1)
    return gc.mse(gc.softplus(z), y)


def tensors_3d(g):
    x = g.input("x", shape=(2, "N", 3))
    y = g.input("y", shape=(2, "N", 2))
    W = g.param("W", shape=(2, 3, 2))  # one matrix per batch entry: batched matmul
    V = g.param("V", shape=(2, 2))  # shared across the batch
    h = gc.tanh(x @ W)
    out = gc.transpose(gc.transpose(h @ V, (1, 0, 2)), (1, 0, 2))
    return gc.mean(gc.sum((out - y) ** 2, axis=(0, 2))) + 0.1 * gc.sum(gc.mean(h, axis=1, keepdims=True))


def deep_sigmoid(g, residual=False):
    x, y = g.input("x", shape=("N", 4)), g.input("y", shape=("N", 4))
    h = x
    for k in range(20):
        layer = gc.sigmoid(dense(g, h, 4, 4, str(k)))
        h = h + layer if residual else layer
    return gc.mse(h, y)


def deep_residual(g):
    return deep_sigmoid(g, residual=True)


CORPUS = [
    linear_regression, logistic_nll, logistic_logits, recall_xor,
    mlp(gc.relu), mlp(gc.tanh), mlp(gc.sigmoid), mlp_softmax_ce, mlp_softmax_nll,
    residual_blocks, shared_weights, square_by_mul, broadcast_biases, tensors_3d,
    deep_sigmoid, deep_residual,
]


def feeds_for(graph: gc.Graph, seed: int = 0) -> dict:
    """Random feeds for every input and param; one-hot/probability targets where asked."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for name in graph.inputs + graph.params:
        shape = tuple(N if not isinstance(d, int) else d for d in graph.nx.nodes[name][ir.SHAPE])
        feeds[name] = rng.standard_normal(shape)
    if "y" in feeds and graph.name in ("logistic_nll", "logistic_logits", "recall_xor"):
        feeds["y"] = rng.integers(0, 2, feeds["y"].shape).astype(float)
    if graph.name.startswith("mlp_softmax"):
        feeds["y"] = np.eye(3)[rng.integers(0, 3, N)]
    return feeds


def build(network) -> gc.Graph:
    g = gc.Graph(network.__name__)
    g.output("loss", network(g))
    return g


@pytest.mark.parametrize("network", CORPUS, ids=lambda f: f.__name__)
def test_network_gradients_match_central_differences(network):
    g = build(network)
    prog = gc.compile(g)
    report = gc.check_gradients(prog, feeds_for(g), rtol=1e-5, atol=1e-7)
    assert report.ok and not report.kinks, str(report)
    _, grads = prog.value_and_grad(feeds_for(g))
    assert list(grads) == g.params
    assert all(grads[p].shape == feeds_for(g)[p].shape for p in g.params)


@pytest.mark.parametrize("network", [recall_xor, shared_weights, tensors_3d], ids=lambda f: f.__name__)
def test_the_gradcheck_fixture_runs_the_check(gradcheck, network):
    g = build(network)
    report = gradcheck(gc.compile(g), feeds_for(g, seed=1))
    assert report.ok and len(report.rows) > 1


def test_the_gradcheck_fixture_accepts_a_graph_and_options(gradcheck):
    g = build(mlp(gc.tanh))
    report = gradcheck(g, feeds_for(g), rtol=1e-6, max_entries=0)
    assert [r.param for r in report.rows] == ["<random direction>"]


def test_the_differentiated_stage_tags_the_node_holding_each_gradient():
    g = build(shared_weights)
    joint = gc.compile(g).stages["differentiated"]
    gc.verify(joint)
    backward = [n for n, d in joint.nodes(data=True) if d.get(ir.PHASE) == ir.BACKWARD]
    holders = [n for n in backward if joint.nodes[n].get(ir.GRAD_OF) is not None]
    assert holders and all(joint.nodes[n][ir.GRAD_OF] in joint for n in holders)
    assert len(holders) < len(backward), "helper steps (a transpose, a partial sum) hold no gradient"
    assert len({joint.nodes[n][ir.GRAD_OF] for n in holders}) == len(holders), "one holder per value"
    assert set(joint.graph[ir.GRADS]) == {"W"}
    # W feeds three ops, so its total gradient is a sum of three contributions
    assert joint.nodes[joint.graph[ir.GRADS]["W"]][ir.OP] == "add"


def test_gradients_are_the_same_for_any_batch_size():
    g = build(mlp(gc.tanh))
    prog = gc.compile(g)
    feeds = feeds_for(g)
    _, whole = prog.value_and_grad(feeds)
    parts = []
    for k in range(N):
        one = {**feeds, "x": feeds["x"][k:k + 1], "y": feeds["y"][k:k + 1]}
        parts.append(prog.value_and_grad(one)[1])
    for name in g.params:  # the loss is a mean: the batch gradient is the mean of per-example ones
        np.testing.assert_allclose(whole[name], np.mean([p[name] for p in parts], axis=0), rtol=1e-10)
