"""softmax_cross_entropy against label rows of the logits' shape, whatever they sum to.

The loss is the textbook -mean over rows of sum(y * log_softmax(z)): for one-hot rows,
label-smoothed rows (summing to 1) and unnormalized soft targets (rows summing to anything),
on the last axis and on a middle one, in float64 and float32. Its value and its gradients
with respect to both the logits and the labels (learnable soft labels, attacks on the
labels) are held to central differences of that formula written in numpy, to PyTorch's
``cross_entropy`` with probability targets, and through ``gc.grad`` and the saved module.
The other losses' gradients with respect to their targets are checked the same way.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import graphc as gc

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # the torch cross-checks are skipped; the numpy references still run
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed (pip install 'graphc[torch]')")

# (logits' shape, the class axis as declared, the class axis as a non-negative index)
LAYOUTS = {"last": ((5, 4), -1, 1), "middle": ((3, 4, 2), 1, 1)}
KINDS = ("one-hot", "smoothed", "unnormalized")
# float64: central differences' own rounding (a loss near 10, eps = 1e-6: ~1e-9 absolute);
# float32: its rounding against the float64 references
TOLERANCE = {"float64": {"rtol": 1e-7, "atol": 1e-8}, "float32": {"rtol": 2e-5, "atol": 2e-6}}


def _labels(kind, shape, axis, rng):
    classes = shape[axis]
    rows = np.moveaxis(np.zeros(shape), axis, -1)
    one_hot = np.eye(classes)[rng.integers(0, classes, size=rows.shape[:-1])]
    labels = {"one-hot": one_hot,
              "smoothed": 0.9 * one_hot + 0.1 / classes,  # label smoothing: rows still sum to 1
              "unnormalized": rng.uniform(0.1, 1.5, size=rows.shape)}[kind]  # rows sum to 0.4 .. 6
    return np.moveaxis(labels, -1, axis)


def _feeds(layout, kind, seed=0):
    shape, _, axis = LAYOUTS[layout]
    rng = np.random.default_rng(seed)
    return {"z": 2.0 * rng.standard_normal(shape), "y": _labels(kind, shape, axis, rng)}


def _textbook(z, y, axis):
    """-mean over rows of sum(y * log_softmax(z)), in float64, written apart from graphc."""
    shifted = z - z.max(axis=axis, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
    return -np.mean(np.sum(y * log_softmax, axis=axis))


def _central_differences(f, x, eps=1e-6):
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[i] = eps
        grad[i] = (f(x + step) - f(x - step)) / (2 * eps)
    return grad


def _reference(feeds, axis):
    """The textbook loss and its gradients w.r.t. z and y, by central differences (float64)."""
    z, y = feeds["z"], feeds["y"]
    return (_textbook(z, y, axis),
            {"z": _central_differences(lambda v: _textbook(v, y, axis), z),
             "y": _central_differences(lambda v: _textbook(z, v, axis), y)})


def _graph(layout, dtype):
    shape, axis, _ = LAYOUTS[layout]
    g = gc.Graph("soft_labels")
    z = g.param("z", shape=shape, dtype=dtype)
    y = g.param("y", shape=shape, dtype=dtype)  # learnable labels: a gradient for them too
    g.output("loss", gc.softmax_cross_entropy(z, y, axis=axis))
    return g


def _cast(feeds, dtype):
    return {name: value.astype(dtype) for name, value in feeds.items()}


def _assert_close(value, grads, reference, dtype):
    loss, expected = reference
    np.testing.assert_allclose(float(value), loss, **TOLERANCE[dtype])
    for name in ("z", "y"):
        assert np.asarray(grads[name]).dtype == np.dtype(dtype), name
        np.testing.assert_allclose(grads[name], expected[name], **TOLERANCE[dtype], err_msg=f"d loss / d {name}")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("kind", KINDS)
def test_value_and_gradients_wrt_logits_and_labels_match_central_differences(kind, layout, dtype):
    feeds = _feeds(layout, kind)
    value, grads = gc.compile(_graph(layout, dtype)).value_and_grad(_cast(feeds, dtype))
    _assert_close(value["loss"], grads, _reference(feeds, LAYOUTS[layout][2]), dtype)


@needs_torch
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("kind", KINDS)
def test_value_and_gradients_match_torch_cross_entropy_with_probability_targets(kind, layout, dtype):
    # torch takes the classes on axis 1: both layouts have them there
    feeds = _cast(_feeds(layout, kind, seed=1), dtype)
    z, y = (torch.tensor(feeds[name], requires_grad=True) for name in ("z", "y"))
    loss = F.cross_entropy(z, y)
    loss.backward()
    value, grads = gc.compile(_graph(layout, dtype)).value_and_grad(feeds)
    tolerance = {"float64": {"rtol": 1e-12, "atol": 1e-14}, "float32": {"rtol": 1e-5, "atol": 1e-6}}[dtype]
    np.testing.assert_allclose(value["loss"], loss.item(), **tolerance)
    np.testing.assert_allclose(grads["z"], z.grad.numpy(), **tolerance, err_msg="d loss / d z")
    np.testing.assert_allclose(grads["y"], y.grad.numpy(), **tolerance, err_msg="d loss / d y")


@pytest.mark.parametrize("kind", KINDS)
def test_the_label_gradient_is_minus_log_softmax_over_the_rows(kind):
    # the closed form, for every kind of row: d/dy of -mean(sum(y * log_softmax(z))) = -log_softmax(z) / rows
    feeds = _feeds("last", kind, seed=2)
    _, grads = gc.compile(_graph("last", "float64")).value_and_grad(feeds)
    z = feeds["z"]
    log_softmax = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(grads["y"], -log_softmax / z.shape[0], rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("kind", KINDS)
def test_gc_grad_gives_the_same_gradients_as_ordinary_outputs(kind, layout):
    feeds = _feeds(layout, kind, seed=3)
    out = gc.compile(gc.grad(_graph(layout, "float64"), "loss", wrt=["z", "y"])).forward(feeds)
    _assert_close(out["loss"], {"z": out["dloss/dz"], "y": out["dloss/dy"]},
                  _reference(feeds, LAYOUTS[layout][2]), "float64")


def test_the_saved_module_computes_the_same_loss_and_gradients(tmp_path):
    feeds = _feeds("middle", "unnormalized", seed=4)
    path = gc.compile(_graph("middle", "float64")).save(tmp_path / "soft_labels_gen.py")
    spec = importlib.util.spec_from_file_location("soft_labels_gen", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    value, grads = module.value_and_grad(feeds)
    reference = _reference(feeds, LAYOUTS["middle"][2])
    _assert_close(value["loss"], grads, reference, "float64")
    np.testing.assert_allclose(module.forward(feeds)["loss"], reference[0], rtol=1e-12)


def test_the_interpreter_and_the_compiled_program_agree_on_unnormalized_rows():
    feeds = _feeds("last", "unnormalized", seed=5)
    compiled = gc.compile(_graph("last", "float64")).forward(feeds)["loss"]
    np.testing.assert_allclose(compiled, gc.evaluate(_graph("last", "float64"), feeds)["loss"], rtol=1e-13)


def test_int_labels_and_their_one_hot_rows_give_the_same_loss_and_logit_gradient():
    rng = np.random.default_rng(6)
    z, classes = rng.standard_normal((6, 4)), rng.integers(0, 4, size=6)
    losses, logit_grads = [], []
    for labels, dtype in ((classes, "int64"), (np.eye(4)[classes], "float64")):
        g = gc.Graph("labels")
        logits = g.param("z", shape=(6, 4))
        y = g.input("y", shape=labels.shape, dtype=dtype)
        g.output("loss", gc.softmax_cross_entropy(logits, y))
        value, grads = gc.compile(g).value_and_grad({"z": z, "y": labels})
        losses.append(float(value["loss"]))
        logit_grads.append(grads["z"])
    one_hot = np.eye(4)[classes]
    np.testing.assert_allclose(losses, [_textbook(z, one_hot, 1)] * 2, rtol=1e-14)
    np.testing.assert_allclose(logit_grads[0], logit_grads[1], rtol=1e-13, atol=1e-16)
    expected = _central_differences(lambda v: _textbook(v, one_hot, 1), z)
    np.testing.assert_allclose(logit_grads[0], expected, rtol=1e-7, atol=1e-9)


# The other losses: each term is exact for any target, so its gradient w.r.t. the target
# must be the textbook one too (targets outside {0, 1}: soft and out-of-range ones).
def _bce(p, y):
    return np.mean(-(y * np.log(p) + (1 - y) * np.log1p(-p)))


def _bce_with_logits(z, y):
    p = 1 / (1 + np.exp(-z))
    return _bce(p, y)


def _mse(p, y):
    return np.mean((p - y) ** 2)


OTHER_LOSSES = {"bce": (gc.bce, _bce), "bce_with_logits": (gc.bce_with_logits, _bce_with_logits), "mse": (gc.mse, _mse)}


@pytest.mark.parametrize("name", list(OTHER_LOSSES))
def test_the_other_losses_give_the_textbook_gradient_wrt_soft_targets(name):
    loss, textbook = OTHER_LOSSES[name]
    rng = np.random.default_rng(7)
    pred = rng.uniform(0.05, 0.95, size=(4, 3)) if name == "bce" else rng.standard_normal((4, 3))
    target = rng.uniform(-0.5, 1.5, size=(4, 3))
    g = gc.Graph(name)
    p, y = g.param("p", shape=(4, 3)), g.param("y", shape=(4, 3))
    g.output("loss", loss(p, y))
    value, grads = gc.compile(g).value_and_grad({"p": pred, "y": target})
    np.testing.assert_allclose(value["loss"], textbook(pred, target), rtol=1e-13)
    np.testing.assert_allclose(grads["p"], _central_differences(lambda v: textbook(v, target), pred), rtol=1e-7)
    np.testing.assert_allclose(grads["y"], _central_differences(lambda v: textbook(pred, v), target), rtol=1e-7)
