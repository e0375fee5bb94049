"""Hand-written numpy training steps: the baselines graphc is measured against.

Every benchmark case provides three functions:

``make_<case>(rng, size="full")``
    Returns ``(feeds, params)``: two dicts mapping graph names to float64
    arrays.  ``size="small"`` gives a miniature variant of the same network
    (used by the finite-difference tests); ``size="full"`` is the benchmark
    size.  The names are the ones an equivalent graphc graph uses.

``step_<case>(feeds, params, lr)``
    One training step written the way an experienced numpy programmer would
    write it: forward pass, loss, backward pass with explicit matmuls,
    activations reused for the derivatives (``sigmoid' = s*(1-s)``,
    ``tanh' = 1 - t**2``, the ReLU mask taken from the stored activation),
    in-place operations and ``out=`` arguments wherever they avoid a
    temporary, and a plain SGD update applied in place to the arrays in
    ``params``.  Returns the loss (computed before the update) as a float.

``grads_<case>(feeds, params)``
    The same computation without the update: returns
    ``(loss, {param name: gradient})``.  Used by the correctness tests.

``step`` and ``grads`` share one implementation per case; the only
difference is what happens to each gradient once it is ready (applied in
place, or collected in a dict), so the tests check exactly the code that is
timed.

Cases (all float64):

* ``xor``         2-2-1 sigmoid network on the four XOR points, loss
                  ``mean((out - y)**2)``.
* ``mlp_small``   784-256-256-10 MLP, ReLU hidden layers, softmax
                  cross-entropy (mean over rows), batch 64.
* ``mlp_large``   784-1024-1024-1024-10 MLP, same loss, batch 256.
* ``residual50``  50 layers ``h = h + tanh(h @ W_i + b_i)``, width 32,
                  batch 32, loss ``mean((h - y)**2)``.
* ``elementwise`` ``X`` is 512x4096; ``z = X*a + c``, ``u = silu(z)``,
                  ``v = tanh(u)``, ``w = exp(v)``, ``p = log1p(w)``,
                  ``q = p**2``, ``r = sin(q)``, loss ``mean(r)``; gradients
                  with respect to ``a`` and ``c``.

``y`` in the MLP cases is one-hot (every row sums to one), which the
softmax cross-entropy gradient ``softmax(logits) - y`` relies on.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "CASES",
    "make_xor", "step_xor", "grads_xor",
    "make_mlp_small", "step_mlp_small", "grads_mlp_small",
    "make_mlp_large", "step_mlp_large", "grads_mlp_large",
    "make_residual50", "step_residual50", "grads_residual50",
    "make_elementwise", "step_elementwise", "grads_elementwise",
]


# ---------------------------------------------------------------------------
# shared helpers
# ---------------------------------------------------------------------------

def _check_size(size):
    if size not in ("full", "small"):
        raise ValueError(f"size must be 'full' or 'small', got {size!r}")


def _sigmoid_(z):
    """In-place logistic sigmoid via ``0.5 * (1 + tanh(z / 2))``.

    Same value as ``1 / (1 + exp(-z))`` but never overflows and needs no
    temporary array.  Returns ``z``.
    """
    z *= 0.5
    np.tanh(z, out=z)
    z *= 0.5
    z += 0.5
    return z


def _make_sink(params, lr, grads):
    """Return ``sink(name, grad)``.

    With ``lr`` given the gradient is applied in place (``grad`` is ours, so
    it is scaled in place too: ``grad *= lr; param -= grad`` allocates
    nothing).  Otherwise the gradient is stored in ``grads``.
    """
    if lr is None:
        def sink(name, grad):
            grads[name] = grad
    else:
        def sink(name, grad):
            grad *= lr
            params[name] -= grad
    return sink


def _one_hot(rng, n, k):
    y = np.zeros((n, k))
    y[np.arange(n), rng.integers(0, k, size=n)] = 1.0
    return y


# ---------------------------------------------------------------------------
# xor: 2-2-1 sigmoid network, mse loss
# ---------------------------------------------------------------------------

def make_xor(rng, size="full"):
    _check_size(size)
    x = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = np.array([[0.0], [1.0], [1.0], [0.0]])
    params = {
        "W1": rng.standard_normal((2, 2)),
        "b1": 0.1 * rng.standard_normal(2),
        "W2": rng.standard_normal((2, 1)),
        "b2": 0.1 * rng.standard_normal(1),
    }
    return {"x": x, "y": y}, params


def _xor(feeds, params, lr):
    x, y = feeds["x"], feeds["y"]
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    grads = {}
    sink = _make_sink(params, lr, grads)

    # forward
    h = x @ W1
    h += b1
    _sigmoid_(h)
    out = h @ W2
    out += b2
    _sigmoid_(out)

    # loss = mean((out - y)**2)
    d = out - y
    n = d.size
    loss = float(np.vdot(d, d)) / n

    # backward: d(loss)/d(pre-activation 2) = 2/n * d * s * (1 - s)
    d *= 2.0 / n
    d *= out
    np.subtract(1.0, out, out=out)
    d *= out
    dh = d @ W2.T                      # before W2 is updated
    sink("W2", h.T @ d)
    sink("b2", d.sum(axis=0))
    dh *= h                            # sigmoid' from the stored activation
    np.subtract(1.0, h, out=h)
    dh *= h
    sink("W1", x.T @ dh)
    sink("b1", dh.sum(axis=0))
    return loss, grads


def step_xor(feeds, params, lr):
    return _xor(feeds, params, lr)[0]


def grads_xor(feeds, params):
    return _xor(feeds, params, None)


# ---------------------------------------------------------------------------
# MLPs: ReLU hidden layers, softmax cross-entropy (mean over rows)
# ---------------------------------------------------------------------------

_MLP_SIZES = {
    "mlp_small": {"full": ((784, 256, 256, 10), 64),
                  "small": ((13, 9, 8, 5), 6)},
    "mlp_large": {"full": ((784, 1024, 1024, 1024, 10), 256),
                  "small": ((11, 8, 7, 6, 4), 5)},
}


def _make_mlp(rng, case, size):
    _check_size(size)
    widths, batch = _MLP_SIZES[case][size]
    feeds = {"x": rng.standard_normal((batch, widths[0])),
             "y": _one_hot(rng, batch, widths[-1])}
    params = {}
    for i, (din, dout) in enumerate(zip(widths[:-1], widths[1:]), start=1):
        params[f"W{i}"] = rng.standard_normal((din, dout)) * np.sqrt(2.0 / din)
        params[f"b{i}"] = 0.1 * rng.standard_normal(dout)
    return feeds, params


def _mlp(feeds, params, lr):
    x, y = feeds["x"], feeds["y"]
    nlayers = len(params) // 2
    grads = {}
    sink = _make_sink(params, lr, grads)

    # forward; keep every layer input for the backward pass
    acts = [x]
    h = x
    for i in range(1, nlayers):
        h = h @ params[f"W{i}"]
        h += params[f"b{i}"]
        np.maximum(h, 0.0, out=h)
        acts.append(h)
    z = h @ params[f"W{nlayers}"]
    z += params[f"b{nlayers}"]

    # softmax cross-entropy, mean over rows (rows of y sum to one)
    n = z.shape[0]
    z -= z.max(axis=1, keepdims=True)
    picked = np.einsum("ij,ij->", y, z)           # sum of y * shifted logits
    np.exp(z, out=z)
    s = z.sum(axis=1, keepdims=True)
    loss = (float(np.log(s).sum()) - float(picked)) / n

    # d(loss)/d(logits) = (softmax - y) / n, built in the logits buffer
    z /= s
    z -= y
    z *= 1.0 / n

    # backward
    dz = z
    for i in range(nlayers, 0, -1):
        a = acts[i - 1]
        W = params[f"W{i}"]
        if i > 1:
            dh = dz @ W.T                          # before W is updated
            np.multiply(dh, a > 0.0, out=dh)       # ReLU mask from the activation
        sink(f"W{i}", a.T @ dz)
        sink(f"b{i}", dz.sum(axis=0))
        if i > 1:
            dz = dh
    return loss, grads


def make_mlp_small(rng, size="full"):
    return _make_mlp(rng, "mlp_small", size)


def step_mlp_small(feeds, params, lr):
    return _mlp(feeds, params, lr)[0]


def grads_mlp_small(feeds, params):
    return _mlp(feeds, params, None)


def make_mlp_large(rng, size="full"):
    return _make_mlp(rng, "mlp_large", size)


def step_mlp_large(feeds, params, lr):
    return _mlp(feeds, params, lr)[0]


def grads_mlp_large(feeds, params):
    return _mlp(feeds, params, None)


# ---------------------------------------------------------------------------
# residual50: h = h + tanh(h @ W_i + b_i), 50 layers, mse against y
# ---------------------------------------------------------------------------

_RESIDUAL_SIZES = {"full": (50, 32, 32), "small": (50, 5, 4)}   # depth, width, batch


def make_residual50(rng, size="full"):
    _check_size(size)
    depth, width, batch = _RESIDUAL_SIZES[size]
    feeds = {"x": rng.standard_normal((batch, width)),
             "y": rng.standard_normal((batch, width))}
    params = {}
    for i in range(depth):
        params[f"W{i}"] = rng.standard_normal((width, width)) * (0.5 / np.sqrt(width))
    for i in range(depth):
        params[f"b{i}"] = 0.1 * rng.standard_normal(width)
    return feeds, params


def _residual(feeds, params, lr):
    x, y = feeds["x"], feeds["y"]
    depth = len(params) // 2
    grads = {}
    sink = _make_sink(params, lr, grads)

    # forward; keep each layer's input h_i and its tanh output t_i
    hs = [x]
    ts = []
    h = x
    for i in range(depth):
        t = h @ params[f"W{i}"]
        t += params[f"b{i}"]
        np.tanh(t, out=t)
        ts.append(t)
        h = h + t
        hs.append(h)

    # loss = mean((h - y)**2); the final h is not needed again, reuse it
    g = hs.pop()
    g -= y
    n = g.size
    loss = float(np.vdot(g, g)) / n
    g *= 2.0 / n                                   # d(loss)/d(h_final)

    # backward; g is d(loss)/d(h_i) and is accumulated in place
    tmp = np.empty_like(g)
    for i in range(depth - 1, -1, -1):
        dz = ts[i]
        np.multiply(dz, dz, out=dz)                # tanh' = 1 - t**2
        np.subtract(1.0, dz, out=dz)
        dz *= g
        W = params[f"W{i}"]
        np.matmul(dz, W.T, out=tmp)                # before W is updated
        sink(f"W{i}", hs[i].T @ dz)
        sink(f"b{i}", dz.sum(axis=0))
        g += tmp
    return loss, grads


def step_residual50(feeds, params, lr):
    return _residual(feeds, params, lr)[0]


def grads_residual50(feeds, params):
    return _residual(feeds, params, None)


# ---------------------------------------------------------------------------
# elementwise: long chain of elementwise ops on a 512x4096 array
# ---------------------------------------------------------------------------

_ELEMENTWISE_SIZES = {"full": (512, 4096), "small": (6, 7)}


def make_elementwise(rng, size="full"):
    _check_size(size)
    n, d = _ELEMENTWISE_SIZES[size]
    feeds = {"x": rng.standard_normal((n, d))}
    params = {"a": 1.0 + 0.1 * rng.standard_normal(d),
              "c": 0.1 * rng.standard_normal(d)}
    return feeds, params


def _elementwise(feeds, params, lr):
    """Forward and backward of the elementwise chain with three big buffers.

    The loss is a mean of a scalar function ``f`` applied to every ``z``, so
    ``d(loss)/dz = f'(z) / n`` where ``f'`` is the product of the local
    derivatives.  That product is accumulated in ``D`` while the forward pass
    runs, each factor computed from values that are about to be overwritten.
    ``Z`` holds the running forward value and ``B`` is scratch.

    Choices made for speed (the transcendental functions dominate): the
    sigmoid is ``1 / (1 + exp(-z))`` (numpy's ``exp`` is about twice as fast
    as its ``tanh``); ``log1p(w)`` is computed as ``log(1 + w)`` because
    ``1 + w`` is needed for the derivative anyway and ``w = exp(tanh(u))``
    lies in ``(1/e, e)``, so nothing is lost to rounding; the column sums
    are matrix-vector products that also apply the ``2/n`` scale.
    """
    x = feeds["x"]
    a, c = params["a"], params["c"]
    grads = {}
    sink = _make_sink(params, lr, grads)
    n = x.size

    Z = x * a
    Z += c                                          # z
    B = np.negative(Z)
    with np.errstate(over="ignore"):                # exp(-z) = inf gives s = 0, as it should
        np.exp(B, out=B)
    B += 1.0
    np.reciprocal(B, out=B)                         # s = sigmoid(z)
    D = np.subtract(1.0, B)
    D *= Z
    D += 1.0
    D *= B                                          # silu'(z) = s * (1 + z*(1 - s))
    Z *= B                                          # u = z * s
    np.tanh(Z, out=Z)                               # v = tanh(u)
    np.multiply(Z, Z, out=B)
    np.subtract(1.0, B, out=B)
    D *= B                                          # * tanh'(u) = 1 - v**2
    np.exp(Z, out=Z)                                # w = exp(v)
    np.add(Z, 1.0, out=B)                           # 1 + w
    np.divide(Z, B, out=Z)
    D *= Z                                          # * exp'(v) * log1p'(w) = w / (1 + w)
    np.log(B, out=Z)                                # p = log1p(w) = log(1 + w)
    D *= Z                                          # * square'(p) / 2 = p
    np.multiply(Z, Z, out=Z)                        # q = p**2
    np.sin(Z, out=B)                                # r = sin(q)
    loss = float(B.sum()) / n
    np.cos(Z, out=Z)
    D *= Z                                          # * sin'(q) = cos(q)

    # column sums as matrix-vector products, with the 2 of square' and the
    # 1/n of the mean folded into the vector
    scale = np.full(x.shape[0], 2.0 / n)
    dc = scale @ D
    D *= x
    da = scale @ D
    sink("a", da)
    sink("c", dc)
    return loss, grads


def step_elementwise(feeds, params, lr):
    return _elementwise(feeds, params, lr)[0]


def grads_elementwise(feeds, params):
    return _elementwise(feeds, params, None)


# ---------------------------------------------------------------------------
# registry
# ---------------------------------------------------------------------------

CASES = {
    "xor": (make_xor, step_xor, grads_xor),
    "mlp_small": (make_mlp_small, step_mlp_small, grads_mlp_small),
    "mlp_large": (make_mlp_large, step_mlp_large, grads_mlp_large),
    "residual50": (make_residual50, step_residual50, grads_residual50),
    "elementwise": (make_elementwise, step_elementwise, grads_elementwise),
}
