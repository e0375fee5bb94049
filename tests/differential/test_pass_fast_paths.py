"""The passes' shortcuts decide what the work they skip would have decided.

Each pass asks a cheap question first and skips the work when the answer says the work
would change nothing. The reference for each is the work itself, done on every node as
before: canonicalize's node rewrite called on every node, fusion's region grown from every
root, and the topological order by networkx's lexicographical sort and by Kahn's algorithm
with a heap of insertion indices (the order's previous implementation), on random
networks of the corpus, the zoo and random DAGs whose insertion order is nearly
topological (as the passes leave it: nodes made and renamed go last).
"""

from __future__ import annotations

import heapq
import random

import networkx as nx
import numpy as np
import pytest
import sympy
from corpus.networks import networks
from hypothesis import HealthCheck, given, settings
from small_graphs import random_dag

import graphc as gc
from graphc import compile_cache, ir, shapes, zoo
from graphc.ops.base import op_for
from graphc.passes import canonicalize as canon
from graphc.passes import fuse
from graphc.passes.edit import Revisit, begin, order, protected
from graphc.passes.stats import Stats

CORPUS = settings(derandomize=True, database=None, deadline=None, print_blob=False, max_examples=60,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                         HealthCheck.data_too_large])


def _stages(graph) -> dict:
    with np.errstate(all="ignore"):
        prog = gc.compile(graph, cache=False)
    return {**{f"inference:{k}": v for k, v in prog.inference_stages.items()}, **prog.stages}


# -- canonicalize: the rule sweep skips nodes no rule can fire for --------------------------
def _canonicalize_every_node(graph) -> Stats:
    """canonicalize as it was: ``_canonicalize_node`` asked of every node in order."""
    stats = Stats()
    revisit = Revisit(graph, "canonicalize", hops=2)
    for node in order(graph):
        if revisit.needs(node):
            canon._canonicalize_node(graph, node, stats)
    return stats


def _same_canonicalization(graph) -> None:
    fast, slow = begin(graph), begin(graph)
    fast_stats, slow_stats = canon.canonicalize_in_place(fast), _canonicalize_every_node(slow)
    assert fast_stats.passes == slow_stats.passes
    assert compile_cache.content_key(fast, {}) == compile_cache.content_key(slow, {})


@CORPUS
@given(case=networks(max_steps=7))
def test_canonicalize_rewrites_what_the_rule_sweep_of_every_node_rewrites(case):
    try:
        stages = _stages(case.graph)
    except gc.GraphcError:
        return
    for name in ("expanded", "differentiated", "inference:fused"):
        if name in stages:
            _same_canonicalization(stages[name])


def test_canonicalize_fires_where_only_an_operand_says_it_may():
    """Nodes whose rules need a const, neg or broadcast operand, and reordering (a const
    first): each shortcut's trigger, and a node whose rule needs no operand op (x - x)."""
    g = gc.Graph("t")
    x, w = g.input("x", shape=(3,)), g.input("w", shape=(2, 3))
    g.output("a", 2.0 * x + (-x))  # reorder (const first), add_neg
    g.output("b", gc.sum(gc.broadcast_to(x, (2, 3)) * w, axis=0))  # broadcast_late
    g.output("c", (x - x) + 0.0)  # sub_self needs no operand op; then add_zero
    g.output("d", gc.exp(x) * 1.0)
    _same_canonicalization(g.nx)
    stats = canon.canonicalize(g.nx).graph["stats"]["passes"]["canonicalize"]
    assert {"reordered", "add_neg", "broadcast_late", "sub_self", "mul_one"} <= set(stats)


def test_a_commutative_op_without_rules_still_puts_its_const_last():
    """A custom commutative op has no rule reading a const: reordering alone triggers it."""
    from graphc.ops.elementwise import elementwise_op

    both = elementwise_op("both", 2, lambda a, b: a * b + a + b, commutative=True, builtin=False)
    g = gc.Graph("t")
    x = g.input("x", shape=(3,))
    g.output("y", gc.apply(both, 2.0, x))
    _same_canonicalization(g.nx)
    out = canon.canonicalize(g.nx)
    assert out.graph["stats"]["passes"]["canonicalize"] == {"reordered": 1}
    assert [out.nodes[a][ir.OP] for a in ir.operands(out, "y")] == ["input", "const"]


# -- fuse: a root that would grow a region of itself alone is not grown -----------------------
def _grown_alone(graph, root, keep) -> bool:
    region = fuse._Region(graph, keep, set())
    region.grow(root)
    return len(region.members) == 1 and not region.inlined


def _same_roots(graph) -> int:
    keep, asked = protected(graph), 0
    for node in graph.nodes:
        if fuse._elementwise(graph, node) and graph.nodes[node][ir.OP] != "fused":
            assert fuse._alone(graph, node, keep, set()) == _grown_alone(graph, node, keep), node
            asked += 1
    return asked


@CORPUS
@given(case=networks(max_steps=7))
def test_a_root_left_alone_is_one_whose_region_holds_it_alone(case):
    try:
        stages = _stages(case.graph)
    except gc.GraphcError:
        return
    for name in ("optimized", "optimized_joint"):
        if name in stages:
            _same_roots(stages[name])


@pytest.mark.parametrize("name", zoo.NAMES)
def test_zoo_roots_left_alone_are_those_whose_region_holds_them_alone(name):
    graph, _ = zoo.get(name)()
    stages = _stages(graph)
    assert sum(_same_roots(stages[s]) for s in ("optimized", "optimized_joint") if s in stages) > 0


