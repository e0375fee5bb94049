"""gc.compile(g, parallel=k): the big statements of a level run together on a pool of threads.

Results are the sequential program's bit for bit (each statement computes alone, into its
own arrays), with BLAS on one thread in both, as the parallel program runs it. The pool
is exercised on small networks by printing the plan with a threshold of one flop, so
every level of two statements or more runs on it.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import graphc as gc
from graphc.lower.load import load_source
from graphc.lower.source import lower
from graphc.together import MIN_WORK, plan_parallel


def towers(width=64, n=8, count=3):
    """``count`` independent tanh towers joined at the loss."""
    g = gc.Graph("towers")
    x = g.input("x", shape=("N", 5)); y = g.input("y", shape=("N", 1))
    total = None
    for k in range(count):
        W1 = g.param(f"W{k}", shape=(5, width)); W2 = g.param(f"V{k}", shape=(width, 1))
        out = gc.tanh(x @ W1) @ W2
        total = out if total is None else total + out
    g.output("loss", gc.mse(total, y))
    rng = np.random.default_rng(1)
    feeds = {"x": rng.normal(size=(n, 5)), "y": rng.normal(size=(n, 1))}
    for k in range(count):
        feeds[f"W{k}"] = rng.normal(size=(5, width)); feeds[f"V{k}"] = rng.normal(size=(width, 1))
    return g, feeds


def on_the_pool(prog, threads=2):
    """``prog``'s module printed with every level of two statements on a pool (threshold 1)."""
    plan = dataclasses.replace(prog.plan, parallel=plan_parallel(prog.plan, threads, min_work=1))
    return plan, load_source(lower(plan).source, "pool")


def run_all(module, feeds, lr=0.05):
    feeds = {k: np.array(v) for k, v in feeds.items()}
    out = [module.forward(feeds), *module.value_and_grad(feeds)]
    if hasattr(module, "sgd_step"):
        module.sgd_step(*[feeds[k] for k in module.INPUTS + module.PARAMS], lr)
        out.append(feeds)
    return out


def assert_identical(got, want):
    for a, b in zip(got, want, strict=True):
        assert sorted(a) == sorted(b)
        for name in b:
            assert np.asarray(a[name]).dtype == np.asarray(b[name]).dtype
            assert np.array_equal(np.asarray(a[name]), np.asarray(b[name])), name  # bit for bit


def test_the_plan_says_which_statements_run_together():
    g, feeds = towers()
    prog = gc.compile(g, parallel=2)
    forward = prog.plan.parallel.of("forward_pass")
    assert [len(group.nodes) for group in forward] == [3, 3, 3]  # x@W, tanh, @V of the three towers
    assert all(op == "matmul" for op in forward[0].ops)
    assert "forward_pass level 1: 'matmul' matmul | " in str(prog.plan.parallel)
    assert "_together(" in prog.forward_source and prog.threads == 2
    with threadpool_limits(1, "blas"):
        want = run_all(gc.compile(g).module, feeds)
    assert_identical(run_all(prog.module, feeds), want)
    value, grads = prog.value_and_grad(feeds)
    np.testing.assert_array_equal(grads["W0"], want[2]["W0"])


def test_statements_too_small_for_a_thread_stay_in_order():
    g = gc.Graph("small")
    x = g.input("x", shape=(4, 4))
    a = g.param("a", shape=(4, 4)); b = g.param("b", shape=(4, 4))
    g.output("loss", gc.sum(x @ a) + gc.sum(x @ b))
    prog = gc.compile(g, parallel=2)
    assert prog.plan.parallel.groups == () and "_together" not in prog.source
    assert prog.source == gc.compile(g).source


def test_the_work_decides_at_run_time_when_the_batch_is_symbolic():
    g, feeds = towers(width=256)
    prog = gc.compile(g, parallel=2)
    used = []
    real = prog.module._POOL.submit
    prog.module._POOL.submit = lambda task: used.append(task) or real(task)
    prog.forward(feeds)  # 8 rows: 2*8*5*256 flops per matmul, far below MIN_WORK
    assert used == []
    big = {**feeds, "x": np.ones((2000, 5)), "y": np.ones((2000, 1))}
    prog.forward(big)
    assert len(used) >= 6  # 2000 rows: the matmuls and tanhs of each tower go to the pool
    assert 2 * 2000 * 5 * 256 >= MIN_WORK > 2 * 8 * 5 * 256


