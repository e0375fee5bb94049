"""The zoo's LeNet-style CNN on the shipped digits: trained by ``graphc train`` to >= 95 %
held-out accuracy, its weights loading back, its gradients against central differences."""

import json

import numpy as np

import graphc as gc
from graphc import cli


def test_graphc_train_takes_the_digits_cnn_past_95_percent_held_out(tmp_path, capsys):
    # Adam (the default) at lr 0.01, batches of 32: 6 epochs (a few seconds here)
    status = cli.main(["train", "digits_cnn", "--data", "digits", "--out", str(tmp_path), "--epochs", "6"])
    out, _ = capsys.readouterr()
    assert status == 0
    history = json.loads((tmp_path / "history.json").read_text())
    assert history["net"] == "digits_cnn" and history["optimizer"] == "Adam" and len(history["loss"]) == 6
    assert history["test_accuracy"][-1] >= 0.95
    assert f"held-out accuracy {history['test_accuracy'][-1]:.3f}" in out
    # the weights written are the trained ones: predicting the held-out images with them
    # gives the accuracy the history reports
    graph, _ = gc.zoo.digits_cnn()
    prog = gc.compile(graph)
    weights = gc.load_weights(tmp_path / "weights.npz", prog)
    assert sorted(weights) == sorted(graph.params)
    _, (X_test, y_test) = gc.datasets.digits()
    logits = prog.predict({"x": X_test, **weights})["g"]
    assert np.mean(logits.argmax(axis=1) == y_test) == history["test_accuracy"][-1]


def test_the_digits_cnn_gradients_pass_the_numeric_check():
    # at zero biases every blank pixel sits on ReLU's kink (z = 0 exactly: a blank window's
    # convolution is its bias), where the one-sided slopes differ; so the biases are moved off 0
    graph, feeds = gc.zoo.digits_cnn()
    rng = np.random.default_rng(0)
    biases = {name: 0.1 + 0.05 * rng.standard_normal(feeds[name].shape) for name in ("b1", "b2", "b3")}
    batch = {**feeds, **biases, "x": feeds["x"][:12], "y": feeds["y"][:12]}
    report = gc.check_gradients(gc.compile(graph), batch)
    assert report.ok, str(report)


def test_the_digits_cnn_is_the_lenet_shape():
    graph, feeds = gc.zoo.digits_cnn()
    ops = [data["op"] for _, data in graph.nx.nodes(data=True)]
    assert ops.count("conv2d") == 2 and ops.count("max_pool2d") == 2 and ops.count("relu") == 2
    assert feeds["y"].dtype == np.int64 and feeds["x"].shape == (1437, 64)
    assert gc.init.fans(feeds["K2"].shape) == (8 * 9, 16 * 9)
