"""The passes change nodes through the IR editor, so every pass's output verifies.

Each pass is run alone on every graph the pipeline makes for the lecture's networks; its
output must verify and compute what its input computes (the reference interpreter,
``gc.evaluate``, run on both).
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

import graphc as gc
from graphc import ir
from graphc.ops.editor import Editor
from graphc.passes.canonicalize import canonicalize
from graphc.passes.cse import cse
from graphc.passes.dce import dce
from graphc.passes.fold import fold
from graphc.passes.fuse import fuse
from graphc.passes.interleave import interleave
from graphc.passes.share import share
from graphc.passes.simplify import simplify

PASSES = [canonicalize, fold, simplify, cse, dce, fuse, share, interleave]
NETS = ["linear_regression", "logistic_classifier", "relu_neuron", "wide_relu", "residual", "recall_xor", "mlp"]


def _graphs(name: str):
    g, feeds = gc.zoo.get(name)()
    prog = gc.compile(g)
    for stage in ("declared", "expanded", "optimized", "differentiated", "optimized_joint", "fused"):
        graph = prog.stages[stage]
        graph_feeds = {**feeds, **{n: np.ones(_concrete(graph, n, feeds)) for n in ir.sources(graph)
                                   if n not in feeds}}
        yield stage, graph, graph_feeds


def _concrete(graph, node, feeds):
    n = next(iter(feeds.values())).shape[0] if feeds else 1
    return tuple(d if isinstance(d, int) else n for d in graph.nodes[node][ir.SHAPE])


@pytest.mark.parametrize("name", NETS)
def test_every_pass_alone_keeps_the_graph_valid_and_its_values(name):
    for stage, graph, feeds in _graphs(name):
        want = gc.evaluate(graph, feeds)
        for run in PASSES:
            out = run(graph)
            gc.verify(out)
            got = gc.evaluate(out, feeds)
            for output in graph.graph[ir.OUTPUTS]:
                np.testing.assert_allclose(got[output], want[output], rtol=1e-10, atol=1e-12,
                                           err_msg=f"{name}, stage {stage}, pass {run.__name__}, output {output}")


def test_folding_a_fused_region_of_consts_leaves_a_plain_const():
    # fuse makes 'add' a fused node holding two ops (fused_size 2); folding it must not
    # leave fused_size on the const it becomes (verify refused the result before)
    g = gc.Graph("consts")
    x = g.input("x", shape=(2,))
    c = g.const([1.0, 2.0])
    g.output("y", x * gc.sum(gc.exp(c) + 1.0))
    fused = fuse(g.nx)
    assert fused.nodes["add"]["op"] == "fused" and fused.nodes["add"]["fused_size"] == 2
    out = gc.verify(fold(fused))
    assert out.nodes["add"]["op"] == "const" and "fused_size" not in out.nodes["add"]
    np.testing.assert_allclose(out.nodes["add"]["attrs"]["value"], np.exp([1.0, 2.0]) + 1.0)
    np.testing.assert_allclose(gc.evaluate(out, {"x": np.array([2.0, 3.0])})["y"],
                               np.array([2.0, 3.0]) * np.sum(np.exp([1.0, 2.0]) + 1.0))


def test_a_named_fused_value_replaced_by_a_source_becomes_a_plain_identity():
    # replace() turned a named fused node into identity(x) but left its expr behind, and
    # verify refused the graph ("only a fused node carries an expression")
    import sympy

    from graphc.passes.edit import begin, replace

    g = gc.Graph("named")
    x = g.input("x", shape=(2,))
    a0 = sympy.Symbol("a0", real=True)
    g.output("y", g.editor.add("fused", [x], {"kink": ""}, expr=(2 * a0, (a0,))))
    out = begin(g.nx)
    assert replace(out, "y", "x") == "y"
    gc.verify(out)
    assert out.nodes["y"]["op"] == "identity" and "expr" not in out.nodes["y"] and ir.operands(out, "y") == ["x"]


def test_a_rewrite_keeps_the_value_shape_and_checks_the_op():
    ed = Editor(ir.new_graph("doc"))
    x = ed.source("input", "x", (2, 3))
    y = ed.add("exp", [x])
    with pytest.raises(gc.GraphError, match=r"rewriting it as sum gives shape \(\), not its shape \(2, 3\)"):
        ed.rewrite(y.id, "sum", [x.id])
    with pytest.raises(gc.GraphError, match="op mul takes 2 operand"):
        ed.rewrite(y.id, "mul", [x.id])
    with pytest.raises(gc.GraphError, match="cannot rewrite it as exp"):
        ed.rewrite(y.id, "exp", [x.id], {"axis": 0})
    ed.rewrite(y.id, "neg", [x.id], mark="created")
    assert ed.graph.nodes[y.id]["op"] == "neg" and ir.operands(ed.graph, y.id) == ["x"]


# every pass; edit.py holds the helpers over the editor (begin clears the marks of its copy)
EDITED_PASSES = sorted(p.name for p in (Path(gc.__file__).parent / "passes").glob("*.py")
                       if p.name not in ("__init__.py", "edit.py"))


GRAPH_CHANGES = ("add_node", "add_edge", "add_edges_from", "remove_node", "remove_nodes_from", "remove_edge",
                 "remove_edges_from")


def _node_data(expr: ast.expr) -> bool:
    """``graph.nodes[n]`` or a name bound to one (``data``)."""
    if isinstance(expr, ast.Name):
        return expr.id == "data"
    return isinstance(expr, ast.Subscript) and isinstance(expr.value, ast.Attribute) and expr.value.attr == "nodes"


def _direct_changes(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in GRAPH_CHANGES or node.func.attr in ("update", "pop") and _node_data(node.func.value):
                found.append(f"line {node.lineno}: .{node.func.attr}()")
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, ast.AugAssign) else []
        found += [f"line {node.lineno}: node data assignment" for t in targets
                  if isinstance(t, ast.Subscript) and _node_data(t.value)]
    return found


@pytest.mark.parametrize("module", EDITED_PASSES)
def test_these_passes_change_nodes_and_edges_through_the_editor_only(module):
    source = (Path(gc.__file__).parent / "passes" / module).read_text()
    assert _direct_changes(source) == [], f"passes/{module} changes the graph directly; use the IR editor"


def test_the_check_of_direct_changes_finds_them():
    assert len(_direct_changes("data.update({'op': 'const'})\ngraph.nodes[n]['mark'] = 'x'\n"
                               "g.add_edge(a, b, arg=0)\nseen.update(x)\n")) == 3


def _adjacency(graph):
    """Every dict networkx keeps, in its order: what later iteration (and so the order of
    nodes and edges every stage sees) depends on."""
    return ([(n, list(graph._succ[n].items())) for n in graph._succ],
            [(n, list(graph._pred[n].items())) for n in graph._pred])


@pytest.mark.parametrize("operands", [["w", "x"], ["x", "x"], ["x"], [], ["c", "w", "c"]])
def test_setting_operands_leaves_the_adjacency_networkx_edge_calls_leave(operands):
    g = gc.Graph("t")
    x, w = g.input("x", shape=(2,)), g.input("w", shape=(2,))
    g.output("y", x * w + x * x)
    graph = g.nx
    Editor(graph).const(1.0, node_id="c")
    target = ir.operands(graph, "y")[1]  # x * x: one value read at two positions
    want = ir.copy_graph(graph)
    want.remove_edges_from(list(want.in_edges(target, keys=True)))
    for position, source in enumerate(operands):
        want.add_edge(source, target, **{ir.ARG: position})
    Editor(graph).set_operands(target, operands)
    assert _adjacency(graph) == _adjacency(want)
    assert ir.operands(graph, target) == operands
