"""sgd_step's two strategies: eager (each param updated as soon as nothing reads it) by
default, atomic (every new value first) when a floating-point error could stop the step.

The reference for every value is the program's own value_and_grad at the old params
(p - lr * grad) and the other strategy, bit for bit; the strategy that ran is told by what
it does (its memory, the params after an error), and by a spy on the atomic function.
"""

from __future__ import annotations

import tracemalloc
import warnings

import numpy as np
import pytest
from small_graphs import input_read_late

import graphc as gc
from graphc import zoo

LR = 0.05
ZOO = ["linear_regression", "logistic_classifier", "relu_neuron", "wide_relu", "residual", "mlp",
       "deep_sigmoid", "deep_residual", "two_moons", "blobs", "digits_mlp", "digits_cnn"]


def copies(feeds: dict) -> dict:
    return {k: np.array(v, copy=True) for k, v in feeds.items()}


class atomic_forced:
    """numpy hands each floating-point error to a function that does nothing: no error is
    raised, but one could be, so sgd_step must take its atomic strategy."""

    def __enter__(self):
        self._state = np.errstate(all="call", call=lambda kind, flag: None)
        self._state.__enter__()

    def __exit__(self, *exc):
        return self._state.__exit__(*exc)


def step_both_ways(prog, feeds, steps=2):
    """The params and outputs after ``steps`` sgd_steps, eager (default) and atomic."""
    eager, atomic = copies(feeds), copies(feeds)
    out_eager, out_atomic = [], []
    for _ in range(steps):
        out_eager.append(prog.sgd_step(eager, LR))
        with atomic_forced():
            out_atomic.append(prog.sgd_step(atomic, LR))
    return eager, atomic, out_eager, out_atomic


def assert_identical(a: dict, b: dict, what: str):
    assert a.keys() == b.keys()
    for name in a:
        x, y = np.asarray(a[name]), np.asarray(b[name])
        assert x.dtype == y.dtype and x.tobytes() == y.tobytes(), f"{what}: {name} differs"


@pytest.mark.parametrize("name", ZOO)
def test_eager_and_atomic_steps_are_bit_identical_on_the_zoo(name):
    graph, feeds = zoo.get(name)()
    prog = gc.compile(graph)
    assert prog.plan.sgd.eager and prog.plan.function("backward_pass").updates
    eager, atomic, out_eager, out_atomic = step_both_ways(prog, feeds)
    assert_identical(eager, atomic, f"{name} params")
    for k, (a, b) in enumerate(zip(out_eager, out_atomic)):
        assert_identical(a, b, f"{name} outputs of step {k}")
    changed = [p for p in graph.params if not np.array_equal(eager[p], feeds[p])]
    assert changed, "the steps moved no param"


def test_the_atomic_strategy_runs_only_when_an_error_could_stop_the_step(monkeypatch):
    graph, feeds = zoo.mlp()
    prog = gc.compile(graph)
    calls = []
    atomic = prog.module.sgd_step_atomic
    monkeypatch.setattr(prog.module, "sgd_step_atomic", lambda *args: calls.append(1) or atomic(*args))
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        prog.sgd_step(copies(feeds), LR)
        assert calls == []
        with np.errstate(over="raise"):
            prog.sgd_step(copies(feeds), LR)
        assert calls == [1]
        with np.errstate(all="ignore"):  # nothing warns, so no filter can raise
            warnings.simplefilter("error", RuntimeWarning)
            prog.sgd_step(copies(feeds), LR)
        assert calls == [1]
        prog.sgd_step(copies(feeds), LR)  # numpy warns, and the filter (changed in place) raises
        assert calls == [1, 1]


@pytest.mark.parametrize("filters, stops", [
    ([("error", RuntimeWarning)], True),
    ([("error", Warning)], True),  # python -W error
    ([("error", DeprecationWarning)], False),
    ([("ignore", RuntimeWarning), ("error", Warning)], False),  # the first match decides
    ([("error", RuntimeWarning), ("ignore", Warning)], True),
])
def test_which_warnings_filters_make_the_step_atomic(filters, stops):
    prog = gc.compile(zoo.mlp()[0])
    with warnings.catch_warnings():
        warnings.resetwarnings()
        for action, category in reversed(filters):  # simplefilter puts each first
            warnings.simplefilter(action, category)
        assert prog.module._could_stop() is stops
        warnings.filterwarnings("error", message="overflow", category=RuntimeWarning)  # may match numpy's
        assert prog.module._could_stop() is True


