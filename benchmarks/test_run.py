"""benchmarks/run.py times only what agrees: a graphc step that computes something else
than the hand-written one gets no timing, and says why."""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import run  # noqa: E402

import graphc as gc  # noqa: E402


def test_a_case_that_agrees_is_timed_both_ways():
    row, notes = run.run_case("xor", gc, None, repeats=1, warmup=0, seed=0)
    for column in ("sgd_step / hand", "value_and_grad / hand", "memory sgd_step / hand"):
        assert float(row[column]) > 0, (column, row)
    assert any("params after one sgd_step" in note for note in notes)


def test_a_graphc_network_that_differs_is_not_timed(monkeypatch):
    def other_loss(gc_, feeds, params):  # the xor network with a sum instead of a mean
        g2 = gc_.Graph("xor_sum")
        x = g2.input("x", shape=("N", 2))
        y = g2.input("y", shape=("N", 1))
        W1, b1 = g2.param("W1", shape=(2, 2)), g2.param("b1", shape=(2,))
        W2, b2 = g2.param("W2", shape=(2, 1)), g2.param("b2", shape=(1,))
        out = gc_.sigmoid(gc_.sigmoid(x @ W1 + b1) @ W2 + b2)
        g2.output("loss", gc_.sum(gc_.square(out - y)))
        return g2

    monkeypatch.setitem(run.BUILDERS, "xor", other_loss)
    row, notes = run.run_case("xor", gc, None, repeats=1, warmup=0, seed=0)
    assert row["sgd_step / hand"] == "n/a" and row["value_and_grad / hand"] == "n/a"
    assert any("disagrees" in note for note in notes), notes


def test_a_missing_gradient_counts_as_disagreement():
    grads = {"W": np.ones(2), "b": np.ones(1)}
    _, worst = run._compare(1.0, grads, {"loss": np.array(1.0)}, {"W": np.ones(2)})
    assert worst > run.AGREE
    _, worst = run._compare(1.0, grads, {"loss": np.array(1.0)}, dict(grads))
    assert worst == 0.0
