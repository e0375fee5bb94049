"""fuse: structure (isomorphism with sympy-equal expressions), ids kept, the region cap,
numbers copied in, kink notes, idempotence, verify, the input untouched, values kept."""


import networkx as nx
import numpy as np
import pytest
import sympy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import graphc as gc
from graphc import ir
from graphc.differentiate import fused
from graphc.lower.load import load_source
from graphc.lower.source import generate
from graphc.passes.edit import equivalent
from graphc.passes.expand import expand
from graphc.passes.fuse import MAX_REGION, fuse
from graphc.passes.stats import Stats

RELU_NOTE = "d relu: dReLU/dz = 0 if z < 0, 1 otherwise (z = 0 included)"
ABS_NOTE = "d abs: sign(0) = 0"


# -- helpers ---------------------------------------------------------------------------------
def same_expr(a, b) -> bool:
    """Two fused expressions agree: same operand count, equal as sympy expressions."""
    if (a is None) != (b is None):
        return False
    if a is None:
        return True
    (ea, sa), (eb, sb) = a, b
    if len(sa) != len(sb):
        return False
    eb = eb.xreplace(dict(zip(sb, sa)))
    return ea == eb or sympy.simplify(ea - eb) == 0


def node_match(x, y) -> bool:
    return (x[ir.OP] == y[ir.OP] and tuple(map(str, x[ir.SHAPE])) == tuple(map(str, y[ir.SHAPE]))
            and x.get(ir.DTYPE) == y.get(ir.DTYPE) and (x.get(ir.ATTRS) or {}) == (y.get(ir.ATTRS) or {})
            and same_expr(x.get(ir.EXPR), y.get(ir.EXPR)))


def edge_match(x, y) -> bool:
    return sorted(e[ir.ARG] for e in x.values()) == sorted(e[ir.ARG] for e in y.values())


def matches(got: nx.MultiDiGraph, want: nx.MultiDiGraph) -> bool:
    """Isomorphic with equal op, shape, dtype, attrs, and sympy-equal fused expressions."""
    return nx.is_isomorphic(got, want, node_match=node_match, edge_match=edge_match)


def fused_once(graph: nx.MultiDiGraph) -> nx.MultiDiGraph:
    return gc.verify(fuse(expand(graph)))


def snapshot(graph: nx.MultiDiGraph):
    nodes = [(n, repr(sorted(d.items()))) for n, d in graph.nodes(data=True)]
    edges = sorted((u, v, k, repr(d)) for u, v, k, d in graph.edges(keys=True, data=True))
    return nodes, edges, repr(graph.graph)


def evaluate(graph: nx.MultiDiGraph, feeds: dict) -> dict:
    with np.errstate(all="ignore"):
        return load_source(generate(graph).source, graph.graph[ir.NAME]).forward(feeds)


def agree(want: dict, got: dict) -> None:
    assert want.keys() == got.keys()
    for name in want:
        w, g = np.asarray(want[name]), np.asarray(got[name])
        assert g.shape == w.shape, name
        finite = np.isfinite(w)
        np.testing.assert_allclose(g[finite], w[finite], rtol=1e-10, atol=1e-12, err_msg=name)


def chain_graph(length: int, name: str = "chain") -> gc.Graph:
    g = gc.Graph(name)
    h = g.input("x", shape=(4,))
    for k in range(length):
        h = gc.sin(h) if k % 2 else gc.cos(h)
    g.output("y", h)
    return g


