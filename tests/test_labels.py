"""Integer class labels: softmax_cross_entropy(logits, labels) with int64 labels of shape (N,).

The value and the gradient equal those of the one-hot form (written by hand in numpy
here), central differences agree, and an int64 input is refused wherever an op does not
read labels; labels travel through graph files and saved modules.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import graphc as gc

RNG = np.random.default_rng(13)
X, W = RNG.standard_normal((5, 3)), RNG.standard_normal((3, 4))
LABELS = np.array([0, 3, 1, 1, 2])


def _net(labels_shape=("N",), dtype="int64"):
    g = gc.Graph("labels")
    x = g.input("x", shape=("N", 3))
    y = g.input("y", shape=labels_shape, dtype=dtype)
    w = g.param("W", shape=(3, 4))
    g.output("loss", gc.softmax_cross_entropy(x @ w, y))
    return g


def _by_hand(x, w, labels):
    z = x @ w
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    loss = -np.mean(np.log(p[np.arange(len(labels)), labels]))
    onehot = np.eye(4)[labels]
    return loss, x.T @ (p - onehot) / len(labels)


def test_int_labels_give_the_cross_entropy_and_its_gradient():
    value, grads = gc.compile(_net()).value_and_grad({"x": X, "y": LABELS, "W": W})
    loss, d_w = _by_hand(X, W, LABELS)
    np.testing.assert_allclose(value["loss"], loss, rtol=1e-14)
    np.testing.assert_allclose(grads["W"], d_w, rtol=1e-12, atol=1e-15)


def test_int_labels_pass_the_gradient_check_and_agree_with_the_interpreter():
    prog = gc.compile(_net())
    feeds = {"x": X, "y": LABELS, "W": W}
    assert gc.check_gradients(prog, feeds).ok
    assert float(gc.evaluate(_net(), feeds)["loss"]) == pytest.approx(float(prog.forward(feeds)["loss"]), rel=1e-14)


def test_int_labels_are_lowered_as_a_gather_not_a_one_hot_matrix():
    source = gc.compile(_net()).source
    assert "numpy.take_along_axis(" in source and "numpy.put_along_axis(" in source
    assert "numpy.eye" not in source


def test_an_int64_input_is_refused_where_no_op_reads_labels():
    g = gc.Graph("misuse")
    y = g.input("y", shape=(3,), dtype="int64")
    with pytest.raises(gc.GraphError, match="node 'y'.*int64.*softmax_cross_entropy"):
        gc.sum(y * 2.0)


def test_an_int64_param_is_refused():
    with pytest.raises(gc.GraphError, match="dtype must be a float type"):
        gc.Graph("p").param("w", shape=(2,), dtype="int64")


def test_float_labels_of_one_per_row_are_refused_naming_the_node():
    with pytest.raises(gc.GraphError, match="node 'y'.*must be int64"):
        gc.compile(_net(dtype="float64"))


def test_labels_of_the_wrong_shape_are_a_shape_error():
    g = gc.Graph("shape")
    z = g.input("z", shape=(5, 4))
    y = g.input("y", shape=(4,), dtype="int64")
    with pytest.raises(gc.ShapeError, match="one label per row is shape \\(5,\\)"):
        gc.softmax_cross_entropy(z, y)


def test_non_integral_label_feeds_are_refused():
    prog = gc.compile(_net())
    with pytest.raises(gc.FeedError, match="feed 'y'.*non-integral"):
        prog.forward({"x": X, "y": np.array([0.5, 1, 1, 1, 1]), "W": W})


def test_labels_survive_a_graph_file_and_a_saved_module(tmp_path):
    feeds = {"x": X, "y": LABELS, "W": W}
    loaded = gc.load(gc.save(_net(), tmp_path / "labels.json"))
    assert loaded.nx.nodes["y"]["dtype"] == "int64"
    path = gc.compile(loaded).save(tmp_path / "labels_module.py")
    spec = importlib.util.spec_from_file_location("labels_module", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    np.testing.assert_allclose(module.forward(feeds)["loss"], _by_hand(X, W, LABELS)[0], rtol=1e-14)
    _, grads = module.value_and_grad(feeds)
    np.testing.assert_allclose(grads["W"], _by_hand(X, W, LABELS)[1], rtol=1e-12, atol=1e-15)
