"""share: a costly part repeated by several kernels is computed once."""

from __future__ import annotations

import numpy as np
import sympy

import graphc as gc
from graphc import ir
from graphc.passes.share import share
from graphc.passes.stats import Stats


def silu_net():
    silu = gc.elementwise("silu_share_test", lambda z: z / (1 + sympy.exp(-z)))
    g = gc.Graph("silu")
    x = g.input("x", shape=("N", 4))
    a = g.param("a", shape=(4,))
    g.output("loss", gc.mean(gc.tanh(silu(x * a))))
    return g


def feeds():
    rng = np.random.default_rng(7)
    return {"x": rng.normal(size=(3, 4)), "a": rng.normal(size=4)}


def sigmoids(graph) -> int:
    """How many fused expressions hold a sigmoid."""
    from graphc.ops.functions import sigmoid

    return sum(1 for n in graph if ir.EXPR in graph.nodes[n] and graph.nodes[n][ir.EXPR][0].has(sigmoid))


def test_the_sigmoid_of_silu_and_its_derivative_is_computed_once():
    prog = gc.compile(silu_net())
    fused, shared = prog.stages["fused"], prog.stages["shared"]
    assert sigmoids(fused) >= 2  # the forward kernel and the backward kernel both hold it
    assert Stats.of(shared).passes["share"]["shared"] == 1
    node = next(n for n in shared if n.startswith("sigmoid"))
    expr, symbols = shared.nodes[node][ir.EXPR]
    assert expr.func.__name__ == "sigmoid" and len(symbols) == 1
    readers = list(shared.successors(node))
    assert len(readers) >= 2
    assert {shared.nodes[r].get(ir.PHASE) for r in readers} == {ir.FORWARD, ir.BACKWARD}
    assert shared.nodes[node][ir.PHASE] == ir.FORWARD  # the training forward computes it
    assert sigmoids(shared) == 1
    gc.verify(shared)


def test_values_and_gradients_are_unchanged():
    prog = gc.compile(silu_net())
    report = gc.check_gradients(prog, feeds())
    assert report.ok and not report.kinks
    training = prog.backward_source.split("def sgd_step")[0]  # train_forward and backward_pass
    code = [line for line in training.splitlines() if not line.strip().startswith("#")]
    assert sum("numpy.exp(" in line for line in code) == 1  # one exponential: the value and its derivative


def test_pure_and_idempotent():
    fused = gc.compile(silu_net()).stages["fused"]
    before = {n: dict(d) for n, d in fused.nodes(data=True)}
    once = share(fused)
    assert {n: dict(d) for n, d in fused.nodes(data=True)} == before
    twice = share(once)
    assert "share" not in Stats.of(twice).passes
    assert twice.number_of_nodes() == once.number_of_nodes()


def test_nothing_is_shared_between_unrelated_kernels():
    g = gc.Graph("apart")
    x = g.input("x", shape=(3,))
    y = g.input("y", shape=(3,))
    g.output("out", gc.sum(gc.exp(x) * 2.0) + gc.sum(gc.exp(y) * 3.0))
    prog = gc.compile(g, wrt=["x", "y"])
    assert "share" not in Stats.of(prog.stages["shared"]).passes
