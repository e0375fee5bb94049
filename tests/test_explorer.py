"""The explorer page without a browser: self-contained, escaped, and its numbers right.

Training playback is checked against SGD written by hand in numpy (the lecture's neuron,
whose gradient is known in closed form), gradients per node against the same, and the
page's text for anything that would load from outside.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

import graphc as gc
from graphc.explore.layout import columns
from graphc.explore.page import SUMMARY_ABOVE, explorer_data, explorer_html
from graphc.explore.training import GRID, train


def page_data(page: str) -> dict:
    found = re.search(r'<script type="application/json" id="graphc-data">(.*?)</script>', page, flags=re.S)
    return json.loads(found.group(1).replace("<\\/", "</"))


def test_the_page_loads_nothing_from_outside_and_holds_every_stage():
    g, feeds = gc.zoo.two_moons()
    prog = gc.compile(g)
    page = explorer_html(prog, feeds=feeds, train=3)
    for attr in re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)""", page):
        assert attr.startswith(("#", "data:")), attr
    assert "@import" not in page and not re.search(r"url\((?!#)", page)
    assert not re.search(r"\b(fetch|XMLHttpRequest|WebSocket|importScripts)\b", page)
    data = page_data(page)
    assert [s["name"] for s in data["stages"]] == list(prog.stages)
    for record, graph in zip(data["stages"], prog.stages.values()):
        assert sorted(n["id"] for n in record["nodes"]) == sorted(graph.nodes)
        assert len(record["edges"]) == graph.number_of_edges()
    for testid in ("stage-slider", "graph", "node-panel", "loss-curve", "boundary", "play"):
        assert f'data-testid="{testid}"' in page


def test_hostile_names_cannot_break_out_of_the_page():
    g = gc.Graph("</script><script>alert(1)</script>")
    x = g.input("</script><b>x")
    w = g.param("w&'\"")
    g.output("loss", gc.square(w * x - 1.0))
    prog = gc.compile(g)
    page = explorer_html(prog, feeds={"</script><b>x": 2.0, "w&'\"": 0.5}, train=2)
    assert page.count("</script>") == 2  # the data block's and the script's own, nothing from a name
    assert "<script><script>" not in page and "alert(1)</script>" not in page
    names = {n["id"] for s in page_data(page)["stages"] for n in s["nodes"]}
    assert "</script><b>x" in names and "w&'\"" in names


def neuron_by_hand(w: float, x: float, y: float, lr: float, steps: int):
    """The lecture's neuron g = ReLU(w x), L = (g - y)^2: losses and gradients of SGD."""
    losses, grads, ws = [], [], []
    for _ in range(steps + 1):
        ws.append(w)
        z = w * x
        g = max(z, 0.0)
        losses.append((g - y) ** 2)
        d = 2 * (g - y) * (1.0 if z >= 0 else 0.0) * x
        grads.append(abs(d))
        w -= lr * d
    return losses, grads, ws


def test_training_playback_matches_sgd_by_hand():
    g, feeds = gc.zoo.relu_neuron(w=1.5)
    history = train(gc.compile(g), feeds, steps=5, lr=0.01)
    losses, grads, ws = neuron_by_hand(1.5, 3.0, 6.0, 0.01, 5)
    np.testing.assert_allclose(history.loss, losses, rtol=1e-12)
    np.testing.assert_allclose([s["entries"][0] for s in history.param_values["w"]], ws, rtol=1e-5)  # 6 digits kept
    np.testing.assert_allclose(history.param_norms["w"], grads, rtol=1e-12)
    np.testing.assert_allclose(history.node_grads["w"], grads, rtol=1e-12)
    assert history.boundary is None  # one input of one column: no plane to draw
    assert feeds["w"].item() == 1.5  # the caller's arrays are not trained in place


def test_the_dead_neuron_gets_exactly_zero_gradient_in_every_step():
    g, feeds = gc.zoo.relu_neuron(w=-1.0)
    history = train(gc.compile(g), feeds, steps=4, lr=0.1)
    assert history.node_grads["w"] == [0.0] * 5 and history.node_grads["z"] == [0.0] * 5
    assert history.loss == [36.0] * 5  # nothing moves: the lecture's dead ReLU


