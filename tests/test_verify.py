"""``gc.verify``: every IR invariant, each broken on purpose, with the message it gives.

Each message must name the node and its op, say what was expected and what was found,
and (where there is one) how to fix it.
"""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import sympy

import graphc as gc
from graphc import ir
from graphc.verify import infer_shapes, topological_order


def small_net() -> nx.MultiDiGraph:
    """x (N, 2) @ w (2, 3) -> relu 'h' -> sum over axis 1 'out'."""
    g = gc.Graph("v")
    x = g.input("x", shape=("N", 2))
    w = g.param("w", shape=(2, 3))
    h = gc.relu(x @ w).named("h")
    g.output("out", gc.sum(h, axis=1))
    return g.nx


def message(error_type, graph) -> str:
    with pytest.raises(error_type) as info:
        gc.verify(graph)
    assert isinstance(info.value, gc.GraphcError)
    return str(info.value)


def in_edge_keys(graph, node):
    return sorted(graph.in_edges(node, keys=True), key=lambda e: graph.edges[e].get("arg", -1))


def test_a_valid_graph_verifies_and_is_returned_unchanged():
    graph = small_net()
    before = nx.node_link_data(graph, edges="edges")
    assert gc.verify(graph) is graph
    assert nx.node_link_data(graph, edges="edges") == before


def test_the_builder_writes_the_documented_attributes():
    graph = small_net()
    assert graph.graph == {"name": "v", "inputs": ["x"], "params": ["w"], "outputs": ["out"]}
    assert graph.nodes["out"] == {
        "op": "sum", "attrs": {"axis": 1, "keepdims": False},
        "shape": (sympy.Symbol("N", integer=True, positive=True),), "dtype": "float64",
    }
    assert [graph.edges[e]["arg"] for e in in_edge_keys(graph, "matmul")] == [0, 1]
    assert ir.operands(graph, "matmul") == ["x", "w"]


def test_a_cycle_names_every_node_on_it():
    graph = ir.new_graph("loop")
    ir.add_op(graph, "x", "input", [], shape=(2,))
    graph.graph["inputs"] = ["x"]
    for node, op in (("a", "add"), ("b", "neg"), ("c", "neg")):
        graph.add_node(node, op=op, attrs={}, shape=(2,), dtype="float64")
    graph.add_edge("x", "a", arg=0)
    graph.add_edge("c", "a", arg=1)
    graph.add_edge("a", "b", arg=0)
    graph.add_edge("b", "c", arg=0)
    graph.graph["outputs"] = ["c"]
    text = message(gc.GraphError, graph)
    assert "cycle" in text and "acyclic" in text
    for node in ("'a'", "'b'", "'c'"):
        assert node in text
    assert "'x'" not in text  # x is not on the cycle
    with pytest.raises(gc.GraphError, match="cycle"):
        topological_order(graph)


def test_a_self_loop_is_a_cycle():
    graph = ir.new_graph("self")
    graph.add_node("a", op="neg", attrs={}, shape=(2,))
    graph.add_edge("a", "a", arg=0)
    graph.graph["outputs"] = ["a"]
    assert "'a' -> 'a'" in message(gc.GraphError, graph)


def test_unknown_op():
    graph = small_net()
    graph.nodes["h"]["op"] = "frob"
    text = message(gc.GraphError, graph)
    assert "'h'" in text and "'frob'" in text  # node and op found
    assert "relu" in text  # expected: the known ops are listed
    assert "gc.elementwise" in text  # how to fix


def test_missing_op_attribute():
    graph = small_net()
    del graph.nodes["h"]["op"]
    text = message(gc.GraphError, graph)
    assert "'h'" in text and "'op'" in text and "op table" in text


@pytest.mark.parametrize("extra_from", ["x", "out"])
def test_too_many_operands(extra_from):
    graph = small_net()
    graph.add_edge(extra_from, "h", arg=1)
    text = message(gc.GraphError, graph)
    assert "node 'h' (op relu)" in text
    assert "expected 1 operand(s), found 2" in text
    assert extra_from in text and "connect exactly 1" in text


