"""Defects the 10,000-network differential run found, each against an independent reference.

(1) a fused region whose value is one of its operands (``(p - p)**2 + p`` is ``p``) was
printed as ``loss = p``: every path returned the param's own buffer, and ``sgd_step``
returned it after updating it in place. References: hand-written numpy and the values
before the call.
"""

import numpy as np

import graphc as gc


# -- (1) a region that passes one operand through --------------------------------------------

def passes_a_param_through(shape):
    g = gc.Graph("through")
    p = g.param("p", shape)
    q = gc.identity(p)
    g.output("loss", gc.sum((gc.apply("squared_error", p, q) + q) * 1.0) if shape else
             (gc.apply("squared_error", p, q) + q) * 1.0)
    return g


def test_sgd_step_returns_the_loss_before_the_update_not_the_updated_param():
    p = np.array(-0.4)
    loss = gc.compile(passes_a_param_through(())).sgd_step({"p": p}, lr=0.1)["loss"]
    assert float(loss) == -0.4  # the loss at the old p
    assert float(p) == -0.4 - 0.1 * 1.0  # d loss / d p = 1
    assert not np.shares_memory(loss, p)


def test_every_returned_array_of_a_pass_through_region_is_the_callers_own():
    p = np.array(0.75)
    prog = gc.compile(passes_a_param_through(()))
    seed = np.array(2.0)
    outputs, grads = prog.value_and_grad({"p": p}, seed=seed)
    forward = prog.forward({"p": p})
    for name, array in [("value_and_grad loss", outputs["loss"]), ("forward loss", forward["loss"]),
                        ("grad p", grads["p"])]:
        assert not np.shares_memory(array, p), name
        assert not np.shares_memory(array, seed), name
    assert float(outputs["loss"]) == 0.75 and float(grads["p"]) == 2.0
    outputs["loss"][...] = 9.0
    grads["p"][...] = 9.0
    assert float(p) == 0.75 and float(seed) == 2.0


def test_a_pass_through_region_over_an_array_param_keeps_values_and_updates():
    p = np.array([0.5, -1.0, 2.0])
    before = p.copy()
    out = gc.compile(passes_a_param_through((3,))).sgd_step({"p": p}, lr=0.5)
    assert float(out["loss"]) == before.sum()
    np.testing.assert_array_equal(p, before - 0.5)
