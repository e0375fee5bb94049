"""conv2d and pooling through the public API: values against one-element-at-a-time loops
(tests/conv_reference.py), gradients against those loops' adjoints and central
differences, over stride, padding and dilation; the max-pool tie rule; bad shapes.
"""

from __future__ import annotations

import itertools

import conv_reference as conv
import numpy as np
import pytest

import graphc as gc
from graphc.ops.windows import MAX_POOL_TIES

COMBINATIONS = [  # (stride, padding, dilation)
    (s, p, d) for s, p, d in itertools.product([1, 2, (2, 1)], [0, 1, (0, 2)], [1, 2, (1, 2)])
]


def conv_net(x_shape, w_shape, **attrs):
    g = gc.Graph("conv")
    x = g.param("x", shape=x_shape)
    w = g.param("w", shape=w_shape)
    y = gc.conv2d(x, w, **attrs)
    g.output("y", y)
    g.output("loss", gc.sum(y * g.input("t", shape=y.shape)))
    return g, y.shape


@pytest.mark.parametrize("stride, padding, dilation", COMBINATIONS)
def test_conv2d_values_and_gradients_match_the_direct_loops(stride, padding, dilation):
    rng = np.random.default_rng(hash((str(stride), str(padding), str(dilation))) % 2**32)
    x, w = rng.standard_normal((2, 2, 7, 6)), rng.standard_normal((3, 2, 3, 2))
    g, out_shape = conv_net(x.shape, w.shape, stride=stride, padding=padding, dilation=dilation)
    t = rng.standard_normal(out_shape)
    value, grads = gc.compile(g).value_and_grad({"x": x, "w": w, "t": t})
    np.testing.assert_allclose(value["y"], conv.conv2d(x, w, stride, padding, dilation), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grads["x"], conv.conv2d_grad_input(t, w, (7, 6), stride, padding, dilation),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grads["w"], conv.conv2d_grad_kernel(x, t, w.shape, stride, padding, dilation),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cotangent", ["constant", "random"])
def test_a_small_cnn_passes_central_differences(cotangent):
    g = gc.Graph("cnn")
    x = g.param("x", shape=(2, 1, 6, 6))
    w1 = g.param("w1", shape=(3, 1, 3, 3))
    w2 = g.param("w2", shape=(2, 3, 2, 2))
    h = gc.max_pool2d(gc.relu(gc.conv2d(x, w1, padding=1)))  # (2, 3, 3, 3)
    out = gc.avg_pool2d(gc.tanh(gc.conv2d(h, w2, dilation=(1, 2), padding=(0, 1))), kernel=(2, 1), stride=1)
    weights = 1.0 if cotangent == "constant" else g.const(np.random.default_rng(1).standard_normal(out.shape))
    g.output("loss", gc.sum(out * weights))
    rng = np.random.default_rng(0)
    feeds = {"x": rng.standard_normal((2, 1, 6, 6)), "w1": rng.standard_normal((3, 1, 3, 3)),
             "w2": rng.standard_normal((2, 3, 2, 2))}
    report = gc.check_gradients(gc.compile(g), feeds, rtol=1e-5, atol=1e-7)
    assert report.ok and not report.kinks, str(report)


def test_the_batch_may_be_symbolic():
    g, _ = conv_net(("N", 2, 5, 5), (4, 2, 3, 3), padding=1)
    prog = gc.compile(g)
    rng = np.random.default_rng(2)
    w = rng.standard_normal((4, 2, 3, 3))
    for n in (1, 3):
        x = rng.standard_normal((n, 2, 5, 5))
        out = prog.forward({"x": x, "w": w, "t": np.zeros((n, 4, 5, 5))})["y"]
        np.testing.assert_allclose(out, conv.conv2d(x, w, padding=1), rtol=1e-12, atol=1e-12)


def test_nhwc_is_nchw_between_transposes_with_the_same_gradients():
    rng = np.random.default_rng(9)
    x, w = rng.standard_normal((2, 2, 5, 4)), rng.standard_normal((3, 2, 3, 2))
    t = rng.standard_normal((2, 3, 3, 7))
    first, out_shape = conv_net(x.shape, w.shape, padding=(1, 2), stride=(2, 1))
    last, last_shape = conv_net((2, 5, 4, 2), w.shape, padding=(1, 2), stride=(2, 1), layout="NHWC")
    assert out_shape == (2, 3, 3, 7) and last_shape == (2, 3, 7, 3)
    value, grads = gc.compile(first).value_and_grad({"x": x, "w": w, "t": t})
    value_last, grads_last = gc.compile(last).value_and_grad(
        {"x": x.transpose(0, 2, 3, 1), "w": w, "t": t.transpose(0, 2, 3, 1)})
    np.testing.assert_allclose(value_last["y"], value["y"].transpose(0, 2, 3, 1), rtol=1e-14)
    np.testing.assert_allclose(grads_last["x"], grads["x"].transpose(0, 2, 3, 1), rtol=1e-14)
    np.testing.assert_allclose(grads_last["w"], grads["w"], rtol=1e-13)


def test_conv2d_agrees_with_pytorch():
    torch = pytest.importorskip("torch", reason="PyTorch is not installed: the loop references stand in for it")
    rng = np.random.default_rng(4)
    x, w = rng.standard_normal((2, 3, 9, 8)), rng.standard_normal((4, 3, 3, 2))
    g, _ = conv_net(x.shape, w.shape, stride=(2, 1), padding=(1, 2), dilation=(2, 1))
    got = gc.compile(g).forward({"x": x, "w": w, "t": 0.0 * np.ones((2, 4, 4, 11))})["y"]
    want = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), stride=(2, 1), padding=(1, 2),
                                      dilation=(2, 1)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_max_pool_ties_route_the_gradient_to_the_first_maximum_and_say_so():
    g = gc.Graph("ties")
    x = g.param("x", shape=(1, 1, 2, 4))
    g.output("loss", gc.sum(gc.max_pool2d(x) * g.const(np.array([[[[2.0, 5.0]]]]))))
    prog = gc.compile(g)
    # window 1 holds 1, 1 / 1, 1 (a four-way tie), window 2 holds 2, 3 / 3, 0 (a tie at 3)
    x_value = np.array([[[[1.0, 1.0, 2.0, 3.0], [1.0, 1.0, 3.0, 0.0]]]])
    _, grads = prog.value_and_grad({"x": x_value})
    want = np.array([[[[2.0, 0.0, 0.0, 5.0], [0.0, 0.0, 0.0, 0.0]]]])
    np.testing.assert_array_equal(grads["x"], want)
    np.testing.assert_array_equal(want, conv.max_pool2d_grad(x_value, np.array([[[[2.0, 5.0]]]])))
    assert MAX_POOL_TIES in prog.backward_source and "PyTorch" in MAX_POOL_TIES