def test_too_few_operands():
    graph = small_net()
    graph.remove_edge("matmul", "h")
    text = message(gc.GraphError, graph)
    assert "node 'h' (op relu)" in text and "expected 1 operand(s), found 0" in text


@pytest.mark.parametrize("position, shown", [(2, "[0, 2]"), (0, "[0, 0]"), (None, "None"), (True, "True"),
                                             ("1", "'1'")])
def test_operand_positions_must_be_0_to_k_minus_1(position, shown):
    graph = small_net()
    second = in_edge_keys(graph, "matmul")[1]
    if position is None:
        del graph.edges[second]["arg"]
    else:
        graph.edges[second]["arg"] = position
    text = message(gc.GraphError, graph)
    assert "node 'matmul' (op matmul)" in text
    assert "0..1" in text and "'arg'" in text  # expected
    assert shown in text  # found
    assert "arg=0" in text  # how to fix


@pytest.mark.parametrize("position", [1, True, False, 0.0, None, "0"])
def test_the_one_operand_of_a_unary_op_sits_at_position_0(position):
    graph = small_net()
    (edge,) = in_edge_keys(graph, "h")
    if position is None:
        del graph.edges[edge]["arg"]
    else:
        graph.edges[edge]["arg"] = position
    text = message(gc.GraphError, graph)
    assert "node 'h' (op relu)" in text and "0..0" in text and repr(position) in text


def test_an_int_subclass_is_an_operand_position_and_a_bool_is_not():
    import enum

    class Slot(enum.IntEnum):
        FIRST = 0
        SECOND = 1

    graph = small_net()
    (relu_edge,) = in_edge_keys(graph, "h")
    graph.edges[relu_edge]["arg"] = Slot.FIRST
    first, second = in_edge_keys(graph, "matmul")
    graph.edges[first]["arg"], graph.edges[second]["arg"] = Slot.FIRST, Slot.SECOND
    assert gc.verify(graph) is graph
    assert ir.operands(graph, "matmul") == ["x", "w"]
    graph.edges[first]["arg"] = False  # equal to 0, but not a position
    assert "found [False, <Slot.SECOND: 1>]" in message(gc.GraphError, graph)


def test_operand_order_comes_from_arg_not_insertion():
    graph = ir.new_graph("order")
    ir.add_op(graph, "a", "input", [], shape=(2,))
    ir.add_op(graph, "b", "input", [], shape=(2,))
    graph.graph["inputs"] = ["a", "b"]
    graph.add_node("d", op="sub", attrs={}, shape=(2,), dtype="float64")
    graph.add_edge("a", "d", arg=1)  # inserted first, but the second operand
    graph.add_edge("b", "d", arg=0)
    graph.graph["outputs"] = ["d"]
    assert ir.operands(gc.verify(graph), "d") == ["b", "a"]
    out = gc.compile(graph).forward({"a": np.array([1.0, 2.0]), "b": np.array([10.0, 20.0])})["d"]
    np.testing.assert_array_equal(out, [9.0, 18.0])


def test_shape_disagreeing_with_the_rule():
    graph = small_net()
    graph.nodes["h"]["shape"] = ("N", 4)
    text = message(gc.ShapeError, graph)
    assert "node 'h' (op relu)" in text and "'matmul'" in text  # the node, its op and operand
    assert "(N, 4)" in text and "(N, 3)" in text  # found, expected
    assert "fix" in text


def test_missing_shape_on_an_op_node():
    graph = small_net()
    del graph.nodes["h"]["shape"]
    text = message(gc.ShapeError, graph)
    assert "node 'h' (op relu)" in text and "none" in text and "(N, 3)" in text
    infer_shapes(graph)  # the fix: shapes of op nodes can be inferred
    gc.verify(graph)


def test_shapes_of_operands_that_do_not_fit():
    graph = small_net()
    graph.nodes["w"]["shape"] = (3, 3)
    text = message(gc.ShapeError, graph)
    assert "node 'matmul' (op matmul)" in text and "(N, 2)" in text and "(3, 3)" in text


def test_a_source_needs_a_declared_shape():
    graph = small_net()
    del graph.nodes["w"]["shape"]
    text = message(gc.ShapeError, graph)
    assert "node 'w' (op param)" in text and "shape=" in text


