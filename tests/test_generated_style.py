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


def layer_norm():
    """x * ((p - mean(p)) * g / sqrt(var(p) + eps) + b): a kernel with a scratch array (_k0) at
    the step that is also the last to read the variance."""
    graph = gc.Graph("norm")
    x, p = graph.input("x", shape=(4, 3)), graph.param("p", shape=(4, 3))
    g, b = graph.param("g", shape=(4, 3)), graph.param("b", shape=(4, 3))
    centred = p - gc.mean(p, axis=0, keepdims=True)
    variance = gc.mean(gc.square(centred), axis=0, keepdims=True)
    graph.output("loss", gc.sum(x * (centred * g / gc.sqrt(variance + 1e-5) + b)))
    return graph


def test_one_del_frees_a_kernels_scratch_and_what_its_step_read_last():
    """``del _k0`` then ``del mean_1`` is written ``del _k0, mean_1``: no two dels follow each other."""
    prog = gc.compile(layer_norm())
    merged = [line.strip() for line in prog.forward_source.splitlines() if line.strip().startswith("del _k")]
    assert any("," in line for line in merged), merged  # the case arises: a scratch and a value freed at once
    for name, source in [("norm", prog.source)] + list(sources()):
        for node in ast.walk(ast.parse(source)):
            body = getattr(node, "body", None)
            if isinstance(body, list):
                pairs = zip(body, body[1:])
                assert not any(isinstance(a, ast.Delete) and isinstance(b, ast.Delete) for a, b in pairs), name
    rng = np.random.default_rng(3)
    feeds = {k: rng.standard_normal((4, 3)) for k in ("x", "p", "g", "b")}
    centred = feeds["p"] - feeds["p"].mean(axis=0)
    want = np.sum(feeds["x"] * (centred * feeds["g"] / np.sqrt((centred**2).mean(axis=0) + 1e-5) + feeds["b"]))
    np.testing.assert_allclose(prog.forward(feeds)["loss"], want, rtol=1e-13)


def test_the_updates_of_a_level_free_their_gradients_in_one_del():
    """``if update is not None:`` holds the level's subtractions, then one del of their gradients."""
    prog = gc.compile(gc.zoo.get("mlp")()[0])
    backward = next(f for f in ast.parse(prog.source).body if getattr(f, "name", "") == "backward_pass")
    blocks = [st for st in backward.body if isinstance(st, ast.If) and ast.unparse(st.test) == "update is not None"
              and isinstance(st.body[0], ast.AugAssign)]
    assert any(len(block.body) > 2 for block in blocks)  # a level of two updates or more
    for block in blocks:
        *subtractions, freed = block.body
        assert all(isinstance(st, ast.AugAssign) and isinstance(st.op, ast.Sub) for st in subtractions)
        assert isinstance(freed, ast.Delete)
        assert [t.id for t in freed.targets] == [ast.unparse(st.value) for st in subtractions]


def test_the_header_writes_a_repeated_dtype_and_the_grads_of_every_param_once():
    g = gc.Graph("header")
    x = g.input("x", shape=("N", 3))
    W, b = g.param("W", shape=(3, 2)), g.param("b", shape=(2,))
    g.output("loss", gc.sum(gc.tanh(x @ W + b)))
    header = gc.compile(g).source.split("\n\n\n")[0]
    assert "DTYPES = ('float64',) * 3" in header and "GRADS = PARAMS" in header
    module = gc.compile(g).module
    assert module.DTYPES == ("float64",) * 3 and module.GRADS == module.PARAMS == ("W", "b")
    some = gc.compile(g, wrt=["b", "x"])
    assert some.module.GRADS == ("b", "x") and "GRADS = ('b', 'x')" in some.source
    _, grads = some.value_and_grad({"x": np.ones((2, 3)), "W": np.ones((3, 2)), "b": np.zeros(2)})
    assert set(grads) == {"b", "x"}
    mixed = gc.Graph("mixed")
    x, labels = mixed.input("x", shape=("N", 3)), mixed.input("labels", shape=("N",), dtype="int64")
    w = mixed.param("w", shape=(3, 4))
    mixed.output("loss", gc.softmax_cross_entropy(x @ w, labels))
    assert gc.compile(mixed).module.DTYPES == ("float64", "int64", "float64")
    assert "DTYPES = ('float64', 'int64', 'float64')" in gc.compile(mixed).source
