"""gc.compile(g, backend=...) and prog.to(...): the library a program runs on.

The numpy program stays what it was (and its saved module needs numpy only); the
array-API program takes and returns its library's arrays, refuses what its library
cannot do with a BackendError that says what to do, and computes what an independent
reference computes (torch.autograd for PyTorch, hand-written numpy for the rest).
The corpus-wide agreement with numpy is in tests/differential/test_corpus_backends.py.
"""

from __future__ import annotations

import importlib.util
import re
import sys

import numpy as np
import pytest

import graphc as gc
from graphc.lower import libraries

HAS_TORCH = libraries.LIBRARIES["torch"].missing() is None  # torch and array-api-compat
HAS_JAX = libraries.LIBRARIES["jax"].missing() is None
needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed (pip install 'graphc[torch]')")
needs_jax = pytest.mark.skipif(not HAS_JAX, reason="jax is not installed (pip install 'graphc[jax]')")


def mlp(dtype="float64"):
    g = gc.Graph("mlp")
    x = g.input("x", shape=("N", 3), dtype=dtype)
    y = g.input("y", shape=("N", 1), dtype=dtype)
    W1 = g.param("W1", shape=(3, 4), dtype=dtype); b1 = g.param("b1", shape=(4,), dtype=dtype)
    W2 = g.param("W2", shape=(4, 1), dtype=dtype)
    g.output("loss", gc.mse(gc.tanh(x @ W1 + b1) @ W2, y))
    return g


def feeds(dtype="float64", n=5):
    rng = np.random.default_rng(0)
    shapes = {"x": (n, 3), "y": (n, 1), "W1": (3, 4), "b1": (4,), "W2": (4, 1)}
    return {k: rng.normal(size=s).astype(dtype) for k, s in shapes.items()}


def by_hand(f):
    """The loss and its gradients, written out in numpy."""
    z = f["x"] @ f["W1"] + f["b1"]
    h = np.tanh(z)
    err = h @ f["W2"] - f["y"]
    d_out = 2 * err / err.size
    d_z = (d_out @ f["W2"].T) * (1 - h ** 2)
    return np.mean(err ** 2), {"W1": f["x"].T @ d_z, "b1": d_z.sum(axis=0), "W2": h.T @ d_out}


def test_numpy_is_the_default_and_its_module_needs_numpy_only():
    prog = gc.compile(mlp())
    assert prog.backend == "numpy" and gc.compile(mlp(), backend="numpy").source == prog.source
    imports = re.findall(r"^\s*(?:import|from) (\S+)", prog.source, flags=re.M)
    assert imports == ["numpy", "warnings"]  # warnings: sgd_step asks whether a RuntimeWarning would raise
    assert prog.to("numpy").source == prog.source


def test_an_unknown_backend_names_the_known_ones():
    with pytest.raises(gc.BackendError, match=r"unknown backend 'tensorflow'; the backends are .*torch"):
        gc.compile(mlp(), backend="tensorflow")
    with pytest.raises(gc.BackendError, match="unknown backend"):
        gc.compile(mlp()).to("Torch")


def test_a_missing_library_names_the_package_to_install(monkeypatch):
    monkeypatch.setattr(libraries, "_RUNTIMES", {})
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    needs = r"backend 'torch' needs the package 'torch'.*pip install 'graphc\[torch\]'"
    with pytest.raises(gc.BackendError, match=needs):
        gc.compile(mlp(), backend="torch")


@pytest.mark.skipif(importlib.util.find_spec("cupy") is not None, reason="cupy is installed")
def test_cupy_where_it_is_missing_says_so():
    with pytest.raises(gc.BackendError, match=r"needs the package 'cupy'.*CUDA"):
        gc.compile(mlp(), backend="cupy")


def test_the_array_api_module_writes_nothing_in_place_and_calls_only_xp():
    prog = gc.compile(mlp(), backend="array_api_strict")
    source = prog.source
    assert "import array_api_strict as xp" in source
    assert "out=" not in source and "[...] =" not in source and ".copy()" not in source
    assert "def sgd_step" not in source  # it would update params in place
    calls = set(re.findall(r"\b(\w+)\.(\w+)\(", source))
    # no array method: only the namespace's functions (and the lists OUTPUTS and saved)
    assert {m for m, _ in calls} <= {"xp", "numpy", "_base64", "OUTPUTS", "saved"}, calls
    assert gc.compile(mlp(), backend="array_api_strict").source == source  # deterministic


def test_array_api_strict_takes_numpy_or_its_own_arrays_and_returns_its_own():
    import array_api_strict as xp

    prog = gc.compile(mlp(), backend="array_api_strict")
    f = feeds()
    loss, grads = by_hand(f)
    for given in (f, {k: xp.asarray(v) for k, v in f.items()}):
        value, got = prog.value_and_grad(given)
        assert isinstance(value["loss"], xp.__dict__["asarray"](0.0).__class__)
        np.testing.assert_allclose(float(value["loss"]), loss, rtol=1e-13)
        for name in grads:
            np.testing.assert_allclose(np.asarray(got[name]._array), grads[name], rtol=1e-12, atol=1e-15)


def test_feeds_of_a_library_are_checked_like_numpy_feeds():
    import array_api_strict as xp

    prog = gc.compile(mlp(), backend="array_api_strict")
    bad = {k: xp.asarray(v) for k, v in feeds().items()}
    bad["W1"] = xp.asarray(np.ones((4, 3)))
    with pytest.raises(gc.FeedError, match=r"feed 'W1' has shape \(4, 3\), expected \(3, 4\)"):
        prog.forward(bad)
    with pytest.raises(gc.FeedError, match="missing feed 'y'"):
        prog.forward({k: v for k, v in bad.items() if k != "y"})


