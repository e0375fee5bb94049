"""The Graph builder, node handles, shapes at declaration time, and ``gc.from_networkx``."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import sympy

import graphc as gc
from graphc import ir, shapes

N = sympy.Symbol("N", integer=True, positive=True)


def test_g_nx_is_the_graph_itself_with_the_ir_attributes():
    g = gc.Graph("net")
    x = g.input("x", shape=("N", 2))
    w = g.param("w", shape=(2, 1))
    out = g.output("y", x @ w)
    assert isinstance(g.nx, nx.MultiDiGraph)
    assert g.nx.graph["name"] == "net" and g.name == "net"
    assert (g.inputs, g.params, g.outputs) == (["x"], ["w"], ["y"])
    assert out.id == "y" and g.nx.nodes["y"]["op"] == "matmul"
    assert ir.operands(g.nx, "y") == ["x", "w"]
    assert g.node("x") is x and g["w"] is w
    gc.verify(g.nx)


def test_operators_build_the_right_ops_in_operand_order():
    g = gc.Graph()
    a = g.input("a", shape=(3,))
    b = g.input("b", shape=(3,))
    built = {"add": a + b, "sub": a - b, "mul": a * b, "div": a / b, "pow": a ** b, "neg": -a}
    for op, node in built.items():
        assert node.op == op
        assert ir.operands(g.nx, node.id) == (["a"] if op == "neg" else ["a", "b"])
    assert (+a) is a
    assert (a @ g.param("m", shape=(3, 2))).op == "matmul"


def test_reflected_operators_keep_the_number_on_its_side():
    g = gc.Graph()
    x = g.input("x", shape=(2,))
    node = 1 - x
    first, second = ir.operands(g.nx, node.id)
    assert g.nx.nodes[first]["op"] == "const" and g.nx.nodes[first]["attrs"]["value"] == 1.0
    assert second == "x"
    g.output("y", 2.0 / x)
    np.testing.assert_allclose(gc.compile(g).forward({"x": np.array([1.0, 4.0])})["y"], [2.0, 0.5])


def test_x_times_x_keeps_both_operand_edges():
    g = gc.Graph()
    x = g.input("x", shape=(3,))
    g.output("sq", x * x)
    assert g.nx.number_of_edges("x", "sq") == 2
    assert ir.operands(g.nx, "sq") == ["x", "x"]
    np.testing.assert_array_equal(gc.compile(g).forward({"x": np.array([1.0, -2.0, 3.0])})["sq"], [1.0, 4.0, 9.0])


def test_str_dims_are_shared_symbols():
    g = gc.Graph()
    x = g.input("x", shape=("N", 2))
    y = g.input("y", shape=["N", 1])
    assert x.shape == (N, 2) and y.shape[0] == x.shape[0]
    assert isinstance(x.shape[0], sympy.Symbol) and x.shape[0].is_positive and x.shape[0].is_integer
    assert (x + y).shape == (N, 2)
    assert g.input("s", shape=3).shape == (3,)
    assert g.input("t", shape=np.int64(4)).shape == (4,)


@pytest.mark.parametrize("shape, fragment", [((-1,), ">= 0"), (("",), "non-empty"), ((2.5,), "2.5"),
                                             ((True,), "True"), (None, "required")])
def test_bad_dims(shape, fragment):
    g = gc.Graph()
    with pytest.raises(gc.ShapeError) as info:
        g.input("x", shape=shape)
    assert "node 'x' (op input)" in str(info.value) and fragment in str(info.value)


@pytest.mark.parametrize("a, b", [((2, 3), (4,)), (("N", 3), ("M", 3)), (("N", 3), (2, 1, 4))])
def test_broadcast_mismatch_names_both_shapes(a, b):
    g = gc.Graph()
    x, y = g.input("x", shape=a), g.input("y", shape=b)
    with pytest.raises(gc.ShapeError) as info:
        x + y
    text = str(info.value)
    assert "node 'add' (op add)" in text
    assert shapes.fmt(shapes.normalize(a)) in text and shapes.fmt(shapes.normalize(b)) in text
    assert "broadcast" in text
    assert "add" not in g.nx  # nothing half-built is left behind


@pytest.mark.parametrize("a, b", [((2, 3), (2, 3)), (("N", 3), (4, 2)), ((), (3,)), (("N", 3), ("N",))])
def test_matmul_mismatch_names_both_shapes(a, b):
    g = gc.Graph()
    x, y = g.input("x", shape=a), g.input("y", shape=b)
    with pytest.raises(gc.ShapeError) as info:
        x @ y
    text = str(info.value)
    assert "(op matmul)" in text
    assert shapes.fmt(shapes.normalize(a)) in text and shapes.fmt(shapes.normalize(b)) in text


def test_broadcast_follows_numpy():
    cases = [((2, 1, 3), (4, 1)), ((), (5,)), ((1,), (3, 1)), ((2, 3), (1, 1, 3))]
    for a, b in cases:
        assert shapes.broadcast([a, b]) == np.broadcast_shapes(a, b)
    assert shapes.broadcast([(N, 1), (1, 3)]) == (N, 3)
    assert shapes.broadcast([(N, 1), (N, 3)]) == (N, 3)


@pytest.mark.parametrize("build, fragments", [
    (lambda x: gc.sum(x, axis=2), ["(op sum)", "axis 2", "rank 2"]),
    (lambda x: gc.mean(x, axis=(0, 0)), ["(op mean)", "repeats"]),
    (lambda x: gc.reshape(x, (5,)), ["(op reshape)", "(N, 3)", "(5,)"]),
    (lambda x: gc.transpose(x, (0, 0)), ["(op transpose)", "(0, 0)", "permutation"]),
    (lambda x: gc.softmax(x, axis=5), ["(op softmax)", "axis 5"]),
    (lambda x: gc.broadcast_to(x, (3,)), ["(op broadcast)", "(N, 3)", "(3,)"]),
    (lambda x: gc.mse(x, x.graph.input("t", shape=("N", 1))), ["(op mse)", "(N, 3)", "(N, 1)"]),
])
def test_shape_rules_fail_at_declaration(build, fragments):
    g = gc.Graph()
    x = g.input("x", shape=("N", 3))
    with pytest.raises(gc.ShapeError) as info:
        build(x)
    for fragment in fragments:
        assert fragment in str(info.value)


@pytest.mark.parametrize("call, fragments", [
    (lambda g, x: g.input("x", shape=()), ["'x'", "taken"]),
    (lambda g, x: g.param("", shape=()), ["non-empty"]),
    (lambda g, x: g.input(3, shape=()), ["3"]),
    # int64 inputs are class labels (softmax_cross_entropy); a param or another int dtype is refused
    (lambda g, x: g.param("i", shape=(), dtype="int64"), ["'i'", "int64", "float"]),
    (lambda g, x: g.input("i", shape=(), dtype="int32"), ["'i'", "int32", "int64 for an input of class labels"]),
    (lambda g, x: g.input("j", shape=(), dtype="nonsense"), ["'j'", "nonsense"]),
    (lambda g, x: gc.apply("nope", x), ["'nope'", "relu", "gc.elementwise"]),
    (lambda g, x: gc.apply("add", x), ["add", "takes 2", "found 1"]),
    (lambda g, x: gc.apply("sum", x, axiz=0), ["sum", "axiz", "'axis', 'keepdims'"]),
    (lambda g, x: gc.apply("neg", 1.0), ["neg", "Node"]),
    (lambda g, x: g.output("o", "text"), ["str", "'text'"]),
    (lambda g, x: x + "text", ["str"]),
    (lambda g, x: g.const("abc"), ["real number", "'abc'"]),
    (lambda g, x: x.named("y"), ["'x'", "input", "already has a name"]),
])
def test_builder_errors(call, fragments):
    g = gc.Graph("b")
    x = g.input("x", shape=(2,))
    with pytest.raises(gc.GraphError) as info:
        call(g, x)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_nodes_of_two_graphs_do_not_mix():
    g1, g2 = gc.Graph("one"), gc.Graph("two")
    a, b = g1.input("a", shape=(2,)), g2.input("b", shape=(2,))
    with pytest.raises(gc.GraphError) as info:
        a + b
    assert "'b'" in str(info.value) and "'two'" in str(info.value) and "'one'" in str(info.value)


def test_a_node_has_no_truth_value():
    g = gc.Graph()
    x = g.input("x", shape=())
    with pytest.raises(TypeError, match="truth value"):
        bool(x)


def test_named_renames_a_generated_node_everywhere():
    g = gc.Graph()
    x = g.input("x", shape=(2,))
    h = gc.relu(x).named("hidden")
    out = g.output("out", h * 2.0)
    assert "relu" not in g.nx and g.nx.nodes["hidden"]["op"] == "relu"
    assert ir.operands(g.nx, out.id)[0] == "hidden"
    with pytest.raises(gc.GraphError, match="already has a name"):
        h.named("again")
    with pytest.raises(gc.GraphError, match="taken"):
        gc.relu(x).named("x")


def test_output_names_a_generated_node_or_adds_an_identity():
    g = gc.Graph()
    x = g.input("x", shape=(2,))
    direct = g.output("y", x + 1.0)
    assert direct.id == "y" and direct.op == "add"
    alias = g.output("x_out", x)  # an input cannot be renamed: an identity carries the name
    assert alias.op == "identity" and ir.operands(g.nx, "x_out") == ["x"]
    again = g.output("y2", direct)  # already an output: a second name is a new identity
    assert again.op == "identity" and g.outputs == ["y", "x_out", "y2"]
    with pytest.raises(gc.GraphError, match="twice"):
        g.output("y", x)
    values = gc.compile(g).forward({"x": np.array([1.0, 2.0])})
    assert list(values) == ["y", "x_out", "y2"]
    np.testing.assert_array_equal(values["y2"], [2.0, 3.0])


def test_generated_names_are_deterministic():
    def build():
        g = gc.Graph()
        x = g.input("x", shape=(2,))
        g.output("o", gc.exp(x) + gc.exp(x) * 2 + 1)
        return list(g.nx.nodes), [tuple(e) for e in g.nx.edges(data="arg")]

    assert build() == build()
    assert build()[0] == ["x", "exp", "exp_1", "const", "mul", "add", "const_1", "o"]


def test_consts_from_numbers_and_arrays():
    g = gc.Graph()
    x = g.input("x", shape=(2, 3))
    c = g.const(np.arange(3), name="row")
    assert c.shape == (3,) and g.nx.nodes["row"]["attrs"]["value"].dtype == np.float64
    g.output("o", x * c + np.float32(0.5))
    value = gc.compile(g).forward({"x": np.ones((2, 3))})["o"]
    np.testing.assert_array_equal(value, np.ones((2, 3)) * np.arange(3) + 0.5)


def test_custom_elementwise_op_is_usable_like_a_builtin():
    swish = gc.elementwise("swish_builder_test", lambda x: x / (1 + sympy.exp(-x)))
    g = gc.Graph()
    x = g.input("x", shape=(4,))
    g.output("o", swish(x))
    v = np.array([-2.0, -0.5, 0.0, 3.0])
    np.testing.assert_allclose(gc.compile(g).forward({"x": v})["o"], v / (1 + np.exp(-v)), rtol=1e-14)
    with pytest.raises(gc.GraphError, match="built in"):
        gc.elementwise("relu", lambda x: x)
    with pytest.raises(gc.GraphError, match="identifier"):
        gc.elementwise("not a name", lambda x: x)


# -- from_networkx ----------------------------------------------------------------------------
def raw_digraph() -> nx.DiGraph:
    graph = nx.DiGraph(name="raw")
    graph.add_node("x", op="input", shape=("N", 2))
    graph.add_node("W", op="param", shape=(2, 3))
    graph.add_node("z", op="matmul")
    graph.add_node("h", op="tanh")
    graph.add_node("two", op="const", attrs={"value": 2.0})
    graph.add_node("o", op="mul")
    graph.add_edge("x", "z", arg=0)
    graph.add_edge("W", "z", arg=1)
    graph.add_edge("z", "h")  # one operand: arg may be left out
    graph.add_edge("h", "o", arg=0)
    graph.add_edge("two", "o", arg=1)
    return graph


def test_from_networkx_digraph_fills_in_lists_and_shapes():
    g = gc.from_networkx(raw_digraph())
    assert isinstance(g.nx, nx.MultiDiGraph)
    assert (g.name, g.inputs, g.params, g.outputs) == ("raw", ["x"], ["W"], ["o"])
    assert g.nx.nodes["o"]["shape"] == (N, 3)
    assert ir.operands(g.nx, "h") == ["z"]
    rng = np.random.default_rng(0)
    xv, wv = rng.standard_normal((4, 2)), rng.standard_normal((2, 3))
    np.testing.assert_allclose(gc.compile(g).forward({"x": xv, "W": wv})["o"], 2 * np.tanh(xv @ wv), rtol=1e-14)


def test_from_networkx_multidigraph_is_used_as_is():
    graph = nx.MultiDiGraph(raw_digraph())
    g = gc.from_networkx(graph, name="renamed")
    assert g.nx is graph and g.name == "renamed"


def test_compile_accepts_a_raw_networkx_graph():
    rng = np.random.default_rng(1)
    xv, wv = rng.standard_normal((3, 2)), rng.standard_normal((2, 3))
    value = gc.compile(raw_digraph()).forward({"x": xv, "W": wv})["o"]
    np.testing.assert_allclose(value, 2 * np.tanh(xv @ wv), rtol=1e-14)


def test_from_networkx_const_given_as_a_list():
    graph = nx.MultiDiGraph()
    graph.add_node("x", op="input", shape=(3,))
    graph.add_node("c", op="const", attrs={"value": [1, 2, 3]})
    graph.add_node("y", op="mul")
    graph.add_edge("x", "y", arg=0)
    graph.add_edge("c", "y", arg=1)
    g = gc.from_networkx(graph)
    assert g.nx.nodes["c"]["shape"] == (3,)
    np.testing.assert_array_equal(gc.compile(g).forward({"x": np.full(3, 2.0)})["y"], [2.0, 4.0, 6.0])


def _raw(**nodes) -> nx.MultiDiGraph:
    graph = nx.MultiDiGraph()
    for name, data in nodes.items():
        graph.add_node(name, **data)
    return graph


@pytest.mark.parametrize("make, error, fragments", [
    (lambda: nx.Graph(), gc.GraphError, ["DiGraph", "Graph"]),
    (lambda: _raw(x={"shape": (3,)}), gc.GraphError, ["'x'", "'op'"]),
    (lambda: _raw(x={"op": "inptu", "shape": (3,)}), gc.GraphError, ["'x'", "'inptu'", "input"]),
    (lambda: _raw(x={"op": "input", "shape": (-3,)}), gc.ShapeError, ["'x'", "(op input)", "-3"]),
    (lambda: _raw(x={"op": "input"}), gc.ShapeError, ["'x'", "(op input)", "shape"]),
])
def test_from_networkx_errors(make, error, fragments):
    with pytest.raises(error) as info:
        gc.from_networkx(make())
    for fragment in fragments:
        assert fragment in str(info.value)


def test_from_networkx_needs_arg_on_multi_operand_edges():
    graph = _raw(x={"op": "input", "shape": (3,)}, y={"op": "add"})
    graph.add_edge("x", "y")
    graph.add_edge("x", "y")
    with pytest.raises(gc.GraphError) as info:
        gc.from_networkx(graph)
    assert "node 'y' (op add)" in str(info.value) and "'arg'" in str(info.value)


def test_from_networkx_shape_mismatch_names_both_shapes():
    graph = _raw(a={"op": "input", "shape": (3,)}, b={"op": "input", "shape": (4,)}, y={"op": "add"})
    graph.add_edge("a", "y", arg=0)
    graph.add_edge("b", "y", arg=1)
    with pytest.raises(gc.ShapeError) as info:
        gc.from_networkx(graph)
    assert "node 'y' (op add)" in str(info.value) and "(3,)" in str(info.value) and "(4,)" in str(info.value)


def test_from_networkx_cycle():
    graph = _raw(x={"op": "input", "shape": (3,)}, a={"op": "neg"}, b={"op": "neg"})
    graph.add_edge("a", "b", arg=0)
    graph.add_edge("b", "a", arg=0)
    with pytest.raises(gc.GraphError) as info:
        gc.from_networkx(graph)
    assert "cycle" in str(info.value) and "'a'" in str(info.value) and "'b'" in str(info.value)


def test_a_number_next_to_a_float32_value_keeps_the_op_float32():
    import numpy as np

    g = gc.Graph("f32")
    p = g.param("p", shape=(), dtype="float32")
    y = g.input("y", shape=(), dtype="float32")
    g.output("loss", gc.bce(0.05 + 0.9 * gc.sigmoid(p), y) * 1.0)
    assert {d["dtype"] for _, d in g.nx.nodes(data=True)} == {"float32"}
    value, grads = gc.compile(g).value_and_grad({"p": np.float32(1.07), "y": np.float32(0.449)})
    assert value["loss"].dtype == np.float32 and grads["p"].dtype == np.float32

    def loss(q):
        s = 0.05 + 0.9 / (1 + np.exp(-q))
        return -(0.449 * np.log(s) + (1 - 0.449) * np.log1p(-s))

    numeric = (loss(1.07 + 1e-6) - loss(1.07 - 1e-6)) / 2e-6
    assert abs(float(grads["p"]) - numeric) < 1e-5
