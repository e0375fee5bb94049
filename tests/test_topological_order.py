"""ir.topological_order is networkx's lexicographical topological sort keyed by insertion
order, on graphs whose insertion order is not topological and that read values twice."""

import contextlib

import networkx as nx
import pytest
from small_graphs import random_dag

from graphc import ir


@pytest.mark.parametrize("seed", range(25))
def test_the_order_is_the_smallest_by_insertion_index(seed):
    graph = random_dag(seed, n=60)
    index = {node: k for k, node in enumerate(graph.nodes)}
    expected = list(nx.lexicographical_topological_sort(graph, key=index.__getitem__))
    assert ir.topological_order(graph) == expected
    assert ir.topological_order(nx.DiGraph(graph)) == expected


def test_a_cycle_is_reported():
    graph = nx.MultiDiGraph()
    graph.add_edge("a", "b", arg=0)
    graph.add_edge("b", "a", arg=0)
    with pytest.raises(Exception, match="cycle"):
        ir.topological_order(graph)


@pytest.mark.parametrize("seed", range(5))
def test_a_graph_inserted_in_an_order_of_its_edges_keeps_that_order(seed):
    shuffled = random_dag(seed, n=60)
    graph = nx.MultiDiGraph()
    graph.add_nodes_from(ir.topological_order(shuffled))  # an insertion order every edge respects
    graph.add_edges_from(shuffled.edges(keys=True, data=True))
    assert ir.topological_order(graph) == list(graph.nodes) == list(nx.lexicographical_topological_sort(
        graph, key=list(graph.nodes).index))
    first, last = list(graph.nodes)[0], list(graph.nodes)[-1]
    graph.add_edge(last, first, arg=0)  # now the last node feeds the first: no longer in order
    with pytest.raises(Exception, match="cycle") if nx.has_path(graph, first, last) else contextlib.nullcontext():
        assert ir.topological_order(graph) != list(graph.nodes)

