"""The paths a training loop takes thousands of times: the feed check's fast path and
``sgd_step``'s update, held to the full check and to numpy written by hand."""

import ast

import numpy as np
import pytest
from small_graphs import input_read_late

import graphc as gc

LR = 0.05


def tiny_net():
    g = gc.Graph("tiny")
    x = g.input("x", shape=("N", 2))
    y = g.input("y", shape=("N", 1))
    W = g.param("W", shape=(2, 1))
    b = g.param("b", shape=(1,))
    g.output("loss", gc.mse(gc.sigmoid(x @ W + b), y))
    return g


def by_hand(x, y, W, b):
    """loss and gradients of mean((sigmoid(x W + b) - y)**2), written out."""
    s = 1 / (1 + np.exp(-(x @ W + b)))
    d = 2 * (s - y) / s.size * s * (1 - s)
    return np.mean((s - y) ** 2), {"W": x.T @ d, "b": d.sum(axis=0)}


def feeds_of(n, rng):
    return {"x": rng.standard_normal((n, 2)), "y": rng.standard_normal((n, 1)),
            "W": rng.standard_normal((2, 1)), "b": rng.standard_normal(1)}


def test_a_new_batch_size_after_warm_up_is_checked_and_computed():
    prog = gc.compile(tiny_net())
    rng = np.random.default_rng(0)
    for n in (4, 4, 7, 4, 1, 7):  # warmed on 4, then new shapes and old ones again
        feeds = feeds_of(n, rng)
        value, grads = prog.value_and_grad(feeds)
        loss, expected = by_hand(**feeds)
        np.testing.assert_allclose(value["loss"], loss, rtol=1e-13)
        for name in expected:
            np.testing.assert_allclose(grads[name], expected[name], rtol=1e-12, atol=1e-15)


BAD = [
    ("x of another batch size than y", lambda f: f.update(x=np.ones((5, 2))), "every use of a symbolic dim"),
    ("W of the wrong shape", lambda f: f.update(W=np.ones((3, 1))), "expected (2, 1)"),
    ("b of the wrong rank", lambda f: f.update(b=np.ones((1, 1))), "has rank 2"),
    ("y missing, z instead", lambda f: f.update(z=f.pop("y")), "missing feed 'y'"),
    ("an extra feed", lambda f: f.update(z=np.ones(1)), "unexpected feed 'z'"),
    ("an empty batch", lambda f: f.update(x=np.ones((0, 2)), y=np.ones((0, 1))), "positive size"),
    ("strings", lambda f: f.update(W=np.array([["a"], ["b"]])), "expected real numbers"),
]


@pytest.mark.parametrize("what, change, message", BAD, ids=[b[0] for b in BAD])
@pytest.mark.parametrize("call", ["value_and_grad", "sgd_step", "forward"])
def test_bad_feeds_after_warm_up_still_get_typed_errors(what, change, message, call):
    prog = gc.compile(tiny_net())
    rng = np.random.default_rng(1)
    good = feeds_of(4, rng)
    for _ in range(3):  # the fast path is warm for this signature
        getattr(prog, call)(good)
    bad = {k: v.copy() for k, v in good.items()}
    change(bad)
    before = {k: v.copy() for k, v in bad.items()}
    with pytest.raises(gc.FeedError, match=message.replace("(", r"\(").replace(")", r"\)")):
        getattr(prog, call)(bad)
    for name, value in before.items():  # nothing ran: no param moved
        np.testing.assert_array_equal(bad[name], value)


def test_a_converted_feed_after_warm_up_still_works():
    """Lists and float32 take the full check (and its conversion) after the fast path warmed up."""
    prog = gc.compile(tiny_net())
    rng = np.random.default_rng(2)
    feeds = feeds_of(3, rng)
    prog.value_and_grad(feeds)
    loose = dict(feeds, x=feeds["x"].astype(np.float32).tolist())
    value, _ = prog.value_and_grad(loose)
    loss, _ = by_hand(**dict(feeds, x=np.asarray(loose["x"])))
    np.testing.assert_allclose(value["loss"], loss, rtol=1e-13)


