"""optimize: random graphs keep their values and gradients; a network written twice runs once."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import graphc as gc
from graphc import ir
from graphc.differentiate import differentiate
from graphc.lower.load import load_source
from graphc.lower.source import generate
from graphc.passes.edit import begin, equivalent
from graphc.passes.expand import expand
from graphc.passes.optimize import MAX_ROUNDS, PASSES, optimize
from graphc.passes.stats import Stats

SHAPES = {"x": (2, 3), "w": (3,), "s": ()}

UNARY = {
    "sin": gc.sin, "cos": gc.cos, "tanh": gc.tanh, "sigmoid": gc.sigmoid, "softplus": gc.softplus, "neg": gc.neg,
    "square": gc.square, "identity": gc.identity, "relu": gc.relu, "abs": gc.abs,
    "exp_tanh": lambda a: gc.exp(gc.tanh(a)), "log_sigmoid": lambda a: gc.log(gc.sigmoid(a)),
    "log_exp": lambda a: gc.log(gc.exp(a)), "times_one": lambda a: a * 1.0, "plus_zero": lambda a: 0.0 + a,
    "double_neg": lambda a: gc.neg(-a), "sum_last": lambda a: gc.sum(a, axis=-1, keepdims=True) if a.ndim else a,
    "mean": lambda a: gc.mean(a), "transpose": lambda a: a.T, "fold_me": lambda a: a + gc.exp(a.graph.const(0.5)),
}
BINARY = {
    "add": gc.add, "sub": gc.sub, "mul": gc.mul, "maximum": gc.maximum,
    "div": lambda a, b: a / (1.0 + gc.square(b)), "self_sub": lambda a, b: a - a + b,
    "cancel": lambda a, b: (a + b) - b,
}


@st.composite
def programs(draw):
    """A random small network over inputs of shapes (2, 3), (3,), () and its feeds."""
    g = gc.Graph("random")
    values = [g.input(name, shape=shape) for name, shape in SHAPES.items()]
    for _ in range(draw(st.integers(1, 9))):
        pick = st.integers(0, len(values) - 1)
        if draw(st.booleans()):
            a = values[draw(pick)]
            build = UNARY[draw(st.sampled_from(sorted(UNARY)))]
            twice = [build(a), build(a)] if draw(st.booleans()) else [build(a)]  # duplicates for cse
            values.extend(twice)
        else:
            a, b = values[draw(pick)], values[draw(pick)]
            try:
                values.append(BINARY[draw(st.sampled_from(sorted(BINARY)))](a, b))
            except gc.ShapeError:
                continue
    g.output("out", values[-1])
    if len(values) > 4:
        g.output("other", values[draw(st.integers(3, len(values) - 2))])
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    feeds = {name: rng.uniform(-2, 2, size=shape) for name, shape in SHAPES.items()}
    return g, feeds


def evaluate(graph, feeds):
    with np.errstate(all="ignore"):
        return load_source(generate(expand(graph)).source, "random").forward(feeds)


def agree(reference, optimized):
    assert reference.keys() == optimized.keys()
    for name, want in reference.items():
        got = np.asarray(optimized[name])
        want = np.asarray(want)
        assert got.shape == want.shape, name
        finite = np.isfinite(want)  # the passes assume finite values (x - x = 0)
        np.testing.assert_allclose(got[finite], want[finite], rtol=1e-9, atol=1e-9, err_msg=name)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs())
def test_optimized_and_unoptimized_programs_agree(program):
    g, feeds = program
    expanded = expand(g.nx)
    out = gc.verify(optimize(expanded))
    assert out.graph[ir.OUTPUTS] == g.nx.graph[ir.OUTPUTS] and set(ir.sources(g.nx)) <= set(out.nodes)
    agree(evaluate(g.nx, feeds), evaluate(out, feeds))
    again = optimize(out)
    assert Stats.of(again).changes == 0 and equivalent(again, out), "optimize is idempotent"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs())
def test_optimized_gradients_agree(program):
    g, feeds = program
    loss = gc.sum(gc.square(g.node(g.outputs[0]))) + gc.sum(gc.sin(g.node("x")))  # x has a gradient
    g.output("loss", loss)
    with_grads = gc.grad(g, "loss", wrt=["x", "w", "s"]).nx
    out = gc.verify(optimize(with_grads))
    agree(evaluate(with_grads, feeds), evaluate(out, feeds))


def full_sweeps(graph):
    """optimize's rounds with every pass visiting every node (the graph is not watched)."""
    out = begin(graph)
    for _ in range(MAX_ROUNDS):
        if not sum(run(out).changes for _, run in PASSES):
            break
    return out


