"""Program.stages, stats, levels, critical path and summary (the compiler shows its work)."""

from __future__ import annotations

import networkx as nx

import graphc as gc
from graphc import ir


def two_branches():
    g = gc.Graph("branches")
    x = g.input("x", shape=("N", 3))
    W = g.param("W", shape=(3, 2))
    V = g.param("V", shape=(3, 2))
    left = gc.tanh(x @ W).named("left")
    right = gc.sigmoid(x @ V).named("right")
    g.output("loss", gc.mean(left * right))
    return g


def test_stages_come_in_pipeline_order():
    prog = gc.compile(two_branches())
    names = list(prog.stages)
    expected = ["declared", "rewritten", "expanded", "optimized", "differentiated", "optimized_joint", "fused",
                "shared", "interleaved", "scheduled"]
    assert names == expected
    for graph in prog.stages.values():
        gc.verify(graph)


def test_levels_put_independent_branches_side_by_side():
    prog = gc.compile(two_branches())
    scheduled = prog.stages["scheduled"]
    level_of = {n: k for k, level in enumerate(prog.levels) for n in level}
    assert all(scheduled.nodes[n][ir.LEVEL] == k for n, k in level_of.items())
    matmuls = [n for n in scheduled if scheduled.nodes[n][ir.OP] == "matmul"
               and scheduled.nodes[n].get(ir.PHASE) == ir.FORWARD]
    assert len(matmuls) == 2 and level_of[matmuls[0]] == level_of[matmuls[1]]
    # every edge goes from a lower level to a higher one
    assert all(level_of[u] < level_of[v] for u, v in scheduled.edges())


def test_critical_path_is_a_longest_chain():
    prog = gc.compile(two_branches())
    path = prog.critical_path
    scheduled = prog.stages["scheduled"]
    assert len(path) == len(prog.levels) == nx.dag_longest_path_length(scheduled) + 1
    assert all(scheduled.has_edge(u, v) for u, v in zip(path, path[1:]))


def test_stats_and_summary_report_each_pass():
    g = gc.Graph("twice")
    x = g.input("x", shape=("N", 2))
    W = g.param("W", shape=(2, 2))
    g.output("loss", gc.mean(gc.tanh(x @ W)) + gc.mean(gc.tanh(x @ W)))
    prog = gc.compile(g)
    assert prog.stats["optimized"]["passes"]["cse"]["merged"] >= 2
    assert prog.stats["fused"]["passes"]["fuse"]["fused"] >= 1
    assert "expanded" not in prog.stats  # expansion is not an optimizing pass: no stats of its own
    text = prog.summary()
    assert "cse" in text and "merged" in text and "critical path" in text
    assert text.index("declared") < text.index("optimized") < text.index("scheduled")
    assert prog.forward_source.count(".dot(") == 1  # the duplicated x @ W is computed once (x.dot(W))
