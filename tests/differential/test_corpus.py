"""The differential corpus: random networks over every op, every path against the oracle.

Each network (``corpus/networks.py``) runs through forward, value_and_grad with and
without seed, sgd_step, the saved module in a subprocess that cannot import graphc, sympy
or networkx, gc.grad then compile, a Hessian-vector product for smooth float64 nets, and
the ownership of returned arrays; each result is compared with the reference interpreter
on the declared graph and with central differences in float64 (``corpus/paths.py`` states
the tolerances and why).

Every op of the table gets networks that apply it right under the loss, once with a
constant cotangent (the loss a sum or mean directly over it) and once with a random one
(a weighted sum or a loss function); a further test draws networks freely. Hypothesis
runs derandomized, so CI sees the same ~340 networks every time; a failure shrinks to a
minimal network and prints its builder code. ``benchmarks/differential.py`` runs the
same checks over 10,000 networks.
"""

from __future__ import annotations

import numpy as np
import pytest
from corpus.networks import missing_generators, networks
from corpus.paths import SavedModules, check
from hypothesis import HealthCheck, given, settings

from graphc.ops import OPS

CORPUS = settings(derandomize=True, database=None, deadline=None, print_blob=False,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                         HealthCheck.data_too_large])
PER_OP = 3  # networks per (op, cotangent): 44 ops x 2 x 3 = 264
FREE = 80  # networks drawn without a required op


@pytest.fixture(scope="module")
def saved():
    runner = SavedModules()
    yield runner
    runner.close()


def _assert_agrees(case, saved) -> None:
    with np.errstate(all="ignore"):  # a wrong program may compute log of negatives: reported below
        found = check(case, saved)
    if found:
        lines = "\n".join(f"  {d}" for d in found)
        pytest.fail(f"{len(found)} disagreement(s) with the oracle:\n{lines}\n\nreproducer:\n{case.reproducer}",
                    pytrace=False)


def test_every_op_in_the_table_has_a_generator():
    assert missing_generators() == [], "add a generator to corpus/networks.py OP_GENERATORS for each"


@pytest.mark.parametrize("cotangent", ["constant", "random"])
@pytest.mark.parametrize("op", sorted(OPS))
def test_networks_under_each_op_agree_with_the_oracle(op, cotangent, saved):
    @settings(CORPUS, max_examples=PER_OP)
    @given(networks(op=op, cotangent=cotangent))
    def run(case):
        assert op in case.ops
        _assert_agrees(case, saved)

    run()


def test_free_networks_agree_with_the_oracle(saved):
    @settings(CORPUS, max_examples=FREE)
    @given(networks(max_steps=7))
    def run(case):
        _assert_agrees(case, saved)

    run()