def test_pooling_values_and_stride_default():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 6, 7))
    g = gc.Graph("pools")
    node = g.input("x", shape=x.shape)
    g.output("max", gc.max_pool2d(node, kernel=3))
    g.output("avg", gc.avg_pool2d(node, kernel=(2, 3), stride=(1, 2)))
    out = gc.compile(g).forward({"x": x})
    assert out["max"].shape == (2, 3, 2, 2)  # stride defaults to the kernel; the rest is dropped
    np.testing.assert_allclose(out["max"], conv.pool(x, 3), rtol=0)
    np.testing.assert_allclose(out["avg"], conv.pool(x, (2, 3), (1, 2), combine=conv.mean), rtol=1e-14)


@pytest.mark.parametrize("build, message", [
    (lambda g: gc.conv2d(g.input("x", shape=(1, 2, 5, 5)), g.input("w", shape=(3, 4, 3, 3))),
     r"kernel \(3, 4, 3, 3\) reads 4 channels, but x has 2"),
    (lambda g: gc.conv2d(g.input("x", shape=(1, 1, 2, 2)), g.input("w", shape=(1, 1, 3, 3))),
     r"3x3 window .* does not fit in 2x2"),
    (lambda g: gc.conv2d(g.input("x", shape=(1, 1, 5, 5)), g.input("w", shape=(1, 1, 3, 3)), stride=0),
     r"stride must be an int >= 1 .* found 0"),
    (lambda g: gc.conv2d(g.input("x", shape=(1, 1, 5, 5)), g.input("w", shape=(1, 1, 3, 3)), padding=-1),
     r"padding must be an int >= 0"),
    (lambda g: gc.conv2d(g.input("x", shape=(1, 5, 5)), g.input("w", shape=(1, 1, 3, 3))),
     r"x must be 4-d \(NCHW\), found \(1, 5, 5\)"),
    (lambda g: gc.conv2d(g.input("x", shape=("N", 1, "H", 5)), g.input("w", shape=(1, 1, 3, 3))),
     r"only the batch axis may be symbolic"),
    (lambda g: gc.max_pool2d(g.input("x", shape=(1, 1, 5, 5)), kernel=(2, 2, 2)),
     r"kernel must be an int >= 1 or a pair"),
    (lambda g: gc.conv2d(g.input("x", shape=(1, 1, 5, 5)), g.input("w", shape=(1, 1, 3, 3)), layout="NWHC"),
     r"layout must be 'NCHW' \(channels first\) or 'NHWC', found 'NWHC'"),
])
def test_bad_shapes_and_attrs_are_typed_errors_naming_the_op(build, message):
    with pytest.raises(gc.errors.ShapeError, match=message) as error:
        build(gc.Graph("bad"))
    assert "op conv2d" in str(error.value) or "op max_pool2d" in str(error.value)


