"""The graph copies the pipeline makes keep networkx's orders (the compiler breaks ties by
them, so a copy that reordered anything would change the generated code)."""

import networkx as nx
import pytest

import graphc as gc
from graphc import ir


def net():
    g = gc.Graph("copies")
    x = g.input("x", shape=("N", 3))
    w = g.param("w", shape=(3, 3))
    h = gc.tanh(x @ w)
    g.output("loss", gc.mean(h * h + x * x))  # h * h: one value read twice (two keyed edges)
    return g


def orders(graph):
    return (list(graph.nodes(data=True)), list(graph.edges(keys=True, data=True)),
            [list(graph._pred[n].items()) for n in graph], [list(graph._succ[n].items()) for n in graph],
            graph.graph)


def test_relabeled_is_what_networkx_relabels_in_a_copy():
    graph = gc.compile(net()).stages["differentiated"]
    mapping = {node: f"renamed_{k}" for k, node in enumerate(graph.nodes) if k % 2 == 0}
    expected = nx.relabel_nodes(graph, mapping, copy=True)
    assert orders(ir.relabeled(ir.copy_graph(graph), mapping)) == orders(expected)


def test_relabeled_refuses_a_mapping_that_merges_nodes():
    graph = net().nx
    first, second = list(graph.nodes)[:2]
    with pytest.raises(ValueError, match="merges"):
        ir.relabeled(ir.copy_graph(graph), {first: second})