def test_a_read_only_param_after_warm_up_is_refused_by_sgd_step():
    prog = gc.compile(tiny_net())
    feeds = feeds_of(4, np.random.default_rng(3))
    prog.sgd_step(feeds, LR)
    feeds["W"] = feeds["W"].copy()
    feeds["W"].flags.writeable = False
    with pytest.raises(gc.FeedError, match="writable"):
        prog.sgd_step(feeds, LR)


@pytest.mark.parametrize("lr", [LR, 0.0, -0.3, 2.5])
def test_sgd_step_moves_params_by_lr_times_the_hand_written_gradient(lr):
    prog = gc.compile(tiny_net())
    feeds = feeds_of(6, np.random.default_rng(4))
    _, expected = by_hand(**feeds)
    new = {name: feeds[name] - lr * expected[name] for name in expected}
    prog.sgd_step(feeds, lr)
    for name, value in new.items():
        np.testing.assert_allclose(feeds[name], value, rtol=1e-13, atol=1e-16)


@pytest.mark.parametrize("step_name, updater", [("sgd_step_atomic", "sgd_step_atomic"), ("sgd_step", "backward_pass")])
def test_sgd_step_updates_each_param_with_one_subtraction(step_name, updater):
    """The backward pass is seeded with lr, so no param needs its own multiplication by lr
    (the atomic step subtracts after backward_pass, the eager one asks backward_pass to update)."""
    source = gc.compile(tiny_net()).source
    functions = {f.name: f for f in ast.parse(source).body if isinstance(f, ast.FunctionDef)}
    step = functions[step_name]
    seeded = next(n for n in ast.walk(step) if isinstance(n, ast.Call) and ast.unparse(n.func) == "backward_pass")
    assert ast.unparse(seeded.args[1]) == "numpy.float64(lr)"
    assert [k.arg for k in seeded.keywords] == ([] if updater == step_name else ["update"])
    where = functions[updater]
    calls = [n for n in ast.walk(where) if isinstance(n, ast.Call)]
    updates = [ast.unparse(n) for n in calls if ast.unparse(n.func) == "numpy.subtract" and n.args
               and ast.unparse(n.args[0]) in ("W", "b")]
    # or one subtraction in a loop over the params: ``for param, grad in zip((W, b), (d_W, d_b))``
    updates += [f"{ast.unparse(n)} for {p}" for loop in ast.walk(where) if isinstance(loop, ast.For)
                for p in _looped_params(loop, where) for n in ast.walk(loop) if isinstance(n, ast.Call)
                and ast.unparse(n.func) == "numpy.subtract" and n.args
                and ast.unparse(n.args[0]) == ast.unparse(loop.target.elts[0])]
    # the eager step writes p -= g (numpy's subtract(p, g, out=p), the in-place operator)
    updates += [ast.unparse(n) for n in ast.walk(where) if isinstance(n, ast.AugAssign)
                and isinstance(n.op, ast.Sub) and ast.unparse(n.target) in ("W", "b")]
    assert len(updates) == 2, updates
    scaled = [ast.unparse(n) for n in calls if ast.unparse(n.func) == "numpy.multiply"
              and (any(k.arg == "out" and ast.unparse(k.value) in ("W", "b", "d_W", "d_b") for k in n.keywords)
                   or any(ast.unparse(a) == "lr" for a in n.args))]
    scaled += [ast.unparse(n) for n in ast.walk(where) if isinstance(n, ast.AugAssign)
               and isinstance(n.op, ast.Mult) and ast.unparse(n.target) in ("W", "b", "d_W", "d_b")]
    assert not scaled, scaled  # no gradient or param multiplied by lr on its own


