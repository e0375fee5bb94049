"""Networks the differential corpus found wrong, against references written by hand.

Two classes: (1) canonicalize's counted rewrite of ``sum(broadcast(c))`` made a broadcast
from a number of higher rank than the result (``(1, 1)`` to ``(4,)``), a ShapeError at
compile time; (2) an array const (stored float64) in a float32 graph made the gradient
nodes, the generated constants and so the results float64. References: numpy written by
hand, central differences in float64, and the reference interpreter on the declared graph.
"""

import importlib.util

import numpy as np
from numeric_reference import numeric_grad

import graphc as gc


def log_softmax(z):
    shifted = z - z.max()
    return shifted - np.log(np.exp(shifted).sum())


# -- (1) a sum over a broadcast of one number, into a result of lower rank ------------------

def mean_of_spread_log_softmax():
    g = gc.Graph("spread")
    p3 = g.param("p3", (4, 1))
    v = gc.log_softmax(gc.tanh(gc.logsumexp(p3, axis=1)))
    g.output("loss", gc.mean(gc.mean(gc.broadcast_to(v, (3, 4)), keepdims=True)))
    return g


def spread_loss(p3):
    """The same network in numpy: logsumexp over one column is the column itself."""
    return np.broadcast_to(log_softmax(np.tanh(p3[:, 0])), (3, 4)).mean()


P3 = np.array([[0.3], [-1.2], [0.8], [0.05]])


def test_a_summed_broadcast_of_one_number_into_a_lower_rank_compiles_with_the_right_gradient():
    value, grads = gc.compile(mean_of_spread_log_softmax()).value_and_grad({"p3": P3})
    np.testing.assert_allclose(value["loss"], spread_loss(P3), rtol=1e-12)
    np.testing.assert_allclose(grads["p3"], numeric_grad(spread_loss, P3), rtol=1e-6, atol=1e-9)


def test_gc_grad_of_the_same_network_compiles_and_agrees():
    g2 = gc.grad(mean_of_spread_log_softmax(), "loss", wrt=["p3"])
    out = gc.compile(g2, wrt=[]).forward({"p3": P3})
    np.testing.assert_allclose(out["dloss/dp3"], numeric_grad(spread_loss, P3), rtol=1e-6, atol=1e-9)


# -- (2) array consts in float32 graphs ------------------------------------------------------

C_A = np.array([[-1.09], [0.66]])


def const_matmul_softplus():
    g = gc.Graph("const_matmul")
    g.input("x", (1, 2), dtype="float32")
    p = g.param("p", (1, 3), dtype="float32")
    b = g.param("b", (1,), dtype="float32")
    c = g.const(C_A)
    g.output("loss", gc.mean(gc.softplus(c @ p + b)))
    return g


FEEDS_A = {"x": np.array([[0.2, -0.4]], np.float32), "p": np.array([[0.5, -1.5, 0.25]], np.float32),
           "b": np.array([0.1], np.float32)}


def const_matmul_loss(p, b):
    return np.logaddexp(0.0, C_A @ p + b).mean()


def assert_all_float32(graph, stage):
    wrong = {n: d for n, d in graph.nodes(data="dtype") if d != "float32"}
    assert not wrong, f"stage {stage}: nodes not float32: {wrong}"


def test_an_array_const_in_a_float32_graph_gives_float32_gradients_of_the_right_value():
    prog = gc.compile(const_matmul_softplus())
    for stage in ("declared", "differentiated"):
        assert_all_float32(prog.stages[stage], stage)
    value, grads = prog.value_and_grad(FEEDS_A)
    assert value["loss"].dtype == np.float32
    assert {k: v.dtype for k, v in grads.items()} == {"p": np.float32, "b": np.float32}
    p64, b64 = FEEDS_A["p"].astype(np.float64), FEEDS_A["b"].astype(np.float64)
    np.testing.assert_allclose(grads["p"], numeric_grad(lambda p: const_matmul_loss(p, b64), p64), rtol=1e-5)
    np.testing.assert_allclose(grads["b"], numeric_grad(lambda b: const_matmul_loss(p64, b), b64), rtol=1e-5)


C_B = np.array([[-0.51, -0.97]])


def const_logits_cross_entropy():
    g = gc.Graph("const_logits")
    t = g.input("t", (1, 2), dtype="float32")
    q = g.param("q", (), dtype="float32")
    g.output("loss", gc.softmax_cross_entropy(g.const(C_B), t, axis=1) ** 2 * q)
    return g


FEEDS_B = {"t": np.array([[0.25, 0.75]], np.float32), "q": np.float32(1.5)}


def test_a_float32_graph_reading_a_constant_array_returns_float32_on_every_path(tmp_path):
    g = const_logits_cross_entropy()
    prog = gc.compile(g)
    assert_all_float32(prog.stages["declared"], "declared")
    expected = gc.evaluate(g, {k: np.asarray(v, np.float64) for k, v in FEEDS_B.items()}, "loss",
                           dtype="float64")["loss"]
    spec = importlib.util.spec_from_file_location("saved_const_logits", prog.save(tmp_path / "m.py"))
    saved = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(saved)
    results = {
        "forward": prog.forward(FEEDS_B)["loss"],
        "value_and_grad": prog.value_and_grad(FEEDS_B)[0]["loss"],
        "saved forward": saved.forward(FEEDS_B)["loss"],
        "saved value_and_grad": saved.value_and_grad(FEEDS_B)[0]["loss"],
    }
    for path, loss in results.items():
        assert loss.dtype == np.float32, path
        np.testing.assert_allclose(loss, expected, rtol=1e-6, err_msg=path)
    ce = -(FEEDS_B["t"].astype(np.float64) * log_softmax(C_B[0])).sum()
    np.testing.assert_allclose(expected, ce ** 2 * 1.5, rtol=1e-12)
    assert prog.value_and_grad(FEEDS_B)[1]["q"].dtype == np.float32


def test_every_value_made_of_a_shared_const_follows_it_into_float32():
    g = gc.Graph("shared_const")
    c = g.const(np.array([[0.94, 1.24]]))
    spread = gc.broadcast_to(c, (1, 1, 2))  # made while c was still float64
    p5 = g.param("p5", (2, 1), dtype="float32")
    p6 = g.param("p6", (), dtype="float32")
    g.output("loss", gc.sum(gc.tanh(c @ p5 + p6)))
    assert g.nx.nodes[spread.id]["dtype"] == "float32"
    _, grads = gc.compile(g).value_and_grad({"p5": np.array([[0.25], [0.55]], np.float32),
                                             "p6": np.float32(0.1)})
    z = 0.94 * 0.25 + 1.24 * 0.55 + 0.1
    np.testing.assert_allclose(grads["p6"], 1 - np.tanh(z) ** 2, rtol=1e-6)
    np.testing.assert_allclose(grads["p5"], (1 - np.tanh(z) ** 2) * np.array([[0.94], [1.24]]), rtol=1e-6)