def late_overflow():
    """a's update is due before b's gradient is computed, and b's gradient overflows when
    lr is large (the forward pass is finite): an eager step stopped there has moved a."""
    g = gc.Graph("late_overflow")
    x = g.input("x", shape=(3,))
    a, b = g.param("a", shape=(3,)), g.param("b", shape=(3, 3))
    g.output("loss", gc.sum(a * x) + 1e10 * gc.sum(gc.tanh(gc.tanh(x @ b) @ b)))
    return g, {"x": np.ones(3), "a": np.ones(3), "b": np.full((3, 3), 0.5)}


def test_the_late_overflow_net_stops_an_eager_order_after_a_first_update():
    """The net tells the strategies apart: run eagerly under errstate(all="raise"), the
    step stops after a's update (so the checks below could fail)."""
    graph, feeds = late_overflow()
    prog = gc.compile(graph)
    arrays = copies(feeds)
    args = [arrays[name] for name in graph.inputs + graph.params]
    _, saved = prog.module.train_forward(*args)
    assert prog.plan.function("backward_pass").update_args == ("a",)  # b is saved: the backward pass reads it
    with np.errstate(all="raise"), pytest.raises(FloatingPointError):
        prog.module.backward_pass(saved, np.float64(1e308), update=(arrays["a"],))
    assert not np.array_equal(arrays["a"], feeds["a"]) and np.array_equal(arrays["b"], feeds["b"])


@pytest.mark.parametrize("stop", ["errstate", "filter"])
def test_a_step_that_fails_halfway_changes_no_param(stop):
    graph, feeds = late_overflow()
    prog = gc.compile(graph)
    before = copies(feeds)
    with warnings.catch_warnings():
        warnings.simplefilter("error" if stop == "filter" else "default", RuntimeWarning)
        with np.errstate(all="raise" if stop == "errstate" else "warn"):
            with pytest.raises(FloatingPointError if stop == "errstate" else RuntimeWarning, match="overflow"):
                prog.sgd_step(feeds, 1e308)
    assert_identical(feeds, before, "after the stopped step")


def test_without_a_raising_state_the_same_step_runs_to_the_end_and_warns():
    graph, feeds = late_overflow()
    prog = gc.compile(graph)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        prog.sgd_step(feeds, 1e308)
    assert any(issubclass(w.category, RuntimeWarning) for w in caught)
    assert not np.isfinite(feeds["b"]).all() and np.isfinite(feeds["a"]).all()



