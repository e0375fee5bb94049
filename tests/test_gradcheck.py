"""gc.check_gradients: what it reports, how it treats kinks, and how it names a culprit."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import graphc as gc
import graphc.differentiate
from graphc.ops import OPS
from graphc.testing import GradientReport


def small_net():
    g = gc.Graph("small")
    x = g.input("x", shape=("N", 3))
    W = g.param("W", shape=(3, 2))
    b = g.param("b", shape=(2,))
    h = gc.tanh(x @ W + b).named("h")
    g.output("loss", gc.mean(gc.square(h)).named("total"))
    return g


def small_feeds(seed=0):
    rng = np.random.default_rng(seed)
    return {"x": rng.standard_normal((4, 3)), "W": rng.standard_normal((3, 2)), "b": rng.standard_normal(2)}


def test_report_has_a_random_direction_row_then_one_row_per_entry():
    report = gc.check_gradients(gc.compile(small_net()), small_feeds())
    assert isinstance(report, GradientReport) and report.ok
    first, *entries = report.rows
    assert (first.param, first.index) == ("<random direction>", "all")
    assert [(r.param, r.index) for r in entries] == (
        [("W", f"({i}, {j})") for i in range(3) for j in range(2)] + [("b", "(0,)"), ("b", "(1,)")]
    )
    assert all(r.status == "ok" and r.error <= r.tolerance for r in report.rows)
    text = str(report)
    assert text.startswith("9 checks: 0 failed, 0 at kinks")
    assert text.splitlines()[1].split() == ["param", "index", "analytic", "numeric", "error", "tolerance", "status"]


def test_analytic_column_is_the_programs_gradient():
    prog = gc.compile(small_net())
    feeds = small_feeds()
    _, grads = prog.value_and_grad(feeds)
    report = gc.check_gradients(prog, feeds)
    by_entry = {(r.param, r.index): r for r in report.rows}
    assert by_entry[("W", "(2, 1)")].analytic == grads["W"][2, 1]
    assert by_entry[("b", "(0,)")].numeric == pytest.approx(grads["b"][0], rel=1e-6)


def test_large_values_get_only_the_random_direction():
    report = gc.check_gradients(gc.compile(small_net()), small_feeds(), max_entries=2)
    assert [r.param for r in report.rows] == ["<random direction>", "b", "b"]  # W has 6 entries > 2


def test_a_graph_is_compiled_for_the_check():
    report = gc.check_gradients(small_net(), small_feeds())
    assert report.ok and len(report.rows) == 9


def test_a_non_scalar_output_is_checked_through_a_random_cotangent():
    g = gc.Graph("vector")
    x = g.param("x", shape=(3,))
    g.output("y", gc.sigmoid(x) * x)
    report = gc.check_gradients(gc.compile(g), {"x": np.array([0.5, -1.0, 2.0])})
    assert report.ok and len(report.rows) == 4


def relu_sum():
    g = gc.Graph("relu_sum")
    x = g.param("x", shape=(3,))
    g.output("loss", gc.sum(gc.relu(x)))
    return gc.compile(g)


def test_a_point_on_the_relu_kink_is_reported_as_a_kink_not_a_failure():
    report = gc.check_gradients(relu_sum(), {"x": np.array([0.0, 1.0, -1.0])})
    assert report.ok
    rows = {(r.param, r.index): r for r in report.rows}
    at_zero = rows[("x", "(0,)")]
    assert at_zero.status == "kink"
    assert at_zero.analytic == 1.0  # the lecture's convention: dReLU/dz = 1 at z = 0
    assert at_zero.numeric == pytest.approx(0.5)  # the central difference straddles the kink
    assert rows[("x", "(1,)")].status == rows[("x", "(2,)")].status == "ok"
    assert at_zero in report.kinks and not report.failures


def test_a_point_further_than_eps_from_the_kink_is_checked_normally():
    report = gc.check_gradients(relu_sum(), {"x": np.array([1e-3, 1.0, -1.0])}, eps=1e-6)
    assert report.ok and not report.kinks


def break_tanh(monkeypatch):
    """Make differentiation use local_partials with tanh's derivative doubled."""
    real = graphc.differentiate.local_partials

    def wrong(op, *args):  # differentiation hands in the op's record
        partials = real(op, *args)
        return tuple(2 * p for p in partials) if op.name == "tanh" else partials

    monkeypatch.setattr(graphc.differentiate, "local_partials", wrong)
    monkeypatch.setenv("GRAPHC_NO_CACHE", "1")  # a broken compiler: no program compiled before by the sound one


