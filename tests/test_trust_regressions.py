"""Defects the 10,000-network differential run found, each against an independent reference.

(1) a fused region whose value is one of its operands (``(p - p)**2 + p`` is ``p``) was
printed as ``loss = p``: every path returned the param's own buffer, and ``sgd_step``
returned it after updating it in place. References: hand-written numpy and the values
before the call.

(2) a kernel whose parts repeat is printed through ``sympy.cse``, which rebuilt
``Abs(log1p(bce)**p)`` around a name for ``0.05 + 0.9 sigmoid(p)`` that sympy could not
show positive, so ``Abs`` became ``sqrt(conjugate(z) z)``, which the printer refuses.
Reference: the same loss in numpy, central differences in float64.
"""

import importlib.util
import warnings

import numpy as np
import pytest
from numeric_reference import numeric_grad

import graphc as gc

# -- (1) a region that passes one operand through --------------------------------------------

def passes_a_param_through(shape):
    g = gc.Graph("through")
    p = g.param("p", shape)
    q = gc.identity(p)
    g.output("loss", gc.sum((gc.apply("squared_error", p, q) + q) * 1.0) if shape else
             (gc.apply("squared_error", p, q) + q) * 1.0)
    return g


def test_sgd_step_returns_the_loss_before_the_update_not_the_updated_param():
    p = np.array(-0.4)
    loss = gc.compile(passes_a_param_through(())).sgd_step({"p": p}, lr=0.1)["loss"]
    assert float(loss) == -0.4  # the loss at the old p
    assert float(p) == -0.4 - 0.1 * 1.0  # d loss / d p = 1
    assert not np.shares_memory(loss, p)


def test_every_returned_array_of_a_pass_through_region_is_the_callers_own():
    p = np.array(0.75)
    prog = gc.compile(passes_a_param_through(()))
    seed = np.array(2.0)
    outputs, grads = prog.value_and_grad({"p": p}, seed=seed)
    forward = prog.forward({"p": p})
    for name, array in [("value_and_grad loss", outputs["loss"]), ("forward loss", forward["loss"]),
                        ("grad p", grads["p"])]:
        assert not np.shares_memory(array, p), name
        assert not np.shares_memory(array, seed), name
    assert float(outputs["loss"]) == 0.75 and float(grads["p"]) == 2.0
    outputs["loss"][...] = 9.0
    grads["p"][...] = 9.0
    assert float(p) == 0.75 and float(seed) == 2.0


def test_a_pass_through_region_over_an_array_param_keeps_values_and_updates():
    p = np.array([0.5, -1.0, 2.0])
    before = p.copy()
    out = gc.compile(passes_a_param_through((3,))).sgd_step({"p": p}, lr=0.5)
    assert float(out["loss"]) == before.sum()
    np.testing.assert_array_equal(p, before - 0.5)


# -- (2) Abs of a power over a shared part ---------------------------------------------------

def abs_of_a_power_over_a_shared_part(dtype):
    g = gc.Graph("held_abs")
    p = g.param("p", shape=(), dtype=dtype)
    y = g.input("y", shape=(), dtype=dtype)
    t = gc.log1p(gc.apply("bce_terms", 0.05 + 0.9 * gc.sigmoid(p), y))
    g.output("loss", gc.abs(t ** p) * t)
    return g


def held_abs_loss(p, y=0.17):
    q = 0.05 + 0.9 / (1 + np.exp(-p))
    t = np.log1p(-(y * max(-100.0, np.log(q)) + (1 - y) * max(-100.0, np.log1p(-q))))
    return abs(t ** p) * t


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_abs_of_a_power_over_a_shared_part_compiles_and_agrees_with_numpy(dtype):
    g = abs_of_a_power_over_a_shared_part(dtype)
    feeds = {"p": np.array(-0.08, dtype), "y": np.array(0.17, dtype)}
    rtol = 1e-5 if dtype == "float32" else 1e-9
    value, grads = gc.compile(g).value_and_grad(feeds)
    np.testing.assert_allclose(value["loss"], held_abs_loss(-0.08), rtol=rtol)
    np.testing.assert_allclose(grads["p"], numeric_grad(held_abs_loss, -0.08), rtol=max(rtol, 1e-7))
    out = gc.compile(gc.grad(g, "loss", wrt=["p"])).forward(feeds)
    np.testing.assert_allclose(out["dloss/dp"], numeric_grad(held_abs_loss, -0.08), rtol=max(rtol, 1e-7))