def _looped_params(loop: ast.For, function: ast.FunctionDef) -> list[str]:
    """W and b when ``loop`` is ``for param, ... in zip((W, b), ...)``, or over a tuple of them
    bound in ``function`` (``params = (W, b)``; ``zip(params, grads)``)."""
    zipped = loop.iter
    if not (isinstance(zipped, ast.Call) and ast.unparse(zipped.func) == "zip"):
        return []
    looped = zipped.args[0]
    if isinstance(looped, ast.Name):
        looped = next((st.value for st in function.body if isinstance(st, ast.Assign)
                       and ast.unparse(st.targets[0]) == looped.id), looped)
    if not isinstance(looped, ast.Tuple):
        return []
    return [ast.unparse(e) for e in looped.elts if ast.unparse(e) in ("W", "b")]


def test_a_scalar_param_is_updated_by_sgd_step_too():
    g = gc.Graph("scalar")
    x = g.input("x", shape=(3,))
    w = g.param("w", shape=())
    g.output("loss", gc.sum(gc.square(x * w)))
    feeds = {"x": np.array([1.0, -2.0, 0.5]), "w": np.array(0.7)}
    expected = 0.7 - LR * 2 * 0.7 * np.sum(feeds["x"] ** 2)
    gc.compile(g).sgd_step(feeds, LR)
    np.testing.assert_allclose(feeds["w"], expected, rtol=1e-14)


def test_the_fast_path_allocates_no_more_than_the_list_it_returns():
    """Checking the feeds of a call with the last call's shapes builds the argument list
    only (a signature tuple per call costs memory that shows in a small step's peak)."""
    import tracemalloc

    from graphc.feeds import FeedChecker

    g = gc.Graph("wide")
    x = g.input("x", shape=("N", 3))
    total = None
    for k in range(60):
        term = gc.sum(x * g.param(f"p{k}", shape=(3,)))
        total = term if total is None else total + term
    g.output("loss", total)
    check = FeedChecker(gc.compile(g).graph)
    feeds = {"x": np.ones((2, 3)), **{f"p{k}": np.ones(3) for k in range(60)}}
    check(feeds)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base, _ = tracemalloc.get_traced_memory()
        values = check(feeds)
        _, top = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert values[0] is feeds["x"] and len(values) == 61
    list_bytes = 56 + 8 * 64  # a list of 61 references, with its spare slots
    assert top - base <= list_bytes + 256, top - base


def test_zero_d_results_are_zero_d_arrays_and_the_others_the_modules_own():
    """A scalar output and a scalar param's gradient come back as 0-d arrays (numpy computes
    them as numpy scalars), on every path: forward, value_and_grad with and without a seed."""
    g = gc.Graph("scalars")
    x = g.input("x", shape=(3,))
    w, v = g.param("w", shape=()), g.param("v", shape=(3,))
    g.output("loss", gc.sum(gc.square(x * w + v)))
    g.output("h", x * w)
    prog = gc.compile(g, of="loss")
    feeds = {"x": np.array([1.0, -2.0, 0.5]), "w": np.array(0.7), "v": np.array([0.1, 0.2, 0.3])}
    h = feeds["x"] * 0.7
    for _ in range(2):  # the first call takes the full check, the second the fast path
        for outputs, grads in (prog.value_and_grad(feeds), prog.value_and_grad(feeds, seed=1.0),
                               (prog.forward(feeds), None)):
            assert type(outputs["loss"]) is np.ndarray and outputs["loss"].shape == ()
            np.testing.assert_allclose(outputs["loss"], np.sum((h + feeds["v"]) ** 2), rtol=1e-14)
            np.testing.assert_allclose(outputs["h"], h, rtol=1e-15)
            if grads is not None:
                assert type(grads["w"]) is np.ndarray and grads["w"].shape == ()
                np.testing.assert_allclose(grads["w"], np.sum(2 * (h + feeds["v"]) * feeds["x"]), rtol=1e-14)
                np.testing.assert_allclose(grads["v"], 2 * (h + feeds["v"]), rtol=1e-14)


