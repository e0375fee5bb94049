"""Correctness tests for the hand-written baselines in ``handwritten.py``.

For every case (in its ``size="small"`` variant):

* the loss returned by ``grads_<case>`` equals a plain, textbook numpy
  implementation of the same loss written independently below;
* a few random entries of every gradient match central finite differences
  of that reference loss (float64);
* ``step_<case>`` returns the same loss and updates the params in place to
  exactly ``param - lr * grad``.

Run with ``python -m pytest benchmarks/test_handwritten.py -q``.
"""

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import handwritten as hw  # noqa: E402

# --- independent reference losses (no in-place tricks, no shared code) -----

def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def ref_xor(feeds, params):
    h = _sigmoid(feeds["x"] @ params["W1"] + params["b1"])
    out = _sigmoid(h @ params["W2"] + params["b2"])
    return np.mean((out - feeds["y"]) ** 2)


def ref_mlp(feeds, params):
    nlayers = len(params) // 2
    h = feeds["x"]
    for i in range(1, nlayers):
        h = np.maximum(h @ params[f"W{i}"] + params[f"b{i}"], 0.0)
    logits = h @ params[f"W{nlayers}"] + params[f"b{nlayers}"]
    m = logits.max(axis=1, keepdims=True)
    logp = logits - m - np.log(np.exp(logits - m).sum(axis=1, keepdims=True))
    return np.mean(-(feeds["y"] * logp).sum(axis=1))


def ref_residual50(feeds, params):
    h = feeds["x"]
    for i in range(len(params) // 2):
        h = h + np.tanh(h @ params[f"W{i}"] + params[f"b{i}"])
    return np.mean((h - feeds["y"]) ** 2)


def ref_elementwise(feeds, params):
    z = feeds["x"] * params["a"] + params["c"]
    u = z * _sigmoid(z)
    v = np.tanh(u)
    w = np.exp(v)
    p = np.log1p(w)
    q = np.square(p)
    return np.mean(np.sin(q))


REFERENCES = {
    "xor": ref_xor,
    "mlp_small": ref_mlp,
    "mlp_large": ref_mlp,
    "residual50": ref_residual50,
    "elementwise": ref_elementwise,
}

CASE_NAMES = list(hw.CASES)
ENTRIES_PER_PARAM = 3
EPS = 1e-6


def _copy(d):
    return {k: v.copy() for k, v in d.items()}


def _setup(case, seed=0):
    make = hw.CASES[case][0]
    return make(np.random.default_rng(seed), size="small")


def test_registry_covers_all_cases():
    assert set(REFERENCES) == set(hw.CASES)
    for case, (make, step, grads) in hw.CASES.items():
        assert make is getattr(hw, f"make_{case}")
        assert step is getattr(hw, f"step_{case}")
        assert grads is getattr(hw, f"grads_{case}")


@pytest.mark.parametrize("case", CASE_NAMES)
def test_names_and_dtypes(case):
    feeds, params = _setup(case)
    expected_feeds = {"x", "y"} if case != "elementwise" else {"x"}
    assert set(feeds) == expected_feeds
    if case == "xor":
        assert set(params) == {"W1", "b1", "W2", "b2"}
    elif case == "mlp_small":
        assert set(params) == {"W1", "b1", "W2", "b2", "W3", "b3"}
    elif case == "mlp_large":
        assert set(params) == {"W1", "b1", "W2", "b2", "W3", "b3", "W4", "b4"}
    elif case == "residual50":
        assert set(params) == {f"W{i}" for i in range(50)} | {f"b{i}" for i in range(50)}
    else:
        assert set(params) == {"a", "c"}
    for arr in list(feeds.values()) + list(params.values()):
        assert arr.dtype == np.float64


@pytest.mark.parametrize("case", CASE_NAMES)
def test_full_size_shapes(case):
    """The benchmark sizes are the ones the benchmark description states."""
    make = hw.CASES[case][0]
    feeds, params = make(np.random.default_rng(0), size="full")
    if case == "xor":
        assert feeds["x"].shape == (4, 2) and params["W2"].shape == (2, 1)
    elif case == "mlp_small":
        assert feeds["x"].shape == (64, 784)
        assert [params[f"W{i}"].shape for i in (1, 2, 3)] == [(784, 256), (256, 256), (256, 10)]
    elif case == "mlp_large":
        assert feeds["x"].shape == (256, 784)
        assert [params[f"W{i}"].shape for i in (1, 2, 3, 4)] == [
            (784, 1024), (1024, 1024), (1024, 1024), (1024, 10)]
    elif case == "residual50":
        assert feeds["x"].shape == (32, 32) and feeds["y"].shape == (32, 32)
        assert params["W49"].shape == (32, 32) and params["b49"].shape == (32,)
    else:
        assert feeds["x"].shape == (512, 4096)
        assert params["a"].shape == (4096,) and params["c"].shape == (4096,)


@pytest.mark.parametrize("case", CASE_NAMES)
def test_loss_matches_reference(case):
    feeds, params = _setup(case)
    ref = REFERENCES[case](feeds, params)
    loss, _ = hw.CASES[case][2](_copy(feeds), _copy(params))
    assert isinstance(loss, float)
    assert loss == pytest.approx(ref, rel=1e-12, abs=1e-14)


@pytest.mark.parametrize("case", CASE_NAMES)
def test_gradients_match_finite_differences(case):
    feeds, params = _setup(case)
    ref = REFERENCES[case]
    _, grads = hw.CASES[case][2](_copy(feeds), _copy(params))
    assert set(grads) == set(params)
    pick = np.random.default_rng(1)
    for name, p in params.items():
        g = grads[name]
        assert g.shape == p.shape
        flat_ids = pick.choice(p.size, size=min(ENTRIES_PER_PARAM, p.size), replace=False)
        for flat in flat_ids:
            idx = np.unravel_index(flat, p.shape)
            old = p[idx]
            p[idx] = old + EPS
            up = ref(feeds, params)
            p[idx] = old - EPS
            down = ref(feeds, params)
            p[idx] = old
            numeric = (up - down) / (2 * EPS)
            assert g[idx] == pytest.approx(numeric, rel=1e-5, abs=1e-8), (name, idx)


@pytest.mark.parametrize("case", CASE_NAMES)
def test_step_is_sgd_in_place(case):
    make, step, grads_fn = hw.CASES[case]
    feeds, params = _setup(case)
    lr = 0.01
    loss_ref, grads = grads_fn(_copy(feeds), _copy(params))
    feeds_before = _copy(feeds)
    originals = dict(params)                 # same array objects
    snapshot = _copy(params)
    loss = step(feeds, params, lr)
    assert loss == pytest.approx(loss_ref, rel=1e-14, abs=1e-15)
    for name in params:
        assert params[name] is originals[name], "update must be in place"
        np.testing.assert_allclose(params[name], snapshot[name] - lr * grads[name],
                                   rtol=1e-13, atol=1e-15)
    for name in feeds:
        np.testing.assert_array_equal(feeds[name], feeds_before[name])


@pytest.mark.parametrize("case", CASE_NAMES)
def test_training_decreases_loss(case):
    """A few dozen steps at a modest rate reduce the loss (a sanity check of sign)."""
    make, step, _ = hw.CASES[case]
    feeds, params = _setup(case, seed=3)
    first = step(feeds, params, 0.05)
    for _ in range(30):
        last = step(feeds, params, 0.05)
    assert last < first