def mixed(dtype="float64"):
    """Array and 0-d params in turn (W, s, then a and b, then t: one of each kind, then a run
    of two arrays), b near the most negative float: with lr half the largest float every
    gradient times lr is finite, and only b's new value, b - lr * 1, overflows."""
    g = gc.Graph("mixed")
    x = g.input("x", shape=(3,), dtype=dtype)
    W, s = g.param("W", shape=(3, 3), dtype=dtype), g.param("s", shape=(), dtype=dtype)
    a, b = g.param("a", shape=(3,), dtype=dtype), g.param("b", shape=(1,), dtype=dtype)
    t = g.param("t", shape=(), dtype=dtype)
    g.output("loss", gc.sum(gc.tanh(x @ W) * a) * s + gc.sum(b) + t * gc.sum(x))
    rng = np.random.default_rng(5)
    feeds = {"x": rng.normal(size=3).astype(dtype) / 10, "W": rng.normal(size=(3, 3)).astype(dtype),
             "s": np.array(0.7, dtype=dtype), "a": rng.normal(size=3).astype(dtype),
             "b": np.array([-0.9 * np.finfo(dtype).max], dtype=dtype), "t": np.array(-1.3, dtype=dtype)}
    return g, feeds


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_the_atomic_step_updates_array_and_scalar_params_as_the_eager_one(dtype):
    graph, feeds = mixed(dtype)
    feeds["b"] = np.array([0.25], dtype=dtype)
    prog = gc.compile(graph)
    _, grads = prog.value_and_grad(copies(feeds))
    eager, atomic, out_eager, out_atomic = step_both_ways(prog, feeds, steps=1)
    assert_identical(eager, atomic, "params")
    assert_identical(out_eager[0], out_atomic[0], "outputs")
    tolerance = 1e-6 if dtype == "float32" else 1e-14
    for name in graph.params:
        assert atomic[name].dtype == np.dtype(dtype) and atomic[name].shape == feeds[name].shape
        np.testing.assert_allclose(atomic[name], feeds[name] - LR * grads[name], rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_an_overflow_in_one_update_changes_no_param(dtype):
    """The gradients are finite (backward_pass runs under errstate(all="raise")); b's new
    value overflows, after W's, s's and a's are computed: none of them is written."""
    graph, feeds = mixed(dtype)
    prog = gc.compile(graph)
    lr = 0.5 * float(np.finfo(dtype).max)
    arrays = copies(feeds)
    _, saved = prog.module.train_forward(*(arrays[name] for name in graph.inputs + graph.params))
    with np.errstate(all="raise"):
        gradients = prog.module.backward_pass(saved, np.dtype(dtype).type(lr))
    assert all(np.isfinite(g).all() for g in gradients)
    before = copies(feeds)
    with np.errstate(all="raise"), pytest.raises(FloatingPointError, match="overflow"):
        prog.sgd_step(feeds, lr)
    assert_identical(feeds, before, "after the stopped step")
    with np.errstate(all="ignore"):  # the same step run to the end writes every param
        prog.sgd_step(feeds, lr)
    assert np.isneginf(feeds["b"]).all()
    assert all(np.isfinite(feeds[p]).all() and not np.array_equal(feeds[p], before[p]) for p in "Wsat")

def wide(n=4, width=384):
    """Big params, a small batch: the gradients are most of a step's memory."""
    g = gc.Graph("wide")
    x = g.input("x", shape=("N", width))
    W1, W2 = g.param("W1", shape=(width, width)), g.param("W2", shape=(width, width))
    g.output("loss", gc.sum(gc.tanh(gc.tanh(x @ W1) @ W2)))
    rng = np.random.default_rng(0)
    feeds = {"x": rng.normal(size=(n, width)), "W1": rng.normal(size=(width, width)) / width,
             "W2": rng.normal(size=(width, width)) / width}
    return g, feeds


def peak(fn) -> int:
    fn()  # warm: the first call may allocate caches
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        fn()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def test_by_default_the_step_holds_less_than_every_gradient_at_once():
    graph, feeds = wide()
    prog = gc.compile(graph)
    gradients = sum(feeds[p].nbytes for p in graph.params)  # 2 x 1.2 MB

    def atomic():
        with atomic_forced():
            prog.sgd_step(feeds, 1e-3)

    eager_peak = peak(lambda: prog.sgd_step(feeds, 1e-3))
    assert eager_peak < 0.75 * gradients, (eager_peak, gradients)
    assert peak(atomic) >= gradients  # the atomic step holds them all: it did run there


def shared_twice():
    """W is used by two layers and read by both backward matmuls (d_h = d @ W.T); b's
    gradient is final long before W's."""
    g = gc.Graph("shared_twice")
    x = g.input("x", shape=("N", 4))
    W, b = g.param("W", shape=(4, 4)), g.param("b", shape=(4,))
    h = gc.tanh(x @ W + b)
    h2 = gc.sigmoid(h @ W)
    g.output("loss", gc.sum(gc.square(h2 @ W.T)))
    rng = np.random.default_rng(3)
    return g, {"x": rng.normal(size=(5, 4)), "W": rng.normal(size=(4, 4)), "b": rng.normal(size=4)}


def test_a_param_read_by_the_backward_pass_is_updated_after_its_last_read():
    graph, feeds = shared_twice()
    prog = gc.compile(graph)
    _, grads = prog.value_and_grad(copies(feeds))
    eager, atomic, _, _ = step_both_ways(prog, feeds, steps=1)
    assert_identical(eager, atomic, "params")
    for name in graph.params:
        np.testing.assert_allclose(eager[name], feeds[name] - LR * grads[name], rtol=1e-13, atol=1e-15)


def test_eager_updates_run_right_on_a_pool():
    g = gc.Graph("pooled")
    x = g.input("x", shape=("N", 256))
    W1, W2 = g.param("W1", shape=(256, 256)), g.param("W2", shape=(256, 256))
    g.output("loss", gc.sum(gc.tanh(gc.tanh(x @ W1) @ W2) * gc.tanh(x @ W2)))
    rng = np.random.default_rng(1)
    feeds = {"x": rng.normal(size=(128, 256)), "W1": rng.normal(size=(256, 256)) / 16,
             "W2": rng.normal(size=(256, 256)) / 16}
    pooled = gc.compile(g, parallel=2)
    assert pooled.plan.function("backward_pass").updates  # the eager step's backward pass
    assert pooled.plan.parallel.of("backward_pass"), "no group in the eager backward pass"
    alone, together = copies(feeds), copies(feeds)
    gc.compile(g).sgd_step(alone, LR)
    with atomic_forced():
        atomic = copies(feeds)
        pooled.sgd_step(atomic, LR)
    pooled.sgd_step(together, LR)
    assert_identical(together, alone, "params on a pool")
    assert_identical(together, atomic, "params eager and atomic on a pool")


# -- params and inputs that share memory ---------------------------------------------------
def test_an_input_in_a_params_memory_gets_the_all_or_nothing_step():
    prog = gc.compile(input_read_late())

    def feeds():
        a = np.arange(9.0).reshape(3, 3) / 10
        return {"x": a, "W": np.eye(3) + 0.1, "a": a}  # x is a itself

    def expected(f):
        _, grads = prog.value_and_grad(f)
        return f["W"] - 0.1 * grads["W"], f["a"] - 0.1 * grads["a"]

    eager = feeds()
    want_w, _ = expected(eager)
    prog.module.sgd_step(*(eager[k] for k in ("x", "W", "a")), 0.1)  # the eager function alone reads the new a
    assert np.abs(eager["W"] - want_w).max() > 1e-3
    through = feeds()
    want_w, want_a = expected(through)
    prog.sgd_step(through, 0.1)
    np.testing.assert_allclose(through["W"], want_w, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(through["a"], want_a, rtol=1e-14, atol=1e-15)


def test_params_that_overlap_in_memory_are_refused():
    prog = gc.compile(input_read_late())
    shared = np.eye(3)
    feeds = {"x": np.ones((3, 3)), "W": shared, "a": shared}
    with pytest.raises(gc.FeedError, match="'W' and 'a' share memory"):
        prog.sgd_step(feeds, 0.1)
    np.testing.assert_array_equal(shared, np.eye(3))


def test_two_params_overlapping_in_one_buffer_are_refused_whatever_lies_between():
    """Three views of one buffer: the first and the last overlap, the middle one touches
    neither. Every pair is compared (the check once compared each view with the one before)."""
    g = gc.Graph("three_views")
    x = g.input("x", shape=(2,))
    a, b, c = (g.param(n, shape=(2,)) for n in "abc")
    g.output("loss", gc.sum(x * a) + gc.sum(x * b) + gc.sum(x * c))
    flat = np.arange(6.0)
    feeds = {"x": np.ones(2), "a": flat[0:2], "b": flat[4:6], "c": flat[1:3]}
    with pytest.raises(gc.FeedError, match="'a' and 'c' share memory"):
        gc.compile(g).sgd_step(feeds, 0.1)
    np.testing.assert_array_equal(flat, np.arange(6.0))


def test_params_in_separate_views_of_one_buffer_are_stepped_as_separate_arrays():
    prog = gc.compile(input_read_late())
    flat = np.linspace(-1.0, 1.0, 18)
    views = {"x": np.ones((3, 3)), "W": flat[:9].reshape(3, 3), "a": flat[9:].reshape(3, 3)}
    copies = {k: v.copy() for k, v in views.items()}
    prog.sgd_step(views, 0.1)
    prog.sgd_step(copies, 0.1)
    np.testing.assert_array_equal(flat[:9].reshape(3, 3), copies["W"])
    np.testing.assert_array_equal(flat[9:].reshape(3, 3), copies["a"])