def layout(graph):
    """Everything the later stages see, in order: node ids, their data, edges with positions."""
    return ([(n, sorted((k, repr(v)) for k, v in data.items())) for n, data in graph.nodes(data=True)],
            list(graph.edges(keys=True, data=True)))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs())
def test_looking_again_only_where_edits_reached_gives_what_full_sweeps_give(program):
    # optimize watches its graph: later rounds visit only what edits touched, cse and dce
    # skip when no key or reader changed; the result must be the very graph full sweeps make
    g, _ = program
    loss = gc.sum(gc.square(g.node(g.outputs[0]))) + gc.sum(gc.sin(g.node("x")))
    g.output("loss", loss)
    for graph in (expand(g.nx), gc.grad(g, "loss", wrt=["x", "w", "s"]).nx):
        want = full_sweeps(graph)
        got = optimize(graph)
        assert layout(got) == layout(want)


SECOND_ROUND = {  # graphs where what one round did lets the next do more
    "fold_then_mul_one": lambda g, x, w: gc.maximum(x * gc.exp(g.const(0.0)), w) + gc.maximum(x, w),
    "fold_then_sub_zero": lambda g, x, w: gc.maximum(x - (gc.exp(g.const(0.0)) - 1.0), w) * gc.maximum(x, w),
}


@pytest.mark.parametrize("name", sorted(SECOND_ROUND))
def test_a_second_round_finds_what_the_first_made_possible_as_full_sweeps_do(name):
    g = gc.Graph("t")
    x, w = g.input("x", shape=(3,)), g.input("w", shape=(3,))
    g.output("y", SECOND_ROUND[name](g, x, w))
    got = optimize(expand(g.nx))
    counts = got.graph["stats"]["passes"]
    # the second round rewrote (canonicalize), merged (cse) and removed (dce) again
    assert got.graph["stats"]["rounds"] == 3 and counts["cse"]["merged"] >= 1 and counts["dce"]["removed"] == 2
    assert layout(got) == layout(full_sweeps(expand(g.nx)))
    assert [got.nodes[n]["op"] for n in ir.operands(got, "y")] == ["maximum", "maximum"]
    assert len(set(ir.operands(got, "y"))) == 1  # maximum(x * 1, w) is maximum(x, w): computed once


def mlp(x, W1, b1, W2):
    return gc.sigmoid(gc.tanh(x @ W1 + b1) @ W2)


def declared_twice():
    g = gc.Graph("twice")
    x = g.input("x", shape=("N", 4))
    y = g.input("y", shape=("N", 1))
    W1 = g.param("W1", shape=(4, 8))
    b1 = g.param("b1", shape=(8,))
    W2 = g.param("W2", shape=(8, 1))
    g.output("loss", gc.mse(mlp(x, W1, b1, W2), y) + gc.mse(mlp(x, W1, b1, W2), y))
    return g


def test_a_network_declared_twice_is_computed_once_in_the_generated_code():
    g = declared_twice()
    unoptimized = generate(expand(g.nx)).forward_source
    optimized = generate(optimize(expand(g.nx))).forward_source
    assert unoptimized.count(".dot(") == 4 and optimized.count(".dot(") == 2  # matmul of two matrices
    assert unoptimized.count("numpy.tanh") == 2 * optimized.count("numpy.tanh") > 0
    rng = np.random.default_rng(0)
    feeds = {"x": rng.normal(size=(5, 4)), "y": rng.normal(size=(5, 1)), "W1": rng.normal(size=(4, 8)),
             "b1": rng.normal(size=(8,)), "W2": rng.normal(size=(8, 1))}
    agree(evaluate(g.nx, feeds), evaluate(optimize(expand(g.nx)), feeds))


