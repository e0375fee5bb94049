"""The lecture's networks, and a few small real ones, each built with graphc.

Every function returns ``(graph, feeds)``: a :class:`graphc.Graph` and a dict of default
values for its inputs and params, keyed by the graph's own names. Keyword options change
the values; the defaults are the lecture's. Networks that learn have the loss as their
first output, named ``loss``, and the prediction next, named ``g``.

>>> import graphc as gc
>>> graph, feeds = gc.zoo.relu_neuron()
>>> float(gc.compile(graph).forward(feeds)["loss"])   # (ReLU(1.5 * 3) - 6) ** 2
2.25
>>> gc.zoo.NAMES[:3]
('linear_regression', 'logistic_classifier', 'relu_neuron')
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from . import functional as F
from . import init
from .builder import Graph, Node
from .datasets import digits, one_hot
from .errors import GraphcError

__all__ = [
    "NAMES", "get", "summary", "XOR_INPUTS", "make_moons", "make_blobs",
    "linear_regression", "logistic_classifier", "relu_neuron", "wide_relu", "residual", "recall_xor",
    "mlp", "deep_sigmoid", "deep_residual", "two_moons", "blobs", "digits_mlp", "digits_cnn",
]

Feeds = dict[str, np.ndarray]

XOR_INPUTS = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])


def _point(x: float, y: float) -> Feeds:
    """The lecture's single data point as a batch of one: x of shape (1, 1), y of shape (1, 1)."""
    return {"x": np.array([[float(x)]]), "y": np.array([[float(y)]])}


def _scalar_net(name: str) -> tuple[Graph, Node, Node]:
    g = Graph(name)
    return g, g.input("x", shape=("N", 1)), g.input("y", shape=("N", 1))


def _finish(g: Graph, loss: Node, prediction: Node) -> Graph:
    g.output("loss", loss)
    g.output("g", prediction)
    return g


# ----------------------------------------------------------------------------------------
# The lecture's examples.

def linear_regression(x: float = 3.0, y: float = 6.0, w: float = 1.5) -> tuple[Graph, Feeds]:
    """The linear regressor g = w x with the squared loss (g - y)**2.

    At the lecture's data point (x, y) = (3, 6) and w = 1.5: g = 4.5, loss = 2.25 and
    dL/dw = 2 (g - y) x = -9, so SGD moves w up, towards y / x = 2.
    """
    g, xs, ys = _scalar_net("linear_regression")
    w_ = g.param("w", shape=(1, 1))
    pred = F.identity(xs @ w_)
    return _finish(g, F.mse(pred, ys), pred), {**_point(x, y), "w": np.array([[float(w)]])}