def test_the_boundary_of_two_moons_is_the_prediction_over_a_grid():
    g, feeds = gc.zoo.two_moons()
    prog = gc.compile(g)
    history = train(prog, feeds, steps=2, lr=0.5)
    b = history.boundary
    assert b is not None and b.classes == 2 and len(b.points) == len(feeds["x"])
    assert len(b.frames) == 3 and all(len(f) == 48 * 48 for f in b.frames)
    x0, x1, y0, y1 = b.extent
    # the top-left cell, by hand: the network at (x0, y1) with the initial params
    point = np.array([[x0, y1]])
    h = np.tanh(np.tanh(point @ feeds["W1"] + feeds["b1"]) @ feeds["W2"] + feeds["b2"])
    p = 1 / (1 + np.exp(-(h @ feeds["W3"] + feeds["b3"])))
    assert abs(b.frames[0][0] - float(p[0, 0])) < 1e-4


def test_a_big_stage_opens_summarized_and_every_node_is_accounted_for():
    g, _ = gc.zoo.deep_sigmoid(depth=100)
    prog = gc.compile(g)
    data = explorer_data(prog)
    for record, graph in zip(data["stages"], prog.stages.values()):
        held = {m for b in record["blocks"] for m in b["members"]}
        if graph.number_of_nodes() > SUMMARY_ABOVE:
            assert record["blocks"] and len(held) > graph.number_of_nodes() / 2
        else:
            assert not record["blocks"]
        assert held <= set(range(len(record["nodes"])))


def test_values_and_gradients_shown_are_those_of_value_and_grad():
    g, feeds = gc.zoo.wide_relu(dead_output=True)
    prog = gc.compile(g)
    data = explorer_data(prog, feeds=feeds)
    _, grads = prog.value_and_grad(feeds)
    for name, grad in grads.items():
        shown = data["grads"][name]
        assert shown["entries"] == [float(f"{v:.6g}") for v in grad.ravel()]
        assert shown["zeros"] == grad.size  # the dead output: no weight gets a gradient
    z1 = feeds["x"] @ feeds["W1"]
    assert data["values"]["z1"]["entries"] == [float(f"{v:.6g}") for v in z1.ravel()]
    node = next(n for n in data["stages"][0]["nodes"] if n["id"] == "g")
    assert "dReLU/dz" in node["kink"]


def test_train_without_feeds_is_a_clear_error(tmp_path):
    g, _ = gc.zoo.relu_neuron()
    with pytest.raises(gc.FeedError, match="needs feeds"):
        gc.compile(g).explore(tmp_path / "x.html", train=3)


def test_layout_columns_respect_every_dependency():
    g, _ = gc.zoo.two_moons()
    for graph in gc.compile(g).stages.values():
        column = columns(graph)
        assert all(column[u] < column[v] for u, v in graph.edges())


def test_the_blobs_boundary_names_a_class_in_every_cell():
    g, feeds = gc.zoo.blobs()
    prog = gc.compile(g)
    boundary = train(prog, feeds, steps=0).boundary
    grid = np.asarray(boundary.frames[0])
    assert set(np.floor(grid).astype(int)) <= {0, 1, 2}  # a certain cell (p = 1) keeps its class
    x0, _, y0, _ = boundary.extent
    W1, b1, W2, b2 = (feeds[k] for k in ("W1", "b1", "W2", "b2"))
    logits = np.maximum(np.array([[x0, y0]]) @ W1 + b1, 0) @ W2 + b2  # by hand: 2 -> 16 ReLU -> 3
    assert int(np.floor(grid[(GRID - 1) * GRID])) == int(logits.argmax())  # the bottom-left cell


def test_train_on_a_graph_without_a_scalar_output_says_so(tmp_path):
    g, feeds = gc.zoo.recall_xor()
    with pytest.raises(gc.GradientError, match="scalar output"):
        gc.compile(g).explore(tmp_path / "x.html", feeds=feeds, train=2)


def test_the_page_is_byte_identical_across_hash_seeds(tmp_path):
    import os
    import subprocess
    import sys

    code = ("import graphc as gc; g, f = gc.zoo.two_moons(); "
            "print(gc.compile(g).explore('PATH', feeds=f, train=2).read_text())")
    pages = {subprocess.run([sys.executable, "-c", code.replace("PATH", str(tmp_path / f"p{seed}.html"))],
                            capture_output=True, text=True, check=True,
                            env={**os.environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "2")}
    assert len(pages) == 1 and len(next(iter(pages))) > 10_000
