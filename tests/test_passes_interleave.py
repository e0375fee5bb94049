"""interleave: long backward products start during the forward pass."""

from __future__ import annotations

import numpy as np
import pytest
import sympy

import graphc as gc
from graphc import ir
from graphc.passes.interleave import interleave
from graphc.passes.stats import Stats


def chain():
    g = gc.Graph("chain")
    x = g.input("x", shape=("N", 5))
    a = g.param("a", shape=(5,))
    z = x * a
    g.output("loss", gc.mean(gc.sin(gc.square(gc.log1p(gc.exp(gc.tanh(z)))))))
    return g


def feeds():
    rng = np.random.default_rng(3)
    return {"x": rng.normal(size=(4, 5)), "a": rng.normal(size=5)}


def test_the_chain_product_is_split_into_running_products():
    prog = gc.compile(chain())
    split = prog.stages["interleaved"]
    assert Stats.of(split).passes["interleave"]["split"] >= 3
    running = [n for n in split if n.endswith(("_p", "_p_1", "_p_2")) and split.nodes[n][ir.OP] == "fused"]
    assert len(running) >= 2
    for node in running:  # each running product reads one earlier product at most, and forward values
        readers = ir.operands(split, node)
        assert sum(split.nodes[r].get(ir.PHASE) == ir.BACKWARD for r in readers) <= 1
    gc.verify(split)


def test_values_and_gradients_are_unchanged():
    prog = gc.compile(chain())
    report = gc.check_gradients(prog, feeds())
    assert report.ok and not report.kinks
    reference_fused = prog.stages["fused"]
    assert interleave(reference_fused).number_of_nodes() > reference_fused.number_of_nodes()


def test_forward_values_die_before_the_backward_pass():
    """No forward value of the chain is saved for the backward pass: the generated
    train_forward returns only the running product and the inputs."""
    prog = gc.compile(chain())
    text = prog.backward_source
    body = text[text.index("def train_forward"):text.index("def backward_pass")]
    returned = [line for line in body.splitlines() if line.strip().startswith("return")][-1]
    saved = returned.split("), [")[1]  # return (outputs), [saved values]
    for value in ("tanh", "exp", "log1p", "square"):
        assert value not in saved.replace(",", " ").split(), returned


def test_a_value_with_another_backward_reader_is_not_moved_early():
    g = gc.Graph("mlp")
    x = g.input("x", shape=("N", 3))
    W = g.param("W", shape=(3, 2))
    h = gc.sigmoid(x @ W)  # h is read by d_W's matmul as well: nothing to gain
    g.output("loss", gc.mean(h * h))
    split = gc.compile(g).stages["interleaved"]
    assert "interleave" not in Stats.of(split).passes


def test_idempotent_and_pure():
    fused = gc.compile(chain()).stages["fused"]
    before = {n: dict(d) for n, d in fused.nodes(data=True)}
    once = interleave(fused)
    twice = interleave(once)
    assert "interleave" not in Stats.of(twice).passes
    assert {n: dict(d) for n, d in fused.nodes(data=True)} == before
    products = [once.nodes[n][ir.EXPR][0] for n in once if ir.EXPR in once.nodes[n]]
    assert all(isinstance(p, sympy.Expr) for p in products)


# -- kink masks ---------------------------------------------------------------------------------
def relu_layers():
    g = gc.Graph("relu_layers")
    x = g.input("x", shape=("N", 3))
    W1, b1, W2 = g.param("W1", shape=(3, 4)), g.param("b1", shape=(4,)), g.param("W2", shape=(4, 2))
    z1 = x @ W1 + b1
    g.output("loss", gc.sum(gc.square(gc.relu(z1) @ W2)))
    return g


def test_a_relu_kink_leaves_the_backward_kernel_as_a_boolean_of_the_forward_pass():
    prog = gc.compile(relu_layers())
    joint = prog.stages["interleaved"]
    gc.verify(joint)
    assert Stats.of(joint).passes["interleave"]["masks"] == 1
    (mask,) = [n for n in joint if joint.nodes[n][ir.OP] == "greater_equal"]
    z = ir.operands(joint, mask)[0]
    assert joint.nodes[mask][ir.DTYPE] == "bool" and joint.nodes[mask].get(ir.EARLY)
    assert joint.nodes[z][ir.OP] == "add" and joint.nodes[z].get(ir.PHASE) != ir.BACKWARD
    # z is read by the forward pass only: the training forward saves the mask, not z
    assert all(joint.nodes[r].get(ir.PHASE) != ir.BACKWARD or r == mask for r in joint.successors(z))
    (reader,) = list(joint.successors(mask))
    expr, symbols = joint.nodes[reader][ir.EXPR]
    assert not any(isinstance(f, sympy.Heaviside) for f in sympy.preorder_traversal(expr))


