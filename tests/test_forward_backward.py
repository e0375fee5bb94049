"""forward_backward: the forward and backward passes as one blocked loop (schedule.plan_forward_backward).

When a blocked region of the forward pass and the backward region reading only its values
(and the constant cotangent of a scalar output) run as one loop, ``value_and_grad`` without
a seed and ``sgd_step`` run ``forward_backward``: nothing is saved between the passes, the row sums
into gradients and the mean loss add up block by block. Blocks sum in another order than
the unblocked code, so results are compared with ``blocking="off"``, the interpreter and
central differences within a tolerance that grows with the length of the sums.
"""

from __future__ import annotations

import importlib.util
import tracemalloc

import numpy as np
import pytest
import sympy
from numeric_reference import feed_grad

import graphc as gc

K = 5  # the width of a row
ROWS = 3  # rows per block, forced
BATCHES = (1, 2, 3, 7)  # one row, fewer than a block, a multiple of it, not a multiple (ragged)
EPS = {"float64": np.finfo(np.float64).eps, "float32": np.finfo(np.float32).eps}


def benchmark_chain(dtype="float64", width=K):
    """The elementwise case of benchmarks/run.py: six functions of x*a + c, then a mean."""
    silu = gc.elementwise("silu", lambda z: z / (1 + sympy.exp(-z)))
    g = gc.Graph("chain")
    x = g.input("x", shape=("N", width), dtype=dtype)
    a = g.param("a", shape=(width,), dtype=dtype)
    c = g.param("c", shape=(width,), dtype=dtype)
    g.output("loss", gc.mean(gc.sin(gc.square(gc.log1p(gc.exp(gc.tanh(silu(x * a + c))))))))
    return g


def param_read_in_backward(dtype="float64"):
    """The backward pass reads param a inside the loop (d/dz of sin(z) * a), which sgd_step
    updates: its update must wait until every block has read it."""
    g = gc.Graph("reads_a")
    x = g.input("x", shape=("N", K), dtype=dtype)
    a = g.param("a", shape=(K,), dtype=dtype)
    g.output("loss", gc.mean(gc.sin(gc.exp(x * a)) * a))
    return g


def feeds_for(g, n, dtype, seed=0):
    rng = np.random.default_rng(seed)
    feeds = {"x": rng.standard_normal((n, K))}
    for name in g.nx.graph["params"]:
        feeds[name] = rng.standard_normal(tuple(g.nx.nodes[name]["shape"])) * 0.5
    return {k: v.astype(dtype) for k, v in feeds.items()}


def tolerance(dtype, n):
    """Sums of n * K terms (the loss) or of n (a gradient's rows), blocked or not: their
    rounding differs by a few eps per term at most (the terms are of one size here)."""
    return 8 * (n * K + 8) * EPS[dtype]


def close(found, expected, dtype, n):
    tol = tolerance(dtype, n)
    np.testing.assert_allclose(np.asarray(found, np.float64), np.asarray(expected, np.float64), rtol=tol, atol=tol)


def central_differences(g, feeds, name, h=1e-6):
    """d loss / d feeds[name] by central differences on the interpreter, in float64."""
    return feed_grad(lambda point: float(gc.evaluate(g, point, "loss", dtype="float64")["loss"]), feeds, name, h)


def function(source: str, name: str) -> str:
    return source.split(f"\ndef {name}(")[1].split("\ndef ")[0]


