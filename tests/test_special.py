"""erf (numpy has none: graphc's own, ops/special.py) and the exact GELU made from it.

The references are the standard library's ``math.erf`` (one number at a time, correctly
rounded to within an ulp or so) and central differences in float64.
"""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import sympy

import graphc as gc
from graphc.ops.special import erf

math_erf = np.vectorize(math.erf, otypes=[np.float64])


def dense_grid() -> np.ndarray:
    """Every piece of the helper and its seams: a dense linear grid, tiny and huge magnitudes."""
    linear = np.linspace(-9.0, 9.0, 360_001)
    seams = np.array([k + d for k in range(-7, 8) for d in (-1e-12, 0.0, 1e-12)])
    tiny = np.geomspace(1e-300, 1e-3, 2_000)
    return np.concatenate([linear, seams, tiny, -tiny, [5e-324, 1e300, -1e300]])


def test_erf_matches_math_erf_to_about_one_ulp_over_a_dense_grid():
    x = dense_grid()
    got, want = erf(x), math_erf(x)
    relative = np.abs(got - want) / np.maximum(np.abs(want), np.finfo(np.float64).tiny)
    assert relative.max() <= 4e-16, (relative.max(), x[relative.argmax()])


def test_erf_keeps_shape_dtype_and_the_special_values():
    assert erf(np.zeros((2, 0, 3))).shape == (2, 0, 3)
    assert erf(np.float32([0.5, -2.0])).dtype == np.float32
    np.testing.assert_allclose(erf(np.float32([0.5, -2.0])), [math.erf(0.5), math.erf(-2.0)], rtol=1e-7)
    assert erf(np.array(0.25)).shape == () and float(erf(np.array(0.25))) == pytest.approx(math.erf(0.25), rel=1e-16)
    special = erf(np.array([np.inf, -np.inf, np.nan, 0.0, -0.0]))
    assert special[0] == 1.0 and special[1] == -1.0 and np.isnan(special[2])
    assert special[3] == 0.0 and np.signbit(special[4])  # odd, to the sign of zero


def gelu_net(shape=(3, 4)):
    g = gc.Graph("gelu_net")
    x = g.param("x", shape=shape)
    w = g.input("w", shape=shape)
    g.output("loss", gc.sum(gc.gelu(x) * w))
    return g


def test_gelu_is_exact_and_its_gradient_passes_central_differences():
    rng = np.random.default_rng(3)
    # values in every piece of erf(x / sqrt(2)): |x| / sqrt(2) in [0, 1), [1, 2) ... [5, 6) and beyond
    x = np.array([[-9.0, -7.5, -5.0, -3.2], [-1.2, -0.1, 0.0, 0.4], [1.3, 2.9, 4.6, 8.8]])
    feeds = {"x": x, "w": rng.standard_normal(x.shape)}
    prog = gc.compile(gelu_net())
    value, grads = prog.value_and_grad(feeds)
    closed = sum(v / 2 * (1 + math.erf(v / math.sqrt(2))) * w for v, w in zip(x.ravel(), feeds["w"].ravel()))
    assert value["loss"] == pytest.approx(closed, rel=1e-14)
    # d gelu / dx = Phi(x) + x phi(x), written out here
    phi = np.exp(-x**2 / 2) / math.sqrt(2 * math.pi)
    np.testing.assert_allclose(grads["x"], feeds["w"] * (0.5 * (1 + math_erf(x / math.sqrt(2))) + x * phi),
                               rtol=1e-13, atol=1e-300)
    report = gc.check_gradients(prog, feeds)
    assert report.ok and not report.kinks, str(report)


def test_gelu_gradient_with_a_constant_cotangent():
    g = gc.Graph("gelu_sum")
    x = g.param("x", shape=(7,))
    g.output("loss", gc.sum(gc.gelu(x)))
    report = gc.check_gradients(gc.compile(g), {"x": np.linspace(-4.0, 4.0, 7) + 0.1})
    assert report.ok, str(report)


def test_the_generated_module_carries_erf_and_needs_numpy_only(tmp_path):
    prog = gc.compile(gelu_net())
    source = prog.source
    imports = sorted({line.split()[1] for line in source.splitlines() if line.startswith(("import ", "from "))})
    assert imports == ["numpy", "warnings"]  # warnings: sgd_step asks whether a RuntimeWarning would raise
    assert source.count("def _erf(") == 1  # once, however many statements call it
    path = tmp_path / "gelu_module.py"
    path.write_text(source)
    # run it with graphc out of reach: -I ignores the environment and the working directory
    script = (f"import sys, importlib.util, numpy; spec = importlib.util.spec_from_file_location('m', {str(path)!r}); "
              "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m); "
              "x = numpy.array([[-9.0, -1.0, 0.5, 3.0]] * 3); out = m.forward({'x': x, 'w': numpy.ones((3, 4))}); "
              "print(repr(float(out['loss'])), 'graphc' in sys.modules)")
    done = subprocess.run([sys.executable, "-I", "-c", script], capture_output=True, text=True, check=True)
    loss, imported = done.stdout.split()
    x = np.array([-9.0, -1.0, 0.5, 3.0])
    assert float(loss) == pytest.approx(3 * sum(v / 2 * (1 + math.erf(v / math.sqrt(2))) for v in x), rel=1e-14)
    assert imported == "False"


def test_a_module_without_erf_does_not_carry_it():
    g = gc.Graph("plain")
    x = g.param("x", shape=(3,))
    g.output("loss", gc.sum(gc.tanh(x)))
    assert "_erf" not in gc.compile(g).source


def test_a_custom_op_of_erf_compiles_and_is_differentiated():
    erfc_like = gc.elementwise("one_minus_erf_test", lambda x: 1 - sympy.erf(x))
    g = gc.Graph("custom_erf")
    x = g.param("x", shape=(5,))
    g.output("loss", gc.sum(erfc_like(x)))
    feeds = {"x": np.array([-2.5, -0.3, 0.0, 0.7, 3.1])}
    prog = gc.compile(g)
    value, grads = prog.value_and_grad(feeds)
    assert value["loss"] == pytest.approx(sum(1 - math.erf(v) for v in feeds["x"]), rel=1e-15)
    np.testing.assert_allclose(grads["x"], -2 / math.sqrt(math.pi) * np.exp(-feeds["x"] ** 2), rtol=1e-14)


def test_a_name_that_reads_like_a_helper_call_brings_no_helper():
    # the functions' text holds "_erf(" (the comment of the statement computing "my_erf(")
    # inside a longer name, never as a call: a module carries the helpers its code calls
    g = gc.Graph("named_like_a_call")
    x = g.input("x", shape=(3,))
    g.output("my_erf(", gc.sum(gc.relu(x)))
    source = gc.compile(g).source
    assert "# 'my_erf(' sum" in source and "def _erf(" not in source
    called = gc.Graph("calls_erf")
    y = called.input("x", shape=(3,))
    called.output("my_erf(", gc.sum(gc.erf(y)))
    assert gc.compile(called).source.count("def _erf(") == 1