def test_a_feed_resized_in_place_after_warm_up_takes_the_full_check():
    """The fast path compares shapes on every call: the same array object with a new shape
    (a view whose shape was assigned) is checked again, not trusted for being the same object."""
    prog = gc.compile(tiny_net())
    feeds = feeds_of(4, np.random.default_rng(5))
    for _ in range(2):
        prog.value_and_grad(feeds)
    feeds["W"].shape = (1, 2)
    with pytest.raises(gc.FeedError, match=r"feed 'W' has shape \(1, 2\), expected \(2, 1\)"):
        prog.value_and_grad(feeds)


def test_a_feed_whose_dtype_changed_in_place_after_warm_up_takes_the_full_check():
    """The same array object reinterpreted (``a.dtype = int64``) is not the array that passed:
    the full check sees int64 and converts it, as for any int array."""
    prog = gc.compile(tiny_net())
    feeds = feeds_of(4, np.random.default_rng(6))
    ints = np.arange(8, dtype=np.int64).reshape(4, 2)
    feeds["x"] = ints.copy().view(np.float64)  # tiny floats (the ints' bits)
    for _ in range(2):
        prog.value_and_grad(feeds)
    feeds["x"].dtype = np.int64  # the same object, its bytes read as the ints again
    value, _ = prog.value_and_grad(feeds)
    want, _ = by_hand(**{**feeds, "x": ints.astype(np.float64)})
    np.testing.assert_allclose(value["loss"], want, rtol=1e-12)
    feeds["x"] = ints.astype(np.float64)
    prog.sgd_step(feeds, LR)  # warm
    feeds["W"].dtype = np.int64
    with pytest.raises(gc.FeedError, match="param 'W' must be a writable float64 numpy array"):
        prog.sgd_step(feeds, LR)


def test_many_feeds_are_checked_on_every_call_too():
    """Past the unrolled comparison (feeds.UNROLLED feeds) the fast path compares in a loop:
    a param resized in place after warm-up still gets the typed error."""
    from graphc.feeds import UNROLLED

    g = gc.Graph("many")
    x = g.input("x", shape=("N", 2))
    total = None
    for k in range(UNROLLED + 6):
        term = gc.sum(x * g.param(f"p{k}", shape=(2,)))
        total = term if total is None else total + term
    g.output("loss", total)
    prog = gc.compile(g)
    feeds = {"x": np.ones((3, 2)), **{f"p{k}": np.full(2, 0.5) for k in range(UNROLLED + 6)}}
    for _ in range(2):
        value, _ = prog.value_and_grad(feeds)
    np.testing.assert_allclose(value["loss"], (UNROLLED + 6) * 3.0, rtol=1e-13)
    feeds["p7"].shape = (2, 1)
    with pytest.raises(gc.FeedError, match=r"feed 'p7' has rank 2"):
        prog.value_and_grad(feeds)


# sgd_step called again with the arrays of the last step: the checks of that step are not
# worked out anew, and each of them still holds for what could have changed in between

def test_steps_on_the_same_params_over_batches_of_views_match_steps_by_hand():
    prog = gc.compile(tiny_net())
    rng = np.random.default_rng(7)
    X, Y = rng.standard_normal((20, 2)), rng.standard_normal((20, 1))
    W, b = rng.standard_normal((2, 1)), rng.standard_normal(1)
    want_W, want_b = W.copy(), b.copy()
    feeds = {"W": W, "b": b}
    for start in (0, 4, 8, 4, 12, 16, 0):  # each batch a view of X and Y (it has a base)
        feeds.update(x=X[start:start + 4], y=Y[start:start + 4])
        _, grads = by_hand(X[start:start + 4], Y[start:start + 4], want_W, want_b)
        want_W -= LR * grads["W"]
        want_b -= LR * grads["b"]
        prog.sgd_step(feeds, LR)
        assert feeds["W"] is W and feeds["b"] is b
        np.testing.assert_allclose(W, want_W, rtol=1e-13, atol=1e-16)
        np.testing.assert_allclose(b, want_b, rtol=1e-13, atol=1e-16)


