"""Convolution, pooling and erf on the array-API backends: the same values as numpy's.

The array-API module calls the helpers numpy's module calls (``_conv2d_patches``,
``_max_pool2d_grad``, ``_erf``, ...) and carries their twins written over ``xp``
(``ops/xp_windows.py``, ``ops/xp_special.py``); these tests hold those twins to the numpy
program's values and gradients (1e-12 in float64), including strides, padding, dilation,
overlapping windows and tied maxima (where the first maximal element in row-major order
takes the gradient, on every library alike).
"""

from __future__ import annotations

import ast
import inspect
import math
import re

import numpy as np
import pytest

import graphc as gc
from graphc.lower import libraries
from graphc.lower.array_api import ARRAY_API, ARRAY_API_IMMUTABLE
from graphc.ops import OPS, special, xp_special
from graphc.ops.helpers import HELPERS, XP_HELPERS


def _installed(module: str):
    missing = libraries.LIBRARIES[module].missing()  # torch needs array-api-compat beside it
    return pytest.param(module, marks=pytest.mark.skipif(missing is not None,
                                                          reason=f"{missing} is not installed"))


LIBRARIES = [_installed("array_api_strict"), _installed("torch"), _installed("jax")]


def _on(name: str) -> str:
    if name == "jax":
        import jax

        jax.config.update("jax_enable_x64", True)
    return name


def to_numpy(value) -> np.ndarray:
    if hasattr(value, "detach"):
        return value.detach().cpu().numpy()
    if type(value).__module__.startswith("array_api_strict"):
        return np.asarray(value._array)
    return np.asarray(value)


def assert_agree(prog, other, feeds, tolerance=1e-12):
    want, want_grads = prog.value_and_grad(feeds)
    got, got_grads = other.value_and_grad(feeds)
    for expected, found in ((want, got), (want_grads, got_grads)):
        assert sorted(found) == sorted(expected)
        for name, value in expected.items():
            scale = max(1.0, float(np.max(np.abs(value), initial=0.0)))
            np.testing.assert_allclose(to_numpy(found[name]), value, rtol=tolerance, atol=tolerance * scale,
                                       err_msg=name)


def test_every_op_with_a_numpy_form_has_an_array_api_form():
    # the array-API backends print every op numpy's does; none is left to 'has no form of it'
    for backend in (ARRAY_API, ARRAY_API_IMMUTABLE):
        missing = sorted(name for name, op in OPS.items() if op.lower is not None and backend.lowering(op) is None)
        assert missing == [], (backend.name, missing)


def test_the_array_api_module_carries_the_xp_twins_and_no_numpy_call():
    graph, _ = gc.zoo.digits_cnn()
    source = gc.compile(graph, backend="array_api_strict").source
    called = set(re.findall(r"\b(_[a-z][a-z0-9_]*)\(", source))
    assert {"_conv2d_patches", "_conv2d_patches_grad", "_max_pool2d", "_max_pool2d_grad"} <= called
    for name in called & set(XP_HELPERS):
        assert XP_HELPERS[name] in source  # the twin over xp, not numpy's helper
    assert not re.search(r"\bnumpy\.(?!array\(|int64\b|float64\b)", source.split("def forward_pass")[1])


def test_the_xp_erf_has_numpy_erfs_coefficients():
    def tables(function):
        body = ast.parse(inspect.getsource(function)).body[0].body
        return {t.id: ast.literal_eval(node.value) for node in body if isinstance(node, ast.Assign)
                for t in node.targets if isinstance(t, ast.Name) and t.id in ("small", "pieces")}

    assert tables(xp_special._erf) == tables(special._erf) and len(tables(special._erf)) == 2


