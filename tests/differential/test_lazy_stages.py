"""A compiled program's stages are made when first read, and are the graphs a run keeping
every stage makes.

``gc.compile`` runs the pipeline with each pass editing the graph it is given (no copy per
stage); ``prog.stages`` then runs it again keeping every stage, when first read. The
reference here is the pipeline run that keeps each stage as it goes (``_compile`` with
``keep=True``: what every compile did before, each pass editing a copy), compared stage by
stage: node order and data (marks among them), edge order, keys and data, and the graph's
attributes. (Not the order of each node's predecessor dict: every copy, ``ir.copy_graph``
and the compile cache's alike, rebuilds it from the successors.)
"""

from __future__ import annotations

import numpy as np
import pytest
from corpus.networks import networks
from hypothesis import HealthCheck, given, settings

import graphc as gc
from graphc import compile_cache, ir, pipeline, zoo

CORPUS = settings(derandomize=True, database=None, deadline=None, print_blob=False, max_examples=40,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                         HealthCheck.data_too_large])


def spelled(graph) -> str:
    """Everything a stage's graph holds, in order: content_key spells the graph's attributes,
    its nodes in order with their data, and its edges in order with keys and data."""
    return compile_cache.content_key(graph, {})


def kept_run(graph: gc.Graph, **options) -> dict:
    """What the pipeline makes when every stage is kept as it runs (each pass edits a copy)."""
    return pipeline._compile(graph.nx, options.get("wrt"), None, "numpy", 1, keep=True)


@pytest.fixture
def kept_runs(monkeypatch):
    """How often a program's stages were made again (the kept run a first read starts)."""
    runs = []
    made = pipeline._kept_stages

    def counted(*args):
        runs.append(args)
        return made(*args)

    monkeypatch.setattr(pipeline, "_kept_stages", counted)
    return runs


def assert_same_stages(prog: gc.Program, reference: dict) -> None:
    for part in ("stages", "inference_stages"):
        lazy, kept = getattr(prog, part), reference[part]
        assert list(lazy) == list(kept)
        for name in kept:
            assert spelled(lazy[name]) == spelled(kept[name]), (part, name)
    assert prog.source == reference["code"].source
    # the stages are the plan's graphs, as in a kept run
    assert prog.plan.forward is prog.inference_stages["scheduled"]
    if prog.plan.joint is not None:
        assert prog.plan.joint is prog.stages["scheduled"]
    assert prog.stages["declared"] is prog.graph


@pytest.mark.parametrize("name", zoo.NAMES)
def test_the_stages_of_a_zoo_net_are_those_of_a_run_keeping_them(name, kept_runs):
    graph, _ = zoo.get(name)()
    prog = gc.compile(graph, cache=False)
    assert kept_runs == []  # compiling made no stage
    assert_same_stages(prog, kept_run(graph))
    assert len(kept_runs) == 1  # one run made them all
    # the comparison sees what a pass did: the stages differ, and some node is marked
    keys = [spelled(g) for g in prog.stages.values()]
    assert len(set(keys)) > 2
    assert any(ir.MARK in data for g in prog.stages.values() for _, data in g.nodes(data=True))


@CORPUS
@given(networks(max_steps=7))
def test_the_stages_of_a_corpus_net_are_those_of_a_run_keeping_them(case):
    try:
        with np.errstate(all="ignore"):
            reference = kept_run(case.graph)
    except gc.GraphcError:
        return  # a graph the compiler refuses (tests/differential/test_corpus.py checks how)
    with np.errstate(all="ignore"):
        prog = gc.compile(case.graph, cache=False)
    assert_same_stages(prog, reference)


def test_the_inference_stages_alone_are_those_of_a_run_keeping_them():
    graph, _ = zoo.get("mlp")()
    prog = gc.compile(graph, wrt=[], cache=False)
    assert prog.inference_stages is prog.stages
    assert_same_stages(prog, kept_run(graph, wrt=[]))


def test_running_and_training_make_no_stage(kept_runs, monkeypatch):
    monkeypatch.setattr(compile_cache, "MEMORY", compile_cache.MemoryCache())  # no entry an earlier test read
    graph, feeds = zoo.get("mlp")()
    prog = gc.compile(graph)
    outputs = prog.forward(feeds)
    prog.value_and_grad(feeds)
    step = prog.train_step(gc.optim.SGD(lr=0.01))
    prog.sgd_step(dict(feeds), lr=0.01)
    prog.predict(feeds, outputs=[next(iter(outputs))])
    again = gc.compile(graph)  # from the memory cache
    again.forward(feeds)
    assert step is not None and kept_runs == []
    assert list(again.stages)[-1] == "scheduled" and len(kept_runs) == 1  # read: made once, for the entry
    gc.compile(graph).stages["optimized"]
    assert len(kept_runs) == 1  # a third program reads the entry's stages, made before


def test_stages_read_late_are_those_of_the_graph_as_compiled():
    graph, _ = zoo.get("mlp")()
    reference = kept_run(graph)
    prog = gc.compile(graph, cache=False)
    for name in list(graph.nx.nodes):  # the caller's graph and the program's, changed before any read
        graph.nx.nodes[name][ir.SHAPE] = ("changed",)
        prog.graph.nodes[name][ir.SHAPE] = ("changed",)
    prog.graph.graph[ir.OUTPUTS].clear()
    for name in ("optimized", "scheduled"):
        assert spelled(prog.stages[name]) == spelled(reference["stages"][name])
