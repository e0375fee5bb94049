"""prog.predict: the outputs that need no labels, from an inference program without them."""

import numpy as np
import pytest

import graphc as gc
from graphc.predict import inference_graph


def classifier():
    graph, feeds = gc.zoo.blobs()
    return gc.compile(graph), feeds


def test_predict_needs_no_labels_and_agrees_with_forward():
    prog, feeds = classifier()
    without_labels = {k: v for k, v in feeds.items() if k != "y"}
    predicted = prog.predict(without_labels)
    assert list(predicted) == ["g"]  # every output but the loss
    np.testing.assert_allclose(predicted["g"], prog.forward(feeds)["g"], rtol=1e-13, atol=0)
    np.testing.assert_array_equal(prog.predict(feeds)["g"], predicted["g"])  # labels given: left unused


def test_the_inference_program_has_no_label_input():
    prog, _ = classifier()
    cut = inference_graph(prog.graph, ["g"])
    assert cut.graph["inputs"] == ["x"] and cut.graph["outputs"] == ["g"]
    assert "y" not in cut and "loss" not in cut
    assert cut.graph["params"] == prog.graph.graph["params"]


def test_a_batch_of_another_size_and_explicit_outputs():
    prog, feeds = classifier()
    small = {**{k: v for k, v in feeds.items() if k not in ("x", "y")}, "x": feeds["x"][:7]}
    assert prog.predict(small, outputs=["g"])["g"].shape == (7, 3)
    assert float(prog.predict(feeds, outputs=["loss"])["loss"]) == pytest.approx(float(prog.forward(feeds)["loss"]))


def test_a_graph_without_a_loss_predicts_every_output():
    graph, feeds = gc.zoo.recall_xor()
    prog = gc.compile(graph)
    np.testing.assert_array_equal(prog.predict(feeds)["out"], prog.forward(feeds)["out"])


def test_mistakes_are_explained():
    prog, feeds = classifier()
    with pytest.raises(gc.FeedError, match="unexpected feed 'z'"):
        prog.predict({**feeds, "z": 1.0})
    with pytest.raises(gc.FeedError, match="missing feed 'x'"):
        prog.predict({k: v for k, v in feeds.items() if k not in ("x", "y")})
    with pytest.raises(gc.GraphcError, match="'h' is not an output"):
        prog.predict(feeds, outputs=["h"])
    g = gc.Graph("only_loss"); x = g.input("x", shape=(2,)); w = g.param("w", shape=(2,))
    g.output("loss", gc.sum(x * w))
    with pytest.raises(gc.GraphcError, match="its only output is the loss 'loss'"):
        gc.compile(g).predict({"x": np.ones(2), "w": np.ones(2)})
