"""benchmarks/run.py times only what agrees: a graphc step that computes something else
than the hand-written one gets no timing, and says why."""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import run  # noqa: E402

import graphc as gc  # noqa: E402


def test_a_case_that_agrees_is_timed_both_ways_and_its_ratio_is_the_median_of_the_per_round_cpu_ratios():
    import harness

    samples = {}
    row, notes = run.run_case("xor", gc, None, repeats=3, warmup=0, seed=0, samples=samples)
    for column in ("sgd_step / hand", "value_and_grad / hand", "memory sgd_step / hand"):
        assert float(row[column]) > 0, (column, row)
    assert any("params after one sgd_step" in note for note in notes)
    for column, (mine, theirs) in (("sgd_step / hand", run.PAIRS[0]), ("value_and_grad / hand", run.PAIRS[1])):
        cpu = samples["xor"][f"{mine} / {theirs}"]["cpu"]
        assert set(cpu) == {mine, theirs}  # the pair's own rounds
        per_round = [a / b for a, b in zip(cpu[mine], cpu[theirs])]
        assert len(per_round) == 3
        assert row[column] == f"{sorted(per_round)[1]:.2f}", (column, row[column], per_round)
    hand = samples["xor"]["sgd_step / hand step"]["cpu"]["hand step"]
    assert row["hand step (ms)"] == f"{harness.median(hand) * 1e3:.4g}"
    assert any(note.startswith("xor: sgd_step / hand step per round: cpu") and "IQR" in note for note in notes)
    cpu = samples["xor"]["value_and_grad / hand grads"]["cpu"]
    low, high = harness.median_interval([a / b for a, b in zip(cpu["value_and_grad"], cpu["hand grads"])])
    assert any(note.startswith("xor: value_and_grad / hand grads per round: cpu")
               and f"95% interval of the median {low:.3f}-{high:.3f}" in note for note in notes), notes


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


def test_a_pair_alternates_who_runs_first_and_rotations_move_pairs_whole():
    import harness

    orders = [harness.round_order(["hand", "graphc"], r) for r in range(6)]
    assert orders == [["hand", "graphc"], ["graphc", "hand"]] * 3
    names = ["a", "A", "b", "B", "c", "C"]
    for r in range(12):
        order = harness.round_order(names, r)
        assert sorted(order) == sorted(names)
        for mine, theirs in (("a", "A"), ("b", "B"), ("c", "C")):
            assert abs(order.index(mine) - order.index(theirs)) == 1, (r, order)
    assert {harness.round_order(names, r)[0] for r in range(12)} == set(names)  # each opens some round


def test_quartiles_of_odd_and_even_counts():
    import harness

    assert harness.quartiles([5, 1, 4, 2, 3]) == (1.5, 3, 4.5)
    assert harness.quartiles([4, 1, 3, 2]) == (1.5, 2.5, 3.5)
    assert harness.quartiles([7]) == (7, 7, 7)


def test_the_median_interval_takes_the_order_statistics_of_the_binomial_tables():
    import harness

    # ranks (1-based) of the 95 % interval in the usual tables: n=30 -> 10 and 21, n=100 -> 40 and 61
    assert harness.median_interval(range(1, 31)) == (10, 21)
    assert harness.median_interval(list(range(100, 0, -1))) == (40, 61)
    assert harness.median_interval([3, 1, 2, 6, 5, 4]) == (1, 6)  # six values: the whole range covers 96.9 %
    assert harness.median_interval([2.0]) == (2.0, 2.0)


def test_the_median_interval_covers_the_true_median_as_often_as_it_says():
    import harness

    rng = np.random.default_rng(14)
    for n in (17, 30, 75):  # exact coverage 95.1 %, 95.7 %, 96.3 %
        samples = rng.exponential(size=(4000, n))  # skewed, median log(2)
        hits = 0
        for row in samples:
            low, high = harness.median_interval(row)
            hits += low <= np.log(2) <= high
        coverage = hits / len(samples)
        assert 0.94 <= coverage <= 0.97, (n, coverage)  # 95 % up to sampling error (0.35 %), not the whole range


def test_the_median_interval_refuses_what_has_no_median():
    import harness
    import pytest

    with pytest.raises(ValueError, match="empty"):
        harness.median_interval([])
    with pytest.raises(ValueError, match="confidence"):
        harness.median_interval([1, 2, 3], confidence=1.0)
