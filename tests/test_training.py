"""gc.train: the minibatch schedule against a hand-written loop, determinism, the history,
the shipped digits learned to held-out accuracy, bad settings."""

import json

import numpy as np
import pytest

import graphc as gc


def linear_net():
    g = gc.Graph("linear")
    x, y = g.input("x", shape=("N", 2)), g.input("y", shape=("N", 1))
    w, b = g.param("w", shape=(2, 1)), g.param("b", shape=(1,))
    pred = gc.identity(x @ w + b)
    g.output("loss", gc.mse(pred, y))
    g.output("g", pred)
    return gc.compile(g)


def linear_data(n=11, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2))
    return {"x": x, "y": x @ np.array([[2.0], [-1.0]]) + 0.5 + 0.1 * rng.normal(size=(n, 1))}


def test_the_schedule_is_seeded_shuffled_minibatches_of_plain_sgd():
    """The same run written by hand: one generator, a permutation per epoch, batches of 4
    (the last one of 3), w <- w - lr grad with the mse gradient by hand; the epoch loss is
    the row-weighted mean of the batch losses."""
    prog, data = linear_net(), linear_data()
    params = {"w": np.zeros((2, 1)), "b": np.zeros(1)}
    history = gc.train(prog, params, data, epochs=3, batch_size=4, optimizer=gc.optim.SGD(lr=0.1), seed=5)

    w, b = np.zeros((2, 1)), np.zeros(1)
    rng = np.random.default_rng(5)
    losses = []
    for _ in range(3):
        order, total = rng.permutation(11), 0.0
        for start in range(0, 11, 4):
            rows = order[start:start + 4]
            x, y = data["x"][rows], data["y"][rows]
            err = x @ w + b - y
            total += float(np.mean(err ** 2)) * len(rows)
            d = 2 * err / err.size
            w, b = w - 0.1 * (x.T @ d), b - 0.1 * d.sum(axis=0)
        losses.append(total / 11)
    np.testing.assert_allclose(params["w"], w, rtol=0, atol=1e-14)
    np.testing.assert_allclose(params["b"], b, rtol=0, atol=1e-14)
    np.testing.assert_allclose(history["loss"], losses, rtol=1e-13)
    assert history.loss == history["loss"] and "test_accuracy" not in history


def test_params_are_updated_in_place_and_the_same_seed_gives_the_same_run():
    prog, data = linear_net(), linear_data()
    runs = []
    for seed in (1, 1, 2):
        params = {"w": np.zeros((2, 1)), "b": np.zeros(1)}
        arrays = dict(params)
        history = gc.train(prog, params, data, epochs=4, batch_size=3, optimizer=gc.optim.Adam(lr=0.05), seed=seed)
        assert all(params[k] is arrays[k] for k in params)
        runs.append((history["loss"], params["w"].copy()))
    assert runs[0][0] == runs[1][0] and np.array_equal(runs[0][1], runs[1][1])
    assert runs[0][0] != runs[2][0]  # another seed, other batches


def test_the_digits_mlp_learns_to_95_percent_held_out_accuracy():
    graph, feeds = gc.zoo.digits_mlp()
    prog = gc.compile(graph)
    params = {name: feeds[name] for name in graph.params}
    history = gc.train(prog, params, gc.datasets.digits(), epochs=10, batch_size=32,
                       optimizer=gc.optim.Adam(lr=0.01), seed=0)
    assert len(history.test_accuracy) == len(history.test_loss) == len(history.loss) == 10
    assert history.test_accuracy[-1] >= 0.95
    assert history.loss[-1] < history.loss[0] / 5
    json.dumps(history)  # the history is plain data

    # the accuracy is the share of right argmax predictions, by prog.predict without labels
    (_, _), (X_test, y_test) = gc.datasets.digits()
    logits = prog.predict({"x": X_test, **params})["g"]
    assert np.mean(logits.argmax(axis=1) == y_test) == history.test_accuracy[-1]


def test_data_may_be_arrays_in_input_order_with_int_labels():
    """(X, y) with int64 labels of shape (N,) for an input declared (N, 10): one-hot rows."""
    graph, feeds = gc.zoo.digits_mlp(hidden=8)
    prog = gc.compile(graph)
    (X, y), test = gc.datasets.digits()
    by_name = {name: feeds[name].copy() for name in graph.params}
    by_order = {name: feeds[name].copy() for name in graph.params}
    settings = dict(epochs=1, batch_size=64, seed=3)
    first = gc.train(prog, by_name, {"x": X, "y": gc.datasets.one_hot(y, 10)}, optimizer=gc.optim.SGD(lr=0.1),
                     test={"x": test[0], "y": gc.datasets.one_hot(test[1], 10)}, **settings)
    second = gc.train(prog, by_order, (X, y), optimizer=gc.optim.SGD(lr=0.1), test=test, **settings)
    assert first == second
    for name in by_name:
        np.testing.assert_array_equal(by_name[name], by_order[name])