def test_the_benchmark_chain_runs_both_passes_in_one_loop_and_saves_nothing():
    prog = gc.compile(benchmark_chain(), blocking=ROWS)
    step = function(prog.source, "forward_backward")
    assert step.count("for start in range(") == 1  # one loop: forward, backward, loss and gradient sums
    assert "loss += " in step and "d_a += " in step and "d_c += " in step
    assert "numpy.empty((N, " not in step  # no full array of the rows: nothing goes out to memory
    sgd = function(prog.source, "sgd_step")
    assert "forward_backward(" in sgd and "train_forward(" not in sgd
    assert "forward_backward(" in function(prog.source, "sgd_step_atomic")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_value_and_grad_agrees_with_unblocked_code_the_interpreter_and_central_differences(dtype):
    g = benchmark_chain(dtype)
    prog, off = gc.compile(g, blocking=ROWS), gc.compile(g, blocking="off")
    assert "def forward_backward(" in prog.source and "def forward_backward(" not in off.source
    for n in BATCHES:
        feeds = feeds_for(g, n, dtype, seed=n)
        values, grads = prog.value_and_grad(feeds)
        ref_values, ref_grads = off.value_and_grad(feeds)
        seeded_values, seeded = prog.value_and_grad(feeds, seed=np.asarray(2.5, dtype=dtype))
        assert values["loss"].dtype == np.dtype(dtype) and values["loss"].shape == ()
        close(values["loss"], ref_values["loss"], dtype, n)
        close(values["loss"], gc.evaluate(g, feeds, "loss")["loss"], dtype, n)
        close(seeded_values["loss"], ref_values["loss"], dtype, n)
        for name in ("a", "c"):
            assert grads[name].dtype == np.dtype(dtype) and grads[name].shape == (K,)
            close(grads[name], ref_grads[name], dtype, n)
            close(seeded[name], 2.5 * ref_grads[name], dtype, n)
            numeric = central_differences(g, feeds, name)
            np.testing.assert_allclose(grads[name], numeric, rtol=1e-5 if dtype == "float64" else 2e-4,
                                       atol=1e-7 if dtype == "float64" else 1e-5)


@pytest.mark.parametrize("make", [benchmark_chain, param_read_in_backward])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_sgd_step_eager_and_atomic_agree_with_unblocked_code(make, dtype):
    g = make(dtype)
    prog, off = gc.compile(g, blocking=ROWS), gc.compile(g, blocking="off")
    assert "def forward_backward(" in prog.source
    for n in BATCHES:
        feeds = feeds_for(g, n, dtype, seed=20 + n)
        _, ref_grads = off.value_and_grad(feeds)
        eager, atomic, unblocked = ({k: v.copy() for k, v in feeds.items()} for _ in range(3))
        loss = prog.sgd_step(eager, lr=0.1)["loss"]
        with np.errstate(all="raise"):  # an error could stop the step: the atomic strategy runs
            atomic_loss = prog.sgd_step(atomic, lr=0.1)["loss"]
        off.sgd_step(unblocked, lr=0.1)
        assert loss == atomic_loss
        close(loss, gc.evaluate(g, feeds, "loss")["loss"], dtype, n)
        for name in g.nx.graph["params"]:
            np.testing.assert_array_equal(eager[name], atomic[name])  # the same arithmetic
            close(eager[name], unblocked[name], dtype, n)
            close(eager[name], feeds[name] - np.asarray(0.1, dtype) * ref_grads[name], dtype, n)


def test_an_error_in_the_joined_loop_leaves_every_param_unchanged():
    """log of a negative in the last (ragged) block: under errstate(all="raise") the step
    stops inside forward_backward's loop, after the earlier blocks ran, before any update."""
    g = gc.Graph("log")
    x = g.input("x", shape=("N", K))
    a, c = g.param("a", shape=(K,)), g.param("c", shape=(K,))
    g.output("loss", gc.mean(gc.tanh(gc.log(x * a + c))))
    prog = gc.compile(g, blocking=ROWS)
    assert "def forward_backward(" in prog.source
    feeds = {"x": np.full((7, K), 2.0), "a": np.ones(K), "c": np.ones(K)}
    feeds["x"][6, 2] = -5.0  # x*a + c < 0 in the seventh row only
    params = {k: v.copy() for k, v in feeds.items()}
    with np.errstate(all="raise"), pytest.raises(FloatingPointError):
        prog.sgd_step(params, lr=0.1)
    for name in ("a", "c"):
        np.testing.assert_array_equal(params[name], feeds[name])


