"""interleave: long backward products start during the forward pass."""

from __future__ import annotations

import numpy as np
import sympy

import graphc as gc
from graphc import ir
from graphc.passes.interleave import interleave
from graphc.passes.stats import Stats


def chain():
    g = gc.Graph("chain")
    x = g.input("x", shape=("N", 5))
    a = g.param("a", shape=(5,))
    z = x * a
    g.output("loss", gc.mean(gc.sin(gc.square(gc.log1p(gc.exp(gc.tanh(z)))))))
    return g


def feeds():
    rng = np.random.default_rng(3)
    return {"x": rng.normal(size=(4, 5)), "a": rng.normal(size=5)}


def test_the_chain_product_is_split_into_running_products():
    prog = gc.compile(chain())
    split = prog.stages["interleaved"]
    assert Stats.of(split).passes["interleave"]["split"] >= 3
    running = [n for n in split if n.endswith(("_p", "_p_1", "_p_2")) and split.nodes[n][ir.OP] == "fused"]
    assert len(running) >= 2
    for node in running:  # each running product reads one earlier product at most, and forward values
        readers = ir.operands(split, node)
        assert sum(split.nodes[r].get(ir.PHASE) == ir.BACKWARD for r in readers) <= 1
    gc.verify(split)


def test_values_and_gradients_are_unchanged():
    prog = gc.compile(chain())
    report = gc.check_gradients(prog, feeds())
    assert report.ok and not report.kinks
    reference_fused = prog.stages["fused"]
    assert interleave(reference_fused).number_of_nodes() > reference_fused.number_of_nodes()


def test_forward_values_die_before_the_backward_pass():
    """No forward value of the chain is saved for the backward pass: the generated
    train_forward returns only the running product and the inputs."""
    prog = gc.compile(chain())
    text = prog.backward_source
    body = text[text.index("def train_forward"):text.index("def backward_pass")]
    returned = [line for line in body.splitlines() if line.strip().startswith("return")][-1]
    saved = returned.split("), [")[1]  # return (outputs), [saved values]
    for value in ("tanh", "exp", "log1p", "square"):
        assert value not in saved.replace(",", " ").split(), returned


def test_a_value_with_another_backward_reader_is_not_moved_early():
    g = gc.Graph("mlp")
    x = g.input("x", shape=("N", 3))
    W = g.param("W", shape=(3, 2))
    h = gc.sigmoid(x @ W)  # h is read by d_W's matmul as well: nothing to gain
    g.output("loss", gc.mean(h * h))
    split = gc.compile(g).stages["interleaved"]
    assert "interleave" not in Stats.of(split).passes


def test_idempotent_and_pure():
    fused = gc.compile(chain()).stages["fused"]
    before = {n: dict(d) for n, d in fused.nodes(data=True)}
    once = interleave(fused)
    twice = interleave(once)
    assert "interleave" not in Stats.of(twice).passes
    assert {n: dict(d) for n, d in fused.nodes(data=True)} == before
    products = [once.nodes[n][ir.EXPR][0] for n in once if ir.EXPR in once.nodes[n]]
    assert all(isinstance(p, sympy.Expr) for p in products)
