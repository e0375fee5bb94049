"""The schedule is data: schedule() is pure, its plans frozen, and what they say holds."""

from __future__ import annotations

import dataclasses
import pickle

import networkx as nx
import numpy as np
import pytest

import graphc as gc
from graphc import ir
from graphc.schedule import SOURCES, schedule

NETWORKS = {
    "wide_relu": lambda: gc.zoo.wide_relu()[0],
    "mlp": lambda: gc.zoo.get("mlp")()[0],
    "residual": lambda: gc.zoo.get("residual")()[0],
    "recall_xor": lambda: gc.zoo.recall_xor()[0],
}


@pytest.fixture(scope="module", params=sorted(NETWORKS))
def prog(request):
    return gc.compile(NETWORKS[request.param]())


def _snapshot(graph):
    return pickle.dumps((sorted(graph.nodes(data=True), key=str), sorted(graph.edges(data=True), key=str),
                         sorted(graph.graph.items(), key=str)))


def test_schedule_is_pure_and_its_plans_are_frozen(prog):
    forward, joint = prog.plan.forward, prog.plan.joint
    before = [_snapshot(forward)] + ([_snapshot(joint)] if joint is not None else [])
    again = schedule(forward, joint)
    assert again.functions == prog.plan.functions and again.sgd == prog.plan.sgd
    assert [_snapshot(forward)] + ([_snapshot(joint)] if joint is not None else []) == before
    with pytest.raises(dataclasses.FrozenInstanceError):
        prog.plan.functions[0].steps = ()


def test_no_step_reads_a_freed_value_and_donations_are_of_dying_operands(prog):
    returned = set()
    if prog.plan.joint is not None:
        returned = {r.node for r in prog.plan.function("train_forward").returns}
    for fn in prog.plan.functions:
        graph = prog.plan.forward if fn.name == "forward_pass" else prog.plan.joint
        freed: set[str] = set()
        for step in fn.steps:
            assert not set(step.reads) & freed, (fn.name, step.node, set(step.reads) & freed)
            assert step.donates <= set(step.frees), (fn.name, step.node)
            for donor in step.donates:
                assert tuple(graph.nodes[donor][ir.SHAPE]) == tuple(graph.nodes[step.node][ir.SHAPE])
                assert graph.nodes[donor][ir.OP] not in SOURCES
                if donor in fn.args:  # a saved value handed over in the emptied list, never one also returned
                    assert fn.packed and donor not in returned, (fn.name, donor)
            freed |= set(step.frees)
        kept = {r.node for r in fn.returns} | set(fn.saved)
        assert not kept & freed, (fn.name, kept & freed)


def test_every_dim_a_function_reads_is_bound_from_its_own_arguments(prog):
    for fn in prog.plan.functions:
        graph = prog.plan.forward if fn.name == "forward_pass" else prog.plan.joint
        for dim, arg, axis in fn.binds:
            assert arg in fn.args and graph.nodes[arg][ir.SHAPE][axis] == dim
        bound = {d for d, _, _ in fn.binds} | set(fn.dim_args)
        for step in fn.steps:
            shape = graph.nodes[step.node][ir.SHAPE]
            assert {d for d in shape if not isinstance(d, int)} <= bound, (fn.name, step.node)


def test_backward_pass_computes_exactly_what_depends_on_the_cotangent(prog):
    joint = prog.plan.joint
    if joint is None:
        pytest.skip("no joint graph")
    later = nx.descendants(joint, joint.graph[ir.SEED])
    steps = prog.plan.function("backward_pass").steps
    backward = {s.node for s in steps if s.grad is None}  # an update step computes no value: its node is a param
    train = {s.node for s in prog.plan.function("train_forward").steps}
    assert backward <= later and not train & later
    assert {s.node for s in steps if s.grad is not None} <= set(joint.graph[ir.PARAMS])


def test_no_kernel_writes_into_an_array_that_another_operand_views():
    # v dies at the kernel that also reads u = transpose(v, (1, 0, 2)), a view of v's memory:
    # writing the result into v's buffer changed u under the kernel (forward was 45.5 off)
    g = gc.Graph("viewed"); x = g.input("x", shape=(4, 4, 2)); a = g.param("a", shape=(2,))
    v = gc.tanh(x * a)
    u = gc.transpose(v, axes=(1, 0, 2))
    g.output("loss", gc.sum(gc.square(gc.sin(v * a + 1.0) * gc.exp(u))))
    feeds = {"x": np.random.default_rng(0).standard_normal((4, 4, 2)), "a": np.array([0.5, -1.5])}
    expected = float(gc.evaluate(g, feeds, "loss")["loss"])
    assert float(gc.compile(g).forward(feeds)["loss"]) == pytest.approx(expected, rel=1e-12)
