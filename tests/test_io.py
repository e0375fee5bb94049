"""Graph files: exact round trips, the safe expression parser, and hostile files refused."""

from __future__ import annotations

import builtins
import json
import pickle

import networkx as nx
import numpy as np
import pytest
import sympy

import graphc as gc
from graphc import io, ir
from graphc.ops.base import arg_symbols


def assert_same_graph(a: nx.MultiDiGraph, b: nx.MultiDiGraph) -> None:
    """Same nodes in the same order with the same attributes, same edges, same graph lists."""
    assert list(a.nodes) == list(b.nodes)
    for node in a.nodes:
        da, db = a.nodes[node], b.nodes[node]
        assert da[ir.OP] == db[ir.OP], node
        assert da[ir.DTYPE] == db[ir.DTYPE], node
        assert da[ir.SHAPE] == db[ir.SHAPE] and all(type(x) is type(y) for x, y in zip(da[ir.SHAPE], db[ir.SHAPE]))
        assert sorted(da[ir.ATTRS]) == sorted(db[ir.ATTRS]), node
        for key, value in da[ir.ATTRS].items():
            other = db[ir.ATTRS][key]
            if isinstance(value, np.ndarray):
                assert isinstance(other, np.ndarray) and other.dtype == value.dtype
                np.testing.assert_array_equal(value, other)
            else:
                assert type(value) is type(other) and value == other, (node, key)
        assert ir.operands(a, node) == ir.operands(b, node)
    assert sorted(a.edges(keys=True, data=ir.ARG)) == sorted(b.edges(keys=True, data=ir.ARG))
    for key in (ir.NAME, ir.INPUTS, ir.PARAMS, ir.OUTPUTS):
        assert a.graph[key] == b.graph[key]


def kitchen_sink() -> gc.Graph:
    """A graph touching every kind of attr value: arrays, infinities, tuples, symbols, None."""
    g = gc.Graph("sink")
    x = g.input("x", shape=("N", 3), dtype="float32")  # one float dtype: a mix is an error
    W = g.param("W", shape=(3, 4), dtype="float32")
    table = g.const(np.array([[1.0, -np.inf], [np.nan, 2.5]]), name="table")
    h = gc.leaky_relu(x @ gc.identity(W), alpha=0.2)
    sq = h * h  # one value used twice by one op: parallel edges
    r = gc.reshape(gc.transpose(sq, axes=(1, 0)), (4, "N"))
    s = gc.sum(r, axis=(0, 1), keepdims=True) + gc.mean(x, axis=None) + gc.max(table)
    g.output("s", s)
    g.output("b", gc.broadcast_to(gc.sum(x, axis=1, keepdims=True), ("N", 3)))
    return g


def roundtrip(graph, tmp_path, name="g.json") -> gc.Graph:
    path = gc.save(graph, tmp_path / name)
    return gc.load(path)


def test_kitchen_sink_round_trips_exactly(tmp_path):
    g = kitchen_sink()
    back = roundtrip(g, tmp_path)
    assert_same_graph(g.nx, back.nx)
    assert isinstance(back, gc.Graph) and back.name == "sink"


def test_zoo_graphs_round_trip_and_compute_the_same(tmp_path):
    for name in gc.zoo.NAMES:
        g, feeds = gc.zoo.get(name)()
        back = roundtrip(g, tmp_path, f"{name}.json")
        assert_same_graph(g.nx, back.nx)
        want, got = gc.compile(g).forward(feeds), gc.compile(back).forward(feeds)
        assert sorted(want) == sorted(got)
        for key in want:
            np.testing.assert_array_equal(want[key], got[key])


def test_saving_twice_gives_the_same_bytes(tmp_path):
    a = gc.save(kitchen_sink(), tmp_path / "a.json").read_bytes()
    b = gc.save(kitchen_sink(), tmp_path / "b.json").read_bytes()
    assert a == b


