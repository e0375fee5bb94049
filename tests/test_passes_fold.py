"""fold: constants computed by the op's own lowering; structure, idempotence, limits."""

import numpy as np

import graphc as gc
from graphc import ir
from graphc.passes.dce import dce
from graphc.passes.edit import MAX_CONST_SIZE, equivalent
from graphc.passes.fold import fold
from graphc.passes.stats import Stats


def run(graph):
    out = gc.verify(dce(fold(graph)))
    again = fold(out)
    assert Stats.of(again).changes == 0 and equivalent(again, out)
    return out


def test_constant_subgraphs_become_one_const():
    g = gc.Graph("t")
    x = g.input("x", shape=(2,))
    c = gc.exp(g.const([0.0, 1.0])) * 2 + gc.sum(g.const(np.arange(6.0).reshape(2, 3)), axis=1)
    g.output("y", x * c)
    want = gc.Graph("t")
    x2 = want.input("x", shape=(2,))
    expected = np.exp([0.0, 1.0]) * 2 + np.array([3.0, 12.0])  # numpy by hand
    want.output("y", x2 * want.const(expected))
    out = run(g.nx)
    assert equivalent(out, want.nx)
    (const,) = [n for n in ir.operands(out, "y") if out.nodes[n]["op"] == "const"]
    np.testing.assert_allclose(out.nodes[const]["attrs"]["value"], expected, rtol=1e-15)
    assert fold(g.nx).nodes[const][ir.MARK] == "folded"


def test_an_output_folds_in_place_and_keeps_its_id_and_phase():
    g = gc.Graph("t")
    x = g.input("x", shape=())
    g.output("y", x + 1)
    g.output("z", gc.log(g.const(2.0)) * gc.tanh(g.const(0.5)))
    g.nx.nodes["z"][ir.PHASE] = ir.FORWARD
    out = run(g.nx)
    assert out.nodes["z"]["op"] == "const" and out.nodes["z"][ir.PHASE] == ir.FORWARD
    assert out.nodes["z"]["attrs"]["value"] == np.log(2.0) * np.tanh(0.5)


def test_inputs_params_and_huge_results_are_not_folded():
    g = gc.Graph("t")
    x = g.input("x", shape=(3,))
    w = g.param("w", shape=(3,))
    big = gc.broadcast_to(g.const(1.0), (MAX_CONST_SIZE + 1,))
    g.output("y", x * w)
    g.output("z", gc.sum(big * 2))
    out = fold(g.nx)
    assert out.nodes["x"]["op"] == "input" and out.nodes["w"]["op"] == "param"
    assert out.nodes[ir.operands(out, "z")[0]]["op"] == "mul"  # big: left as code
    assert out.nodes["z"]["op"] == "sum"


def test_folding_matches_the_compiled_program_even_at_infinities():
    g = gc.Graph("t")
    x = g.input("x", shape=(3,))
    g.output("y", x + gc.log(g.const([0.0, 1.0, 2.0])))
    out = run(g.nx)
    (const,) = [n for n in ir.operands(out, "y") if out.nodes[n]["op"] == "const"]
    np.testing.assert_array_equal(out.nodes[const]["attrs"]["value"], [-np.inf, 0.0, np.log(2.0)])
    feeds = {"x": np.array([1.0, 2.0, 3.0])}
    with np.errstate(divide="ignore"):
        np.testing.assert_array_equal(gc.compile(g).forward(feeds)["y"], [-np.inf, 2.0, 3.0 + np.log(2.0)])