def test_the_joint_graph_shrinks_and_keeps_gradient_ids_and_phases():
    g = declared_twice()
    forward = optimize(expand(g.nx))
    joint = differentiate(forward)
    out = gc.verify(optimize(joint))
    stats = out.graph["stats"]
    assert stats["nodes_after"] < stats["nodes_before"] == joint.number_of_nodes()
    assert out.graph[ir.GRADS] == joint.graph[ir.GRADS]
    assert all(out.nodes[n].get(ir.PHASE) in (ir.FORWARD, ir.BACKWARD) for n in out.nodes)
    rng = np.random.default_rng(1)
    feeds = {"x": rng.normal(size=(5, 4)), "y": rng.normal(size=(5, 1)), "W1": rng.normal(size=(4, 8)),
             "b1": rng.normal(size=(8,)), "W2": rng.normal(size=(8, 1))}
    names = ir.sources(forward)
    want = load_source(generate(forward, joint).source, "j").value_and_grad(feeds)
    got = load_source(generate(forward, out).source, "j").value_and_grad(feeds)
    for name in want[1]:
        np.testing.assert_allclose(got[1][name], want[1][name], rtol=1e-10, atol=1e-12, err_msg=name)
    assert names


def test_stats_count_every_pass_and_the_nodes():
    g = declared_twice()
    out = optimize(expand(g.nx))
    stats = Stats.of(out)
    assert stats.nodes_before == expand(g.nx).number_of_nodes() and stats.nodes_after == out.number_of_nodes()
    assert stats.passes["cse"]["merged"] >= 6 and stats.rounds >= 2
    assert any(m == "merged" for _, m in out.nodes(data=ir.MARK))


def test_a_merge_into_an_output_id_and_a_later_merge_of_its_readers_match_full_sweeps():
    # cse renames the first exp to the output's id "e" (its readers now name e); the second
    # round's mul_one makes maximum(exp * 1, w) the same as maximum(e, w): cse must see it
    g = gc.Graph("t")
    x, w = g.input("x", shape=(3,)), g.input("w", shape=(3,))
    first = gc.exp(x)
    g.output("p", gc.maximum(first * gc.exp(g.const(0.0)), w) * gc.maximum(first, w))
    g.output("e", gc.exp(x))
    got = optimize(expand(g.nx))
    assert layout(got) == layout(full_sweeps(expand(g.nx)))
    assert got.graph["stats"]["rounds"] == 3 and got.graph["stats"]["passes"]["cse"]["merged"] == 2
    assert len(set(ir.operands(got, "p"))) == 1 and ir.operands(got, ir.operands(got, "p")[0])[0] == "e"


def test_a_region_cse_changes_after_simplify_ran_is_looked_at_again():
    # (x + maximum(x, w)) - maximum(x, w): the two maxima are two leaves in round 1, where
    # the region gains nothing; cse merges them after simplify ran, and round 2 must see
    # x + m - m = x in that region although it gained nothing before
    g = gc.Graph("t")
    x, w = g.input("x", shape=(3,)), g.input("w", shape=(3,))
    g.output("y", (x + gc.maximum(x, w)) * 2.0 - gc.maximum(x, w) * 2.0)
    got = optimize(expand(g.nx))
    assert layout(got) == layout(full_sweeps(expand(g.nx)))
    assert got.graph["stats"]["passes"]["simplify"] == {"algebra": 1} and got.graph["stats"]["rounds"] >= 2
    assert got.nodes["y"]["op"] == "mul" and ir.operands(got, "y")[0] == "x"


def test_a_rebuilt_region_next_to_regions_that_gain_nothing_matches_full_sweeps():
    # one region rebuilds (exp(log(x + w) - log(w)) * w is x + w), the others around it gain
    # nothing in any round: the regions the watched run skips must be those that would
    # gain nothing, and the graph the one unwatched runs make
    g = gc.Graph("t")
    x, w = g.input("x", shape=(3,)), g.input("w", shape=(3,))
    a = gc.exp(gc.log(x + w) - gc.log(w)) * w  # simplifies to x + w
    g.output("y", gc.maximum(a, x) + gc.maximum(x + w, x) - gc.maximum(x, w))
    want = full_sweeps(expand(g.nx))
    assert layout(optimize(expand(g.nx))) == layout(want)
