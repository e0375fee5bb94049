"""Networks the differential corpus found wrong, against references written by hand.

Two classes: (1) canonicalize's counted rewrite of ``sum(broadcast(c))`` made a broadcast
from a number of higher rank than the result (``(1, 1)`` to ``(4,)``), a ShapeError at
compile time; (2) an array const (stored float64) in a float32 graph made the gradient
nodes, the generated constants and so the results float64. References: numpy written by
hand, central differences in float64, and the reference interpreter on the declared graph.
"""

import numpy as np

import graphc as gc


def numeric_grad(f, x, eps=1e-6):
    """Central differences of the scalar function f at x, in float64."""
    x = np.array(x, dtype=np.float64)
    out = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[index] += eps
        down[index] -= eps
        out[index] = (f(up) - f(down)) / (2 * eps)
    return out


def log_softmax(z):
    shifted = z - z.max()
    return shifted - np.log(np.exp(shifted).sum())


# -- (1) a sum over a broadcast of one number, into a result of lower rank ------------------

def mean_of_spread_log_softmax():
    g = gc.Graph("spread")
    p3 = g.param("p3", (4, 1))
    v = gc.log_softmax(gc.tanh(gc.logsumexp(p3, axis=1)))
    g.output("loss", gc.mean(gc.mean(gc.broadcast_to(v, (3, 4)), keepdims=True)))
    return g


def spread_loss(p3):
    """The same network in numpy: logsumexp over one column is the column itself."""
    return np.broadcast_to(log_softmax(np.tanh(p3[:, 0])), (3, 4)).mean()


P3 = np.array([[0.3], [-1.2], [0.8], [0.05]])


def test_a_summed_broadcast_of_one_number_into_a_lower_rank_compiles_with_the_right_gradient():
    value, grads = gc.compile(mean_of_spread_log_softmax()).value_and_grad({"p3": P3})
    np.testing.assert_allclose(value["loss"], spread_loss(P3), rtol=1e-12)
    np.testing.assert_allclose(grads["p3"], numeric_grad(spread_loss, P3), rtol=1e-6, atol=1e-9)


def test_gc_grad_of_the_same_network_compiles_and_agrees():
    g2 = gc.grad(mean_of_spread_log_softmax(), "loss", wrt=["p3"])
    out = gc.compile(g2, wrt=[]).forward({"p3": P3})
    np.testing.assert_allclose(out["dloss/dp3"], numeric_grad(spread_loss, P3), rtol=1e-6, atol=1e-9)