def logistic_classifier(n: int = 8, seed: int = 0) -> tuple[Graph, Feeds]:
    """The logistic classifier g = sigmoid(x w + b) with the NLL loss (gc.bce).

    The data: ``n`` points in the plane labelled 1 when x1 + x2 > 0 (seeded, so always the
    same), and a starting w = (0.5, -0.5), b = 0 that gets half of them wrong.
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2))
    y = (x.sum(axis=1, keepdims=True) > 0).astype(float)
    g = Graph("logistic_classifier")
    xs, ys = g.input("x", shape=("N", 2)), g.input("y", shape=("N", 1))
    w, b = g.param("w", shape=(2, 1)), g.param("b", shape=(1,))
    prob = F.sigmoid(xs @ w + b)
    feeds = {"x": x, "y": y, "w": np.array([[0.5], [-0.5]]), "b": np.zeros(1)}
    return _finish(g, F.bce(prob, ys), prob), feeds


def relu_neuron(w: float = 1.5, x: float = 3.0, y: float = 6.0) -> tuple[Graph, Feeds]:
    """The single ReLU neuron g = ReLU(w x) with the squared loss.

    With (x, y) = (3, 6): w = 1.5 gives z = 4.5 > 0 and dL/dw = x * 1 * 2 (g - y) = -9;
    w = -1 gives z = -3 < 0, g = 0 and dL/dw = 0 exactly (the ReLU is dead).
    """
    g, xs, ys = _scalar_net("relu_neuron")
    w_ = g.param("w", shape=(1, 1))
    z = (xs @ w_).named("z")
    pred = F.relu(z)
    return _finish(g, F.mse(pred, ys), pred), {**_point(x, y), "w": np.array([[float(w)]])}


def wide_relu(dead_output: bool = False, x: float = 3.0, y: float = 6.0) -> tuple[Graph, Feeds]:
    """A first layer of three ReLU units, then one ReLU output unit; squared loss.

    z1 = x W1 with W1 = (1, -1, 0.5): at x = 3 the second unit has z1 = -3 < 0, so its
    weights, in and out, get exactly zero gradient while the others update. With
    ``dead_output=True``, W2 = (-0.5, 1, -1) makes z2 = -3 < 0 and no weight updates at all.
    """
    g, xs, ys = _scalar_net("wide_relu")
    W1, W2 = g.param("W1", shape=(1, 3)), g.param("W2", shape=(3, 1))
    a1 = F.relu((xs @ W1).named("z1")).named("a1")
    pred = F.relu((a1 @ W2).named("z2"))
    w2 = [[-0.5], [1.0], [-1.0]] if dead_output else [[0.5], [1.0], [1.0]]
    feeds = {**_point(x, y), "W1": np.array([[1.0, -1.0, 0.5]]), "W2": np.array(w2)}
    return _finish(g, F.mse(pred, ys), pred), feeds


def residual(skip: bool = True, w1: float = 1.5, w2: float = -1.0, x: float = 3.0,
             y: float = 6.0) -> tuple[Graph, Feeds]:
    """The residual (skip) connection g = a1 + ReLU(z2), with a1 = ReLU(w1 x), z2 = w2 a1.

    At the defaults z2 = -4.5 < 0: ReLU(z2) passes no gradient, so dL/dw2 = 0, but the skip
    path still carries one to the first layer: dL/dw1 = 2 (g - y) x = -9. With
    ``skip=False`` (g = ReLU(z2)) every gradient is zero.
    """
    g, xs, ys = _scalar_net("residual" if skip else "no_skip")
    p1, p2 = g.param("w1", shape=(1, 1)), g.param("w2", shape=(1, 1))
    a1 = F.relu((xs @ p1).named("z1")).named("a1")
    out = F.relu((a1 @ p2).named("z2"))
    pred = (a1 + out if skip else F.identity(out))
    feeds = {**_point(x, y), "w1": np.array([[float(w1)]]), "w2": np.array([[float(w2)]])}
    return _finish(g, F.mse(pred, ys), pred), feeds


def recall_xor() -> tuple[Graph, Feeds]:
    """The lecture's "Recall" network on the XOR inputs.

    sigma1 = sigmoid(5 x1 - 5 x2 + 1), sigma2 = sigmoid(-5 x1 + 5 x2 + 1), and the output
    unit, with identity activation, gives -3 (sigma1 + sigma2).
    """
    g = Graph("recall_xor")
    x = g.input("x", shape=("N", 2))
    W = g.param("W", shape=(2, 2))
    b = g.param("b", shape=(2,))
    v = g.param("v", shape=(2, 1))
    hidden = F.sigmoid(x @ W + b).named("sigma")
    g.output("out", F.identity(hidden @ v))
    feeds = {
        "x": XOR_INPUTS.copy(),
        "W": np.array([[5.0, -5.0], [-5.0, 5.0]]),
        "b": np.array([1.0, 1.0]),
        "v": np.array([[-3.0], [-3.0]]),
    }
    return g, feeds


_ACTIVATIONS: dict[str, Callable[[Node], Node]] = {
    "relu": F.relu, "tanh": F.tanh, "sigmoid": F.sigmoid, "identity": F.identity, "softplus": F.softplus,
}


def _dense(g: Graph, h: Node, fan_in: int, fan_out: int, k: int, rng, feeds: Feeds) -> Node:
    """One fully connected layer's z = h W + b, its params seeded (scaled by 1/sqrt(fan_in))."""
    W, b = g.param(f"W{k}", shape=(fan_in, fan_out)), g.param(f"b{k}", shape=(fan_out,))
    feeds[f"W{k}"] = rng.normal(size=(fan_in, fan_out)) / np.sqrt(fan_in)
    feeds[f"b{k}"] = np.zeros(fan_out)
    return (h @ W + b).named(f"z{k}")


