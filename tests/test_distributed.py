"""Data-parallel training on a Dask LocalCluster: the same weights as one process."""

import functools
import time

import numpy as np
import pytest

import graphc as gc
from graphc import distributed

pytest.importorskip("distributed")
from distributed import Client, LocalCluster, get_worker  # noqa: E402


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        yield client


def _run(graph, feeds, data, client=None, **settings):
    params = {name: feeds[name].copy() for name in graph.params}
    history = gc.train(gc.compile(graph), params, data, seed=3, client=client, **settings)
    return params, history


def _blobs():
    graph, feeds = gc.zoo.blobs()
    return graph, feeds, {"x": feeds["x"], "y": feeds["y"]}


def test_twenty_steps_on_two_workers_equal_one_process_with_unequal_shards(client):
    graph, feeds, data = _blobs()
    # 150 rows in batches of 37: four of 37 (shards 19 + 18) and one of 2 (1 + 1) per epoch; 4 epochs = 20 steps
    settings = dict(epochs=4, batch_size=37, optimizer=gc.optim.Adam(lr=0.05))
    alone, alone_history = _run(graph, feeds, data, **settings)
    settings["optimizer"] = gc.optim.Adam(lr=0.05)
    shared, shared_history = _run(graph, feeds, data, client, **settings)
    for name in alone:
        assert not np.array_equal(alone[name], feeds[name])  # it trained
        np.testing.assert_allclose(shared[name], alone[name], rtol=0, atol=1e-12)
    np.testing.assert_allclose(shared_history.loss, alone_history.loss, rtol=1e-12)


def test_a_shard_that_fails_once_is_run_again_and_applied_once(client, monkeypatch):
    graph, feeds, data = _blobs()
    attempts = []
    original = distributed.shard_gradient

    @functools.wraps(original)
    def flaky(*args):  # the first attempt of every shard task dies
        attempts.append(len(args[4]))
        if len(attempts) % 2 == 1:
            raise RuntimeError("worker lost")
        return original(*args)

    monkeypatch.setattr(distributed, "shard_gradient", flaky)
    settings = dict(epochs=2, batch_size=50, optimizer=gc.optim.SGD(lr=0.2, momentum=0.9))
    shared, _ = _run(graph, feeds, data, client, **settings)
    monkeypatch.undo()
    settings["optimizer"] = gc.optim.SGD(lr=0.2, momentum=0.9)
    alone, _ = _run(graph, feeds, data, **settings)
    assert len(attempts) == 2 * 6 * 2  # 6 steps, 2 shards each, each run twice
    for name in alone:
        np.testing.assert_allclose(shared[name], alone[name], rtol=0, atol=1e-12)


def _regression(loss_of):
    g = gc.Graph("fit")
    x, y = g.input("x", shape=("N", 2)), g.input("y", shape=("N", 1))
    w = g.param("w", shape=(2, 1))
    g.output("loss", loss_of(x, y, w))
    rng = np.random.default_rng(0)
    feeds = {"w": rng.normal(size=(2, 1))}
    return g, feeds, {"x": rng.normal(size=(11, 2)), "y": rng.normal(size=(11, 1))}


def test_a_mean_plus_a_penalty_on_the_weights_is_split_exactly(client):
    graph, feeds, data = _regression(lambda x, y, w: 2.0 * gc.mse(x @ w, y) + 0.1 * gc.sum(w * w))
    settings = dict(epochs=5, batch_size=4)
    alone, _ = _run(graph, feeds, data, **settings)
    shared, _ = _run(graph, feeds, data, client, **settings)
    np.testing.assert_allclose(shared["w"], alone["w"], rtol=0, atol=1e-12)


@pytest.mark.parametrize("loss_of, says", [
    (lambda x, y, w: gc.sum((x @ w - y) ** 2), "op 'sum'"),
    (lambda x, y, w: gc.mse(x - gc.mean(x), y @ gc.transpose(w) ), "a value of the whole batch"),
    (lambda x, y, w: gc.mse(gc.softmax(x, axis=0) @ w, y), "axis 0"),
    (lambda x, y, w: gc.mse(x @ w, y) * gc.mse(x @ w, y), "not a mean over its rows"),
])
def test_losses_that_are_not_means_over_rows_are_refused_before_anything_runs(client, loss_of, says):
    graph, feeds, data = _regression(loss_of)
    params = {name: feeds[name].copy() for name in graph.params}
    with pytest.raises(gc.GradientError, match=says):
        gc.train(gc.compile(graph), params, data, epochs=1, batch_size=4, client=client)
    np.testing.assert_array_equal(params["w"], feeds["w"])


def test_a_client_that_is_not_a_dask_client_is_refused():
    graph, feeds, data = _blobs()
    params = {name: feeds[name].copy() for name in graph.params}
    with pytest.raises(gc.FeedError, match="distributed.Client"):
        gc.train(gc.compile(graph), params, data, epochs=1, client="tcp://scheduler:8786")


def test_a_worker_that_dies_mid_step_loses_nothing_and_applies_nothing_twice(monkeypatch):
    graph, feeds, data = _blobs()
    original = distributed.shard_gradient
    killed = []

    @functools.wraps(original)
    def dying(*args):  # the first shard task to start closes its own worker and never returns
        if not killed:
            worker = get_worker()
            killed.append(worker.address)
            worker.loop.add_callback(worker.close)
            while worker.status.name not in ("closed", "closing", "closing_gracefully"):
                time.sleep(0.01)
            raise RuntimeError("this worker is gone")
        return original(*args)

    settings = dict(epochs=2, batch_size=50, optimizer=gc.optim.SGD(lr=0.2, momentum=0.9))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        monkeypatch.setattr(distributed, "shard_gradient", dying)
        shared, _ = _run(graph, feeds, data, client, **settings)
        monkeypatch.undo()
        survivors = list(client.nthreads())
    settings["optimizer"] = gc.optim.SGD(lr=0.2, momentum=0.9)
    alone, _ = _run(graph, feeds, data, **settings)
    assert killed and killed[0] not in survivors and len(survivors) == 1
    for name in alone:
        np.testing.assert_allclose(shared[name], alone[name], rtol=0, atol=1e-12)
