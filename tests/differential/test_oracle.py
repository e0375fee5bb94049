"""The corpus's oracle itself, against closed forms: its differences must resolve what it checks.

The 10,000-network run once blamed graphc for a gradient and a Hessian-vector product
that were right: a loss of sin over a value near 1e4 oscillates so fast that one central
difference (h = 1e-6) is off by 4e-4 relative, and fixed mixed differences (h = 2e-3)
gave 5e3 for a curvature of -1.6e8. Here the oracle meets ``sin(k p)`` with k = 1e4,
whose derivatives are known exactly, and that network itself.
"""

from __future__ import annotations

import numpy as np
from corpus.networks import Case
from corpus.paths import _mixed_difference, check, reference

import graphc as gc

K = 1e4
P = 0.3


def fast_sine() -> Case:
    g = gc.Graph("fast_sine")
    p = g.param("p", shape=())
    g.output("loss", gc.sin(p * K))
    return Case(code="", graph=g, feeds={"p": np.array(P)}, dtype="float64", smooth=True)


def test_the_reference_gradient_resolves_a_fast_oscillation():
    grad = reference(fast_sine()).grads["p"]
    exact = K * np.cos(K * P)
    np.testing.assert_allclose(grad, exact, rtol=1e-7)  # one difference: 2e-5 off


def test_the_reference_curvature_resolves_a_fast_oscillation():
    ref = reference(fast_sine())
    v, w = {"p": np.array(0.8)}, {"p": np.array(-1.3)}
    want, unresolved = _mixed_difference(ref, v, w)
    exact = -K * K * np.sin(K * P) * 0.8 * -1.3
    assert abs(want - exact) <= 1e-4 * abs(exact) + unresolved
    assert unresolved <= 1e-3 * abs(exact)  # resolved, not excused


def test_the_network_the_run_blamed_agrees_on_every_path():
    g = gc.Graph("net")
    x1 = g.input("x1", shape=("N", 2))
    g.param("p2", shape=(2, 1))
    p3 = g.param("p3", shape=(1, 2))
    v4 = x1 * p3
    x5 = g.input("x5", shape=("N", 2))
    v8 = gc.exp(gc.bce_with_logits(v4, x5) + v4)
    p9 = g.param("p9", shape=())
    v11 = gc.apply("squared_error", gc.apply("squared_error", v8, p9), p9)
    g.output("loss", gc.mean(gc.sin(v11)))
    g.output("out", v8)
    feeds = {
        "x1": np.array([[-0.13602585709853088, 1.4643735566258589], [-0.5345466036598516, 0.4902734193550473],
                        [0.46110514616070675, -1.071404209746909]]),
        "p2": np.array([[-0.1793483114977914], [-0.5270739944030381]]),
        "p3": np.array([[0.6295373822718868, 1.158226551534362]]),
        "x5": np.array([[0.696676999669783, 0.9277097489117113], [0.24041021105004345, 0.6264564013743414],
                        [0.6877463694732557, 0.2634061563009086]]),
        "p9": np.array(0.2087646223308095),
    }
    case = Case(code="", graph=g, feeds=feeds, dtype="float64", smooth=True)
    with np.errstate(all="ignore"):
        found = check(case)
    assert found == [], "\n".join(map(str, found))