@pytest.mark.parametrize("attrs, found", [(None, "None"), ([1], "[1]")])
def test_attrs_must_be_a_dict(attrs, found):
    graph = small_net()
    graph.nodes["h"]["attrs"] = attrs
    text = message(gc.GraphError, graph)
    assert "node 'h' (op relu)" in text and "dict" in text and found in text
    assert "set it to {}" in text


def test_unknown_attr():
    graph = small_net()
    graph.nodes["out"]["attrs"] = {"axis": 1, "keepdims": False, "axes": 0}
    text = message(gc.GraphError, graph)
    assert "node 'out' (op sum)" in text and "axes" in text and "'axis', 'keepdims'" in text


def test_a_const_needs_a_value():
    graph = small_net()
    graph.add_node("c", op="const", attrs={})
    text = message(gc.GraphError, graph)
    assert "node 'c' (op const)" in text and "value" in text


@pytest.mark.parametrize("bad_id", [3, "", ("a", 1)])
def test_node_ids_are_non_empty_strings(bad_id):
    graph = small_net()
    graph.add_node(bad_id, op="input", attrs={}, shape=())
    text = message(gc.GraphError, graph)
    assert repr(bad_id) in text and "str" in text


def test_inputs_list_names_a_missing_node():
    graph = small_net()
    graph.graph["inputs"] = ["x", "ghost"]
    text = message(gc.GraphError, graph)
    assert "'inputs'" in text and "'ghost'" in text and "input node" in text


def test_an_unlisted_input():
    graph = small_net()
    graph.graph["inputs"] = []
    text = message(gc.GraphError, graph)
    assert "node 'x' (op input)" in text and "'inputs'" in text and "add it" in text


def test_a_param_listed_as_input():
    graph = small_net()
    graph.graph["inputs"] = ["x", "w"]
    text = message(gc.GraphError, graph)
    assert "'w'" in text and "not an input node" in text


def test_graph_lists_must_be_lists():
    graph = small_net()
    graph.graph["params"] = "w"
    text = message(gc.GraphError, graph)
    assert "'params'" in text and "list" in text and "'w'" in text


@pytest.mark.parametrize("outputs, fragments", [
    ([], ["no outputs", "g.output"]),
    (["ghost"], ["'ghost'", "not a node"]),
    (["out", "out"], ["'out'", "twice"]),
])
def test_outputs(outputs, fragments):
    graph = small_net()
    graph.graph["outputs"] = outputs
    text = message(gc.GraphError, graph)
    for fragment in fragments:
        assert fragment in text


@pytest.mark.parametrize("value", [nx.Graph(), {"x": 1}, None])
def test_not_a_networkx_digraph(value):
    text = message(gc.GraphError, value)
    assert "MultiDiGraph" in text and type(value).__name__ in text


def test_a_plain_digraph_verifies():
    graph = nx.DiGraph(small_net())
    assert gc.verify(graph) is graph


def test_topological_order_is_deterministic_and_respects_edges():
    graph = small_net()
    order = topological_order(graph)
    assert order == ["x", "w", "matmul", "h", "out"]
    position = {node: k for k, node in enumerate(order)}
    assert all(position[u] < position[v] for u, v in graph.edges())


def test_verify_does_not_recurse_on_a_long_chain():
    graph = ir.new_graph("long")
    ir.add_op(graph, "n0", "input", [], shape=(2,))
    graph.graph["inputs"] = ["n0"]
    for k in range(1, 5000):
        ir.add_op(graph, f"n{k}", "neg", [f"n{k - 1}"], shape=(2,))
    graph.graph["outputs"] = ["n4999"]
    assert gc.verify(graph) is graph
    assert topological_order(graph)[-1] == "n4999"


# -- attributes passes set -------------------------------------------------------------------
def compiled_stages():
    g = gc.Graph("attrs")
    x = g.input("x", shape=("N", 2))
    W = g.param("W", shape=(2, 2))
    g.output("loss", gc.mean(gc.tanh(x @ W)))
    return gc.compile(g).stages