def test_the_file_is_networkx_node_link_data(tmp_path):
    path = gc.save(kitchen_sink(), tmp_path / "g.json")
    data = json.loads(path.read_text())
    assert data["graphc"] == io.FORMAT
    G = nx.node_link_graph(data, edges="edges")
    assert isinstance(G, nx.MultiDiGraph)
    assert list(G.nodes) == list(kitchen_sink().nx.nodes)
    assert G.nodes["x"]["shape"] == ["N", 3]


def test_a_custom_op_travels_as_an_expression(tmp_path):
    # A name no other test uses, so loading has to create the op from the file alone.
    swish = gc.elementwise("swish_io_test", lambda x: x * gc.ops.functions.sigmoid(x) + sympy.Rational(1, 3))
    g = gc.Graph("custom")
    x = g.input("x", shape=(5,))
    g.output("y", swish(x))
    path = gc.save(g, tmp_path / "c.json")
    data = json.loads(path.read_text())
    assert data["custom_ops"]["swish_io_test"]["arity"] == 1
    assert "sigmoid(x0)" in data["custom_ops"]["swish_io_test"]["expr"]
    # Loading into the same process finds the same definition and reuses it.
    back = gc.load(path)
    assert_same_graph(g.nx, back.nx)
    # Under another name, the op is created from the file's expression alone.
    data["custom_ops"]["swish_io_test2"] = data["custom_ops"].pop("swish_io_test")
    data["nodes"][-1]["op"] = "swish_io_test2"
    other = tmp_path / "c2.json"
    other.write_text(json.dumps(data))
    fresh = gc.load(other)
    xs = np.linspace(-3, 3, 5)
    want = xs / (1 + np.exp(-xs)) + 1 / 3
    np.testing.assert_allclose(gc.compile(fresh).forward({"x": xs})["y"], want, rtol=1e-12)
    assert gc.ops.custom_ops(fresh)["swish_io_test2"].builtin is False
    assert "swish_io_test2" not in gc.ops.OPS and "swish_io_test2" not in gc.ops.custom_ops(g)


EXPRESSIONS = [
    "x0", "x0 + x1", "x0 - 2 * x1", "x0 / (1 + exp(-x0))", "x0 ** 2 + x1 ** (1/2)", "Max(x0, 0) + Min(x0, x1, 1)",
    "sigmoid(x0) * softplus(x1)", "log1p(x0 ** 2) + log(1 + x1 ** 2)", "tanh(x0) * sin(x1) - cos(x0)",
    "Abs(x0) + sqrt(x1 ** 2 + 1)", "0.5 * x0 * (1 + tanh(0.7978845608 * (x0 + 0.044715 * x0 ** 3)))",
    "-x0 + (-3) ** 2 * x1 - 7/3", "exp(1) * x0 + (-x1) ** 3",
]


@pytest.mark.parametrize("text", EXPRESSIONS)
def test_print_then_parse_is_the_identity(text):
    expr = io.parse_expression(text, 2)
    again = io.parse_expression(io.print_expression(expr, 2), 2)
    assert again == expr


@pytest.mark.parametrize("text", EXPRESSIONS)
def test_parsed_expressions_compute_what_python_computes(text):
    # Reference: the same text evaluated by numpy with numpy's functions (trusted text, test only).
    names = {"exp": np.exp, "log": np.log, "sqrt": np.sqrt, "sin": np.sin, "cos": np.cos, "tanh": np.tanh,
             "Abs": np.abs, "Max": lambda *a: np.max(a), "Min": lambda *a: np.min(a), "log1p": np.log1p,
             "sigmoid": lambda z: 1 / (1 + np.exp(-z)), "softplus": lambda z: np.log1p(np.exp(z))}
    x0, x1 = 0.7, 1.3
    want = builtins.eval(text, {"__builtins__": {}}, {**names, "x0": x0, "x1": x1})  # noqa: S307 - test reference
    expr = io.parse_expression(text, 2)
    s0, s1 = arg_symbols(2)
    got = float(expr.subs({s0: x0, s1: x1}).rewrite(sympy.exp).evalf())
    assert got == pytest.approx(want, rel=1e-12)


