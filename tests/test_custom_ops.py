"""Custom ops live in the registry the graph carries, never in a process-wide table.

Each graph knows the built-in ops (final once graphc is imported) and its own custom ops;
copies, compiled programs, saved modules and graph files carry them. The values are checked
against numpy written here by hand.
"""

from __future__ import annotations

import copy
import importlib.util
import json

import networkx as nx
import numpy as np
import pytest
import sympy

import graphc as gc
from graphc import ir
from graphc.ops import OPS, Op, custom_ops, op_for

XS = np.array([-1.5, 0.25, 2.0])


def net(op_function, name: str = "net") -> gc.Graph:
    g = gc.Graph(name)
    x = g.input("x", shape=(3,))
    w = g.param("w", shape=(3,))
    g.output("loss", gc.sum(op_function(w * x)))
    return g


def cube_plus():
    return gc.elementwise("bend", lambda z: z**3 + z)


def double_exp():
    return gc.elementwise("bend", lambda z: 2 * sympy.exp(z))


def cube_plus_numpy(w, x):  # loss = sum((w x)^3 + w x); d/dw = (3 (w x)^2 + 1) x
    z = w * x
    return np.sum(z**3 + z), (3 * z**2 + 1) * x


def double_exp_numpy(w, x):
    z = w * x
    return np.sum(2 * np.exp(z)), 2 * np.exp(z) * x


W = np.array([0.5, -1.0, 0.75])


def check(prog, reference):
    value, grads = prog.value_and_grad({"x": XS, "w": W})
    want_value, want_grad = reference(W, XS)
    np.testing.assert_allclose(value["loss"], want_value, rtol=1e-12)
    np.testing.assert_allclose(grads["w"], want_grad, rtol=1e-12)


def test_two_graphs_define_different_ops_of_one_name_and_compile_to_different_code():
    first, second = net(cube_plus(), "first"), net(double_exp(), "second")
    a, b = gc.compile(first), gc.compile(second)
    check(a, cube_plus_numpy)
    check(b, double_exp_numpy)
    assert "numpy.exp(" in b.forward_source and "numpy.exp(" not in a.source
    assert a.forward_source.replace("first", "") != b.forward_source.replace("second", "")
    assert custom_ops(first)["bend"] is not custom_ops(second)["bend"]
    assert "bend" not in OPS
    # compiling the first again, after the second exists, gives the first's code
    assert gc.compile(net(cube_plus(), "first")).source == a.source


def test_an_op_made_by_gc_elementwise_is_unknown_to_a_graph_it_was_never_applied_in():
    net(cube_plus())
    raw = nx.MultiDiGraph()
    raw.add_node("x", op="input", shape=(3,))
    raw.add_node("y", op="bend")
    raw.add_edge("x", "y", arg=0)
    with pytest.raises(gc.GraphError, match="unknown op 'bend'"):
        gc.from_networkx(raw)
    made = gc.from_networkx(raw.copy(), ops=[double_exp()])
    np.testing.assert_allclose(gc.compile(made).forward({"x": XS})["y"], 2 * np.exp(XS), rtol=1e-12)


def test_one_graph_refuses_a_second_definition_of_a_name_and_accepts_the_same_one():
    g = gc.Graph("both")
    x = g.input("x", shape=(3,))
    y = cube_plus()(x)
    same = cube_plus()(y)  # another record, the same expression: one op
    assert same.op == "bend" and len(custom_ops(g)) == 1
    nodes_before = set(g.nx)
    with pytest.raises(gc.GraphError, match="custom op 'bend': this graph already has an op of that name"):
        double_exp()(x)
    assert set(g.nx) == nodes_before  # refused before anything was added