def _activation(name: str) -> Callable[[Node], Node]:
    if name not in _ACTIVATIONS:
        raise GraphcError(f"unknown activation {name!r}; choose one of {', '.join(_ACTIVATIONS)}")
    return _ACTIVATIONS[name]


def mlp(widths: tuple[int, ...] = (2, 8, 8, 1), activation: str = "tanh", n: int = 16,
        seed: int = 0) -> tuple[Graph, Feeds]:
    """A fully connected feed-forward net (multi-layer perceptron) with the squared loss.

    Layers ``widths[0] -> ... -> widths[-1]``, ``activation`` in every hidden layer and the
    identity at the output; the data are ``n`` seeded points with the target sin(x1) x2.
    """
    if len(widths) < 2:
        raise GraphcError(f"an MLP needs at least an input and an output width, found {widths!r}")
    act, rng = _activation(activation), np.random.default_rng(seed)
    g = Graph("mlp")
    h = g.input("x", shape=("N", widths[0]))
    ys = g.input("y", shape=("N", widths[-1]))
    x = rng.uniform(-2, 2, size=(n, widths[0]))
    target = np.sin(x[:, :1]) * x[:, 1:2] if widths[0] >= 2 else np.sin(x[:, :1])
    feeds: Feeds = {"x": x, "y": np.repeat(target, widths[-1], axis=1)}
    for k in range(1, len(widths)):
        z = _dense(g, h, widths[k - 1], widths[k], k, rng, feeds)
        h = act(z).named(f"a{k}") if k < len(widths) - 1 else F.identity(z)
    return _finish(g, F.mse(h, ys), h), feeds


def _deep(name: str, skip: bool, depth: int, width: int, n: int, seed: int) -> tuple[Graph, Feeds]:
    if depth < 1:
        raise GraphcError(f"{name}: depth must be at least 1, found {depth}")
    rng = np.random.default_rng(seed)
    g = Graph(name)
    h = g.input("x", shape=("N", width))
    ys = g.input("y", shape=("N", width))
    feeds: Feeds = {"x": rng.normal(size=(n, width)), "y": rng.uniform(size=(n, width))}
    for k in range(1, depth + 1):
        a = F.sigmoid(_dense(g, h, width, width, k, rng, feeds)).named(f"a{k}")
        h = (h + a).named(f"h{k}") if skip else a
    pred = F.identity(h)
    return _finish(g, F.mse(pred, ys), pred), feeds


def deep_sigmoid(depth: int = 20, width: int = 4, n: int = 8, seed: int = 0) -> tuple[Graph, Feeds]:
    """A stack of sigmoid layers, h_k = sigmoid(h_{k-1} W_k + b_k), 20 by default; squared loss.

    Each layer multiplies the gradient by sigmoid' <= 1/4 times its weights, so at depth
    20 the first layer's gradient is many orders of magnitude smaller than the last's:
    the vanishing gradient. Compare :func:`deep_residual`.
    """
    return _deep("deep_sigmoid", False, depth, width, n, seed)


def deep_residual(depth: int = 20, width: int = 4, n: int = 8, seed: int = 0) -> tuple[Graph, Feeds]:
    """The residual twin of deep_sigmoid: h_k = h_{k-1} + sigmoid(h_{k-1} W_k + b_k).

    Same weights and data; the skip connections carry the gradient to the first layer
    undiminished, so it does not vanish.
    """
    return _deep("deep_residual", True, depth, width, n, seed)


# ----------------------------------------------------------------------------------------
# Small data sets generated in numpy (deterministic, no download); the digits ship in
# graphc.datasets.