def test_a_progress_bar_only_when_asked_or_on_a_terminal(capsys):
    prog, data = linear_net(), linear_data()
    params = {"w": np.zeros((2, 1)), "b": np.zeros(1)}
    gc.train(prog, params, data, epochs=2, batch_size=4)
    assert capsys.readouterr().err == ""  # pytest's stderr is no terminal
    gc.train(prog, params, data, epochs=2, batch_size=4, progress=True)
    err = capsys.readouterr().err
    assert "[" in err and "   4/6  epoch 2/2  loss " in err  # drawn at each epoch's first batch at least
    assert err.endswith("\r") and err.rsplit("\r", 2)[-2].strip() == ""  # wiped after the last epoch


def test_on_epoch_sees_the_history_grow():
    prog, data = linear_net(), linear_data()
    seen = []
    gc.train(prog, {"w": np.zeros((2, 1)), "b": np.zeros(1)}, data, epochs=3,
             on_epoch=lambda epoch, history: seen.append((epoch, len(history.loss))))
    assert seen == [(1, 1), (2, 2), (3, 3)]


@pytest.mark.parametrize("options,match", [
    ({"epochs": 0}, "epochs must be a positive integer"),
    ({"epochs": 2.5}, "epochs must be a positive integer"),
    ({"batch_size": -1}, "batch_size must be a positive integer"),
    ({"seed": -3}, "seed must be a non-negative integer"),
])
def test_bad_settings_are_typed_errors(options, match):
    prog, data = linear_net(), linear_data()
    with pytest.raises(gc.HyperparameterError, match=match):
        gc.train(prog, {"w": np.zeros((2, 1)), "b": np.zeros(1)}, data, **options)


def test_bad_data_are_feed_errors():
    prog, data = linear_net(), linear_data()
    params = {"w": np.zeros((2, 1)), "b": np.zeros(1)}
    with pytest.raises(gc.FeedError, match="different numbers of rows"):
        gc.train(prog, params, {"x": data["x"], "y": data["y"][:5]})
    with pytest.raises(gc.FeedError, match="'z', which is not an input"):
        gc.train(prog, params, {**data, "z": data["x"]})
    with pytest.raises(gc.FeedError, match="data has 1 arrays but program 'linear' has 2 inputs"):
        gc.train(prog, params, (data["x"],))
    with pytest.raises(gc.FeedError, match="missing feed 'b'"):
        gc.train(prog, {"w": params["w"]}, data)


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid:RuntimeWarning")
def test_a_diverging_run_stops_with_an_explanation():
    prog, data = linear_net(), linear_data()
    data = {"x": data["x"] * 1e3, "y": data["y"]}
    with pytest.raises(gc.GraphcError, match="training diverged; lower the learning rate"):
        gc.train(prog, {"w": np.zeros((2, 1)), "b": np.zeros(1)}, data, epochs=50,
                 optimizer=gc.optim.SGD(lr=5.0))


def test_the_digits_mlp_gradients_pass_the_numeric_check():
    graph, feeds = gc.zoo.digits_mlp()
    batch = {**feeds, "x": feeds["x"][:20], "y": feeds["y"][:20]}
    assert gc.check_gradients(gc.compile(graph), batch).ok


def test_nested_lists_are_arrays_not_a_train_test_pair():
    """(x, y) as Python lists for a program of two inputs is one training set, not (train, test)."""
    prog = linear_net()
    x = [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]
    y = [[2.0], [-1.0], [1.0]]
    history = gc.train(prog, {"w": np.zeros((2, 1)), "b": np.zeros(1)}, (x, y), epochs=2, batch_size=2)
    assert "test_accuracy" not in history and len(history.loss) == 2


def test_a_graph_with_only_a_loss_gets_a_test_loss_and_no_accuracy():
    g = gc.Graph("only_loss")
    x, y = g.input("x", shape=("N", 2)), g.input("y", shape=("N", 1))
    w = g.param("w", shape=(2, 1))
    g.output("loss", gc.mse(x @ w, y))
    data = linear_data()
    history = gc.train(gc.compile(g), {"w": np.zeros((2, 1))}, data, test=data, epochs=2)
    assert sorted(history) == ["loss", "test_loss"] and len(history.test_loss) == 2


def test_int_labels_for_one_probability_column_become_a_column():
    graph, feeds = gc.zoo.two_moons(n=40)
    prog = gc.compile(graph)
    params = {name: feeds[name] for name in graph.params}
    labels = feeds["y"][:, 0].astype(np.int64)
    first = gc.train(prog, {k: v.copy() for k, v in params.items()}, (feeds["x"], labels), epochs=2, seed=1)
    second = gc.train(prog, {k: v.copy() for k, v in params.items()}, (feeds["x"], feeds["y"]), epochs=2, seed=1)
    assert first == second
    with pytest.raises(gc.FeedError, match=r"data 'y' \(declared \(N, 10\)\): one_hot: labels must lie in 0..9"):
        digits, _ = gc.zoo.digits_mlp(hidden=4)
        gc.train(gc.compile(digits), {}, (np.zeros((3, 64)), np.array([0, 1, 12])))