# -- structure -------------------------------------------------------------------------------
def test_a_single_reader_chain_becomes_one_fused_node_with_the_last_id():
    g = gc.Graph("t")
    x = g.input("x", shape=("N", 3))
    W = g.param("W", shape=(3, 3))
    g.output("y", gc.tanh(gc.sin(gc.exp(x @ W))))
    out = fused_once(g.nx)
    want = gc.Graph("t")
    x2 = want.input("x", shape=("N", 3))
    W2 = want.param("W", shape=(3, 3))
    want.output("y", fused(lambda a: sympy.tanh(sympy.sin(sympy.exp(a))), [x2 @ W2]))
    assert matches(out, want.nx)
    assert out.nodes["y"][ir.OP] == "fused" and out.nodes["y"].get(ir.MARK) == "fused"
    assert ir.operands(out, "y") == ["matmul"], "the region's input is the matmul, not absorbed"
    assert Stats.of(out).passes == {"fuse": {"fused": 2}}


def test_a_value_read_twice_stays_its_own_node():
    g = gc.Graph("t")
    x = g.input("x", shape=(3,))
    a = gc.exp(x)
    g.output("y", gc.sin(a) + gc.cos(a) * 2.0)
    out = fused_once(g.nx)
    want = gc.Graph("t")
    a2 = gc.exp(want.input("x", shape=(3,)))
    want.output("y", fused(lambda u: sympy.sin(u) + 2 * sympy.cos(u), [a2]))
    assert matches(out, want.nx)
    assert out.nodes[a.id][ir.OP] == "exp", "a lone node that is read twice is left as it is"


def test_scalar_consts_copied_into_a_kernel_leave_no_unread_node():
    g = gc.Graph("t")
    x = g.input("x", shape=(3,))
    g.output("y", gc.sin(x) * 2.0 + 1.0)
    out = fused_once(g.nx)
    assert sorted(out.nodes) == ["x", "y"]


def test_the_same_value_read_twice_by_one_consumer_joins_it():
    g = gc.Graph("t")
    x = g.input("x", shape=(3,))
    a = gc.exp(x)
    g.output("y", a * a)
    out = fused_once(g.nx)
    assert set(out.nodes) == {"x", "y"}
    assert same_expr(out.nodes["y"][ir.EXPR], (sympy.exp(sympy.Symbol("a0", real=True)) ** 2,
                                               (sympy.Symbol("a0", real=True),)))


def test_outputs_and_gradients_are_never_absorbed():
    g = gc.Graph("t")
    x = g.input("x", shape=(3,))
    named = g.output("e", gc.exp(x))
    s = gc.sin(named)
    t = gc.tanh(s)
    g.output("y", gc.cos(gc.square(t)))
    g.nx.graph[ir.GRADS] = {"x": s.id}
    out = fused_once(g.nx)
    assert out.nodes["e"][ir.OP] == "exp", "an output keeps its node"
    assert s.id in out and out.nodes[s.id][ir.OP] == "sin", "a gradient keeps its node"
    assert ir.operands(out, "y") == [s.id]
    a0 = sympy.Symbol("a0", real=True)
    assert same_expr(out.nodes["y"][ir.EXPR], (sympy.cos(sympy.tanh(a0) ** 2), (a0,)))
    assert out.graph[ir.OUTPUTS] == ["e", "y"] and out.graph[ir.GRADS] == {"x": s.id}


def test_non_elementwise_nodes_are_untouched_and_bound_regions():
    g = gc.Graph("t")
    x = g.input("x", shape=(2, 3))
    s = gc.sum(gc.exp(x) * 2.0, axis=1, keepdims=True)
    g.output("y", gc.log(s) - 1.0)
    expanded = expand(g.nx)
    out = gc.verify(fuse(expanded))
    assert out.nodes[s.id] == expanded.nodes[s.id] | {}, "the sum's attributes are unchanged"
    assert [out.nodes[n][ir.OP] for n in ir.operands(out, s.id)] == ["fused"]
    assert ir.operands(out, "y") == [s.id]