def test_every_stage_of_a_compiled_program_verifies():
    for name, stage in compiled_stages().items():
        assert gc.verify(stage) is stage, name


@pytest.mark.parametrize("key, value, message", [
    (ir.MARK, 3, "mark must be one of"),
    (ir.LEVEL, -1, "level must be an int >= 0"),
    (ir.LEVEL, True, "level must be an int >= 0"),
    (ir.FUSED_SIZE, 2, "fused_size is the number of ops a fused node holds"),
    (ir.EARLY, True, "early marks a backward node"),
    (ir.PHASE, "sideways", "phase must be 'forward' or 'backward'"),
])
def test_a_wrong_pass_attribute_is_refused(key, value, message):
    joint = compiled_stages()["differentiated"].copy()
    node = next(n for n, d in joint.nodes(data=True) if d[ir.OP] == "matmul" and d.get(ir.PHASE) == ir.FORWARD)
    joint.nodes[node][key] = value
    with pytest.raises(gc.GraphError, match=message):
        gc.verify(joint)


def test_a_gradient_defect_is_named_before_an_earlier_nodes_pass_attribute_and_each_names_its_node():
    joint = compiled_stages()["differentiated"].copy()
    first, last = list(joint.nodes)[0], list(joint.nodes)[-1]
    joint.nodes[first][ir.MARK] = 3
    joint.nodes[last][ir.PHASE] = "sideways"
    with pytest.raises(gc.GraphError, match=f"node '{last}'.*phase must be 'forward' or 'backward'"):
        gc.verify(joint)
    joint.nodes[last][ir.PHASE] = ir.BACKWARD
    second = list(joint.nodes)[1]
    joint.nodes[second][ir.LEVEL] = -1
    with pytest.raises(gc.GraphError, match=f"node '{first}'.*mark must be one of"):
        gc.verify(joint)


def test_the_one_topological_order_breaks_ties_by_insertion_and_reads_plain_digraphs():
    G = nx.DiGraph()
    for node in ("c", "a", "b"):
        G.add_node(node)
    G.add_edge("c", "b")
    assert topological_order(G) == ["c", "a", "b"] == ir.topological_order(nx.MultiDiGraph(G))


def test_a_node_declared_in_another_dtype_than_all_its_operands_is_refused():
    graph = small_net()
    graph.nodes["h"][ir.DTYPE] = "float32"  # x @ w is float64: relu cannot narrow it
    text = message(gc.GraphError, graph)
    assert "'h'" in text and "relu" in text
    assert "declared dtype float32 but its operands are all float64" in text


def test_an_op_with_a_dtype_rule_is_held_to_it_not_to_its_operands_dtype():
    g = gc.Graph("argmax")
    x = g.input("x", shape=(3, 4))
    g.output("i", gc.argmax(x, axis=1))
    graph = ir.copy_graph(g.nx)
    gc.verify(graph)  # an int64 argmax of float64 values is right
    node = next(n for n in graph.nodes if graph.nodes[n][ir.OP] == "argmax")
    graph.nodes[node][ir.DTYPE] = "float64"
    text = message(gc.GraphError, graph)
    assert "rule gives int64" in text


# -- several defects at once: the first kind in verify's order is named, wherever it sits ----

def inserted_in(graph: nx.MultiDiGraph, order: list) -> nx.MultiDiGraph:
    """``graph`` with its nodes inserted in ``order`` (its edges and attributes as they were)."""
    out = nx.MultiDiGraph()
    out.graph.update({key: list(value) if isinstance(value, list) else value for key, value in graph.graph.items()})
    for node in order:
        out.add_node(node, **dict(graph.nodes[node]))
    for source, target, data in graph.edges(data=True):
        out.add_edge(source, target, **dict(data))
    return out


# the nodes of small_net with relu 'h' inserted before its operand 'matmul'
OUT_OF_ORDER = ["x", "w", "h", "matmul", "out"]