# -- (3) bce at p = 0 and 1: no log(0), no 1/0, even in a branch the clamp discards ---------

def bce_graph(shape):
    g = gc.Graph("bce_ends")
    p, y = g.param("p", shape=shape), g.input("y", shape=shape)
    g.output("loss", gc.bce(p, y))
    return g


def clamped_bce(p, y):
    """bce as declared, by hand: each log clamped at -100 (log(0) taken as -inf)."""
    with np.errstate(divide="ignore"):
        terms = -(y * np.maximum(np.log(p), -100) + (1 - y) * np.maximum(np.log1p(-p), -100))
    return terms.mean()


def clamped_bce_grad(p, y):
    """Its derivative: 0 where a log is clamped, the log's derivative elsewhere."""
    with np.errstate(divide="ignore", invalid="ignore"):
        first = np.where(np.log(p) >= -100, -y / p, 0.0)
        second = np.where(np.log1p(-p) >= -100, (1 - y) / (1 - p), 0.0)
    return (first + second) / np.size(p)


ENDS = {"p": np.array([0.0, 1.0, 0.0, 1.0, 0.25]), "y": np.array([1.0, 0.0, 0.0, 1.0, 0.5])}


def test_bce_at_0_and_1_warns_nowhere_and_keeps_its_declared_values(tmp_path):
    g = bce_graph((5,))
    want, want_grad = clamped_bce(ENDS["p"], ENDS["y"]), clamped_bce_grad(ENDS["p"], ENDS["y"])
    assert np.isfinite(want_grad).all()
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        prog = gc.compile(g)
        saved = _load(prog.save(tmp_path / "bce_ends.py"))
        results = {"forward": (prog.forward(ENDS)["loss"], None),
                   "value_and_grad": _pair(prog.value_and_grad(ENDS)),
                   "saved": _pair(saved.value_and_grad(ENDS))}
        joint = gc.compile(gc.grad(g, "loss", wrt=["p"])).forward(ENDS)
        results["gc.grad"] = (joint["loss"], joint["dloss/dp"])
        p = ENDS["p"].copy()
        results["sgd_step"] = (prog.sgd_step({"p": p, "y": ENDS["y"]}, lr=0.5)["loss"], None)
    for path, (loss, grad) in results.items():
        np.testing.assert_allclose(loss, want, rtol=1e-12, err_msg=path)
        if grad is not None:
            np.testing.assert_allclose(grad, want_grad, rtol=1e-12, err_msg=path)
    np.testing.assert_allclose(p, ENDS["p"] - 0.5 * want_grad, rtol=1e-12)


def test_bce_at_0_and_1_in_a_scalar_kernel_warns_nowhere():
    g = bce_graph(())
    for p, y in [(0.0, 1.0), (1.0, 0.0), (0.0, 0.0), (1.0, 1.0)]:
        feeds = {"p": np.array(p), "y": np.array(y)}
        with warnings.catch_warnings(), np.errstate(all="raise"):
            warnings.simplefilter("error")
            value, grads = gc.compile(g).value_and_grad(feeds)
        assert float(value["loss"]) == clamped_bce(np.array(p), np.array(y))
        assert float(grads["p"]) == float(clamped_bce_grad(np.array(p), np.array(y)))


def test_bce_of_a_saturated_softmax_warns_nowhere():
    g = gc.Graph("saturated")
    x, t = g.input("x", shape=(1, 2)), g.input("t", shape=(1, 2))
    w = g.param("w", shape=(2, 2))
    g.output("loss", gc.bce(gc.softmax(x @ w), t))
    feeds = {"x": np.array([[1.0, 0.0]]), "t": np.array([[1.0, 0.0]]), "w": np.array([[40.0, 0.0], [0.0, 0.0]])}
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        _, grads = gc.compile(g).value_and_grad(feeds)
    assert np.isfinite(grads["w"]).all()