# -- the region cap ---------------------------------------------------------------------------
def test_the_region_cap_holds_on_a_long_chain():
    # compile time is measured by benchmarks/compile_time.py, not asserted here (shared machines)
    g = chain_graph(3000)
    expanded = expand(g.nx)
    out = gc.verify(fuse(expanded))
    kernels = [n for n in out.nodes if out.nodes[n][ir.OP] == "fused"]
    assert len(kernels) == -(-3000 // MAX_REGION)
    for node in kernels:
        expr = out.nodes[node][ir.EXPR][0]
        calls = sum(1 for part in sympy.preorder_traversal(expr) if isinstance(part, (sympy.sin, sympy.cos)))
        assert calls <= MAX_REGION, node
    twice = fuse(out)  # fused members count with the ops they hold: nothing grows past the cap
    assert Stats.of(twice).changes == 0 and equivalent(twice, out)
    code = generate(out)  # prints without recursion errors
    x = np.linspace(-1.0, 1.0, 4)
    want = x.copy()
    for k in range(3000):
        want = np.sin(want) if k % 2 else np.cos(want)
    got = load_source(code.source, "chain").forward({"x": x})["y"]
    np.testing.assert_allclose(got, want, rtol=1e-12)


# -- numbers, kinks --------------------------------------------------------------------------
def number_graph(inv_is_output: bool = False) -> tuple[gc.Graph, sympy.Symbol]:
    """x * (1/N), x + 1/N and x * (2 * 1/N), where 1/N is a fused node without operands."""
    g = gc.Graph("numbers")
    g.input("x", shape=("N", 3))
    n = g.nx.nodes["x"][ir.SHAPE][0]
    G = g.nx
    ir.add_op(G, "inv", "fused", [], {"kink": ""}, (), expr=(1 / n, ()))
    two = g.const(2.0)
    ir.add_op(G, "two_inv", "mul", [two.id, "inv"], {}, ())
    ir.add_op(G, "y", "mul", ["x", "inv"], {}, G.nodes["x"][ir.SHAPE])
    ir.add_op(G, "z", "add", ["x", "inv"], {}, G.nodes["x"][ir.SHAPE])
    ir.add_op(G, "w", "mul", ["x", "two_inv"], {}, G.nodes["x"][ir.SHAPE])
    G.graph[ir.OUTPUTS] = ["y", "z", "w"] + (["inv"] if inv_is_output else [])
    return gc.verify(G), n


def test_numbers_such_as_one_over_n_are_copied_into_their_readers():
    graph, n = number_graph()
    out = gc.verify(fuse(graph))
    assert "inv" not in out and "two_inv" not in out, "the numbers live on in their readers only"
    a0 = sympy.Symbol("a0", real=True)
    assert same_expr(out.nodes["y"][ir.EXPR], (a0 / n, (a0,)))
    assert same_expr(out.nodes["z"][ir.EXPR], (a0 + 1 / n, (a0,)))
    assert same_expr(out.nodes["w"][ir.EXPR], (2 * a0 / n, (a0,)))
    assert all(ir.operands(out, v) == ["x"] for v in ("y", "z", "w"))
    x = np.arange(12.0).reshape(4, 3)
    agree({"y": x / 4, "z": x + 0.25, "w": 2 * x / 4}, evaluate(out, {"x": x}))
    agree(evaluate(graph, {"x": x}), evaluate(out, {"x": x}))


def test_a_number_that_is_an_output_stays():
    graph, _ = number_graph(inv_is_output=True)
    out = gc.verify(fuse(graph))
    assert "inv" in out and out.out_degree("inv") == 0
    assert float(evaluate(out, {"x": np.ones((5, 3))})["inv"]) == 0.2


def test_kink_notes_of_fused_backward_nodes_are_kept_once_each():
    g = gc.Graph("t")
    x = g.input("x", shape=(3,))
    u = g.input("u", shape=(3,))
    step = fused(lambda z: sympy.Heaviside(z, 1), [x], kink=RELU_NOTE)
    times = fused(lambda a, b: a * b, [step, u], kink=ABS_NOTE)
    g.output("y", fused(lambda a: 2 * a, [times], kink=RELU_NOTE))
    out = gc.verify(fuse(g.nx))
    assert set(out.nodes) == {"x", "u", "y"}
    notes = out.nodes["y"][ir.ATTRS]["kink"].split("; ")
    assert sorted(notes) == sorted([RELU_NOTE, ABS_NOTE])
    a0, a1 = sympy.symbols("a0 a1", real=True)
    symbols = out.nodes["y"][ir.EXPR][1]
    want = 2 * a1 * sympy.Heaviside(a0, 1) if ir.operands(out, "y") == ["x", "u"] else 2 * a0 * sympy.Heaviside(a1, 1)
    assert same_expr(out.nodes["y"][ir.EXPR], (want, symbols))
    feeds = {"x": np.array([-1.0, 0.0, 2.0]), "u": np.array([3.0, 4.0, 5.0])}
    agree({"y": np.array([0.0, 8.0, 10.0])}, evaluate(out, feeds))


def test_a_backward_graph_keeps_the_relu_note_after_fusion():
    g = gc.Graph("t")
    x = g.input("x", shape=("N", 3))
    W = g.param("W", shape=(3,))
    g.output("loss", gc.mean(gc.relu(x * W)))
    prog = gc.compile(g)
    notes = [d[ir.ATTRS].get("kink", "") for _, d in prog.stages["fused"].nodes(data=True) if d[ir.OP] == "fused"]
    assert any("relu" in note for note in notes)


# -- pass properties -------------------------------------------------------------------------
def small_networks():
    g1 = gc.Graph("mlp")
    x = g1.input("x", shape=("N", 3))
    y = g1.input("y", shape=("N", 2))
    W1, b1 = g1.param("W1", shape=(3, 4)), g1.param("b1", shape=(4,))
    W2 = g1.param("W2", shape=(4, 2))
    g1.output("loss", gc.softmax_cross_entropy(gc.relu(x @ W1 + b1) @ W2, y))
    g2 = gc.Graph("res")
    x = g2.input("x", shape=("N", 3))
    h = x
    for k in range(3):
        W, b = g2.param(f"W{k}", shape=(3, 3)), g2.param(f"b{k}", shape=(3,))
        h = h + gc.tanh(h @ W + b)
    g2.output("loss", gc.mse(h, x))
    return [g1, g2, chain_graph(60, "chain60")]


@pytest.mark.parametrize("graph", small_networks(), ids=lambda g: g.nx.graph[ir.NAME])
def test_fuse_verifies_and_leaves_its_input_alone(graph):
    expanded = expand(graph.nx)
    before = snapshot(expanded)
    gc.verify(fuse(expanded))
    assert snapshot(expanded) == before
    stages = gc.compile(graph).stages
    joint = stages.get("optimized_joint", stages["optimized"])  # a chain has no scalar output
    before = snapshot(joint)
    gc.verify(fuse(joint))
    assert snapshot(joint) == before


@pytest.mark.parametrize("graph", small_networks()[:2], ids=lambda g: g.nx.graph[ir.NAME])
def test_fusing_twice_changes_nothing_on_networks(graph):
    for stage in (expand(graph.nx), gc.compile(graph).stages["optimized_joint"]):
        once = fuse(stage)
        twice = gc.verify(fuse(once))
        assert Stats.of(twice).changes == 0
        assert equivalent(twice, once) and matches(twice, once)
        assert sorted(twice.nodes) == sorted(once.nodes)


def test_fusing_twice_changes_nothing_on_a_chain_longer_than_the_cap():
    once = fuse(expand(chain_graph(MAX_REGION + 6).nx))
    twice = gc.verify(fuse(once))
    assert Stats.of(twice).changes == 0 and equivalent(twice, once)


def test_fused_joint_graph_computes_the_same_values_and_gradients():
    rng = np.random.default_rng(3)
    for graph in small_networks()[:2]:
        prog = gc.compile(graph)
        feeds = {}
        for name in ir.sources(prog.graph):
            shape = tuple(4 if isinstance(d, sympy.Symbol) else d for d in prog.graph.nodes[name][ir.SHAPE])
            feeds[name] = rng.normal(size=shape)
        if "y" in feeds:
            feeds["y"] = np.eye(2)[rng.integers(0, 2, size=4)]
        results = []
        for stage in ("optimized_joint", "fused"):
            code = generate(prog.forward_graph, prog.stages[stage])
            module = load_source(code.source, stage)
            results.append(module.value_and_grad(dict(feeds)))
        agree(results[0][0], results[1][0])
        agree(results[0][1], results[1][1])


# -- values, by Hypothesis -------------------------------------------------------------------
SHAPES = {"x": (2, 3), "w": (3,), "s": ()}
UNARY = {"sin": gc.sin, "cos": gc.cos, "tanh": gc.tanh, "sigmoid": gc.sigmoid, "softplus": gc.softplus,
         "neg": gc.neg, "square": gc.square, "relu": gc.relu, "abs": gc.abs, "exp_tanh": lambda a: gc.exp(gc.tanh(a)),
         "half": lambda a: a * 0.5, "sum": lambda a: gc.sum(a, axis=-1, keepdims=True) if a.ndim else a,
         "transpose": lambda a: a.T}
BINARY = {"add": gc.add, "sub": gc.sub, "mul": gc.mul, "maximum": gc.maximum,
          "div": lambda a, b: a / (1.0 + gc.square(b))}


@st.composite
def programs(draw):
    g = gc.Graph("random")
    values = [g.input(name, shape=shape) for name, shape in SHAPES.items()]
    for _ in range(draw(st.integers(2, 12))):
        pick = st.integers(0, len(values) - 1)
        if draw(st.booleans()):
            values.append(UNARY[draw(st.sampled_from(sorted(UNARY)))](values[draw(pick)]))
        else:
            try:
                values.append(BINARY[draw(st.sampled_from(sorted(BINARY)))](values[draw(pick)], values[draw(pick)]))
            except gc.ShapeError:
                continue
    g.output("out", values[-1])
    if len(values) > 5:
        g.output("other", values[draw(st.integers(3, len(values) - 2))])
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    return g, {name: rng.uniform(-2, 2, size=shape) for name, shape in SHAPES.items()}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs())
def test_fused_and_unfused_programs_agree(program):
    g, feeds = program
    expanded = expand(g.nx)
    out = gc.verify(fuse(expanded))
    agree(evaluate(expanded, feeds), evaluate(out, feeds))
    assert set(out.graph[ir.OUTPUTS]) <= set(out.nodes)


def constant_kernels(graph: nx.MultiDiGraph) -> list[str]:
    """Fused array nodes whose expression became a number (a - a = 0 inside a region)."""
    return [n for n, d in graph.nodes(data=True)
            if ir.EXPR in d and d[ir.SHAPE] and not d[ir.EXPR][0].free_symbols & set(d[ir.EXPR][1])]


def test_a_region_that_cancels_to_a_number_still_computes_floats():
    g = gc.Graph("t")
    x = g.input("x", shape=(2, 3))
    w = g.input("w", shape=(3,))
    zero = gc.abs(x) - gc.abs(x)  # two nodes, one value: the region's expression is 0
    g.output("out", w / (1.0 + gc.square(zero)))
    g.output("other", gc.maximum(gc.square(x), zero))
    out = fused_once(g.nx)
    assert constant_kernels(out)
    feeds = {"x": np.ones((2, 3)), "w": np.array([1.0, 2.0, 3.0])}
    got = evaluate(out, feeds)
    agree({"out": np.broadcast_to(feeds["w"], (2, 3)), "other": np.ones((2, 3))}, got)
    assert all(np.asarray(v).dtype == np.float64 for v in got.values())
