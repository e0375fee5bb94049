"""schedule.levels and mark_levels against networkx's topological generations, on graphs
whose insertion order is topological and on graphs where it is not (a node added after its
readers, as a rename does), reading values twice."""

import networkx as nx
import pytest
from small_graphs import random_dag

from graphc import ir
from graphc.errors import GraphError
from graphc.schedule import levels, mark_levels


def generations(graph: nx.MultiDiGraph) -> list[list[str]]:
    index = {node: k for k, node in enumerate(graph.nodes)}
    return [sorted(level, key=index.__getitem__) for level in nx.topological_generations(graph)]


@pytest.mark.parametrize("shuffled", [False, True])
@pytest.mark.parametrize("seed", range(20))
def test_levels_are_the_topological_generations_in_insertion_order(seed, shuffled):
    graph = random_dag(seed, shuffled=shuffled)
    want = generations(graph)
    assert levels(graph) == want
    marked = mark_levels(graph)
    assert {n: marked.nodes[n][ir.LEVEL] for n in marked} == {n: k for k, level in enumerate(want) for n in level}
    assert all(ir.MARK not in data for _, data in marked.nodes(data=True))
    assert list(marked.nodes) == list(graph.nodes) and list(marked.edges(keys=True, data=True)) == list(
        graph.edges(keys=True, data=True))
    assert all(data.get(ir.MARK) == "created" for _, data in graph.nodes(data=True))  # the input is untouched


def test_a_cycle_is_reported():
    graph = ir.new_graph("cycle")
    graph.add_node("a", op="input")
    graph.add_edge("a", "b", arg=0)
    graph.add_edge("b", "a", arg=0)
    with pytest.raises(GraphError, match="cycle"):
        levels(graph)