HOSTILE = [
    ("__import__('os').system('touch PWNED')", "calls may only name"),
    ("x0.__class__", "Attribute is not allowed"),
    ("(lambda: 1)()", "calls may only name"),
    ("lambda: 1", "Lambda is not allowed"),
    ("[x0]", "List is not allowed"),
    ("x0 if x0 else 1", "IfExp is not allowed"),
    ("open('secret')", "calls may only name"),
    ("exp(x0, base=2)", "no keyword"),
    ("exp(*[x0])", "no *arguments"),
    ("exp(x0, x0)", "takes one argument"),
    ("Max(x0)", "two or more"),
    ("x1", "name 'x1' is not an operand"),
    ("y", "name 'y' is not an operand"),
    ("9 ** 9 ** 9", "too large"),
    ("10 ** 10000000000000000", "larger than"),
    ("1e999", "not finite"),
    ("'text'", "only real numbers"),
    ("True", "only real numbers"),
    ("1j", "only real numbers"),
    ("x0 @ x0", "MatMult"),
    ("x0 // 2", "FloorDiv"),
    ("x0 < 1", "Compare is not allowed"),
    ("not x0", "UnaryOp is not allowed"),
    ("f'{x0}'", "JoinedStr is not allowed"),
    ("exp", "not an operand"),
    ("(x0", "not a valid expression"),
    ("x0; import os", "not a valid expression"),
    ("-" * 100 + "x0", "nests deeper"),
    ("(" * 300 + "x0" + ")" * 300, "not a valid expression"),
    ("Max(" + ", ".join(["x0"] * 2500) + ")", "more than 2000 syntax nodes"),
    ("+".join(["x0"] * 3000), "not a valid expression"),
    ("log(0)", "infinity or NaN"),
    ("1/0", "infinity or NaN"),
]


