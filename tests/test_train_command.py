"""graphc train and graphc demo --data digits: files written, weights that load back, the
held-out accuracy, settings checked."""

import json

import numpy as np
import pytest

import graphc as gc
from graphc import cli


def run(capsys, *argv):
    status = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_train_writes_weights_and_history_that_fit_the_network(tmp_path, capsys):
    status, out, _ = run(capsys, "train", "digits_mlp", "--data", "digits", "--out", tmp_path, "--epochs", 3,
                         "--optimizer", "adam", "--lr", 0.01)
    assert status == 0 and "held-out accuracy" in out
    history = json.loads((tmp_path / "history.json").read_text())
    assert history["optimizer"] == "Adam" and history["settings"]["lr"] == 0.01 and history["epochs"] == 3
    assert len(history["loss"]) == len(history["test_accuracy"]) == 3

    graph, _ = gc.zoo.digits_mlp()
    prog = gc.compile(graph)
    with np.load(tmp_path / "weights.npz") as stored:
        assert sorted(stored.files) == sorted(graph.params)
    weights = gc.load_weights(tmp_path / "weights.npz", prog)
    _, (X_test, y_test) = gc.datasets.digits()
    logits = prog.predict({"x": X_test, **weights})["g"]
    assert np.mean(logits.argmax(axis=1) == y_test) == history["test_accuracy"][-1]


def test_the_explorer_page_is_written_when_the_explorer_exists(tmp_path, capsys):
    status, out, _ = run(capsys, "train", "digits_mlp", "--data", "digits", "--out", tmp_path, "--epochs", 1)
    assert status == 0
    if hasattr(gc.Program, "explore"):
        assert (tmp_path / "explore.html").is_file() and "explorer -> " in out
    else:
        assert not (tmp_path / "explore.html").exists() and "explore.html: skipped" in out


def test_demo_with_the_digits_reaches_95_percent_held_out(tmp_path, capsys):
    status, out, _ = run(capsys, "demo", "--data", "digits", "--out", tmp_path)
    assert status == 0
    history = json.loads((tmp_path / "history.json").read_text())
    assert history["optimizer"] == "SGD" and history["epochs"] == 60
    assert history["test_accuracy"][-1] >= 0.95
    assert f"held-out accuracy {history['test_accuracy'][-1]:.3f}" in out


def linear_graph_file(tmp_path):
    g = gc.Graph("line")
    x, y = g.input("x", shape=("N", 2)), g.input("y", shape=("N", 1))
    w, b = g.param("w", shape=(2, 1)), g.param("b", shape=(1,))
    pred = gc.identity(x @ w + b)
    g.output("loss", gc.mse(pred, y))
    g.output("g", pred)
    return gc.save(g, tmp_path / "line.json")


@pytest.mark.parametrize("names", [("x", "y", "x_test", "y_test"), ("X_train", "y_train", "X_test", "y_test"),
                                   ("x_train", "y_train", "x_test", "y_test"), ("X", "Y", "X_TEST", "Y_TEST")])
def test_a_graph_file_trains_on_an_npz_of_its_inputs(tmp_path, capsys, names):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 2))
    y = x @ np.array([[1.5], [-0.5]]) + 0.25
    arrays = dict(zip(names, (x[:48], y[:48], x[48:], y[48:])))
    np.savez(tmp_path / "data.npz", **arrays)
    status, out, _ = run(capsys, "train", linear_graph_file(tmp_path), "--data", tmp_path / "data.npz",
                         "--out", tmp_path / "out", "--optimizer", "sgd", "--lr", 0.1, "--epochs", 40,
                         "--batch-size", 8)
    assert status == 0
    history = json.loads((tmp_path / "out" / "history.json").read_text())
    assert history["loss"][-1] < 1e-3 * history["loss"][0] and history["test_loss"][-1] < 1e-4
    weights = gc.load_weights(tmp_path / "out" / "weights.npz")
    np.testing.assert_allclose(weights["w"], [[1.5], [-0.5]], atol=1e-2)


