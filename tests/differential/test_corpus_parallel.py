"""Levels on a pool of threads compute the sequential program's bits, on the corpus.

Each network of the differential corpus (one under every op of the table, and networks
drawn freely) is printed with every level of two statements or more on a pool of two
threads (a threshold of one flop, so the pool runs even these small arrays), and its
forward pass, value_and_grad, seeded value_and_grad and sgd_step must equal the
sequential program's bit for bit, with BLAS on one thread in both.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from corpus.networks import networks
from hypothesis import HealthCheck, given, settings
from threadpoolctl import threadpool_limits

import graphc as gc
from graphc.lower.load import load_source
from graphc.lower.source import lower
from graphc.ops import OPS
from graphc.together import plan_parallel

SAMPLE = settings(derandomize=True, database=None, deadline=None, print_blob=False,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                         HealthCheck.data_too_large])
GROUPS = []  # how many groups the sampled networks ran on the pool


def results(module, case, dtype_of):
    feeds = {k: np.array(v, dtype=dtype_of[k]) for k, v in case.feeds.items()}
    out = [module.forward(feeds)]
    if hasattr(module, "value_and_grad"):
        try:
            out += list(module.value_and_grad(feeds))
        except ValueError:  # no scalar output: only the seeded gradient is defined
            pass
        shape = np.shape(out[0][module.TARGET])
        out += list(module.value_and_grad(feeds, seed=np.full(shape, case.seed, dtype=dtype_of.get("seed"))))
    if hasattr(module, "sgd_step"):
        module.sgd_step(*[feeds[k] for k in module.INPUTS + module.PARAMS], 0.01)
        out.append(feeds)
    return out


def same_bits(case) -> None:
    prog = gc.compile(case.graph)
    plan = dataclasses.replace(prog.plan, parallel=plan_parallel(prog.plan, 2, min_work=1))
    pooled = load_source(lower(plan).source, "pool")
    GROUPS.append(len(plan.parallel.groups))
    dtype_of = {k: case.graph.nx.nodes[k]["dtype"] for k in case.feeds}
    dtype_of["seed"] = prog.forward_graph.nodes[prog.target]["dtype"]
    with np.errstate(all="ignore"), threadpool_limits(1, "blas"):
        want, got = results(prog.module, case, dtype_of), results(pooled, case, dtype_of)
    assert len(got) == len(want)
    for a, b in zip(got, want):
        assert sorted(a) == sorted(b)
        for name in b:
            x, y = np.asarray(a[name]), np.asarray(b[name])
            assert x.dtype == y.dtype and x.shape == y.shape, name
            assert np.array_equal(x, y, equal_nan=True), f"{name}: the pool changed bits\n{case.reproducer}"


@pytest.mark.parametrize("op", sorted(OPS))
def test_networks_under_each_op_run_the_same_on_the_pool(op):
    @settings(SAMPLE, max_examples=1)
    @given(networks(op=op, cotangent="random"))
    def run(case):
        same_bits(case)

    run()


def test_free_networks_run_the_same_on_the_pool():
    @settings(SAMPLE, max_examples=30)
    @given(networks(max_steps=7))
    def run(case):
        same_bits(case)

    run()
    assert sum(GROUPS) > 20, "the sample must give the pool work"