@pytest.mark.parametrize("text,message", HOSTILE, ids=[f"{k}:{t[:24]}" for k, (t, _) in enumerate(HOSTILE)])
def test_hostile_expressions_are_refused_without_running(text, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(gc.GraphError, match="custom op 'evil', field 'expr'") as caught:
        _load_custom(tmp_path, text)
    assert message in str(caught.value)
    assert "evil" not in gc.ops.OPS
    assert not (tmp_path / "PWNED").exists()


def _load_custom(tmp_path, text, arity=1):
    data = gc.io.to_data(_plain())
    data["custom_ops"] = {"evil": {"arity": arity, "expr": text, "kink": ""}}
    data["nodes"][-1]["op"] = "evil"
    path = tmp_path / "evil.json"
    path.write_text(json.dumps(data))
    return gc.load(path)


def _plain() -> gc.Graph:
    g = gc.Graph("plain")
    x = g.input("x", shape=(2,))
    g.output("y", gc.exp(x))
    return g


def test_loading_never_evaluates_strings_or_unpickles(tmp_path, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("loading a graph file must not run this")

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(sympy.parsing.sympy_parser, "parse_expr", forbidden)
    g = _load_custom(tmp_path, "x0 * sigmoid(x0) + Max(x0, 0) ** 2")
    assert g["y"].op == "evil"
    assert "evil" not in gc.ops.OPS


def _edit(tmp_path, change):
    data = gc.io.to_data(kitchen_sink())
    change(data)
    path = tmp_path / "bad.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def _node(data, node_id):
    return next(n for n in data["nodes"] if n["id"] == node_id)


MALFORMED = [
    (lambda d: d.update(graphc=99), "format version 1, found 99; a newer graphc"),
    (lambda d: d.pop("graphc"), "format version"),
    (lambda d: d.update(directed=False), "'directed' must be true"),
    (lambda d: d.pop("nodes"), "missing field 'nodes'"),
    (lambda d: _node(d, "x").update(op="os.system"), "node 'x': unknown op 'os.system'"),
    (lambda d: _node(d, "x").update(op="swish_io_test"), "node 'x': unknown op 'swish_io_test'"),
    (lambda d: _node(d, "x").update(shape=["N", -1]), "node 'x' (op input): field 'shape'"),
    (lambda d: _node(d, "x").update(shape=[1.5]), "node 'x' (op input): field 'shape'"),
    (lambda d: _node(d, "x").update(dtype="object"), "node 'x' (op input): field 'dtype'"),
    (lambda d: _node(d, "x").update(code="print(1)"), "node 'x': unknown field(s) 'code'"),
    (lambda d: _node(d, "table")["attrs"].update(value={"pickle": "gASV"}), "node 'table' (op const), attr 'value'"),
    (lambda d: _node(d, "table")["attrs"]["value"]["array"].update(data=[1, 2]), "flat list of 4"),
    (lambda d: _node(d, "leaky_relu")["attrs"].update(beta=1.0), "unknown attr(s) beta"),
    (lambda d: _node(d, "sum")["attrs"].update(axis="rows"), "node 'sum'"),
    (lambda d: d["edges"].append({"source": "x", "target": "ghost", "arg": 0}), "'ghost' is not a node"),
    (lambda d: d["edges"].append({"source": "s", "target": "x", "arg": 0}), "node 'x' (op input): expected 0"),
    (lambda d: next(e for e in d["edges"] if e["target"] == "identity").update(source="s"), "cycle"),
    (lambda d: d["graph"].update(outputs=["nowhere"]), "output 'nowhere'"),
    (lambda d: d["graph"].update(inputs=[]), "not listed in graph attribute 'inputs'"),
    (lambda d: d.update(custom_ops={"relu": {"arity": 1, "expr": "x0"}}), "custom op 'relu': the name is a built-in"),
    (lambda d: d.update(custom_ops={"big": {"arity": 99, "expr": "x0"}}), "custom op 'big': field 'arity'"),
    (lambda d: d.update(nodes={"x": 1}), "field 'nodes' must be a list"),
    (lambda d: d["nodes"].append(d["nodes"][0]), "unique"),
]


@pytest.mark.parametrize("change,message", MALFORMED)
def test_malformed_files_name_the_bad_node_or_field(change, message, tmp_path):
    with pytest.raises(gc.GraphcError) as caught:
        gc.load(_edit(tmp_path, change))
    assert message in str(caught.value)
    assert "bad.json" in str(caught.value)


@pytest.mark.parametrize("text,message", [
    ("{not json", "not valid JSON"),
    ('{"graphc": 1, "graphc": 1}', "appears twice"),
    ('{"graphc": NaN}', "NaN is not JSON"),
    ("[" * 100000 + "]" * 100000, "not valid JSON"),
    ("[]", "top level must be a JSON object"),
])
def test_files_that_are_not_graph_json_are_refused(text, message, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(gc.GraphcError, match="bad.json") as caught:
        gc.load(path)
    assert message in str(caught.value)


def test_a_missing_or_binary_file_is_a_graphc_error(tmp_path):
    with pytest.raises(gc.GraphcError, match="cannot read graph file"):
        gc.load(tmp_path / "absent.json")
    (tmp_path / "bin.json").write_bytes(b"\x80\x04\x95 pickle")
    with pytest.raises(gc.GraphcError, match="not UTF-8"):
        gc.load(tmp_path / "bin.json")


def test_a_file_defines_its_own_custom_op_beside_a_same_named_one_in_the_process():
    twice = gc.elementwise("twice_io_test", lambda x: 2 * x)
    mine = gc.Graph("mine")
    x = mine.input("x", shape=(2,))
    mine.output("y", twice(x))
    data = gc.io.to_data(_plain())
    data["custom_ops"] = {"twice_io_test": {"arity": 1, "expr": "3 * x0"}}
    data["nodes"][-1]["op"] = "twice_io_test"
    loaded = gc.io.from_data(data)
    xs = np.array([1.0, -2.0])
    np.testing.assert_array_equal(gc.compile(loaded).forward({"x": xs})["y"], 3 * xs)
    np.testing.assert_array_equal(gc.compile(mine).forward({"x": xs})["y"], 2 * xs)


def test_values_that_a_file_cannot_hold_are_refused_on_save(tmp_path):
    g = gc.Graph("weird")
    x = g.input("x", shape=(2,))
    g.output("y", gc.exp(x) + 1)
    g.nx.nodes["const"]["attrs"]["value"] = {"a": 1}
    with pytest.raises(gc.GraphcError):
        gc.save(g, tmp_path / "w.json")
