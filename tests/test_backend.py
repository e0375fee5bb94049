"""Lowering prints a plan through a backend: its expression and kernel printers, its tensor ops."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import graphc as gc
from graphc.lower.backend import NUMPY, Backend
from graphc.lower.load import load_source
from graphc.lower.source import lower


def net():
    g = gc.Graph("net")
    x = g.input("x", shape=("N", 3))
    W = g.param("W", shape=(3, 2))
    g.output("loss", gc.sum(gc.tanh(x @ W)))
    return g


def test_a_backend_lowers_a_tensor_op_its_own_way():
    prog = gc.compile(net())
    dot = Backend("numpy-dot", "numpy", NUMPY.expression, NUMPY.kernel, uses_op_table=True)
    dot.register("matmul", lambda ctx, args, attrs, node: f"{ctx.numpy}.dot({args[0]}, {args[1]})")
    code = lower(prog.plan, dot)
    assert "numpy.dot(x, W)" in code.source and " @ " not in code.forward_source
    module = load_source(code.source, "dot")
    rng = np.random.default_rng(0)
    feeds = {"x": rng.normal(size=(4, 3)), "W": rng.normal(size=(3, 2))}
    want = np.sum(np.tanh(feeds["x"] @ feeds["W"]))
    np.testing.assert_allclose(module.forward(feeds)["loss"], want, rtol=1e-13)
    _, grads = module.value_and_grad(feeds)
    np.testing.assert_allclose(grads["W"], feeds["x"].T @ (1 - np.tanh(feeds["x"] @ feeds["W"]) ** 2), rtol=1e-12)


def test_a_backend_without_a_form_of_an_op_says_which():
    prog = gc.compile(net())
    bare = dataclasses.replace(NUMPY, name="bare", lowerings={}, uses_op_table=False)
    with pytest.raises(gc.GraphError, match="backend 'bare' has no form of it"):
        lower(prog.plan, bare)


def test_the_numpy_backend_prints_what_compile_prints():
    prog = gc.compile(net())
    assert lower(prog.plan, NUMPY).source == prog.source