def test_training_in_place_stays_on_numpy():
    prog = gc.compile(mlp(), backend="array_api_strict")
    with pytest.raises(gc.BackendError, match=r"sgd_step updates numpy params in place.*prog.to\('numpy'\)"):
        prog.sgd_step(feeds(), lr=0.1)
    f = feeds()
    prog.to("numpy").sgd_step(f, lr=0.1)  # the same program on numpy trains


@needs_torch
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_torch_gradients_agree_with_autograd(dtype):
    import torch

    prog = gc.compile(mlp(dtype)).to("torch")
    f = {k: torch.tensor(v) for k, v in feeds(dtype).items()}
    value, grads = prog.value_and_grad(f)
    assert all(isinstance(v, torch.Tensor) and v.dtype == getattr(torch, dtype) for v in grads.values())
    leaves = {k: v.clone().requires_grad_(k in grads) for k, v in f.items()}
    z = torch.tanh(leaves["x"] @ leaves["W1"] + leaves["b1"]) @ leaves["W2"]
    loss = torch.mean((z - leaves["y"]) ** 2)
    loss.backward()
    tol = 1e-12 if dtype == "float64" else 1e-5
    assert isinstance(value["loss"], torch.Tensor)
    torch.testing.assert_close(value["loss"], loss.detach(), rtol=tol, atol=tol)
    for name in grads:
        torch.testing.assert_close(grads[name], leaves[name].grad, rtol=tol, atol=tol)


@needs_torch
def test_torch_takes_numpy_feeds_and_a_seed():
    import torch

    prog = gc.compile(mlp(), backend="torch")
    f = feeds()
    _, grads = prog.value_and_grad(f, seed=np.float64(3.0))
    _, want = by_hand(f)
    for name in want:
        assert isinstance(grads[name], torch.Tensor)
        np.testing.assert_allclose(grads[name].numpy(), 3.0 * want[name], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("backend", ["array_api_strict", pytest.param("torch", marks=needs_torch)])
def test_check_gradients_judges_a_program_on_a_backend(backend):
    prog = gc.compile(mlp(), backend=backend)
    report = gc.check_gradients(prog, feeds())
    assert report.ok and len(report.rows) > 10


@pytest.mark.parametrize("backend", ["array_api_strict", pytest.param("jax", marks=needs_jax)])
@pytest.mark.parametrize("key", [(None, slice(None, None, 2), 2), (slice(1, 3), -1), (-1,), (1, None)])
def test_the_gradient_of_an_index_needs_no_item_assignment_of_a_new_axis(backend, key):
    # the standard's setitem takes no new axis, and JAX writes no item at all: both carry the
    # cotangent back by products
    if backend == "jax":
        import jax

        jax.config.update("jax_enable_x64", True)
    g = gc.Graph("index")
    x = g.input("x", shape=(3, 4, 5)); W = g.param("W", shape=(4, 5))
    g.output("loss", gc.sum(gc.square((x * W)[key])))
    rng = np.random.default_rng(0)
    f = {"x": rng.normal(size=(3, 4, 5)), "W": rng.normal(size=(4, 5))}
    mask = np.zeros((3, 4, 5)); mask[tuple(k for k in key if k is not None)] = 1  # what x[key] reads
    want = (2 * (f["x"] * f["W"]) * mask * f["x"]).sum(axis=0)
    _, grads = gc.compile(g, backend=backend).value_and_grad(f)
    found = np.asarray(grads["W"]._array if backend == "array_api_strict" else grads["W"])
    np.testing.assert_allclose(found, want, rtol=1e-12, atol=1e-14)


@needs_jax
def test_jax_with_64_bit_floats_off_refuses_a_float64_graph():
    import jax

    before = jax.config.read("jax_enable_x64")
    try:
        jax.config.update("jax_enable_x64", False)
        with pytest.raises(gc.BackendError, match=r"computes in float64.*jax_enable_x64.*jax.config.update"):
            gc.compile(mlp(), backend="jax")
        with pytest.raises(gc.BackendError, match="jax_enable_x64"):
            gc.compile(mlp()).to("jax")
        prog = gc.compile(mlp("float32"), backend="jax")  # float32 needs no switch
        value, _ = prog.value_and_grad(feeds("float32"))
        np.testing.assert_allclose(float(value["loss"]), by_hand(feeds("float64"))[0], rtol=1e-5)
    finally:
        jax.config.update("jax_enable_x64", before)


@needs_jax
def test_jax_float64_matches_by_hand():
    import jax

    before = jax.config.read("jax_enable_x64")
    try:
        jax.config.update("jax_enable_x64", True)
        value, grads = gc.compile(mlp(), backend="jax").value_and_grad(feeds())
        loss, want = by_hand(feeds())
        assert isinstance(value["loss"], jax.Array)
        np.testing.assert_allclose(float(value["loss"]), loss, rtol=1e-13)
        for name in want:
            np.testing.assert_allclose(np.asarray(grads[name]), want[name], rtol=1e-12, atol=1e-15)
    finally:
        jax.config.update("jax_enable_x64", before)


def test_a_value_called_xp_does_not_hide_the_namespace():
    # the array-API module calls xp.exp: a graph input named xp is renamed there, not on numpy
    g = gc.Graph("named_xp")
    xp = g.input("xp", shape=(2,))
    g.output("y", gc.sum(gc.exp(xp)))
    prog = gc.compile(g)
    want = prog.forward({"xp": np.array([0.0, 1.0])})["y"]
    got = prog.to("array_api_strict").forward({"xp": np.array([0.0, 1.0])})["y"]
    np.testing.assert_allclose(np.asarray(got._array), want, rtol=1e-15)
    assert "def forward_pass(xp):" in prog.source  # numpy's module keeps the graph's name
