"""What the schedule and the printer remember is what they would work out again.

Planning remembers each node's facts per graph (``schedule.Facts``, shared by the passes
of the joint graph); printing remembers kernel templates per content, and atoms, scalar
consts and operand lists per node (shared by the functions printing the joint graph).
Each test plans or prints the same
graphs a second time with caches that forget everything, so every fact is worked out
where it is asked, and requires the same plans and byte-identical source.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import graphc as gc
from graphc import schedule, zoo
from graphc.lower import emit, source

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import compile_time  # noqa: E402


class Forgetful(dict):
    """A cache that stores nothing: every lookup misses."""

    def __setitem__(self, key, value):
        pass


MODULE_CACHES = ("templates", "atoms", "scalars", "operand_lists")


_FACTS = schedule.Facts


def forgetful_facts(graph, caches=None):
    """``schedule.Facts`` of ``graph`` that remember nothing."""
    return _FACTS(graph, tuple(Forgetful() for _ in range(4)))


def forgetful_module(*args, **kwargs):
    """An ``emit.Module`` whose caches remember nothing, shared or not."""
    return emit.Module(*args, **{**kwargs, **{name: Forgetful() for name in MODULE_CACHES}})


# -- networks that exercise what the caches key on -----------------------------------------
def kinks_and_scalars():
    """Kinks (a convention said once per function), scalar constants, a value read twice."""
    g = gc.Graph("kinks")
    x, y = g.input("x", shape=("N", 3)), g.input("y", shape=("N", 2))
    W1, W2 = g.param("W1", shape=(3, 4)), g.param("W2", shape=(4, 2))
    h = gc.relu(x @ W1) * 0.5 + gc.relu(x @ W1 - 1.0)
    z = gc.leaky_relu(h @ W2) * (h @ W2)
    g.output("loss", gc.mse(z, y))
    return g


def tied_and_transposed():
    """A param read after its gradient exists (tied weights, W and W.T), a folded square."""
    g = gc.Graph("tied")
    x = g.input("x", shape=("N", 4))
    W, b = g.param("W", shape=(4, 3)), g.param("b", shape=(3,))
    h = gc.tanh(x @ W + b)
    back = h @ gc.transpose(W)
    g.output("loss", gc.sum(gc.square(back - x)))
    return g


def float32_chain():
    """float32 values: constants take their readers' dtype; squares keep their own step."""
    g = gc.Graph("f32")
    x = g.input("x", shape=("N", 5), dtype="float32")
    W1 = g.param("W1", shape=(5, 5), dtype="float32")
    W2 = g.param("W2", shape=(5, 1), dtype="float32")
    h = gc.sigmoid(x @ W1) * 2.0
    g.output("loss", gc.mean(gc.square(gc.tanh(h @ W1) @ W2)))
    return g


def wide_chain():
    """An elementwise chain over wide rows, compiled in blocks of rows: a value read in a
    blocked loop has its block's name there, and backward_pass's loops end where its
    updates stand."""
    g = gc.Graph("wide")
    x = g.input("x", shape=("N", 64))
    a, c = g.param("a", shape=(64,)), g.param("c", shape=(64,))
    z = gc.tanh(x * a + c)
    g.output("loss", gc.mean(gc.sin(gc.exp(z) * z) + z * a))
    return g


def gradient_read_again():
    """A gradient that another gradient is computed from (d_p is d_z, and d_r = 2 d_z): it
    is returned when backward_pass does not update, so nothing may write into it, and p's
    update waits for d_r's read of it."""
    g = gc.Graph("again")
    x = g.input("x", shape=(4, 3))
    r, p = g.param("r", shape=(4, 3)), g.param("p", shape=(4, 3))
    z = x * (r * 2.0) + p
    g.output("loss", gc.sum(gc.tanh(z)))
    return g


NETWORKS = {name: (lambda name=name: zoo.get(name)()[0], {}) for name in zoo.NAMES}
NETWORKS.update(again=(gradient_read_again, {}), kinks=(kinks_and_scalars, {}),
                tied=(tied_and_transposed, {}), f32=(float32_chain, {}),
                wide=(wide_chain, {"blocking": 2}),
                deep=(lambda: compile_time.build(gc, "deep", 300), {}),
                residual=(lambda: compile_time.build(gc, "residual50", None), {}))


@pytest.fixture(scope="module", params=sorted(NETWORKS))
def compiled(request):
    build, options = NETWORKS[request.param]
    return gc.compile(build(), **options), options


def test_plans_with_remembered_facts_are_the_plans_worked_out_afresh(compiled, monkeypatch):
    plan = compiled[0].plan
    monkeypatch.setattr(schedule, "Facts", forgetful_facts)
    afresh = schedule.schedule(plan.forward, plan.joint)
    assert afresh.functions == plan.functions
    assert afresh.sgd == plan.sgd
    backward = [f for f in plan.functions if f.name == "backward_pass"]
    if plan.sgd is not None and plan.sgd.eager:  # the eager step's updates are backward_pass's steps
        assert [s for s in backward[0].steps if s.grad is not None]


def test_source_printed_with_remembered_facts_is_the_source_printed_afresh(compiled, monkeypatch):
    prog, options = compiled
    monkeypatch.setattr(source, "Module", forgetful_module)
    afresh = source.lower(prog.plan, blocking=options.get("blocking", "auto"))
    assert afresh.source == prog.source
