"""matmul is printed as ``a.dot(b)`` for two matrices of one BLAS float dtype (ndarray.dot
skips the generalized-ufunc dispatch of ``@``): held to ``numpy.matmul`` bit for bit on the
layouts the generated code meets, and to matmul's semantics where ``@`` is kept."""

import numpy as np
import pytest

import graphc as gc


def product(a_shape, b_shape, dtype="float64"):
    g = gc.Graph("product")
    a = g.input("a", shape=a_shape, dtype=dtype)
    b = g.param("b", shape=b_shape, dtype=dtype)
    g.output("c", a @ b)
    return gc.compile(g)


def layouts(array):
    """The same values C-ordered, Fortran-ordered and as the transpose of a C array (a view).

    Strided views (``x[:, ::2]``, ``x[::-1]``, a broadcast) are not among them: there ``@``
    runs numpy's own loop where dot copies and calls BLAS, the same product rounded in
    another order."""
    return {"C": np.ascontiguousarray(array), "F": np.asfortranarray(array), "T": np.ascontiguousarray(array.T).T}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("m, k, n", [(4, 2, 2), (4, 2, 1), (1, 5, 3), (7, 1, 4), (1, 1, 2), (33, 16, 10), (64, 64, 64)])
def test_two_matrices_give_matmuls_bits_on_every_contiguous_layout(m, k, n, dtype):
    prog = product((m, k), (k, n), dtype)
    assert ".dot(" in prog.forward_source and " @ " not in prog.forward_source
    rng = np.random.default_rng(m * 100 + k * 10 + n)
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    for a_layout, a_ in layouts(a).items():
        for b_layout, b_ in layouts(b).items():
            got = prog.forward({"a": a_, "b": b_})["c"]
            want = np.matmul(a_, b_)
            assert got.dtype == want.dtype and got.shape == want.shape
            assert np.array_equal(got.view(np.uint8), want.view(np.uint8)), (a_layout, b_layout)


def test_the_gradient_matmuls_of_a_layer_give_matmuls_bits():
    """x.T.dot(g) and g.dot(W.T): transposed views of the generated code's own arrays and of feeds."""
    g = gc.Graph("layer")
    x = g.input("x", shape=("N", 3))
    W = g.param("W", shape=(3, 2))
    g.output("loss", gc.sum(gc.tanh(x @ W)))
    prog = gc.compile(g)
    rng = np.random.default_rng(0)
    x_, W_ = rng.standard_normal((5, 3)), rng.standard_normal((3, 2))
    _, grads = prog.value_and_grad({"x": x_, "W": W_})
    t = np.tanh(np.matmul(x_, W_))
    d = 1 - t * t
    assert np.array_equal(grads["W"], np.matmul(x_.T, d))


def test_a_product_of_two_1x1_matrices_keeps_matmuls_signed_zero():
    """dot multiplies 1x1 by 1x1 as two numbers (3 * -0.0 = -0.0); BLAS adds the product to
    +0.0. The dead ReLU's gradient is x.T @ (-6 * False) with a batch N of 1: it is 0.0, as
    the lecture says, so a product whose dims may all be 1 keeps @."""
    g = gc.Graph("dead")
    x = g.input("x", shape=("N", 1))
    d = g.input("d", shape=("N", 1))
    g.output("c", gc.transpose(x) @ d)
    prog = gc.compile(g)
    assert " @ " in prog.forward_source and ".dot(" not in prog.forward_source
    got = prog.forward({"x": np.array([[3.0]]), "d": np.array([[-0.0]])})["c"]
    assert got[0, 0] == 0 and not np.signbit(got[0, 0])
    graph, feeds = gc.zoo.relu_neuron(w=-1.0)
    _, grads = gc.compile(graph).value_and_grad(feeds)
    assert grads["w"][0, 0] == 0 and not np.signbit(grads["w"][0, 0])


@pytest.mark.parametrize("a_shape, b_shape", [((2, 4, 3), (3, 5)), ((3,), (3, 2)), ((4, 3), (3,)), ((3,), (3,))])
def test_batched_and_vector_operands_keep_matmul(a_shape, b_shape):
    prog = product(a_shape, b_shape)
    assert " @ " in prog.forward_source and ".dot(" not in prog.forward_source
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal(a_shape), rng.standard_normal(b_shape)
    got = prog.forward({"a": a, "b": b})["c"]
    np.testing.assert_array_equal(got, np.matmul(a, b))


def test_other_backends_keep_their_own_matmul():
    prog = product((4, 2), (2, 3)).to("array_api_strict") if _has("array_api_strict") else None
    if prog is None:
        pytest.skip("array_api_strict is not installed")
    assert ".dot(" not in prog.source and " @ " in prog.forward_source


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None
