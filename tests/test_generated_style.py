"""Generated code reads like an expert's: a buffer keeps one name, headings and notes once."""

from __future__ import annotations

import ast
import re

import numpy as np

import graphc as gc

NETWORKS = {
    "wide_relu": lambda: gc.zoo.wide_relu()[0],
    "mlp": lambda: gc.zoo.get("mlp")()[0],
    "residual": lambda: gc.zoo.get("residual")()[0],
}


def sources():
    for name, build in NETWORKS.items():
        yield name, gc.compile(build()).source


def test_no_buffer_is_renamed_by_an_assignment_and_a_del():
    """``relu = matmul; del matmul`` is written as one buffer with one name."""
    for name, source in sources():
        lines = [line.strip() for line in source.splitlines()]
        for k, line in enumerate(lines[:-1]):
            pair = re.fullmatch(r"(\w+) = (\w+)", line.split("  #")[0])
            assert not (pair and lines[k + 1] == f"del {pair.group(2)}"), f"{name}: {line}; {lines[k + 1]}"


def test_a_level_heading_stands_over_two_statements_or_more():
    for name, source in sources():
        for function in ast.parse(source).body:
            if not isinstance(function, ast.FunctionDef):
                continue
            text = ast.get_source_segment(source, function).splitlines()
            headings = [k for k, line in enumerate(text) if line.strip().startswith("# level ")]
            for k in headings:
                following = [line.strip() for line in text[k + 1:]]
                end = next((j for j, line in enumerate(following) if line.startswith("# level ")), len(following))
                statements = [line for line in following[:end] if line and not line.startswith(("#", "del ", "return"))]
                assert len(statements) >= 2, f"{name}.{function.name}: {text[k]} over {statements}"


def test_the_kink_convention_is_noted_once_per_function():
    source = gc.compile(gc.zoo.wide_relu()[0]).source
    for function in re.split(r"\n(?=def )", source):
        assert function.count("dReLU/dz = 0 if z < 0") <= 1, function
    assert "dReLU/dz = 0 if z < 0" in gc.compile(gc.zoo.wide_relu()[0]).backward_source


def test_renamed_buffers_compute_what_numpy_by_hand_computes():
    g, feeds = gc.zoo.wide_relu()
    prog = gc.compile(g)
    x, y, W1, W2 = (np.asarray(feeds[k], dtype=float) for k in ("x", "y", "W1", "W2"))
    z1 = x @ W1
    a1 = np.maximum(z1, 0)
    z2 = a1 @ W2
    out = np.maximum(z2, 0)
    d_z2 = 2 * (out - y) * (z2 >= 0) / len(x)
    d_z1 = (d_z2 @ W2.T) * (z1 >= 0)
    outputs, grads = prog.value_and_grad(feeds)
    np.testing.assert_allclose(outputs["loss"], np.mean((out - y) ** 2), rtol=1e-13)
    np.testing.assert_allclose(grads["W2"], a1.T @ d_z2, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(grads["W1"], x.T @ d_z1, rtol=1e-12, atol=1e-15)


def test_a_buffer_carries_the_users_name_over_a_name_made_from_an_op():
    g = gc.Graph("named")
    x, y = g.input("x", shape=("N", 4)), g.input("y", shape=("N", 2))
    W1, b1 = g.param("W1", shape=(4, 8)), g.param("b1", shape=(8,))
    W2 = g.param("W2", shape=(8, 2))
    h1 = gc.relu(x @ W1 + b1).named("h1")
    g.output("loss", gc.mse(h1 @ W2, y))
    prog = gc.compile(g)
    code = [line.split("  #")[0].strip() for line in prog.source.splitlines()]
    assert any(line.startswith("h1 = x.dot(W1)") for line in code)  # the forward buffer is h1 from the start
    assert any(line.startswith("d_h1 = ") for line in code) and not any(line.startswith("d_add") for line in code)
    rng = np.random.default_rng(0)
    feeds = {"x": rng.normal(size=(3, 4)), "y": rng.normal(size=(3, 2)), "W1": rng.normal(size=(4, 8)),
             "b1": rng.normal(size=8), "W2": rng.normal(size=(8, 2))}
    z = feeds["x"] @ feeds["W1"] + feeds["b1"]
    d_out = 2 * (np.maximum(z, 0) @ feeds["W2"] - feeds["y"]) / 6
    want = feeds["x"].T @ ((d_out @ feeds["W2"].T) * (z >= 0))
    np.testing.assert_allclose(prog.value_and_grad(feeds)[1]["W1"], want, rtol=1e-12)
