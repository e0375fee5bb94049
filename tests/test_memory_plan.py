"""Peak memory of generated steps, measured with tracemalloc against the buffers numpy
written by hand needs (memory is deterministic; no timing here)."""

import gc as garbage
import tracemalloc

import numpy as np
import pytest
import sympy

import graphc as gc

ROWS, COLS = 64, 512
ARRAY = ROWS * COLS * 8  # bytes of one float64 array of the data's shape


def chain():
    """The benchmark's elementwise chain: z = x a + c, silu, tanh, exp, log1p, square, sin, mean."""
    silu = gc.elementwise("silu_chain", lambda z: z / (1 + sympy.exp(-z)))
    g = gc.Graph("chain")
    x = g.input("x", shape=("N", COLS))
    a, c = g.param("a", shape=(COLS,)), g.param("c", shape=(COLS,))
    r = gc.sin(gc.square(gc.log1p(gc.exp(gc.tanh(silu(x * a + c))))))
    g.output("loss", gc.mean(r))
    return g


def by_hand(x, a, c):
    """The chain's loss and gradients in plain numpy (no graphc)."""
    z = x * a + c
    s = 1 / (1 + np.exp(-z))
    u = z * s
    v = np.tanh(u)
    w = np.exp(v)
    p = np.log1p(w)
    q = p**2
    d = np.cos(q) * 2 * p * w / (1 + w) * (1 - v**2) * s * (1 + z * (1 - s)) / x.size
    return np.mean(np.sin(q)), {"a": (d * x).sum(axis=0), "c": d.sum(axis=0)}


def peak(fn):
    fn()
    garbage.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base, _ = tracemalloc.get_traced_memory()
        fn()
        _, top = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return top - base


@pytest.fixture(scope="module")
def compiled():
    rng = np.random.default_rng(0)
    feeds = {"x": rng.standard_normal((ROWS, COLS)), "a": 1 + 0.1 * rng.standard_normal(COLS),
             "c": 0.1 * rng.standard_normal(COLS)}
    return gc.compile(chain()), feeds


def test_the_chain_computes_what_numpy_does(compiled):
    prog, feeds = compiled
    value, grads = prog.value_and_grad(feeds)
    loss, expected = by_hand(**feeds)
    np.testing.assert_allclose(value["loss"], loss, rtol=1e-13)
    for name in expected:
        np.testing.assert_allclose(grads[name], expected[name], rtol=1e-11, atol=1e-17)


@pytest.mark.parametrize("call", ["value_and_grad", "sgd_step"])
def test_the_chain_needs_three_buffers_as_by_hand(compiled, call):
    """The forward value, the running derivative and one scratch array: what the hand-written
    step holds. Four arrays at once (a short kernel that does not take over a dying buffer)
    fails this."""
    prog, feeds = compiled
    feeds = {k: v.copy() for k, v in feeds.items()}
    run = (lambda: prog.value_and_grad(feeds)) if call == "value_and_grad" else (lambda: prog.sgd_step(feeds, 1e-3))
    assert peak(run) < 3.5 * ARRAY


def test_a_short_kernel_runs_in_the_dying_buffer_after_the_longer_one(compiled):
    """Of two steps of one level reading a value that dies there, the shorter writes into it."""
    prog, _ = compiled
    plan = prog.plan.function("train_forward")
    donating = [step for step in plan.steps if step.donates]
    assert donating, "no step writes into a dying operand's buffer"
    for step in plan.steps:
        same_level = [s for s in plan.steps if s.level == step.level and s is not step]
        for other in same_level:
            shared = set(step.donates) & set(other.reads)
            if shared:  # ``other`` also reads what ``step`` writes into: it must come first
                assert plan.steps.index(other) < plan.steps.index(step), (other.node, step.node, shared)