def test_a_lone_root_reading_a_scalar_op_copies_it_in():
    """The forward product reads exp(x), which the backward reads too (so it joins no
    region), and exp(s) of a scalar input, which ``leaf`` copies in: the root is grown, not
    skipped, and its kernel computes exp(s) itself."""
    g = gc.Graph("t")
    x = g.param("x", shape=(2, 3))
    s = g.input("s", shape=())
    g.output("loss", gc.mean(gc.exp(x) * gc.exp(s)))
    prog = gc.compile(g, cache=False)
    _same_roots(prog.stages["optimized_joint"])
    fused = prog.stages["fused"]
    copied = [node for node, data in fused.nodes(data=True) if ir.EXPR in data and "s" in ir.operands(fused, node)
              and sympy.exp(data[ir.EXPR][1][ir.operands(fused, node).index("s")]) in
              sympy.preorder_traversal(data[ir.EXPR][0])]
    assert copied, [(n, d.get(ir.EXPR)) for n, d in fused.nodes(data=True)]


# -- the topological order --------------------------------------------------------------------
def _kahn_by_insertion_index(graph) -> list:
    """The order's previous implementation: Kahn's algorithm, a heap of insertion indices."""
    nodes = list(graph.nodes)
    index = {node: k for k, node in enumerate(nodes)}
    waiting = [len(graph.pred[node]) for node in nodes]
    ready = [k for k, count in enumerate(waiting) if not count]
    result = []
    while ready:
        node = nodes[heapq.heappop(ready)]
        result.append(node)
        for target in graph.succ[node]:
            waiting[index[target]] -= 1
            if not waiting[index[target]]:
                heapq.heappush(ready, index[target])
    return result


def _nearly_ordered(seed: int, n: int = 120) -> nx.MultiDiGraph:
    """A DAG inserted in an order of its edges, then edited as the passes edit: nodes renamed
    (moved last), nodes made last and read by earlier nodes, readers moved."""
    rng = random.Random(seed)
    graph = random_dag(seed, n=n, shuffled=False)
    for step in range(rng.randrange(1, 8)):
        nodes = list(graph.nodes)
        kind = rng.random()
        node = rng.choice(nodes)
        if kind < 0.4:
            nx.relabel_nodes(graph, {node: f"{node}_r{step}"}, copy=False)
        else:
            made = f"made{step}"
            graph.add_node(made, op="input")
            for source in rng.sample(nodes, rng.randrange(3)):
                if not nx.has_path(graph, node, source):
                    graph.add_edge(source, made, arg=0)
            for reader in list(graph.succ[node]) if kind < 0.7 else [node]:
                if not nx.has_path(graph, reader, made):
                    graph.add_edge(made, reader, arg=0)
    return graph


@pytest.mark.parametrize("seed", range(40))
def test_the_order_of_a_nearly_ordered_graph_is_the_smallest_by_insertion_index(seed):
    graph = _nearly_ordered(seed)
    index = {node: k for k, node in enumerate(graph.nodes)}
    expected = list(nx.lexicographical_topological_sort(graph, key=index.__getitem__))
    assert _kahn_by_insertion_index(graph) == expected
    assert ir.topological_order(graph) == expected
    assert ir.topological_order(nx.DiGraph(graph)) == expected


@pytest.mark.parametrize("seed", range(10))
def test_the_order_of_a_shuffled_graph_is_kahns_by_insertion_index(seed):
    graph = random_dag(seed, n=300)
    assert ir.topological_order(graph) == _kahn_by_insertion_index(graph)


def test_a_cycle_behind_a_waiting_node_is_reported():
    graph = random_dag(0, n=30, shuffled=False)
    graph.add_edge("v29", "v3", arg=1)
    graph.add_edge("v3", "v29", arg=2)  # a cycle the sweep meets as nodes waiting for each other
    with pytest.raises(gc.GraphcError, match="cycle"):
        ir.topological_order(graph)


# -- shapes.broadcast of equal shapes -----------------------------------------------------------
@pytest.mark.parametrize("shape", [(), (3,), (1,), (1, 4), ("N", 1, 3), ("N", "M")])
def test_equal_shapes_broadcast_to_what_the_general_rule_gives(shape):
    dims = tuple(sympy.Symbol(d) if isinstance(d, str) else d for d in shape)
    general = shapes.broadcast([list(dims), dims])  # a list first: the general rule, axis by axis
    fast = shapes.broadcast([dims, tuple(dims)])
    assert fast == general == dims
    assert [type(d) for d in fast] == [type(d) for d in general]
    odd = tuple(np.int64(d) if isinstance(d, int) else d for d in dims)  # not ints: the general rule
    assert shapes.broadcast([odd, odd]) == shapes.broadcast([list(odd), odd]) == dims
    assert all(type(d) is int for d, want in zip(shapes.broadcast([odd, odd]), dims) if want == 1)


def test_unequal_shapes_still_fail_with_the_names():
    with pytest.raises(gc.GraphcError, match="do not broadcast"):
        shapes.broadcast([(2, 3), (3, 2)], "n", "add")
    assert shapes.broadcast([(2, 1), (1, 3)]) == (2, 3)


def test_op_for_is_what_the_shortcut_tables_answer():
    """fuse's table of built-in ops' elementwise flags answers what op_for does."""
    graph = ir.new_graph("t")
    for name in ("add", "tanh", "matmul", "sum", "fused", "const"):
        graph.add_node(name, op=name)
        assert fuse._elementwise(graph, name) == op_for(graph, name).elementwise