def test_the_xp_erf_matches_math_erf_at_the_pieces_edges():
    edges = [k + d for k in range(7) for d in (-1e-12, 0.0, 1e-12)] + [0.3, 2.5, 5.9, 40.0, 1e200, math.inf]
    xs = np.array(sorted({s * e for e in edges for s in (1, -1)}) + [-0.0])
    with np.errstate(all="raise"):  # no piece overflows or makes inf * 0 where it is not used
        got = xp_special._erf(xs)
    np.testing.assert_allclose(got, [math.erf(v) for v in xs], rtol=2.3e-16, atol=1e-300)
    assert np.array_equal(np.signbit(got), np.signbit(xs))  # erf(-0.0) is -0.0
    assert np.isnan(xp_special._erf(np.array([np.nan]))).all()
    assert xp_special._erf(np.ones(2, dtype=np.float32)).dtype == np.float32
    assert xp_special._erf(np.arange(3)).dtype == np.float64
    np.testing.assert_allclose(got, special._erf(xs), rtol=1e-15, atol=0)


@pytest.mark.parametrize("library", LIBRARIES)
def test_gelu_and_erf_agree_with_numpy(library):
    g = gc.Graph("gelu")
    x = g.input("x", (4, 6))
    g.output("loss", gc.sum(gc.gelu(x) * gc.erf(2.0 * x)))
    rng = np.random.default_rng(1)
    feeds = {"x": rng.normal(scale=3.0, size=(4, 6))}
    prog = gc.compile(g)
    assert_agree(prog, prog.to(_on(library)), feeds)


def _windows_net(conv: dict, pool: dict, pool_op) -> gc.Graph:
    g = gc.Graph("windows")
    x = g.input("x", ("N", 2, 9, 8))
    w = g.param("w", (3, 2, 3, 2))
    z = gc.conv2d(x, w, **conv)
    g.output("loss", gc.sum(pool_op(z, **pool)) + gc.sum(pool_op(x, **pool)))
    return g


CASES = [
    ({}, {"kernel": 2}),
    ({"stride": 2, "padding": 1}, {"kernel": 3, "stride": 1}),  # overlapping windows
    ({"stride": (2, 1), "padding": (2, 0), "dilation": (2, 1)}, {"kernel": (2, 3), "stride": (1, 2)}),
]


@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize("pool_op", [gc.max_pool2d, gc.avg_pool2d], ids=["max", "avg"])
@pytest.mark.parametrize("conv, pool", CASES, ids=["plain", "overlapping", "strided-dilated"])
def test_conv_and_pooling_agree_with_numpy(conv, pool, pool_op, library):
    prog = gc.compile(_windows_net(conv, pool, pool_op))
    rng = np.random.default_rng(2)
    # small ints: many tied maxima in x's windows, and in z's (w too is ints)
    feeds = {"x": rng.integers(0, 3, size=(2, 2, 9, 8)).astype(float),
             "w": rng.integers(-1, 2, size=(3, 2, 3, 2)).astype(float)}
    assert_agree(prog, prog.to(_on(library)), feeds)


def test_tied_maxima_send_the_gradient_to_the_first_in_row_major_order():
    g = gc.Graph("ties")
    x = g.param("x", (1, 1, 3, 3))
    g.output("loss", gc.sum(gc.max_pool2d(x, kernel=2, stride=1)))
    prog = gc.compile(g)
    for program in (prog, prog.to("array_api_strict")):
        _, grads = program.value_and_grad({"x": np.ones((1, 1, 3, 3))})
        # every window is all ties: each gives its gradient to its top-left element
        assert to_numpy(grads["x"])[0, 0].tolist() == [[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]]


@pytest.mark.skipif(libraries.LIBRARIES["torch"].missing() is not None,
                    reason="torch or array-api-compat is not installed")
def test_the_digits_cnn_value_and_grad_on_torch_equals_numpys():
    import torch

    graph, feeds = gc.zoo.digits_cnn()
    prog = gc.compile(graph)
    on_torch = prog.to("torch")
    value, grads = on_torch.value_and_grad(feeds)
    assert all(isinstance(v, torch.Tensor) and v.dtype == torch.float64 for v in grads.values())
    assert_agree(prog, on_torch, feeds)


def test_every_xp_helper_is_called_by_name_from_an_op_or_another_helper():
    # a twin is found by the name numpy's module calls: each xp helper twins a numpy one,
    # or is an xp-only piece (_xp_...) that a twin calls
    for name in XP_HELPERS:
        assert name in HELPERS or name.startswith("_xp_"), name