def test_the_hessian_of_bce_away_from_its_ends_is_the_closed_form():
    # the safe operands are in the derivative's expression: differentiating it again must see through them
    g = bce_graph((2,))
    first = gc.grad(g, "loss", wrt=["p"])
    first.output("s", gc.sum(first["dloss/dp"]))
    second = gc.grad(first, "s", wrt=["p"])
    feeds = {"p": np.array([0.2, 0.7]), "y": np.array([1.0, 0.25])}
    p, y = feeds["p"], feeds["y"]
    np.testing.assert_allclose(gc.compile(second).forward(feeds)["ds/dp"],
                               (y / p**2 + (1 - y) / (1 - p) ** 2) / 2, rtol=1e-12)


def _load(path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _pair(result):
    outputs, grads = result
    return outputs["loss"], grads["p"]


# -- (4) x * 1.0 where x is an int: the value is a float -------------------------------------

def argmax_times(make):
    g = gc.Graph("labels_as_floats")
    x = g.input("x", shape=(3, 4))
    w = g.param("w", shape=(4,))
    labels = gc.argmax(gc.stop_gradient(x * w), axis=1)
    g.output("out", make(labels))
    g.output("loss", gc.sum(x * w))
    return g


LABEL_FEEDS = {"x": np.array([[0.0, 3.0, 1.0, 2.0], [5.0, 1.0, 0.0, 2.0], [0.0, 1.0, 2.0, 7.0]]), "w": np.ones(4)}


@pytest.mark.parametrize("make", [lambda a: a * 1.0, lambda a: a + 0.0, lambda a: (a * 2.0) * 0.5,
                                  lambda a: (a + 1.0) - 1.0], ids=["times 1", "plus 0", "times 2 half", "plus minus 1"])
def test_an_int_times_one_is_a_float_on_every_path_and_stage(make, tmp_path):
    g = argmax_times(make)
    assert g.nx.nodes["out"]["dtype"] == "float64"
    want = np.array([1.0, 0.0, 3.0])  # by hand: each row's largest column
    prog = gc.compile(g)
    found = {"forward": prog.forward(LABEL_FEEDS)["out"], "value_and_grad": prog.value_and_grad(LABEL_FEEDS)[0]["out"],
             "saved": _load(prog.save(tmp_path / "labels.py")).forward(LABEL_FEEDS)["out"]}
    for name, stage in prog.stages.items():
        if hasattr(stage, "nodes") and "out" in stage:
            assert stage.nodes["out"]["dtype"] == "float64", name
            found[f"stage {name}"] = gc.evaluate(stage, {**LABEL_FEEDS, **_seed(stage)}, nodes=["out"])["out"]
    for path, value in found.items():
        assert value.dtype == np.float64, path
        np.testing.assert_array_equal(value, want, err_msg=path)


def _seed(stage):
    seed = stage.graph.get("seed")
    return {seed: np.array(1.0)} if seed in stage else {}


# -- (5) float32 and float64 values in one op: a typed error, never a silent widening --------

def test_a_float64_param_in_a_float32_graph_is_an_error_where_it_is_declared():
    g = gc.Graph("mixed")
    g.input("x", shape=(2, 3), dtype="float32")
    with pytest.raises(gc.GraphError, match=r"node 'W' \(op param\) is float64, but node 'x' \(op input\) of "
                                            r"graph 'mixed' is float32.*declare 'W' dtype='float32'"):
        g.param("W", shape=(3, 1), dtype="float64")
    assert "W" not in g.nx and g.params == []  # the graph is as it was
    g.param("W", shape=(3, 1), dtype="float32")
    g.input("labels", shape=(2,), dtype="int64")  # ints are not floats: labels stay int64


def test_a_mix_is_refused_however_many_sources_came_before_and_in_a_graph_that_came_from_a_file():
    """The builder checks each new float source against the dtype it found (declaring stays
    linear in the number of sources): the first float source of a loaded graph is still
    checked against every source the graph came with."""
    g = gc.Graph("many")
    for k in range(50):
        g.param(f"p{k}", shape=(2,), dtype="float32")
    g.input("labels", shape=(2,), dtype="int64")
    with pytest.raises(gc.GraphError, match=r"node 'q' \(op input\) is float64, but node 'p0' \(op param\)"):
        g.input("q", shape=(2,))
    g.output("y", gc.sum(g["p0"]))
    loaded = gc.from_networkx(g.nx.copy())
    with pytest.raises(gc.GraphError, match=r"node 'r' \(op param\) is float64, but node 'p0' \(op param\)"):
        loaded.param("r", shape=(2,), dtype="float64")
    loaded.param("r", shape=(2,), dtype="float32")


def test_a_loaded_graph_mixing_float_dtypes_is_refused_by_verify():
    g = gc.Graph("mixed_file")
    x = g.input("x", shape=(3,), dtype="float32")
    b = g.param("b", shape=(3,), dtype="float32")
    g.output("y", gc.sum(x + b))
    raw = g.nx.copy()
    raw.nodes["b"]["dtype"] = "float64"  # as a hand-edited file could say
    with pytest.raises(gc.GraphError, match=r"node 'b' \(op param\) is float64, but node 'x' \(op input\)"):
        gc.compile(gc.from_networkx(raw))


def test_numbers_constants_and_labels_still_adapt_to_a_float32_graph():
    g = gc.Graph("adapts")
    x = g.input("x", shape=(2, 3), dtype="float32")
    w = g.param("W", shape=(3, 2), dtype="float32")
    c = g.const(np.array([[0.5, -1.0], [2.0, 0.25]]))  # stored float64: a constant adapts
    logits = (x @ w + 0.5) @ c
    labels = gc.argmax(gc.stop_gradient(logits), axis=1)
    g.output("loss", gc.sum(logits * 2.0) + gc.sum(gc.where(labels > 0, logits, 0.0)))
    feeds = {"x": np.ones((2, 3), np.float32), "W": np.full((3, 2), 0.5, np.float32)}
    value, grads = gc.compile(g).value_and_grad(feeds)
    assert value["loss"].dtype == np.float32 and grads["W"].dtype == np.float32
    # by hand: x @ W + 0.5 is 2 everywhere, so each row of logits is 2 @ c = [5, -1.5]; argmax 0
    np.testing.assert_allclose(value["loss"], 2 * 2 * (5 - 1.5), rtol=1e-6)


def test_a_clamped_log_of_a_clamped_log_compiles_and_agrees_with_numpy():
    # the 10,000-network run: the guarded inner clamp, named by cse, made the outer Max refuse
    # to compare (sympy could not show the selection real): compile raised ValueError
    g = gc.Graph("nested_bce")
    p = g.param("p", shape=(1,), dtype="float32")
    y1, y2 = g.input("y1", shape=(1,), dtype="float32"), g.input("y2", shape=(1,), dtype="float32")
    g.output("loss", gc.sum(gc.apply("bce_terms", gc.apply("bce_terms", p, y1), y2)))
    feeds = {"p": np.array([0.649], np.float32), "y1": np.array([0.819], np.float32),
             "y2": np.array([0.313], np.float32)}

    def loss(p):
        def terms(q, y):
            return -(y * max(-100.0, np.log(q)) + (1 - y) * max(-100.0, np.log1p(-q)))
        return terms(terms(p[0], 0.819), 0.313)

    value, grads = gc.compile(g).value_and_grad(feeds)
    p64 = feeds["p"].astype(np.float64)
    np.testing.assert_allclose(value["loss"], loss(p64), rtol=1e-5)
    np.testing.assert_allclose(grads["p"], numeric_grad(loss, p64), rtol=1e-4)


# -- (6) a where of numbers in a float32 graph: float32, never float64 -----------------------
# where(argmax(...) > 0, 1.0, -1.0) was float64 (numpy's dtype of Python floats), and numpy
# widened every float32 value it met: losses and gradients came out float64 on every path.

def signed_tanh():
    g = gc.Graph("signed_tanh")
    x = g.input("x", shape=(3, 4), dtype="float32")
    w = g.param("w", shape=(4,), dtype="float32")
    z = x @ w
    sign = gc.where(gc.argmax(gc.stop_gradient(x * w), axis=1) > 0, 1.0, -1.0)
    g.output("loss", gc.sum(sign * gc.tanh(z)) + gc.sum(gc.apply("zeros_like", sign) * z))
    return g


SIGN_FEEDS = {"x": np.array([[0.5, 3.0, 1.0, 2.0], [5.0, 1.0, 0.0, 2.0], [0.0, 1.0, 2.0, -7.0]], np.float32),
              "w": np.array([0.3, -0.2, 0.1, 0.05], np.float32)}


def signed_tanh_by_hand(x, w):
    x, w = x.astype(np.float64), w.astype(np.float64)
    sign = np.where((x * w).argmax(axis=1) > 0, 1.0, -1.0)
    t = np.tanh(x @ w)
    return np.sum(sign * t), x.T @ (sign * (1 - t**2))


def test_a_where_of_numbers_takes_the_float32_of_its_graph_on_every_path_and_stage(tmp_path):
    g = signed_tanh()
    assert {g.nx.nodes[n]["dtype"] for n in g.nx if g.nx.nodes[n]["op"] in ("where", "const", "zeros_like")} \
        == {"float32"}
    want, want_grad = signed_tanh_by_hand(SIGN_FEEDS["x"], SIGN_FEEDS["w"])
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        prog = gc.compile(g)
        saved = _load(prog.save(tmp_path / "signed_tanh.py"))
        results = {"forward": (prog.forward(SIGN_FEEDS)["loss"], None),
                   "value_and_grad": _pair_w(prog.value_and_grad(SIGN_FEEDS)),
                   "value_and_grad seeded": _pair_w(prog.value_and_grad(SIGN_FEEDS, seed=1.0)),
                   "saved forward": (saved.forward(SIGN_FEEDS)["loss"], None),
                   "saved value_and_grad": _pair_w(saved.value_and_grad(SIGN_FEEDS))}
        joint = gc.grad(g, "loss", wrt=["w"])
        found = gc.compile(joint).forward(SIGN_FEEDS)
        results["gc.grad"] = (found["loss"], found["dloss/dw"])
        w = SIGN_FEEDS["w"].copy()
        results["sgd_step"] = (prog.sgd_step({"x": SIGN_FEEDS["x"], "w": w}, lr=0.5)["loss"], None)
    for path, (loss, grad) in results.items():
        for value in (loss, grad) if grad is not None else (loss,):
            assert np.asarray(value).dtype == np.float32, path
        np.testing.assert_allclose(loss, want, rtol=1e-5, err_msg=path)
        if grad is not None:
            np.testing.assert_allclose(grad, want_grad, rtol=1e-5, err_msg=path)
    assert w.dtype == np.float32
    np.testing.assert_allclose(w, SIGN_FEEDS["w"] - 0.5 * want_grad, rtol=1e-5)
    for name, stage in [*prog.stages.items(), ("gc.grad", joint.nx)]:
        if hasattr(stage, "nodes"):
            floats = {d for _, d in stage.nodes(data="dtype") if np.dtype(d).kind == "f"}
            assert floats == {"float32"}, name


def _pair_w(result):
    outputs, grads = result
    return outputs["loss"], grads["w"]


def test_verify_refuses_an_op_reading_float32_and_float64_values():
    g = signed_tanh()
    raw = g.nx.copy()
    (where,) = [n for n in raw if raw.nodes[n]["op"] == "where"]
    for node in [where, *raw.predecessors(where)]:
        if raw.nodes[node]["op"] in ("where", "const"):
            raw.nodes[node]["dtype"] = "float64"  # as the builder made it before numbers adapted here
    with pytest.raises(gc.GraphError, match=r"float operands have two dtypes .*widen the float32 values to float64"):
        gc.verify(raw)
