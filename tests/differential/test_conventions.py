"""The declared kink conventions, at the kinks, through every path.

The corpus keeps its values away from kinks (a central difference cannot see a
convention). Here each convention is checked where it applies, against the value the op
table declares, on every path: value_and_grad with and without seed, sgd_step, the saved
module (run where graphc, sympy and networkx cannot be imported) and gc.grad.
"""

from __future__ import annotations

import numpy as np
import pytest
from corpus.paths import SavedModules

import graphc as gc

SEED = 2.5
LR = 0.5


@pytest.fixture(scope="module")
def saved():
    runner = SavedModules()
    yield runner
    runner.close()


def every_path(graph, feeds, saved) -> dict[str, dict]:
    """{path: gradients} of the scalar output "loss" (seeded ones divided by the seed)."""
    prog = gc.compile(graph)
    arrays = {k: np.asarray(v, dtype=np.float64) for k, v in feeds.items()}
    out = {"value_and_grad": prog.value_and_grad(arrays)[1]}
    out["value_and_grad(seed)"] = {k: v / SEED for k, v in prog.value_and_grad(arrays, seed=SEED)[1].items()}
    params = {k: v.copy() for k, v in arrays.items()}
    prog.sgd_step(params, lr=LR)
    out["sgd_step"] = {p: (arrays[p] - params[p]) / LR for p in graph.params}
    source = prog.save(f"{saved.dir.name}/conventions_{graph.name}.py")
    result = saved.run(source, arrays, SEED)
    assert result["errors"] == {}
    out["saved"] = {k.split("/", 2)[2]: v for k, v in result["arrays"].items() if k.startswith("saved/grad/")}
    out["saved(seed)"] = {k.split("/", 2)[2]: v / SEED for k, v in result["arrays"].items()
                          if k.startswith("saved(seed)/grad/")}
    joint = gc.compile(gc.grad(graph, "loss", wrt=graph.params)).forward(arrays)
    out["gc.grad"] = {p: joint[f"dloss/d{p}"] for p in graph.params}
    return out


def assert_every_path(graph, feeds, expected: dict, saved) -> None:
    with np.errstate(divide="ignore", invalid="ignore"):  # log(0) on a side that is not selected
        results = every_path(graph, feeds, saved)
    for path, grads in results.items():
        for name, want in expected.items():
            np.testing.assert_allclose(grads[name], want, rtol=1e-12, atol=1e-12, err_msg=f"{path}, d{name}")


def _one(name: str, build, shape=(3,)):
    g = gc.Graph(name)
    p = g.param("p", shape=shape)
    g.output("loss", build(g, p))
    return g


def test_relu_takes_slope_1_at_0(saved):
    # the lecture: dReLU/dz = 0 if z < 0, 1 otherwise (z = 0 included)
    g = _one("relu", lambda g, p: gc.sum(gc.relu(p)))
    assert_every_path(g, {"p": [-1.0, 0.0, 2.0]}, {"p": [0.0, 1.0, 1.0]}, saved)


def test_leaky_relu_takes_slope_1_at_0(saved):
    g = _one("leaky", lambda g, p: gc.sum(gc.leaky_relu(p, alpha=0.2)))
    assert_every_path(g, {"p": [-1.0, 0.0, 2.0]}, {"p": [0.2, 1.0, 1.0]}, saved)


def test_abs_takes_slope_0_at_0(saved):
    g = _one("abs", lambda g, p: gc.sum(gc.abs(p)))
    assert_every_path(g, {"p": [-1.0, 0.0, 2.0]}, {"p": [-1.0, 0.0, 1.0]}, saved)


def test_maximum_gives_a_tie_to_its_first_operand(saved):
    g = gc.Graph("maximum")
    a, b = g.param("a", shape=(3,)), g.param("b", shape=(3,))
    g.output("loss", gc.sum(gc.maximum(a, b)))
    assert_every_path(g, {"a": [1.0, 2.0, 0.0], "b": [1.0, 1.0, 3.0]},
                      {"a": [1.0, 1.0, 0.0], "b": [0.0, 0.0, 1.0]}, saved)


def test_max_splits_a_tie_evenly(saved):
    g = _one("max", lambda g, p: gc.max(p))
    assert_every_path(g, {"p": [1.0, 3.0, 3.0]}, {"p": [0.0, 0.5, 0.5]}, saved)


def test_max_over_broadcast_copies_counts_each_value_once(saved):
    # the copies tie: split evenly, they add back up to 1 for the one value copied
    g = _one("max_copies", lambda g, p: gc.max(gc.broadcast_to(p, (4, 3))))
    assert_every_path(g, {"p": [1.0, 3.0, 2.0]}, {"p": [0.0, 1.0, 0.0]}, saved)


def test_bce_is_finite_at_0_and_1_with_slope_0_where_clamped(saved):
    g = gc.Graph("bce")
    p, y = g.param("p", shape=(3,)), g.input("y", shape=(3,))
    g.output("loss", gc.bce(p, y))
    feeds = {"p": [0.0, 1.0, 0.5], "y": [1.0, 0.0, 1.0]}
    assert float(gc.compile(g).forward(feeds)["loss"]) == pytest.approx((100 + 100 + np.log(2)) / 3, rel=1e-12)
    assert_every_path(g, feeds, {"p": [0.0, 0.0, -2.0 / 3.0]}, saved)


def test_bce_of_a_saturated_softmax_has_finite_gradients():
    # a logit gap over ~37 rounds the softmax to 1.0: the clamp must select, not multiply 0 by inf
    g = gc.Graph("saturated")
    x, t = g.input("x", shape=(1, 2)), g.input("t", shape=(1, 2))
    w = g.param("w", shape=(2, 2))
    g.output("loss", gc.bce(gc.softmax(x @ w), t))
    _, grads = gc.compile(g).value_and_grad({"x": [[1.0, 0.0]], "t": [[1.0, 0.0]], "w": [[40.0, 0.0], [0.0, 0.0]]})
    assert np.isfinite(grads["w"]).all()