def test_a_param_made_read_only_in_place_after_warm_up_is_refused_by_sgd_step():
    """The same array object as the steps before, its writeable flag cleared in place."""
    prog = gc.compile(tiny_net())
    feeds = feeds_of(4, np.random.default_rng(8))
    for _ in range(3):
        prog.sgd_step(feeds, LR)
    feeds["b"].flags.writeable = False
    before = {k: v.copy() for k, v in feeds.items()}
    with pytest.raises(gc.FeedError, match="param 'b' must be a writable"):
        prog.sgd_step(feeds, LR)
    for name, value in before.items():
        np.testing.assert_array_equal(feeds[name], value)


def _one_step_by_value_and_grad(prog, feeds, lr):
    """The params after one SGD step, from value_and_grad on copies (nothing shared)."""
    _, grads = prog.value_and_grad({k: v.copy() for k, v in feeds.items()})
    return {name: feeds[name] - lr * grads[name] for name in grads}


@pytest.mark.parametrize("input_of", [
    lambda params, flat: params["a"],            # the param itself
    lambda params, flat: params["a"][::-1],      # a view of it
    lambda params, flat: flat[9:].reshape(3, 3),  # another view of the buffer the params view
], ids=["the param", "a view of the param", "a view of the params' buffer"])
def test_an_input_in_a_params_memory_after_warm_up_gets_the_all_or_nothing_step(input_of):
    """Warmed on an input of its own; then the input lies in param a's memory, which the
    eager step updates before it reads x: the step must still read x's old values."""
    prog = gc.compile(input_read_late())
    flat = np.linspace(-1.0, 1.0, 18)
    feeds = {"x": np.ones((3, 3)), "W": flat[:9].reshape(3, 3), "a": flat[9:].reshape(3, 3)}
    for _ in range(3):
        prog.sgd_step(feeds, 0.1)
    feeds["x"] = input_of(feeds, flat)
    want = _one_step_by_value_and_grad(prog, feeds, 0.1)
    prog.sgd_step(feeds, 0.1)
    for name, value in want.items():
        np.testing.assert_allclose(feeds[name], value, rtol=1e-14, atol=1e-15)


def test_a_param_replaced_by_a_view_of_another_after_warm_up_is_refused():
    prog = gc.compile(input_read_late())
    feeds = {"x": np.ones((3, 3)), "W": np.eye(3) + 0.1, "a": np.full((3, 3), 0.5)}
    for _ in range(3):
        prog.sgd_step(feeds, 0.1)
    feeds["a"] = feeds["W"].T  # overlaps W
    before = feeds["W"].copy()
    with pytest.raises(gc.FeedError, match="'W' and 'a' share memory"):
        prog.sgd_step(feeds, 0.1)
    np.testing.assert_array_equal(feeds["W"], before)


def test_a_freed_param_is_not_taken_for_the_new_array_in_its_place():
    """The step remembers its params without keeping them alive: once one is freed, an array
    made in its place (numpy may reuse the memory, Python the id) gets every check again."""
    import gc as collector
    import weakref

    prog = gc.compile(input_read_late())
    feeds = {"x": np.ones((3, 3)), "W": np.eye(3) + 0.1, "a": np.full((3, 3), 0.5)}
    for _ in range(2):
        prog.sgd_step(feeds, 0.1)
    freed = weakref.ref(feeds["a"])
    del feeds["a"]
    collector.collect()
    assert freed() is None  # the program holds no reference to it
    shared = np.full((3, 3), 0.5)
    feeds.update(a=shared, x=shared)  # the input is the new param: the all-or-nothing step
    want = _one_step_by_value_and_grad(prog, feeds, 0.1)
    prog.sgd_step(feeds, 0.1)
    np.testing.assert_allclose(feeds["W"], want["W"], rtol=1e-14, atol=1e-15)
