"""The lecture's "Recall" network on the XOR inputs, declared three ways.

sigma1 = sigmoid(5 x1 - 5 x2 + 1), sigma2 = sigmoid(-5 x1 + 5 x2 + 1), output -3 (sigma1 + sigma2)
with the identity as the output activation. Reference values are computed here in numpy.
"""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

import graphc as gc

XOR = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
W = np.array([[5.0, -5.0], [-5.0, 5.0]])
B = np.array([1.0, 1.0])
V = np.array([[-3.0], [-3.0]])


def expected() -> np.ndarray:
    x1, x2 = XOR[:, 0], XOR[:, 1]
    s1 = 1.0 / (1.0 + np.exp(-(5 * x1 - 5 * x2 + 1)))
    s2 = 1.0 / (1.0 + np.exp(-(-5 * x1 + 5 * x2 + 1)))
    return (-3.0 * (s1 + s2)).reshape(4, 1)


def builder_graph() -> gc.Graph:
    g = gc.Graph("recall")
    x = g.input("x", shape=("N", 2))
    w = g.param("W", shape=(2, 2))
    b = g.param("b", shape=(2,))
    v = g.param("v", shape=(2, 1))
    sigma = gc.sigmoid(x @ w + b).named("sigma")
    g.output("out", gc.identity(sigma @ v))
    return g


def raw_graph(kind: type) -> nx.DiGraph:
    """The same network as a raw networkx graph: node attrs op/shape/attrs, edge attr arg."""
    graph = kind(name="recall_raw")
    graph.add_node("x", op="input", shape=("N", 2))
    graph.add_node("W", op="param", shape=(2, 2))
    graph.add_node("b", op="param", shape=(2,))
    graph.add_node("v", op="param", shape=(2, 1))
    graph.add_node("z", op="matmul", attrs={})
    graph.add_node("zb", op="add", attrs={})
    graph.add_node("sigma", op="sigmoid", attrs={})
    graph.add_node("a", op="matmul", attrs={})
    graph.add_node("out", op="identity", attrs={})
    for source, target, arg in [("x", "z", 0), ("W", "z", 1), ("z", "zb", 0), ("b", "zb", 1), ("zb", "sigma", 0),
                                ("sigma", "a", 0), ("v", "a", 1), ("a", "out", 0)]:
        graph.add_edge(source, target, arg=arg)
    return graph


FEEDS = {"x": XOR, "W": W, "b": B, "v": V}


@pytest.mark.parametrize("make", [builder_graph, lambda: gc.from_networkx(raw_graph(nx.DiGraph)),
                                  lambda: gc.from_networkx(raw_graph(nx.MultiDiGraph)),
                                  lambda: raw_graph(nx.MultiDiGraph)],
                         ids=["builder", "from_networkx-DiGraph", "from_networkx-MultiDiGraph", "compile-raw"])
def test_recall_network_gives_its_four_values(make):
    prog = gc.compile(make())
    out = prog.forward(FEEDS)["out"]
    np.testing.assert_allclose(out, expected(), rtol=1e-14)
    # the lecture's reading: XOR-like, the two mixed inputs differ from the two equal ones
    assert out[1, 0] == pytest.approx(out[2, 0]) and out[0, 0] == pytest.approx(out[3, 0])
    assert out[1, 0] - out[0, 0] > 1.0


def test_the_two_declarations_are_the_same_graph():
    built = builder_graph().nx
    raw = gc.from_networkx(raw_graph(nx.DiGraph)).nx

    def same(a, b):
        return a["op"] == b["op"] and a["shape"] == b["shape"]
    assert nx.is_isomorphic(nx.DiGraph(built), nx.DiGraph(raw), node_match=same)


def test_the_zoo_network_agrees():
    g, feeds = gc.zoo.recall_xor()
    out = gc.compile(g).forward(feeds)
    np.testing.assert_allclose(next(iter(out.values())).reshape(4, 1), expected(), rtol=1e-14)