def test_the_saved_module_runs_train_step_for_its_unseeded_gradient(tmp_path):
    g = benchmark_chain()
    prog, off = gc.compile(g, blocking=ROWS), gc.compile(g, blocking="off")
    path = prog.save(tmp_path / "joined.py")
    spec = importlib.util.spec_from_file_location("joined", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert "forward_backward(" in function(path.read_text(), "value_and_grad")
    for n in BATCHES:
        feeds = feeds_for(g, n, "float64", seed=40 + n)
        ref_values, ref_grads = off.value_and_grad(feeds)
        for seed in (None, np.asarray(1.0)):
            values, grads = module.value_and_grad(feeds, seed)
            close(values["loss"], ref_values["loss"], "float64", n)
            for name in ("a", "c"):
                close(grads[name], ref_grads[name], "float64", n)
        params = {k: v.copy() for k, v in feeds.items()}
        module.sgd_step(*(params[k] for k in module.INPUTS + module.PARAMS), 0.1)
        for name in ("a", "c"):
            close(params[name], feeds[name] - 0.1 * ref_grads[name], "float64", n)


def test_nothing_of_the_rows_is_kept_between_the_passes():
    """The unjoined value_and_grad saves a full (N, K) array for the backward pass; the
    joined one holds blocks of ROWS rows only (tracemalloc sees numpy's allocations)."""
    g = benchmark_chain()
    n = 4000
    feeds = feeds_for(g, n, "float64")
    row_array = n * K * 8
    peaks = {}
    for blocking in (ROWS, "off"):
        prog = gc.compile(g, blocking=blocking)
        params = {k: v.copy() for k, v in feeds.items()}
        prog.value_and_grad(feeds)  # warm: first-call allocations (feed checks) are not the step's
        prog.sgd_step(params, lr=0.1)
        tracemalloc.start()
        prog.value_and_grad(feeds)
        peaks[blocking, "value_and_grad"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        prog.sgd_step(params, lr=0.1)
        peaks[blocking, "sgd_step"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    for call in ("value_and_grad", "sgd_step"):
        assert peaks["off", call] >= row_array
        assert peaks[ROWS, call] < row_array / 8


def test_a_loss_the_backward_pass_reads_keeps_the_passes_apart():
    """The square of a sum: its backward pass reads the sum, whole only after the forward
    loop, so no loop can take both passes and no forward_backward is printed."""
    g = gc.Graph("square_of_sum")
    x = g.input("x", shape=("N", K))
    a = g.param("a", shape=(K,))
    g.output("loss", gc.square(gc.sum(gc.tanh(gc.exp(x * a)))))
    prog = gc.compile(g, blocking=ROWS)
    assert "for start in range(" in prog.source and "forward_backward" not in prog.source
    feeds = feeds_for(g, 7, "float64")
    _, grads = prog.value_and_grad(feeds)
    np.testing.assert_allclose(grads["a"], central_differences(g, feeds, "a"), rtol=1e-6, atol=1e-7)


def test_a_backward_read_of_a_value_from_before_the_loop_is_sliced_in_it():
    """h = x @ W comes before the elementwise loop; the joined loop's backward steps read
    h's rows (a slice), and d_h leaves the loop for the matmul's backward after it."""
    g = gc.Graph("after_matmul")
    x = g.input("x", shape=("N", K))
    w, c = g.param("w", shape=(K, K)), g.param("c", shape=(K,))
    h = x @ w
    g.output("loss", gc.mean(gc.sin(gc.tanh(h + c) * h)))
    prog, off = gc.compile(g, blocking=ROWS), gc.compile(g, blocking="off")
    for n in BATCHES:
        feeds = feeds_for(g, n, "float64", seed=60 + n)
        values, grads = prog.value_and_grad(feeds)
        ref_values, ref_grads = off.value_and_grad(feeds)
        close(values["loss"], ref_values["loss"], "float64", n)
        for name in ("w", "c"):
            close(grads[name], ref_grads[name], "float64", n)
            np.testing.assert_allclose(grads[name], central_differences(g, feeds, name), rtol=1e-5, atol=1e-7)
        eager, unblocked = {k: v.copy() for k, v in feeds.items()}, {k: v.copy() for k, v in feeds.items()}
        prog.sgd_step(eager, lr=0.1)
        off.sgd_step(unblocked, lr=0.1)
        for name in ("w", "c"):
            close(eager[name], unblocked[name], "float64", n)


def test_unblocked_programs_print_no_train_step():
    g = benchmark_chain()
    assert "forward_backward" not in gc.compile(g, blocking="off").source
    assert "forward_backward" not in gc.compile(benchmark_chain(width=8), blocking="auto").source  # too narrow to block