def test_second_derivatives_through_conv_and_avg_pool_pass_check_gradients():
    """gv = <grad loss, v> puts the CNN's gradient into the graph (gc.grad); differentiating
    gv runs the VJPs of the gradient ops (conv2d_patches_grad, conv2d_matmul_grad_patches,
    conv2d_matmul_grad_kernel, avg_pool2d_grad), checked against central differences of gv."""
    g = gc.Graph("cnn2")
    x = g.param("x", shape=(1, 1, 4, 4))
    w = g.param("w", shape=(2, 1, 2, 2))
    g.output("loss", gc.sum(gc.square(gc.avg_pool2d(gc.conv2d(x, w, padding=1), kernel=3, stride=2))))
    g2 = gc.grad(g, "loss", wrt=["x", "w"])
    gv = gc.sum(g2.node("dloss/dx") * g2.input("v_x", shape=(1, 1, 4, 4)))
    g2.output("gv", gv + gc.sum(g2.node("dloss/dw") * g2.input("v_w", shape=(2, 1, 2, 2))))
    rng = np.random.default_rng(6)
    feeds = {"x": rng.standard_normal((1, 1, 4, 4)), "w": rng.standard_normal((2, 1, 2, 2)),
             "v_x": rng.standard_normal((1, 1, 4, 4)), "v_w": rng.standard_normal((2, 1, 2, 2))}
    report = gc.check_gradients(gc.compile(g2, of="gv"), feeds)
    assert report.ok, str(report)


def test_a_second_derivative_through_max_pooling_is_a_gradient_error_naming_it():
    g = gc.Graph("maxpool2")
    x = g.param("x", shape=(1, 1, 4, 4))
    g.output("loss", gc.sum(gc.square(gc.max_pool2d(x))))
    g2 = gc.grad(g, "loss", wrt=["x"])
    g2.output("gv", gc.sum(g2.node("dloss/dx") * g2.input("v", shape=(1, 1, 4, 4))))
    with pytest.raises(gc.errors.GradientError, match="max_pool2d_grad"):
        gc.compile(g2, of="gv")


def pooled_cnn(dtype: str) -> gc.Graph:
    g = gc.Graph(f"cnn_{dtype}")
    x = g.input("x", shape=("N", 1, 6, 6), dtype=dtype)
    w = g.param("w", shape=(2, 1, 3, 3), dtype=dtype)
    g.output("loss", gc.sum(gc.avg_pool2d(gc.max_pool2d(gc.relu(gc.conv2d(x, w, padding=1)), kernel=3), kernel=2)))
    return g


def test_a_float32_cnn_computes_in_float32():
    rng = np.random.default_rng(8)
    feeds = {"x": rng.standard_normal((3, 1, 6, 6)), "w": rng.standard_normal((2, 1, 3, 3))}
    value, grads = gc.compile(pooled_cnn("float32")).value_and_grad(
        {k: v.astype(np.float32) for k, v in feeds.items()})
    assert value["loss"].dtype == np.float32 and grads["w"].dtype == np.float32
    _, want = gc.compile(pooled_cnn("float64")).value_and_grad(feeds)
    np.testing.assert_allclose(grads["w"], want["w"], rtol=1e-5, atol=1e-5)