def test_a_wrong_local_derivative_raises_with_the_table_and_the_culprit(monkeypatch):
    break_tanh(monkeypatch)
    with pytest.raises(gc.GradientError) as caught:
        gc.check_gradients(gc.compile(small_net()), small_feeds())
    message = str(caught.value)
    assert "disagree with central differences" in message
    assert "the first node whose local derivative disagrees: node 'h' (op tanh)" in message
    header = next(line for line in message.splitlines() if line.startswith("param"))
    assert header.split() == ["param", "index", "analytic", "numeric", "error", "tolerance", "status"]
    rows = [line.split() for line in message.splitlines()[message.splitlines().index(header) + 1:]]
    assert rows and all(row[-1] == "FAIL" for row in rows)
    assert {row[0] for row in rows} >= {"<random", "W", "b"}
    # the table's numbers are real: analytic is twice the numeric in every W/b row
    for row in rows:
        if row[0] in ("W", "b"):
            analytic, numeric = float(row[-5]), float(row[-4])
            assert analytic == pytest.approx(2 * numeric, rel=1e-4)


def test_without_raising_the_failures_are_in_the_report(monkeypatch):
    break_tanh(monkeypatch)
    report = gc.check_gradients(gc.compile(small_net()), small_feeds(), raise_on_failure=False)
    assert not report.ok and len(report.failures) == 9  # b and W entries all pass through tanh
    assert report.culprit is None  # localization runs only when raising


def test_a_wrong_tensor_vjp_is_blamed_on_its_node(monkeypatch):
    def wrong_mean(node, args, g, k):
        return OPS["sum"].vjp(node, args, g, k)  # forgets to divide by the count

    # the built-in table is read-only: the fault is put into the mapping behind it
    monkeypatch.setitem(graphc.ops.base._BUILTINS, "mean", dataclasses.replace(OPS["mean"], vjp=wrong_mean))
    monkeypatch.setenv("GRAPHC_NO_CACHE", "1")  # a broken op table: no program compiled before with the sound one
    # 'loss' = identity('total'): the optimizer lets the output's id name the mean itself
    with pytest.raises(gc.GradientError, match=r"local derivative disagrees: node '(total|loss)' \(op mean\)"):
        gc.check_gradients(gc.compile(small_net()), small_feeds())


def test_the_gradcheck_fixture_raises_on_a_mismatch(gradcheck, monkeypatch):
    break_tanh(monkeypatch)
    with pytest.raises(gc.GradientError, match="node 'h' \\(op tanh\\)"):
        gradcheck(small_net(), small_feeds())


def test_a_loss_too_large_for_its_differences_to_resolve_an_entry_is_not_a_false_failure():
    # found by the differential corpus: exp(exp(exp(1.37))) ~ 8e21 hides the change the
    # other entry makes (1.5e-5 below one ulp of the loss), so the difference reads 0
    g = gc.Graph("steep")
    p = g.param("p", shape=(2, 1)); x = g.input("x", shape=(2, 1))
    g.output("loss", gc.sum(gc.exp(gc.exp(gc.exp(p))) * x))
    feeds = {"p": np.array([[-0.12853466], [1.36646347]]), "x": np.array([[0.5], [-1.0]])}
    report = gc.check_gradients(g, feeds, raise_on_failure=False)
    assert report.ok, report.table()


def test_the_rounding_allowance_does_not_hide_a_wrong_gradient_of_an_ordinary_loss():
    g = gc.Graph("square")
    w = g.param("w", shape=(3,))
    g.output("loss", gc.sum(w * w))
    prog = gc.compile(g)
    right = prog.value_and_grad
    prog.value_and_grad = lambda feeds, **kw: (lambda v, gr: (v, {"w": gr["w"] * (1 + 1e-4)}))(*right(feeds, **kw))
    report = gc.check_gradients(prog, {"w": np.array([1.0, -2.0, 0.5])}, raise_on_failure=False)
    assert not report.ok and len(report.failures) >= 3