def test_a_custom_op_survives_copies_compilation_and_the_saved_module(tmp_path):
    g = net(cube_plus())
    for copied in (ir.copy_graph(g.nx), g.nx.copy(), copy.deepcopy(g.nx), nx.MultiDiGraph(g.nx)):
        assert op_for(copied, "bend") is custom_ops(g)["bend"]
        check(gc.compile(gc.from_networkx(copied)), cube_plus_numpy)
    prog = gc.compile(g)
    for stage in prog.stages.values():
        assert custom_ops(stage) == {} or custom_ops(stage)["bend"] is custom_ops(g)["bend"]
    path = prog.save(tmp_path / "bend_gen.py")
    spec = importlib.util.spec_from_file_location("bend_gen", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    value, grads = module.value_and_grad({"x": XS, "w": W})
    want_value, want_grad = cube_plus_numpy(W, XS)
    np.testing.assert_allclose(value["loss"], want_value, rtol=1e-12)
    np.testing.assert_allclose(grads["w"], want_grad, rtol=1e-12)


def test_a_custom_op_survives_a_json_round_trip_without_touching_the_built_in_table(tmp_path):
    g = net(double_exp())
    builtins_before = dict(OPS)
    path = gc.save(g, tmp_path / "bend.json")
    assert json.loads(path.read_text())["custom_ops"]["bend"]["arity"] == 1
    loaded = gc.load(path)
    assert dict(OPS) == builtins_before and "bend" not in OPS
    assert loaded.nx.graph[ir.CUSTOM_OPS]["bend"] is not custom_ops(g)["bend"]  # the file's own record
    check(gc.compile(loaded), double_exp_numpy)
    other = net(cube_plus(), "other")  # a same-named op elsewhere leaves the loaded graph alone
    check(gc.compile(other), cube_plus_numpy)
    check(gc.compile(gc.load(path)), double_exp_numpy)


def test_a_graph_of_gc_grad_carries_the_custom_op():
    g = net(cube_plus())
    twice = gc.grad(g, "loss", wrt=["w"])
    assert op_for(twice, "bend") is custom_ops(g)["bend"]
    _, want_grad = cube_plus_numpy(W, XS)
    outputs = gc.compile(twice).forward({"x": XS, "w": W})
    np.testing.assert_allclose(outputs[twice.outputs[-1]], want_grad, rtol=1e-12)


def test_a_custom_tensor_op_with_a_vjp_is_carried_by_its_graph_alone():
    def roll_vjp(node, args, g, k):
        return g.editor.add(roll, [g], {"shift": -node.editor.graph.nodes[node.id]["attrs"]["shift"]})

    roll = Op("roll", 1, lambda shapes, attrs, node=None, op=None: shapes[0], attrs={"shift": 1},
              lower=lambda ctx, args, attrs, node: f"{ctx.numpy}.roll({args[0]}, {attrs['shift']})",
              reference=lambda values, attrs: np.roll(values[0], attrs["shift"]),
              vjp=roll_vjp, doc="the elements shifted cyclically", builtin=False)
    g = gc.Graph("rolled")
    w = g.param("w", shape=(3,))
    c = g.input("c", shape=(3,))
    g.output("loss", gc.sum(gc.apply(roll, w, shift=1) * c))
    value, grads = gc.compile(g).value_and_grad({"w": W, "c": XS})
    np.testing.assert_allclose(value["loss"], np.sum(np.roll(W, 1) * XS), rtol=1e-12)
    np.testing.assert_allclose(grads["w"], np.roll(XS, -1), rtol=1e-12)
    other = gc.Graph("plain")
    with pytest.raises(gc.GraphError, match="unknown op 'roll'"):
        gc.apply("roll", other.input("x", shape=(3,)))


def test_redefining_a_built_in_op_is_refused_everywhere():
    from graphc.ops.base import register

    with pytest.raises(gc.GraphError, match="'relu' is built in"):
        gc.elementwise("relu", lambda z: z)
    with pytest.raises(gc.GraphError, match="final once graphc is imported"):
        register(Op("brand_new", 1, lambda shapes, attrs, node=None, op=None: shapes[0]))
    impostor = Op("relu", 1, lambda shapes, attrs, node=None, op=None: shapes[0], elementwise=True,
                  fn=lambda z: z, builtin=False)
    g = gc.Graph("impostor")
    x = g.input("x", shape=(3,))
    with pytest.raises(gc.GraphError, match="'relu' is built in"):
        gc.apply(impostor, x)
    assert OPS["relu"].kink and "brand_new" not in OPS


def test_verify_refuses_a_custom_ops_attribute_that_is_not_a_registry():
    g = net(cube_plus())
    g.nx.graph[ir.CUSTOM_OPS] = {"bend": custom_ops(g)["bend"]}  # a plain dict: anyone could change it
    with pytest.raises(gc.GraphError, match="'custom_ops' must be a graphc OpRegistry"):
        gc.verify(g.nx)