def test_the_mask_keeps_relus_convention_at_zero_and_the_values_of_numpy_by_hand():
    """dReLU/dz = 1 at z = 0 (the lecture's convention): z is exactly 0 in two entries."""
    prog = gc.compile(relu_layers())
    x = np.array([[1.0, 0.0, 0.0], [0.5, -1.0, 2.0]])
    W1 = np.array([[1.0, -2.0, 0.5, 0.0], [0.3, 1.0, -1.0, 2.0], [0.2, 0.4, 0.1, -0.7]])
    b1 = np.array([-1.0, 2.0, -0.5, 0.25])  # row 0: z = [0, 0, 0, 0.25]
    W2 = np.array([[1.0, -1.0], [0.5, 2.0], [-0.3, 0.7], [1.5, 0.2]])
    z = x @ W1 + b1
    assert (z == 0).sum() >= 2
    y = np.maximum(z, 0) @ W2
    d_z = (2 * y @ W2.T) * (z >= 0)
    _, grads = prog.value_and_grad({"x": x, "W1": W1, "b1": b1, "W2": W2})
    np.testing.assert_allclose(grads["b1"], d_z.sum(0), rtol=1e-14)
    np.testing.assert_allclose(grads["W1"], x.T @ d_z, rtol=1e-14)
    np.testing.assert_allclose(grads["W2"], np.maximum(z, 0).T @ (2 * y), rtol=1e-14)


def test_a_kinked_value_read_again_by_the_backward_pass_keeps_its_float():
    g = gc.Graph("reread")
    x = g.input("x", shape=(3,))
    p = g.param("p", shape=(3,))
    z = x * p
    g.output("loss", gc.sum(gc.relu(z) * z))  # d/dz = H(z) * z + relu(z): z is read again
    joint = gc.compile(g).stages["interleaved"]
    assert not [n for n in joint if joint.nodes[n][ir.OP] == "greater_equal"]


def test_a_mask_is_a_number_on_the_array_api_too():
    """The standard has no arithmetic on bools: the array-API printer makes the mask 0 or 1."""
    xp = pytest.importorskip("array_api_strict")
    graph = relu_layers()
    rng = np.random.default_rng(5)
    feeds = {"x": rng.normal(size=(4, 3)), "W1": rng.normal(size=(3, 4)), "b1": rng.normal(size=4),
             "W2": rng.normal(size=(4, 2))}
    _, want = gc.compile(graph).value_and_grad(feeds)
    prog = gc.compile(graph, backend="array_api_strict")
    assert "xp.astype(" in prog.backward_source and "_mask" in prog.backward_source
    _, got = prog.value_and_grad({k: xp.asarray(v) for k, v in feeds.items()})
    for name, value in want.items():
        np.testing.assert_allclose(np.asarray(got[name]), value, rtol=1e-14, err_msg=name)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_product_of_kinks_alone_stays_a_float_gradient(dtype):
    """d relu(max(s, x)) / d s is a product of two kinks and the 0-d cotangent: masking both
    would leave a bool product the cotangent cannot be multiplied into (a UFuncTypeError
    found by the differential corpus); the gradient equals the one written by hand."""
    g = gc.Graph("kinks")
    x = g.input("x", shape=(3, 2), dtype=dtype)
    p = g.param("p", shape=(), dtype=dtype)
    g.output("loss", gc.sum(gc.relu(gc.maximum(gc.sum(p), x))))
    feeds = {"x": np.array([[0.94, 0.03], [0.42, -1.04], [0.25, -0.6]], dtype=dtype), "p": np.array(-0.5, dtype)}
    value, grads = gc.compile(g).value_and_grad(feeds)
    m = np.maximum(feeds["p"], feeds["x"])
    np.testing.assert_allclose(value["loss"], np.maximum(m, 0).sum(), rtol=1e-6)
    want = ((feeds["p"] >= feeds["x"]) & (m >= 0)).sum()  # the tie goes to the first operand
    assert grads["p"].dtype == np.dtype(dtype)
    np.testing.assert_allclose(grads["p"], want)