def make_moons(n: int = 200, noise: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaved half circles in the plane: x of shape (n, 2), labels y of shape (n, 1)."""
    rng = np.random.default_rng(seed)
    upper = n // 2
    t = np.concatenate([np.linspace(0, np.pi, upper), np.linspace(0, np.pi, n - upper)])
    x = np.stack([np.cos(t), np.sin(t)], axis=1)
    x[upper:] = np.stack([1 - np.cos(t[upper:]), 0.5 - np.sin(t[upper:])], axis=1)
    x += rng.normal(scale=noise, size=x.shape)
    y = np.concatenate([np.zeros(upper), np.ones(n - upper)])[:, None]
    order = rng.permutation(n)
    return x[order], y[order]


def make_blobs(n: int = 150, classes: int = 3, spread: float = 0.6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``classes`` Gaussian blobs on a circle: x of shape (n, 2), one-hot labels of shape (n, classes)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    angles = 2 * np.pi * labels / classes
    x = 2.5 * np.stack([np.cos(angles), np.sin(angles)], axis=1) + rng.normal(scale=spread, size=(n, 2))
    return x, np.eye(classes)[labels]


def two_moons(n: int = 200, hidden: int = 16, noise: float = 0.1, seed: int = 0) -> tuple[Graph, Feeds]:
    """A two-moons classifier: 2 -> 16 tanh -> 16 tanh -> 1 sigmoid, NLL loss (graphc demo trains it).

    ``hidden`` sets the width of the two hidden layers. The data come from
    :func:`make_moons` (numpy, seeded).
    """
    rng = np.random.default_rng(seed)
    x, y = make_moons(n, noise, seed)
    g = Graph("two_moons")
    h = g.input("x", shape=("N", 2))
    ys = g.input("y", shape=("N", 1))
    feeds: Feeds = {"x": x, "y": y}
    sizes = (2, hidden, hidden, 1)
    for k in range(1, len(sizes)):
        z = _dense(g, h, sizes[k - 1], sizes[k], k, rng, feeds)
        h = F.tanh(z).named(f"a{k}") if k < len(sizes) - 1 else F.sigmoid(z)
    return _finish(g, F.bce(h, ys), h), feeds


def blobs(n: int = 150, classes: int = 3, hidden: int = 16, seed: int = 0) -> tuple[Graph, Feeds]:
    """A three-blob classifier: 2 -> 16 ReLU -> 3 softmax, cross-entropy.

    ``hidden`` and ``classes`` set the widths. The data come from :func:`make_blobs`
    (numpy, seeded); the output ``g`` holds logits.
    """
    rng = np.random.default_rng(seed)
    x, y = make_blobs(n, classes, seed=seed)
    g = Graph("blobs")
    xs = g.input("x", shape=("N", 2))
    ys = g.input("y", shape=("N", classes))
    feeds: Feeds = {"x": x, "y": y}
    h = F.relu(_dense(g, xs, 2, hidden, 1, rng, feeds)).named("a1")
    logits = F.identity(_dense(g, h, hidden, classes, 2, rng, feeds))
    return _finish(g, F.softmax_cross_entropy(logits, ys), logits), feeds


def digits_mlp(hidden: int = 64, seed: int = 0) -> tuple[Graph, Feeds]:
    """An MLP for the UCI handwritten digits: 64 pixels -> 64 ReLU -> 10 logits, cross-entropy.

    The feeds hold the 1,437 training images of :func:`graphc.datasets.digits` (``x``), their
    labels one-hot (``y``; the loss takes one-hot rows for now) and He/Glorot initial
    weights (seeded); ``hidden`` sets the hidden width. The output ``g`` holds logits.
    ``graphc train digits_mlp --data digits`` trains it and reports held-out accuracy.
    """
    (x, labels), _ = digits()
    g = Graph("digits_mlp")
    xs, ys = g.input("x", shape=("N", 64)), g.input("y", shape=("N", 10))
    W1, b1 = g.param("W1", shape=(64, hidden)), g.param("b1", shape=(hidden,))
    W2, b2 = g.param("W2", shape=(hidden, 10)), g.param("b2", shape=(10,))
    h = F.relu((xs @ W1 + b1).named("z1")).named("a1")
    logits = F.identity(h @ W2 + b2)
    feeds: Feeds = {"x": x, "y": one_hot(labels, 10),
                    "W1": init.he_normal((64, hidden), seed), "b1": init.zeros(hidden),
                    "W2": init.glorot_uniform((hidden, 10), seed + 1), "b2": init.zeros(10)}
    return _finish(g, F.softmax_cross_entropy(logits, ys), logits), feeds


def digits_cnn(channels: tuple[int, int] = (8, 16), seed: int = 0) -> tuple[Graph, Feeds]:
    """A LeNet-style CNN for the UCI digits: two 3x3 conv -> ReLU -> 2x2 max-pool, dense -> 10 logits.

    The 64 pixels of each image (``x``, as :func:`graphc.datasets.digits` gives them) are
    reshaped to (N, 1, 8, 8); conv 3x3 (padding 1) to ``channels[0]`` maps, ReLU, max-pool
    to 4x4; conv 3x3 to ``channels[1]`` maps, ReLU, max-pool to 2x2; flattened into a dense
    layer of 10 logits (output ``g``); softmax cross-entropy against int64 labels ``y``.
    The feeds hold the 1,437 training images and He/Glorot initial weights (seeded).
    ``graphc train digits_cnn --data digits`` trains it and reports held-out accuracy.
    """
    (x, labels), _ = digits()
    c1, c2 = channels
    g = Graph("digits_cnn")
    xs, ys = g.input("x", shape=("N", 64)), g.input("y", shape=("N",), dtype="int64")
    K1, b1 = g.param("K1", shape=(c1, 1, 3, 3)), g.param("b1", shape=(c1, 1, 1))
    K2, b2 = g.param("K2", shape=(c2, c1, 3, 3)), g.param("b2", shape=(c2, 1, 1))
    W3, b3 = g.param("W3", shape=(c2 * 4, 10)), g.param("b3", shape=(10,))
    images = F.reshape(xs, ("N", 1, 8, 8)).named("images")
    a1 = F.max_pool2d(F.relu(F.conv2d(images, K1, padding=1) + b1).named("a1")).named("p1")
    a2 = F.max_pool2d(F.relu(F.conv2d(a1, K2, padding=1) + b2).named("a2")).named("p2")
    logits = F.identity(F.reshape(a2, ("N", c2 * 4)).named("flat") @ W3 + b3)
    feeds: Feeds = {"x": x, "y": labels,
                    "K1": init.he_normal((c1, 1, 3, 3), seed), "b1": init.zeros((c1, 1, 1)),
                    "K2": init.he_normal((c2, c1, 3, 3), seed + 1), "b2": init.zeros((c2, 1, 1)),
                    "W3": init.glorot_uniform((c2 * 4, 10), seed + 2), "b3": init.zeros(10)}
    return _finish(g, F.softmax_cross_entropy(logits, ys), logits), feeds


# ----------------------------------------------------------------------------------------
# The registry the command line reads.

_REGISTRY: dict[str, Callable[..., tuple[Graph, Feeds]]] = {
    f.__name__: f for f in (
        linear_regression, logistic_classifier, relu_neuron, wide_relu, residual, recall_xor,
        mlp, deep_sigmoid, deep_residual, two_moons, blobs, digits_mlp, digits_cnn,
    )
}
NAMES: tuple[str, ...] = tuple(_REGISTRY)


def get(name: str) -> Callable[..., tuple[Graph, Feeds]]:
    """The zoo function called ``name``, or a GraphcError listing the names."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise GraphcError(f"no zoo graph named {name!r}; the zoo has {', '.join(NAMES)}") from None


def summary(name: str) -> str:
    """The first line of a zoo function's docstring."""
    return (get(name).__doc__ or "").strip().splitlines()[0]