@pytest.mark.parametrize("lr,words", [("-1", ["lr must be positive"]), ("nan", ["lr must be finite"]),
                                      ("1e6", ["absurdly large"]), ("0", ["lr must be positive"])])
def test_bad_learning_rates_are_one_clear_line(tmp_path, capsys, lr, words):
    status, out, err = run(capsys, "train", "digits_mlp", "--out", tmp_path, "--lr", lr)
    assert status == 2 and out == "" and not (tmp_path / "weights.npz").exists()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("graphc: ") and all(w in lines[0] for w in words)


def test_other_mistakes_are_one_clear_line(tmp_path, capsys):
    status, _, err = run(capsys, "train", "digits_mlp", "--optimizer", "adam", "--momentum", "0.9")
    assert status == 2 and "SGD settings" in err
    status, _, err = run(capsys, "train", linear_graph_file(tmp_path))
    assert status == 2 and "give its training data with --data" in err
    np.savez(tmp_path / "odd.npz", z=np.zeros(3))
    status, _, err = run(capsys, "train", linear_graph_file(tmp_path), "--data", tmp_path / "odd.npz")
    assert status == 2 and "array 'z' is not named after an input of the graph (x, y)" in err
    np.savez(tmp_path / "twice.npz", x=np.zeros((3, 2)), X_train=np.zeros((3, 2)), y=np.zeros((3, 1)))
    status, _, err = run(capsys, "train", linear_graph_file(tmp_path), "--data", tmp_path / "twice.npz")
    assert status == 2 and "two arrays give the train data of input 'x'" in err


def test_train_has_help(capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["train", "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert all(option in out for option in ("--data", "--epochs", "--batch-size", "--optimizer", "--lr", "--out"))


def test_files_and_networks_that_cannot_train_are_one_clear_line(tmp_path, capsys):
    (tmp_path / "text.npz").write_text("not an archive\n")
    status, _, err = run(capsys, "train", "digits_mlp", "--data", tmp_path / "text.npz", "--out", tmp_path)
    assert status == 2 and "not a data file" in err and "allow_pickle" not in err  # never advise unpickling
    status, _, err = run(capsys, "train", "recall_xor", "--out", tmp_path)
    assert status == 2 and err.startswith("graphc: cannot train recall_xor: ") and "gradient check" not in err
    status, _, err = run(capsys, "train", "two_moons", "--data", "digits", "--out", tmp_path)
    assert status == 2 and "feed 'x' has shape (32, 64), expected (N, 2)" in err


def test_the_default_folder_comes_from_the_command_line_not_the_graph_file(tmp_path, capsys, monkeypatch):
    """A graph file named '../../escape' still writes under graphc-out/train/<file name>."""
    g = gc.Graph("../../escape")
    x, y = g.input("x", shape=("N", 1)), g.input("y", shape=("N", 1))
    w = g.param("w", shape=(1, 1))
    g.output("loss", gc.mse(x @ w, y))
    path = gc.save(g, tmp_path / "net.json")
    np.savez(tmp_path / "data.npz", x=np.ones((4, 1)), y=np.ones((4, 1)))
    work = tmp_path / "work" / "deep"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    status, _, _ = run(capsys, "train", path, "--data", tmp_path / "data.npz", "--epochs", 1)
    assert status == 0
    assert (work / "graphc-out" / "train" / "net" / "weights.npz").is_file()
    assert sorted(p.name for p in work.iterdir()) == ["graphc-out"]  # nothing written beside it (../../escape)


def test_a_data_file_that_unpacks_to_too_much_is_refused_unread(tmp_path, capsys, monkeypatch):
    from graphc import train_command

    monkeypatch.setattr(train_command, "MAX_DATA_BYTES", 10_000)
    np.savez_compressed(tmp_path / "big.npz", x=np.zeros((2000, 2)), y=np.zeros((2000, 1)))
    status, _, err = run(capsys, "train", linear_graph_file(tmp_path), "--data", tmp_path / "big.npz",
                         "--out", tmp_path / "out")
    assert status == 2 and "the arrays unpack to 48256 bytes, more than graphc train reads (10000)" in err