@pytest.mark.parametrize("order", [None, OUT_OF_ORDER])
def test_a_nodes_own_defect_is_named_before_an_earlier_nodes_wrong_shape(order):
    graph = small_net() if order is None else inserted_in(small_net(), order)
    graph.nodes["matmul"][ir.SHAPE] = ("N", 9)
    graph.nodes["out"]["op"] = "frob"
    assert "'frob'" in message(gc.GraphError, graph)
    graph.nodes["out"]["op"] = "sum"
    assert "node 'matmul' (op matmul)" in message(gc.ShapeError, graph)


@pytest.mark.parametrize("order", [None, OUT_OF_ORDER])
def test_the_lists_and_the_float_dtype_are_named_before_a_wrong_shape(order):
    graph = small_net() if order is None else inserted_in(small_net(), order)
    graph.nodes["h"][ir.SHAPE] = ("N", 9)
    graph.graph["params"] = []
    assert "node 'w' (op param) is not listed" in message(gc.GraphError, graph)
    graph.graph["params"] = ["w"]
    graph.nodes["w"][ir.DTYPE] = "float32"
    assert "a graph computes in one float dtype" in message(gc.GraphError, graph)
    graph.nodes["w"][ir.DTYPE] = "float64"
    assert "node 'h' (op relu)" in message(gc.ShapeError, graph)


@pytest.mark.parametrize("order", [None, OUT_OF_ORDER])
def test_a_wrong_shape_is_named_before_an_earlier_nodes_wrong_tag(order):
    graph = small_net() if order is None else inserted_in(small_net(), order)
    graph.nodes["x"][ir.PHASE] = "sideways"
    graph.nodes["out"][ir.SHAPE] = (4,)
    assert "node 'out' (op sum)" in message(gc.ShapeError, graph)
    graph.nodes["out"][ir.SHAPE] = (sympy.Symbol("N", integer=True, positive=True),)
    assert "node 'x' (op input): phase must be" in message(gc.GraphError, graph)


def test_out_of_order_the_first_wrong_shape_in_topological_order_is_named():
    graph = inserted_in(small_net(), OUT_OF_ORDER)
    gc.verify(graph)  # nodes in any order verify
    graph.nodes["matmul"][ir.SHAPE] = ("N", 9)  # inserted after h, computed before it
    graph.nodes["h"][ir.SHAPE] = ("N", 7)
    text = message(gc.ShapeError, graph)
    assert "node 'matmul' (op matmul)" in text and "declared shape (N, 9)" in text


def test_a_cycle_is_named_before_a_wrong_shape_and_the_lists():
    graph = small_net()
    graph.nodes["matmul"][ir.SHAPE] = ("N", 9)
    graph.graph["inputs"] = []
    graph.add_edge("out", "h", arg=1)  # h reads the sum of itself
    graph.nodes["h"]["op"] = "add"
    text = message(gc.GraphError, graph)
    assert "cycle" in text and "'h'" in text and "'out'" in text


def test_a_gradient_tag_naming_a_later_node_without_a_shape_names_the_missing_shape():
    graph = small_net()
    graph.nodes["x"][ir.GRAD_OF] = "out"  # out comes later, and has no shape
    del graph.nodes["out"][ir.SHAPE]
    text = message(gc.ShapeError, graph)
    assert "node 'out' (op sum)" in text and "declared shape none" in text


@pytest.mark.parametrize("positions, fits", [((0, 1), True), ((1, 0), False), ((True, 0), None), ((1, 1), None)])
def test_two_operands_are_read_in_the_order_of_their_positions(positions, fits):
    graph = small_net()  # x (N, 2) @ w (2, 3): the other way round does not fit
    for source, position in zip(("x", "w"), positions):
        (edge,) = graph.get_edge_data(source, "matmul").values()
        edge[ir.ARG] = position
    graph = inserted_in(graph, list(graph.nodes))  # x's edge into matmul inserted before w's
    assert list(graph.pred["matmul"]) == ["x", "w"]
    if fits:
        gc.verify(graph)
    elif fits is False:
        text = message(gc.ShapeError, graph)
        assert "node 'matmul' (op matmul)" in text and "shapes (2, 3) @ (N, 2) do not match" in text
    else:
        assert "operand positions (edge attribute 'arg') must be 0..1" in message(gc.GraphError, graph)
