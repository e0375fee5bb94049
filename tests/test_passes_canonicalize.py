"""canonicalize: structure (isomorphism with attributes), idempotence, verify, ids kept."""

import networkx as nx
import numpy as np
import pytest

import graphc as gc
from graphc import ir
from graphc.passes.canonicalize import canonicalize
from graphc.passes.dce import dce
from graphc.passes.edit import equivalent
from graphc.passes.stats import Stats


def run(graph):
    """canonicalize + dce (the leftover consts), checked: verify, pure, idempotent."""
    before = nx.node_link_data(graph, edges="edges")
    out = gc.verify(dce(canonicalize(graph)))
    assert nx.node_link_data(graph, edges="edges") == before, "the input graph was changed"
    again = canonicalize(out)
    assert Stats.of(again).changes == 0 and equivalent(again, out), "a second run changed the graph"
    return out


def test_identities_collapse_to_the_expected_graph():
    g = gc.Graph("t")
    x = g.input("x", shape=(3,))
    w = g.input("w", shape=(3,))
    g.output("y", ((x + 0) * 1 - 0) / 1 + -(-w) ** 1)
    want = gc.Graph("t")
    x2 = want.input("x", shape=(3,))
    w2 = want.input("w", shape=(3,))
    want.output("y", x2 + w2)
    out = run(g.nx)
    assert equivalent(out, want.nx)
    counts = Stats.of(canonicalize(g.nx)).passes["canonicalize"]
    assert counts["add_zero"] == 1 and counts["mul_one"] == 1 and counts["div_one"] == 1
    assert counts["neg_neg"] == 1 and counts["pow_one"] == 1


def test_constants_go_last_and_the_rest_keep_their_order():
    g = gc.Graph("t")
    x = g.input("x", shape=(3,))
    w = g.input("w", shape=(3,))
    g.output("y", 2 * x + w * x)
    out = run(g.nx)
    mul = ir.operands(out, "y")[0]
    assert out.nodes[ir.operands(out, mul)[1]]["op"] == "const"
    assert ir.operands(out, ir.operands(out, "y")[1]) == ["w", "x"]


def test_x_minus_x_is_zeros_and_the_output_keeps_its_id():
    g = gc.Graph("t")
    x = g.input("x", shape=(2, 3))
    g.output("y", x - x)
    out = run(g.nx)
    assert sorted(out.nodes) == ["x", "y"]
    assert out.nodes["y"]["op"] == "const" and out.nodes["y"]["shape"] == (2, 3)
    np.testing.assert_array_equal(out.nodes["y"]["attrs"]["value"], np.zeros((2, 3)))


def test_a_broadcast_is_never_lost():
    g = gc.Graph("t")
    x = g.input("x", shape=(3,))
    g.output("y", x + np.zeros((2, 3)))
    g.output("z", x * np.ones((4, 1)))
    out = run(g.nx)
    assert out.nodes["y"]["op"] == "add" and out.nodes["z"]["op"] == "mul"


def test_an_output_that_is_an_input_becomes_its_identity_once():
    g = gc.Graph("t")
    x = g.input("x", shape=(3,))
    g.output("y", x * 1.0)
    out = run(g.nx)
    assert out.nodes["y"]["op"] == "identity" and ir.operands(out, "y") == ["x"]


@pytest.mark.parametrize("build, op", [
    (lambda x: 0 - x, "neg"), (lambda x: x * -1, "neg"), (lambda x: x + -gc.exp(x), "sub"), (lambda x: x + -x, "const"),
    (lambda x: x - (-gc.exp(x)), "add"), (lambda x: x.T.T, "exp"),
])
def test_single_rules(build, op):
    g = gc.Graph("t")
    x = g.input("x", shape=(3, 3))
    g.output("y", gc.exp(build(x)))
    out = run(g.nx)
    inner = ir.operands(out, "y")[0]
    assert out.nodes[inner if op != "exp" else "y"]["op"] == op


def test_phase_and_marks():
    g = gc.Graph("t")
    x = g.input("x", shape=(3,))
    g.output("y", gc.exp(0 - x))
    for node in g.nx.nodes:
        g.nx.nodes[node][ir.PHASE] = ir.BACKWARD
    out = canonicalize(g.nx)
    (made,) = [n for n, m in out.nodes(data=ir.MARK) if m == "created"]
    assert out.nodes[made]["op"] == "neg" and out.nodes[made][ir.PHASE] == ir.BACKWARD
    assert not any(m for _, m in canonicalize(out).nodes(data=ir.MARK)), "old marks are cleared"
