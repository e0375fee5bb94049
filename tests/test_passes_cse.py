"""cse and dce: structure (isomorphism with attributes), idempotence, verify, ids kept."""

import numpy as np

import graphc as gc
from graphc import ir
from graphc.passes.cse import cse
from graphc.passes.dce import dce
from graphc.passes.edit import equivalent
from graphc.passes.stats import Stats


def run(pass_, graph):
    out = gc.verify(pass_(graph))
    again = pass_(out)
    assert Stats.of(again).changes == 0 and equivalent(again, out)
    return out


def layer(x, W, b):
    return gc.tanh(x @ W + b)


def test_a_layer_written_twice_is_computed_once():
    g = gc.Graph("t")
    x = g.input("x", shape=("N", 2))
    W = g.param("W", shape=(2, 2))
    b = g.param("b", shape=(2,))
    g.output("y", layer(x, W, b) * layer(x, W, b))
    want = gc.Graph("t")
    x2 = want.input("x", shape=("N", 2))
    W2 = want.param("W", shape=(2, 2))
    b2 = want.param("b", shape=(2,))
    h = layer(x2, W2, b2)
    want.output("y", h * h)
    out = run(cse, g.nx)
    assert equivalent(out, want.nx)
    assert Stats.of(cse(g.nx)).passes == {"cse": {"merged": 3}}
    assert sorted(n for n, m in out.nodes(data=ir.MARK) if m == "merged") == ["add", "matmul", "tanh"]


def test_commutative_operands_match_in_any_order_but_others_do_not():
    g = gc.Graph("t")
    a = g.input("a", shape=(3,))
    b = g.input("b", shape=(3,))
    g.output("s", (a + b) * (b + a))
    g.output("d", (a - b) * (b - a))
    out = run(cse, g.nx)
    assert len(set(ir.operands(out, "s"))) == 1
    assert len(set(ir.operands(out, "d"))) == 2


def test_constants_compare_by_value_and_sources_never_merge():
    g = gc.Graph("t")
    a = g.input("a", shape=(3,))
    b = g.input("b", shape=(3,))
    g.output("y", (a * 2.0 + b * 2.0) + (a * -0.0) + (a * 0.0) + (a * np.array([2.0, 2.0, 2.0])))
    out = run(cse, g.nx)
    consts = sorted((float(np.sum(out.nodes[n]["attrs"]["value"])), str(np.signbit(out.nodes[n]["attrs"]["value"])))
                    for n in out.nodes if out.nodes[n]["op"] == "const")
    assert consts == [(0.0, "False"), (-0.0, "True"), (2.0, "False"), (6.0, "[False False False]")]
    assert out.nodes["a"]["op"] == "input" and out.nodes["b"]["op"] == "input"


def test_outputs_and_gradients_keep_their_ids():
    g = gc.Graph("t")
    x = g.input("x", shape=(3,))
    internal = gc.exp(x)
    g.output("y", gc.sin(internal))
    g.output("z", gc.exp(x))        # the same value as `internal`, an output
    g.output("w", gc.exp(x) * 1.0)  # another output computing it again
    g.nx.graph[ir.GRADS] = {"x": "w"}
    out = run(cse, g.nx)
    assert {"y", "z", "w"} <= set(out.nodes) and out.graph[ir.OUTPUTS] == ["y", "z", "w"]
    assert ir.operands(out, "y") == ["z"], "the merged value took the output's id"
    assert out.nodes["z"]["op"] == "exp"


def test_cse_is_linear_enough_for_ten_thousand_nodes():
    g = gc.Graph("t")
    x = g.input("x", shape=(2,))
    h = x
    for _ in range(2500):
        h = gc.sin(h) + gc.sin(h)
    g.output("y", h)
    out = cse(g.nx)
    assert Stats.of(out).passes["cse"]["merged"] == 2500
    assert out.number_of_nodes() == 1 + 2 * 2500  # x, then one sin and one add per step


def test_dce_keeps_named_values_and_what_they_need():
    g = gc.Graph("t")
    x = g.input("x", shape=(3,))
    unused = g.input("u", shape=(3,))
    p = g.param("p", shape=(3,))
    gc.log(x) * gc.exp(unused)  # dead
    g.output("y", gc.exp(x) * p)
    kept = gc.sin(x) + 1
    g.nx.graph[ir.GRADS] = {"p": kept.id}
    out = run(dce, g.nx)
    want = gc.Graph("t")
    x2 = want.input("x", shape=(3,))
    want.input("u", shape=(3,))
    p2 = want.param("p", shape=(3,))
    want.output("y", gc.exp(x2) * p2)
    gc.sin(x2) + 1
    assert equivalent(out, want.nx)
    assert Stats.of(dce(g.nx)).passes == {"dce": {"removed": 3}}
    assert list(out.nodes) == [n for n in g.nx.nodes if n in out], "node order kept"
