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


def test_operands_follow_positions_not_the_order_edges_were_added():
    graph = ir.new_graph("order")
    for node in ("a", "b", "c", "y", "z"):
        graph.add_node(node, op="input")
    graph.add_edge("b", "y", arg=1)  # the second operand joined first (a pass moved a reader)
    graph.add_edge("a", "y", arg=0)
    assert ir.operands(graph, "y") == ["a", "b"]
    graph.add_edge("c", "z", arg=2)
    graph.add_edge("a", "z", arg=1)
    graph.add_edge("b", "z", arg=0)
    assert ir.operands(graph, "z") == ["b", "a", "c"]
    graph.add_edge("a", "y", arg=2)  # a value read twice: two keyed edges from one node
    assert ir.operands(graph, "y") == ["a", "b", "a"]
    assert ir.operands(graph, "a") == []


class _Plain(nx.MultiDiGraph):
    """A subclass: add_op builds it through networkx's own add_node and add_edge."""


def test_add_op_makes_what_networkx_add_node_and_add_edge_make():
    made = {}
    for kind in (nx.MultiDiGraph, _Plain):
        graph = kind()
        graph.graph.update(ir.new_graph("adds").graph)
        ir.add_op(graph, "x", "input", [], {}, (2, 3))
        ir.add_op(graph, "w", "param", [], None, (3,), "float32")
        ir.add_op(graph, "y", "mul", ["x", "w"], {"k": 1}, (2, 3))
        ir.add_op(graph, "sq", "mul", ["y", "y"], {}, (2, 3))  # one value read twice: keys 0 and 1
        ir.add_op(graph, "f", "fused", ["sq", "x", "sq"], {"kink": ""}, (2, 3), expr=("e", ("a0", "a1", "a2")))
        ir.add_op(graph, "z", "add", ["f", "late"], {}, (2, 3))  # an operand not in the graph: networkx adds it
        made[kind] = graph
    assert type(made[nx.MultiDiGraph]) is nx.MultiDiGraph
    assert orders(made[nx.MultiDiGraph]) == orders(made[_Plain])
    assert ir.operands(made[nx.MultiDiGraph], "f") == ["sq", "x", "sq"]


def test_a_copy_is_what_networkx_copies_and_its_edits_leave_the_graph_alone():
    graph = gc.compile(net()).stages["differentiated"]
    before = repr(orders(graph))  # text: a dict changed in place would change a list of it too
    copied = ir.copy_graph(graph)
    assert orders(copied) == orders(graph.copy())
    reader = next(n for n in copied if len(ir.operands(copied, n)) == 2)
    first, second = ir.operands(copied, reader)
    for data in copied._pred[reader][first].values():  # an edge's data edited in place
        data[ir.ARG] = 5
    assert ir.operands(graph, reader) == [first, second]
    copied.remove_edge(first, reader)  # an edit: edges go and come, node attributes change
    copied.add_edge(first, reader, arg=0)
    copied.add_edge(first, reader, arg=7)
    copied.nodes[reader]["mark"] = "created"
    copied.remove_node(next(iter(copied)))
    assert repr(orders(graph)) == before
