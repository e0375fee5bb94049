"""sum(square(u)) and mean(square(u)) to a number are one dot product of u with itself
(no array of squares, one call instead of two), when nothing else reads the square."""

import ast

import numpy as np
import pytest

import graphc as gc


def calls_in(source: str, function: str) -> list[str]:
    tree = next(f for f in ast.parse(source).body if isinstance(f, ast.FunctionDef) and f.name == function)
    return [ast.unparse(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)]


def mse_net(dtype="float64", reduce=gc.mean):
    g = gc.Graph(f"mse_{dtype}")
    x, y = g.input("x", shape=("N", 3), dtype=dtype), g.input("y", shape=("N", 2), dtype=dtype)
    W = g.param("W", shape=(3, 2), dtype=dtype)
    g.output("loss", reduce(gc.square(gc.tanh(x @ W) - y)))
    return g


def feeds(rng, dtype="float64", n=5):
    return {"x": rng.standard_normal((n, 3)).astype(dtype), "y": rng.standard_normal((n, 2)).astype(dtype),
            "W": rng.standard_normal((3, 2)).astype(dtype)}


def by_hand(x, y, W, mean=True):
    d = np.tanh(x @ W) - y
    scale = 1 / d.size if mean else 1.0
    return scale * np.sum(d * d), {"W": x.T @ (2 * scale * d * (1 - np.tanh(x @ W) ** 2))}


@pytest.mark.parametrize("reduce", [gc.mean, gc.sum], ids=["mean", "sum"])
def test_a_float64_loss_of_squares_is_one_dot_product(reduce):
    prog = gc.compile(mse_net(reduce=reduce))
    calls = calls_in(prog.source, "train_forward")
    assert "numpy.vdot" in calls and "numpy.square" not in calls, calls
    f = feeds(np.random.default_rng(0))
    loss, grads = by_hand(**f, mean=reduce is gc.mean)
    for _ in range(2):
        value, got = prog.value_and_grad(f)
        assert type(value["loss"]) is np.ndarray and value["loss"].shape == ()
        np.testing.assert_allclose(value["loss"], loss, rtol=1e-14)
        np.testing.assert_allclose(got["W"], grads["W"], rtol=1e-12, atol=1e-15)
    stepped = {k: v.copy() for k, v in f.items()}
    np.testing.assert_allclose(prog.sgd_step(stepped, 0.1)["loss"], loss, rtol=1e-14)
    np.testing.assert_allclose(stepped["W"], f["W"] - 0.1 * grads["W"], rtol=1e-13, atol=1e-16)


def test_a_square_read_elsewhere_is_computed_and_kept():
    """The square is also an output and read by a second reduction: it stays an array."""
    g = gc.Graph("kept")
    x, W = g.input("x", shape=("N", 3)), g.param("W", shape=(3, 2))
    sq = gc.square(x @ W)
    g.output("loss", gc.mean(sq) + gc.sum(sq, axis=0)[0])
    g.output("sq", sq)
    prog = gc.compile(g, of="loss")
    f = {"x": np.arange(12.0).reshape(4, 3) / 7, "W": np.array([[0.5, -1.0], [2.0, 0.25], [-0.75, 1.5]])}
    z = f["x"] @ f["W"]
    value, grads = prog.value_and_grad(f)
    np.testing.assert_allclose(value["sq"], z**2, rtol=1e-14)
    np.testing.assert_allclose(value["loss"], np.mean(z**2) + np.sum(z[:, 0] ** 2), rtol=1e-14)
    column = np.zeros_like(z)
    column[:, 0] = 1.0
    np.testing.assert_allclose(grads["W"], f["x"].T @ (2 * z / z.size + 2 * z * column), rtol=1e-13)


def test_a_float32_loss_keeps_numpys_pairwise_sum():
    """A float32 dot accumulates its error linearly in the length; numpy's sum does not."""
    prog = gc.compile(mse_net("float32"))
    assert "numpy.vdot" not in calls_in(prog.source, "train_forward")
    f = feeds(np.random.default_rng(1), "float32")
    loss, _ = by_hand(**{k: v.astype(np.float64) for k, v in f.items()})
    value, _ = prog.value_and_grad(f)
    assert value["loss"].dtype == np.float32
    np.testing.assert_allclose(value["loss"], loss, rtol=1e-5)


def test_the_array_api_module_reads_the_folded_square_too():
    pytest.importorskip("array_api_strict")
    prog = gc.compile(mse_net())
    f = feeds(np.random.default_rng(2))
    loss, grads = by_hand(**f)
    strict = prog.to("array_api_strict")
    value, got = strict.value_and_grad(f)
    np.testing.assert_allclose(np.asarray(value["loss"]), loss, rtol=1e-14)
    np.testing.assert_allclose(np.asarray(got["W"]), grads["W"], rtol=1e-12, atol=1e-15)
