"""Feeds are checked before anything runs: each mistake is a FeedError naming the feed."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc


@pytest.fixture(scope="module")
def feeds_prog():
    g = gc.Graph("feeds")
    x = g.input("x", shape=("N", 2))
    y = g.input("y", shape=("N", 1))
    w = g.param("w", shape=(2, 1))
    g.output("loss", gc.mse(x @ w, y))
    return gc.compile(g)


def good():
    rng = np.random.default_rng(0)
    return {"x": rng.standard_normal((4, 2)), "y": rng.standard_normal((4, 1)), "w": rng.standard_normal((2, 1))}


def test_good_feeds_give_the_numpy_value(feeds_prog):
    f = good()
    want = np.mean((f["x"] @ f["w"] - f["y"]) ** 2)
    np.testing.assert_allclose(feeds_prog.forward(f)["loss"], want, rtol=1e-14)
    np.testing.assert_allclose(feeds_prog(**f)["loss"], want, rtol=1e-14)


@pytest.mark.parametrize("change, fragments", [
    (lambda f: f.pop("w"), ["missing", "'w'", "param", "(2, 1)"]),
    (lambda f: f.update(z=np.ones(2)), ["unexpected", "'z'", "'feeds'"]),
    (lambda f: f.update(x=np.ones(2)), ["'x'", "rank 1", "rank 2", "(N, 2)"]),
    (lambda f: f.update(x=np.ones((4, 2, 1))), ["'x'", "rank 3", "rank 2"]),
    (lambda f: f.update(w=np.ones((3, 1))), ["'w'", "(3, 1)", "(2, 1)", "axis 0"]),
    (lambda f: f.update(y=np.ones((5, 1))), ["'y'", "N", "5", "'x'", "4"]),
    (lambda f: f.update(x=np.ones((4, 2), dtype=complex)), ["'x'", "complex128", "float64"]),
    (lambda f: f.update(x=np.full((4, 2), "a")), ["'x'", "<U1"]),
    (lambda f: f.update(x=np.ones((4, 2), dtype=object)), ["'x'", "object"]),
    (lambda f: f.update(x=[[1.0, 2.0], [3.0]]), ["'x'", "array-like"]),
])
def test_bad_feeds(feeds_prog, change, fragments):
    f = good()
    change(f)
    with pytest.raises(gc.FeedError) as info:
        feeds_prog.forward(f)
    assert isinstance(info.value, gc.GraphcError)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_feeds_must_be_a_mapping(feeds_prog):
    with pytest.raises(gc.FeedError, match="dict"):
        feeds_prog.forward([1, 2, 3])


def test_ints_lists_and_float32_are_converted(feeds_prog):
    f = good()
    want = feeds_prog.forward(f)["loss"]
    f32 = {k: v.astype(np.float32) for k, v in f.items()}
    np.testing.assert_allclose(feeds_prog.forward(f32)["loss"], np.mean(
        (f32["x"].astype(float) @ f32["w"].astype(float) - f32["y"].astype(float)) ** 2), rtol=1e-14)
    listed = {k: v.tolist() for k, v in f.items()}
    assert feeds_prog.forward(listed)["loss"] == want
    ints = {"x": np.ones((3, 2), dtype=int), "y": np.zeros((3, 1), dtype=int), "w": np.ones((2, 1))}
    assert feeds_prog.forward(ints)["loss"] == 4.0


def test_a_symbolic_dim_takes_any_size(feeds_prog):
    for n in (1, 7):
        f = {"x": np.ones((n, 2)), "y": np.zeros((n, 1)), "w": np.ones((2, 1))}
        assert feeds_prog.forward(f)["loss"] == 4.0


def test_feeds_are_not_changed(feeds_prog):
    f = good()
    copies = {k: v.copy() for k, v in f.items()}
    feeds_prog.forward(f)
    for k in f:
        np.testing.assert_array_equal(f[k], copies[k])


def test_in_place_kernels_never_write_into_feeds():
    """Views of a feed (reshape, transpose, stop_gradient) must not become out= buffers."""
    g = gc.Graph("views")
    x = g.input("x", shape=(2, 3))
    g.output("a", gc.exp(gc.reshape(x, (6,))) + 1.0)
    g.output("b", gc.exp(x.T) * 2.0)
    g.output("c", gc.exp(gc.stop_gradient(x)) - 1.0)
    value = np.arange(6.0).reshape(2, 3)
    before = value.copy()
    out = gc.compile(g).forward({"x": value})
    np.testing.assert_array_equal(value, before)
    np.testing.assert_allclose(out["b"], np.exp(before.T) * 2.0, rtol=1e-15)


def test_float32_inputs_run_in_float32():
    g = gc.Graph("f32")
    x = g.input("x", shape=(2,), dtype="float32")
    g.output("y", x * 2.0)
    assert gc.compile(g).forward({"x": np.ones(2)})["y"].dtype == np.float32


def test_missing_feed_of_a_scalar_input():
    g = gc.Graph("scalar")
    x = g.input("rate", shape=())
    g.output("y", x * 2.0)
    prog = gc.compile(g)
    with pytest.raises(gc.FeedError, match="missing feed 'rate'"):
        prog.forward({})
    with pytest.raises(gc.FeedError, match="'rate' has rank 1"):
        prog.forward({"rate": [1.0]})
    assert prog.forward({"rate": 3})["y"] == 6.0
