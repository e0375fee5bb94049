"""Program.value_and_grad: wrt, zeros for unreachable params, explicit cotangents, saved modules."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import graphc as gc


def layer(activation=gc.tanh, extra_param=False):
    g = gc.Graph("layer")
    x, y = g.input("x", shape=("N", 3)), g.input("y", shape=("N", 2))
    W, b = g.param("W", shape=(3, 2)), g.param("b", shape=(2,))
    if extra_param:
        g.param("unused", shape=(2, 4))
    g.output("loss", gc.mse(activation(x @ W + b), y))
    return g


def feeds(seed=0, **extra):
    rng = np.random.default_rng(seed)
    out = {"x": rng.standard_normal((4, 3)), "y": rng.standard_normal((4, 2)),
           "W": rng.standard_normal((3, 2)), "b": rng.standard_normal(2)}
    out.update(extra)
    return out


def numeric_vjp(function, point: dict, name: str, cotangent, eps=1e-6) -> np.ndarray:
    """d <cotangent, function(point)> / d point[name], by central differences entry by entry."""
    base = {k: np.array(v, dtype=float) for k, v in point.items()}
    out = np.zeros_like(base[name])
    for index in np.ndindex(out.shape):
        up, down = dict(base), dict(base)
        up[name] = base[name].copy()
        up[name][index] += eps
        down[name] = base[name].copy()
        down[name][index] -= eps
        out[index] = (np.sum(function(up) * cotangent) - np.sum(function(down) * cotangent)) / (2 * eps)
    return out


def test_outputs_and_grads_keyed_by_name_wrt_defaulting_to_every_param():
    prog = gc.compile(layer())
    assert prog.wrt == ["W", "b"]
    value, grads = prog.value_and_grad(feeds())
    assert list(value) == ["loss"] and list(grads) == ["W", "b"]
    assert value["loss"] == pytest.approx(float(prog.forward(feeds())["loss"]), rel=1e-15)
    f = feeds()
    reference = numeric_vjp(lambda p: prog.forward(p)["loss"], f, "W", 1.0)
    np.testing.assert_allclose(grads["W"], reference, rtol=1e-6, atol=1e-9)


def test_wrt_may_name_an_input():
    prog = gc.compile(layer(), wrt=["x", "W"])
    _, grads = prog.value_and_grad(feeds())
    assert list(grads) == ["x", "W"] and grads["x"].shape == (4, 3)
    reference = numeric_vjp(lambda p: prog.forward(p)["loss"], feeds(), "x", 1.0)
    np.testing.assert_allclose(grads["x"], reference, rtol=1e-6, atol=1e-9)
    gc.check_gradients(prog, feeds())


def test_wrt_a_subset_of_params():
    _, grads = gc.compile(layer(), wrt=["b"]).value_and_grad(feeds())
    _, every = gc.compile(layer()).value_and_grad(feeds())
    assert list(grads) == ["b"]
    np.testing.assert_array_equal(grads["b"], every["b"])


def test_wrt_naming_no_source_is_a_graph_error():
    with pytest.raises(gc.GraphError, match="'nope'.*not an input or param"):
        gc.compile(layer(), wrt=["nope"])


def test_a_param_that_does_not_reach_the_output_gets_zeros_of_its_shape():
    prog = gc.compile(layer(extra_param=True))
    assert prog.wrt == ["W", "b", "unused"]
    _, grads = prog.value_and_grad(feeds(unused=np.ones((2, 4))))
    assert grads["unused"].shape == (2, 4) and not grads["unused"].any()
    assert grads["W"].any()


def test_a_param_that_reaches_only_another_output_gets_zeros():
    g = gc.Graph("two")
    x = g.input("x", shape=(3,))
    a, c = g.param("a", shape=(3,)), g.param("c", shape=(3,))
    g.output("loss", gc.sum(a * x))
    g.output("side", c * 2.0)
    _, grads = gc.compile(g).value_and_grad({"x": np.arange(3.0), "a": np.ones(3), "c": np.ones(3)})
    np.testing.assert_array_equal(grads["a"], np.arange(3.0))
    np.testing.assert_array_equal(grads["c"], np.zeros(3))


def vector_net():
    g = gc.Graph("vector")
    x = g.input("x", shape=("N", 3))
    W = g.param("W", shape=(3, 2))
    g.output("h", gc.tanh(x @ W))
    return g


def test_a_non_scalar_output_compiles_and_runs_forward():
    prog = gc.compile(vector_net())
    f = {"x": feeds()["x"], "W": feeds()["W"]}
    np.testing.assert_allclose(prog.forward(f)["h"], np.tanh(f["x"] @ f["W"]), rtol=1e-15)


def test_a_non_scalar_output_without_seed_raises_saying_so():
    prog = gc.compile(vector_net())
    with pytest.raises(gc.GradientError, match=r"no scalar output .*\['h'\].*seed="):
        prog.value_and_grad({"x": feeds()["x"], "W": feeds()["W"]})


def test_an_explicit_seed_gives_the_vector_jacobian_product():
    prog = gc.compile(vector_net())
    f = {"x": feeds()["x"], "W": feeds()["W"]}
    seed = np.random.default_rng(5).standard_normal((4, 2))
    value, grads = prog.value_and_grad(f, seed=seed)
    np.testing.assert_allclose(value["h"], np.tanh(f["x"] @ f["W"]), rtol=1e-15)
    reference = numeric_vjp(lambda p: prog.forward(p)["h"], f, "W", seed)
    np.testing.assert_allclose(grads["W"], reference, rtol=1e-6, atol=1e-9)
    # and by hand: d<c, tanh(x W)>/dW = x^T (c * (1 - tanh^2))
    np.testing.assert_allclose(grads["W"], f["x"].T @ (seed * (1 - np.tanh(f["x"] @ f["W"]) ** 2)), rtol=1e-12)


def test_a_seed_on_a_scalar_loss_scales_the_gradient():
    prog = gc.compile(layer())
    _, plain = prog.value_and_grad(feeds())
    _, scaled = prog.value_and_grad(feeds(), seed=np.float64(-2.5))
    np.testing.assert_allclose(scaled["W"], -2.5 * plain["W"], rtol=1e-14)


def test_a_seed_of_the_wrong_shape_is_a_feed_error():
    prog = gc.compile(vector_net())
    with pytest.raises(gc.FeedError, match=r"seed .*'h'.*shape \(4, 3\), expected \(4, 2\)"):
        prog.value_and_grad({"x": feeds()["x"], "W": feeds()["W"]}, seed=np.ones((4, 3)))


def test_naming_a_non_scalar_output_with_of_still_needs_a_seed():
    prog = gc.compile(vector_net(), of="h")
    with pytest.raises(gc.GradientError, match="seed"):
        prog.value_and_grad({"x": feeds()["x"], "W": feeds()["W"]})


def test_feeds_are_checked_before_running():
    with pytest.raises(gc.FeedError, match="missing feed 'b'"):
        gc.compile(layer()).value_and_grad({k: v for k, v in feeds().items() if k != "b"})


RUN_SAVED = textwrap.dedent("""
    import importlib.util, sys
    for blocked in ("graphc", "sympy", "networkx"):
        sys.modules[blocked] = None  # any import of these now raises ImportError
    import numpy
    path, data, out = sys.argv[1:4]
    spec = importlib.util.spec_from_file_location("saved_model", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with numpy.load(data) as arrays:
        feeds = {name: arrays[name] for name in arrays.files}
    values, grads = module.value_and_grad(feeds)
    forward = module.forward(feeds)
    numpy.savez(out, **{"value_" + k: v for k, v in values.items()}, **{"grad_" + k: v for k, v in grads.items()},
                **{"forward_" + k: v for k, v in forward.items()})
    print(sorted(m for m in ("graphc", "sympy", "networkx") if sys.modules.get(m) is not None))
""")


def test_a_saved_module_runs_where_graphc_sympy_and_networkx_cannot_be_imported(tmp_path):
    prog = gc.compile(layer(gc.sigmoid))
    path = prog.save(tmp_path / "model_gen.py")
    f = feeds()
    np.savez(tmp_path / "feeds.npz", **f)
    result = subprocess.run(
        [sys.executable, "-I", "-c", RUN_SAVED, str(path), str(tmp_path / "feeds.npz"), str(tmp_path / "out.npz")],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
    value, grads = prog.value_and_grad(f)
    with np.load(tmp_path / "out.npz") as out:
        np.testing.assert_array_equal(out["value_loss"], value["loss"])
        np.testing.assert_array_equal(out["forward_loss"], prog.forward(f)["loss"])
        for name in ("W", "b"):
            np.testing.assert_array_equal(out[f"grad_{name}"], grads[name])


def test_the_blocking_in_the_subprocess_is_real(tmp_path):
    # the same harness fails when the saved file imports graphc: the block is not a no-op
    bad = tmp_path / "bad.py"
    bad.write_text("import graphc\n", encoding="utf-8")
    np.savez(tmp_path / "feeds.npz", x=np.zeros(1))
    result = subprocess.run(
        [sys.executable, "-I", "-c", RUN_SAVED, str(bad), str(tmp_path / "feeds.npz"), str(tmp_path / "out.npz")],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )
    assert result.returncode != 0 and "import of graphc halted" in result.stderr


def backward_pass_text(prog) -> str:
    """The text of the generated ``backward_pass`` function alone."""
    source = prog.backward_source
    start = source.index("def backward_pass")
    end = source.find("\ndef ", start + 1)
    return source[start:] if end < 0 else source[start:end]


def test_relu_backward_code_states_the_kink_convention():
    text = backward_pass_text(gc.compile(layer(gc.relu)))
    assert "dReLU/dz = 0 if z < 0, 1 otherwise" in text


def test_sigmoid_backward_code_reuses_the_forward_value():
    text = backward_pass_text(gc.compile(layer(gc.sigmoid)))
    assert "exp" not in text


def test_softmax_cross_entropy_gradient_reads_row_sum_times_softmax_minus_y_over_n():
    """The logits' gradient comes out of differentiation and simplification as
    (sum(y) softmax - y)/n: the exponentials divided by their row sums, times the row's sum
    of labels (1 for one-hot rows, but soft rows may sum to anything), minus the labels,
    over the batch (times the loss's cotangent d_loss, an input of the one backward pass)."""
    g = gc.Graph("sce")
    x = g.input("x", shape=("N", 4))
    y = g.input("y", shape=("N", 3))
    W = g.param("W", shape=(4, 3))
    g.output("loss", gc.softmax_cross_entropy(x @ W, y))
    prog = gc.compile(g)
    rows = re.search(r"(\w+) = y\.sum\(axis=-1\)", prog.backward_source).group(1)  # in train_forward
    source = prog.backward_source[prog.backward_source.index("def backward_pass"):]
    assert re.search(rf"^    {rows} \*= \(d_loss/N\)", source, re.M), source
    scaled = re.search(rf"^    (\w+) = {rows}\.reshape\(\(N, 1\)\)", source, re.M).group(1)
    formulas = [line for line in source.splitlines() if line.strip().startswith("# d_")]
    assert any(re.search(rf"= {scaled}\*exp/sum\w* - d_loss\*y/N\b", line) for line in formulas), "\n".join(formulas)