def test_a_statement_writing_a_buffer_its_level_reads_is_kept_out():
    g = gc.Graph("donor")
    x = g.input("x", shape=("N", 8))
    W = g.param("W", shape=(8, 8)); U = g.param("U", shape=(8, 8)); V = g.param("V", shape=(8, 8))
    a = gc.exp(x @ W)
    g.output("loss", gc.sum(a @ U) + gc.sum(a @ V) + gc.sum(a * 2.0))  # a * 2 may reuse a's buffer
    prog = gc.compile(g)
    plan, module = on_the_pool(prog)
    level = plan.parallel.of("forward_pass")[0]  # a @ U, a @ V and a * 2
    writers = [s.node for s in plan.function("forward_pass").steps if s.level == level.level and s.donates]
    assert writers == ["mul"] and level.nodes == ("matmul_1", "matmul_2")
    training = plan.parallel.of("train_forward")[0]  # a is saved for the backward pass: nobody writes it
    assert training.nodes == ("matmul_1", "matmul_2", "mul")
    rng = np.random.default_rng(0)
    feeds = {"x": rng.normal(size=(3, 8)), **{k: rng.normal(size=(8, 8)) / 4 for k in "WUV"}}
    with threadpool_limits(1, "blas"):
        assert_identical(run_all(module, feeds), run_all(prog.module, feeds))


def test_a_statement_between_two_of_a_group_still_reads_what_the_later_one_reads_last():
    g = gc.Graph("between")
    x = g.input("x", shape=("N", 8))
    W1, W2, U, V = (g.param(name, shape=(8, 8)) for name in ("W1", "W2", "U", "V"))
    v, w = gc.exp(x @ W1), gc.tanh(x @ W2)
    first, between, last = w @ U, v * w, v @ V  # one level: between writes into w, which first reads
    g.output("loss", gc.sum(first) + gc.sum(between) + gc.sum(last))
    prog = gc.compile(g)
    plan, module = on_the_pool(prog)
    assert plan.parallel.of("forward_pass")[2].nodes == ("matmul_2", "matmul_3")  # first and last, not between
    rng = np.random.default_rng(0)
    feeds = {"x": rng.normal(size=(3, 8)), **{k: rng.normal(size=(8, 8)) / 3 for k in ("W1", "W2", "U", "V")}}
    with threadpool_limits(1, "blas"):  # v dies at last, run with first: between must still find it
        assert_identical(run_all(module, feeds), run_all(prog.module, feeds))


@pytest.mark.parametrize("name", ["mlp", "wide_relu", "residual", "deep_residual", "two_moons", "blobs", "digits_mlp"])
def test_the_zoo_on_the_pool_is_the_sequential_program_bit_for_bit(name):
    g, feeds = gc.zoo.get(name)()
    prog = gc.compile(g)
    plan, module = on_the_pool(prog)
    with threadpool_limits(1, "blas"):
        for _ in range(3):  # the threads interleave differently every time; the bits do not
            assert_identical(run_all(module, feeds), run_all(prog.module, feeds))


def test_the_parallel_source_is_the_same_across_runs_and_hash_seeds():
    code = ("import graphc as gc, sys; sys.path.insert(0, 'tests'); from test_parallel import towers; "
            "print(gc.compile(towers()[0], parallel=2).source)")
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": seed}).stdout for seed in ("0", "1")}
    assert len(outs) == 1 and "_together(" in outs.pop()


def test_without_threadpoolctl_parallel_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)  # import threadpoolctl now raises ImportError
    with pytest.raises(gc.BackendError, match=r"parallel=k needs threadpoolctl.*pip install 'graphc\[parallel\]'"):
        gc.compile(towers()[0], parallel=2)
    assert gc.compile(towers()[0]).threads == 1  # the sequential program needs nothing


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_parallel_is_a_number_of_threads(bad):
    with pytest.raises(gc.BackendError, match="parallel must be a whole number of threads"):
        gc.compile(towers()[0], parallel=bad)


def test_a_task_that_updates_a_buffer_in_place_declares_it_nonlocal():
    """``a *= b`` reads a before binding it: in a task (a closure) a must be the enclosing
    function's, or the task raises UnboundLocalError."""
    from graphc.lower.parallel import _rebound

    assert _rebound(["a *= b", "c = numpy.exp(a)"]) == ["a"]
    assert _rebound(["c = numpy.exp(a)", "c += a"]) == []  # c is the task's own from its first line
