"""Cache-blocked elementwise regions (graphc/lower/blocking.py), forced onto small graphs.

``gc.compile(g, blocking=k)`` runs every region it can ``k`` rows at a time; each path
(forward, value_and_grad with and without seed, sgd_step, the saved module, parallel=2)
must agree with the reference interpreter and with central differences for batches of
one row, fewer rows than a block, a multiple of the block and not a multiple, in both
float dtypes and with params that broadcast in every way ((), (1,), (k,), (1, k)).
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys

import numpy as np
import pytest
from numeric_reference import feed_grad

import graphc as gc
from graphc.lower import blocking

K = 5  # the width of a row
ROWS = 3  # rows per block, forced
BATCHES = (1, 2, 3, 7)  # one row, fewer than a block, a multiple of it, not a multiple
SHAPES = ((), (1,), (K,), (1, K))  # a's shape: every way a param broadcasts over rows
TOLERANCE = {"float64": 1e-10, "float32": 2e-5}


def chain(a_shape, dtype="float64"):
    """z = x*a + c, a chain of elementwise functions, a mean, a sum over rows (an array
    output that leaves the region) and a value read after the region (p, by the matmul)."""
    g = gc.Graph("chain")
    x = g.input("x", shape=("N", K), dtype=dtype)
    a = g.param("a", shape=a_shape, dtype=dtype)
    c = g.param("c", shape=(K,), dtype=dtype)
    w = g.param("w", shape=(K, 2), dtype=dtype)
    z = x * a + c
    p = gc.tanh(gc.sin(z) * z + 1.0)
    q = gc.exp(-gc.square(p)) + gc.log1p(gc.square(z))
    g.output("loss", gc.mean(q) + gc.sum(p @ w) * 0.1)
    g.output("rows", gc.sum(q, axis=0))
    return g


def feeds_for(g, n, dtype, seed=0):
    rng = np.random.default_rng(seed)
    shapes = {"x": (n, K), "c": (K,), "w": (K, 2)}
    shapes["a"] = tuple(g.nx.nodes["a"]["shape"])
    return {name: rng.standard_normal(shape).astype(dtype) for name, shape in shapes.items()}


def close(found, expected, dtype):
    tol = TOLERANCE[dtype]
    np.testing.assert_allclose(np.asarray(found, dtype=np.float64), np.asarray(expected, dtype=np.float64),
                               rtol=tol, atol=tol)


def central_differences(g, feeds, name, h=1e-6):
    """d loss / d feeds[name] by central differences on the interpreter, in float64."""
    return feed_grad(lambda point: float(gc.evaluate(g, point, "loss", dtype="float64")["loss"]), feeds, name, h)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("a_shape", SHAPES)
def test_forced_blocks_agree_with_the_interpreter_and_central_differences(a_shape, dtype):
    g = chain(a_shape, dtype)
    prog = gc.compile(g, blocking=ROWS)
    assert f"range(0, N, {ROWS})" in prog.source  # the regions are blocked
    for n in BATCHES:
        feeds = feeds_for(g, n, dtype, seed=n)
        expected = gc.evaluate(g, feeds, ["loss", "rows"])
        outputs = prog.forward(feeds)
        for name in ("loss", "rows"):
            assert outputs[name].dtype == np.dtype(dtype)
            close(outputs[name], expected[name], dtype)
        values, grads = prog.value_and_grad(feeds)
        seeded_values, seeded = prog.value_and_grad(feeds, seed=np.asarray(2.5, dtype=dtype))
        for name in ("loss", "rows"):
            close(values[name], expected[name], dtype)
            close(seeded_values[name], expected[name], dtype)
        for name in ("a", "c", "w"):
            numeric = central_differences(g, feeds, name)
            assert grads[name].shape == numeric.shape and grads[name].dtype == np.dtype(dtype)
            close(grads[name], numeric, dtype if dtype == "float32" else "float32")  # h = 1e-6: ~1e-9 exact
            close(seeded[name], 2.5 * numeric, dtype if dtype == "float32" else "float32")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_sgd_step_and_saved_module_of_a_blocked_program(dtype, tmp_path):
    g = chain((1, K), dtype)
    prog = gc.compile(g, blocking=ROWS)
    path = prog.save(tmp_path / "blocked.py")
    spec = importlib.util.spec_from_file_location("blocked", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for n in BATCHES:
        feeds = feeds_for(g, n, dtype, seed=10 + n)
        outputs, grads = gc.compile(g, blocking="off").value_and_grad(feeds)
        saved_outputs, saved_grads = module.value_and_grad(feeds)
        for name in outputs:
            close(saved_outputs[name], outputs[name], dtype)
        for name in grads:
            close(saved_grads[name], grads[name], dtype)
        params = {k: v.copy() for k, v in feeds.items()}
        stepped = prog.sgd_step(params, lr=0.1)
        close(stepped["loss"], outputs["loss"], dtype)
        for name in ("a", "c", "w"):
            close(params[name], feeds[name] - np.asarray(0.1, dtype) * grads[name], dtype)


def test_the_eager_step_runs_its_backward_pass_in_blocks_like_the_atomic_one():
    """sgd_step's backward pass (the default strategy: backward_pass asked to update) is
    blocked as sgd_step_atomic's (the same function, returning the gradients), so the two
    strategies do the same arithmetic: bit-identical params."""
    g = chain((K,))
    prog = gc.compile(g, blocking=ROWS)
    backward = prog.source.split("def backward_pass")[1].split("\ndef ")[0]
    assert "for start in range(0, N, " in backward and "if update is not None:" in backward
    assert "update=" in prog.source.split("def sgd_step(")[1].split("\ndef ")[0]
    m = prog.module
    for n in BATCHES:
        feeds = feeds_for(g, n, "float64", seed=30 + n)
        eager = {k: v.copy() for k, v in feeds.items()}
        atomic = {k: v.copy() for k, v in feeds.items()}
        m.sgd_step(*(eager[k] for k in m.INPUTS + m.PARAMS), 0.1)
        m.sgd_step_atomic(*(atomic[k] for k in m.INPUTS + m.PARAMS), 0.1)
        for name in ("a", "c", "w"):
            np.testing.assert_array_equal(eager[name], atomic[name], err_msg=f"{name}, N={n}")


def test_a_saved_blocked_module_runs_with_numpy_alone(tmp_path):
    g = chain((K,))
    path = gc.compile(g, blocking=2).save(tmp_path / "alone.py")
    feeds = feeds_for(g, 7, "float64")
    expected = float(gc.evaluate(g, feeds, "loss")["loss"])
    code = (f"import sys; sys.modules['graphc'] = None; sys.modules['sympy'] = None\n"
            f"import importlib.util, numpy as np\n"
            f"spec = importlib.util.spec_from_file_location('alone', {str(path)!r})\n"
            f"m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
            f"feeds = {{k: np.array(v) for k, v in {({k: v.tolist() for k, v in feeds.items()})!r}.items()}}\n"
            f"print(repr(float(m.forward(feeds)['loss'])))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert float(out.stdout) == pytest.approx(expected, rel=1e-12)


def test_blocked_code_is_byte_identical_across_compiles_and_hash_seeds():
    code = ("import graphc as gc, sys; sys.path.insert(0, 'tests'); from test_blocking import chain; "
            "print(gc.compile(chain((5,)), blocking=3, cache=False).source)")
    sources = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                              env={"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin"}).stdout
               for seed in ("1", "2")}
    assert len(sources) == 1 and "for start in range(0, N, 3):" in sources.pop()


def test_parallel_programs_block_outside_their_groups_and_agree():
    g = chain((K,))
    feeds = feeds_for(g, 7, "float64")
    expected, grads = gc.compile(g, blocking="off").value_and_grad(feeds)
    prog = gc.compile(g, parallel=2, blocking=ROWS)
    outputs, found = prog.value_and_grad(feeds)
    for name in expected:
        close(outputs[name], expected[name], "float64")
    for name in grads:
        close(found[name], grads[name], "float64")


def test_the_cost_model_leaves_small_work_unblocked_and_blocks_a_long_wide_chain():
    small = chain((K,))  # rows of 5 floats
    assert gc.compile(small).source == gc.compile(small, blocking="off").source
    g = gc.Graph("wide")
    x = g.input("x", shape=("N", 4096))
    a = g.param("a", shape=(4096,))
    g.output("loss", gc.mean(gc.sin(gc.tanh(gc.exp(gc.tanh(x * a))))))
    source = gc.compile(g).source
    rows = blocking.CACHE_BUDGET // (4096 * 8 * 3)  # x's block, the chain's buffer, a temporary
    assert f"for start in range(0, N, {rows}):" in source
    feeds = {"x": np.random.default_rng(1).standard_normal((rows + 3, 4096)), "a": np.linspace(-1, 1, 4096)}
    close(gc.compile(g).forward(feeds)["loss"], gc.evaluate(g, feeds, "loss")["loss"], "float64")


@pytest.mark.parametrize("width", [256, 1024])
def test_the_cost_model_leaves_an_mlp_and_a_residual_stack_as_they_were(width):
    g = gc.Graph("mlp")
    x, y = g.input("x", shape=("N", 784)), g.input("y", shape=("N", 10))
    h = x
    for i, (m, n) in enumerate([(784, width), (width, width), (width, 10)]):
        h = h @ g.param(f"W{i}", shape=(m, n)) + g.param(f"b{i}", shape=(n,))
        h = gc.relu(h) if n != 10 else h
    for i in range(3):  # residual layers
        h = h + gc.tanh(h @ g.param(f"R{i}", shape=(10, 10)))
    g.output("loss", gc.softmax_cross_entropy(h, y))
    assert gc.compile(g).source == gc.compile(g, blocking="off").source


def test_the_compile_cache_keeps_blocked_and_unblocked_programs_apart():
    g = chain((K,))
    assert "for start" not in gc.compile(g).source
    assert "for start" in gc.compile(g, blocking=2).source
    assert "for start" not in gc.compile(g, blocking="off").source


def test_array_api_backends_print_no_blocks():
    pytest.importorskip("array_api_strict")
    g = chain((K,))
    prog = gc.compile(g, blocking=2, backend="array_api_strict")
    assert "for start" not in prog.source


@pytest.mark.parametrize("bad", [0, -1, "on", 2.5, True, None])
def test_a_bad_blocking_option_is_a_typed_error(bad):
    with pytest.raises(gc.GraphcError, match="blocking must be 'auto', 'off' or a number of rows"):
        gc.compile(chain((K,)), blocking=bad)


def test_a_block_never_takes_the_name_of_a_slice_it_still_reads():
    # backward: d_p2 = (1/2)*d_loss*sub*(erf + ...): unblocked, the kernel writes into the dying
    # saved ``sub``; in a block it must not, and its own block once took the slice's name
    # ``sub_rows`` before the kernel's last read of it (the gradient came out wrong)
    g = gc.Graph("net")
    p = g.param("p", shape=(2, 1))
    t = g.input("t", shape=(2, 1))
    g.output("loss", gc.mse(gc.gelu(p), t))
    feeds = {"p": np.array([[0.25592586184123167], [0.5507917463615961]]),
             "t": np.array([[0.1308749743962685], [1.3052172713633046]])}
    prog = gc.compile(g, blocking=2)
    assert "for start in range(0, 2, 2):" in prog.backward_source
    close(prog.value_and_grad(feeds)[1]["p"], central_differences(g, feeds, "p"), "float32")


def test_a_block_of_its_own_is_never_named_as_the_slice_beside_it():
    # backward: d_p3_1 = x1*(d_p3_1 + ...) writes, unblocked, into the dying d_p3_1 of an
    # earlier loop; its own block was named d_p3_1_rows, the slice's name, and read 0 for it
    g = gc.Graph("net")
    x1, x5 = g.input("x1", shape=("N", 2)), g.input("x5", shape=("N", 2))
    p3, p9 = g.param("p3", shape=(1, 2)), g.param("p9", shape=())
    v4 = x1 * p3
    v8 = gc.exp(gc.bce_with_logits(v4, x5) + v4)
    v11 = gc.apply("squared_error", gc.apply("squared_error", v8, p9), p9)
    g.output("loss", gc.mean(gc.sin(v11)))
    rng = np.random.default_rng(3)
    for n in (1, 2, 3):
        feeds = {"x1": 0.3 * rng.standard_normal((n, 2)), "x5": rng.uniform(0, 1, (n, 2)),
                 "p3": np.array([[0.63, 1.16]]), "p9": np.array(0.21)}
        grads = gc.compile(g, blocking=2).value_and_grad(feeds)[1]
        for name in ("p3", "p9"):
            close(grads[name], central_differences(g, feeds, name), "float32")


def test_a_kernel_that_prints_its_whole_shape_stays_out_of_a_loop():
    # softmax of a row broadcast from one number simplifies to the number 1/4: the kernel
    # prints numpy.full((N, 1), 1/4), the whole array, which does not fit a block of rows
    g = gc.Graph("net")
    g.input("x", shape=("N", 4))
    p = g.param("p", shape=(1,))
    g.output("loss", gc.mean(gc.softmax(gc.broadcast_to(gc.sin(p), ("N", 4)), axis=1) * gc.exp(p)))
    feeds = {"x": np.ones((3, 4)), "p": np.array([0.4])}
    close(gc.compile(g, blocking=2).forward(feeds)["loss"], gc.evaluate(g, feeds, "loss")["loss"], "float64")
    numeric = central_differences(g, feeds, "p")
    close(gc.compile(g, blocking=2).value_and_grad(feeds)[1]["p"], numeric, "float32")


def test_a_block_value_read_later_through_a_transpose_leaves_the_loop():
    """A value of a loop read after it only as ``v.T`` (printed where it is read) is filled
    block by block like any value that leaves the loop (it was left undefined: an
    UnboundLocalError found by the differential corpus)."""
    g = gc.Graph("later_transpose")
    p = g.param("p", shape=(4, 1))
    s = gc.softplus(gc.tanh(p) * 2.0 + 1.0)
    g.output("loss", gc.mean(gc.transpose(s)))
    feeds = {"p": np.array([[-0.7], [0.8], [0.1], [2.0]])}
    prog = gc.compile(g, blocking=ROWS)
    assert "for start in range(0, 4, " in prog.source
    value, grads = prog.value_and_grad(feeds)
    want = gc.evaluate(g, feeds)
    close(value["loss"], want["loss"], "float64")
    close(grads["p"], gc.compile(g, blocking="off").value_and_grad(feeds)[1]["p"], "float64")
    np.testing.assert_allclose(grads["p"], central_differences(g, feeds, "p"), rtol=1e-7)


def _copies_into_fresh_arrays(source: str) -> list[str]:
    """Lines that copy a block into a full array its function allocated for the loop."""
    copies = []
    for function in source.split("\ndef "):
        for name in re.findall(r"^\s*(\w+) = numpy\.empty\(", function, flags=re.M):
            copies += re.findall(rf"^\s*{name}\[start:start \+ \d+\] = .*$", function, flags=re.M)
    return copies


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_value_leaving_the_loop_is_computed_into_its_full_array(dtype):
    """The kernels of a value that leaves a loop write into the slice of its full array
    (``out=``), with no block of its own copied there; every path still agrees with the
    unblocked program for ragged last blocks, and the saved arrays hold every row."""
    g = chain((K,), dtype)
    blocked, plain = gc.compile(g, blocking=ROWS), gc.compile(g, blocking="off")
    source = blocked.source
    assert "numpy.empty((N, 5)" in source and "tanh_rows = tanh[start:start + 3]" in source
    assert _copies_into_fresh_arrays(source) == []
    assert _copies_into_fresh_arrays(  # the check sees one
        "    v = numpy.empty((N, 5))\n    v[start:start + 3] = v_rows\n")
    for n in BATCHES:
        feeds = feeds_for(g, n, dtype, seed=20 + n)
        values, grads = blocked.value_and_grad(feeds)
        want_values, want_grads = plain.value_and_grad(feeds)
        for name in want_values:
            close(values[name], want_values[name], dtype)
        for name in want_grads:
            close(grads[name], want_grads[name], dtype)
        params, want_params = ({k: v.copy() for k, v in feeds.items()} for _ in range(2))
        blocked.sgd_step(params, lr=0.05)
        plain.sgd_step(want_params, lr=0.05)
        for name in ("a", "c", "w"):
            close(params[name], want_params[name], dtype)


def test_a_block_binding_becomes_a_write_into_the_slice():
    # a ufunc call writes with out=; anything else (a copy, an expression, a call that is
    # not one ufunc of the whole line) is assigned into the slice; other lines stay
    into = blocking._into
    assert into("v_rows = numpy.subtract(1, s_rows)", "v_rows", "numpy") == "numpy.subtract(1, s_rows, out=v_rows)"
    assert (into("v_rows = numpy.exp(numpy.sin(a))  # 'v' exp", "v_rows", "numpy")
            == "numpy.exp(numpy.sin(a), out=v_rows)  # 'v' exp")
    assert (into("v_rows = numpy.exp(a) + numpy.sin(b)", "v_rows", "numpy")
            == "v_rows[...] = numpy.exp(a) + numpy.sin(b)")
    assert into("v_rows = s_rows.copy()", "v_rows", "numpy") == "v_rows[...] = s_rows.copy()"
    assert into("v_rows = numpy.where(m, a, b)", "v_rows", "numpy") == "v_rows[...] = numpy.where(m, a, b)"
    assert into("numpy.exp(v_rows, out=v_rows)", "v_rows", "numpy") == "numpy.exp(v_rows, out=v_rows)"
    assert into("v_rows_2 = numpy.exp(a)", "v_rows", "numpy") == "v_rows_2 = numpy.exp(a)"


def _blocks_allocated_in_loops(source: str) -> list[str]:
    """Lines of a blocked loop that allocate a block buffer (``v_rows = numpy.f(...)``)."""
    found = []
    for loop in re.findall(r"^( +)for start in range\(.*\n((?:\1    .*\n)+)", source, flags=re.M):
        found += re.findall(r"^\s+\w+_rows = numpy\.\w+\(.*$", loop[1], flags=re.M)
    return found


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_blocked_loop_allocates_its_block_buffers_once(dtype):
    """Each block buffer is allocated once, before its loop, and every block (the ragged last
    one too) takes its rows of it; a buffer allocated per block cost a malloc and, when the
    heap was trimmed at the end of each block, page faults (a blocked forward pass slower
    than the unblocked one in a fresh process). The results agree with the unblocked program."""
    g = chain((K,), dtype)
    blocked, plain = gc.compile(g, blocking=ROWS), gc.compile(g, blocking="off")
    assert "_block = numpy.empty((3, 5)" in blocked.source
    assert _blocks_allocated_in_loops(blocked.source) == []
    assert _blocks_allocated_in_loops(  # the check sees one
        "    for start in range(0, N, 3):\n        v_rows = numpy.exp(x_rows)\n")
    for n in BATCHES:
        feeds = feeds_for(g, n, dtype, seed=30 + n)
        outputs, want_outputs = blocked.forward(feeds), plain.forward(feeds)
        values, grads = blocked.value_and_grad(feeds)
        want_values, want_grads = plain.value_and_grad(feeds)
        for name in want_outputs:
            close(outputs[name], want_outputs[name], dtype)
            close(values[name], want_values[name], dtype)
        for name in want_grads:
            close(grads[name], want_grads[name], dtype)


# -- views of a row value read whole ---------------------------------------------------------
# A kernel of a loop may read a row value x twice: by rows (x_rows) and through a view that
# broadcasts along the rows (x.T of an (N, 1) x, printed inline where it is read), which
# every block reads whole. The differential corpus found the view printed over the block
# (x_rows.T: a ValueError, or a wrong value where the shapes happened to broadcast).
COLUMN = np.array([[-0.15], [-0.78], [0.089], [-0.30]])


def _transposed_column_net(dtype="float64"):
    """The differential corpus's network: bce_logits_terms(p.T, p) of a (4, 1) param."""
    g = gc.Graph("net")
    g.input("x1", shape=("N", 4), dtype=dtype)
    p2 = g.param("p2", shape=(4, 1), dtype=dtype)
    v3 = gc.transpose(p2)
    g.output("loss", gc.mean(gc.apply("bce_logits_terms", v3, p2)))
    g.output("out", v3)
    return g


def _view_of_a_block_net():
    """v.T * v of a value v the loop computes block by block: its whole v.T is no block."""
    g = gc.Graph("net")
    p = g.param("p", shape=(4, 1))
    v = gc.tanh(p) * 2.0
    g.output("loss", gc.mean(gc.exp(gc.transpose(v) * v)))
    return g


def _broadcast_of_a_view_net():
    """broadcast_to(p.T, (4, 4)) * p: a broadcast view of a view of the sliced p."""
    g = gc.Graph("net")
    p = g.param("p", shape=(4, 1))
    b = gc.broadcast_to(gc.transpose(p), (4, 4))
    g.output("loss", gc.mean(gc.exp(b * p) + gc.sin(p)))
    return g


def _reshape_net():
    """reshape(p, (1, 4)) * p: a view statement of the sliced p, read whole."""
    g = gc.Graph("net")
    p = g.param("p", shape=(4, 1))
    g.output("loss", gc.mean(gc.exp(gc.reshape(p, (1, 4)) * p) + gc.sin(p)))
    return g


def _computed_column_net():
    """m.T * m of a matmul's (N, 1) value m (a computed array, not an argument), beside a value
    of m's shape leaving the loop."""
    g = gc.Graph("net")
    x = g.input("x", shape=(4, 3))
    w = g.param("w", shape=(3, 1))
    m = x @ w
    n = gc.exp(m * 0.5)
    g.output("loss", gc.mean(gc.exp(gc.transpose(m) * m)) + gc.mean(n @ gc.transpose(w)))
    return g


def _transposed_row_net():
    """bce_logits_terms(p.T, p) of a (1, 4) param: p.T (4, 1) is a view with rows, no slice."""
    g = gc.Graph("net")
    p = g.param("p", shape=(1, 4))
    g.output("loss", gc.mean(gc.apply("bce_logits_terms", gc.transpose(p), p)))
    return g


def _sliced_views_net():
    """Slices of the sliced p read beside it: p.T[:, ::-1] whole, p[::-1] by rows."""
    g = gc.Graph("net")
    p = g.param("p", shape=(4, 1))
    g.output("loss", gc.mean(gc.exp(gc.transpose(p)[:, ::-1] * p) + gc.sin(p[::-1] * p)))
    return g


VIEW_NETS = {
    "transposed row": (_transposed_row_net, {"p": COLUMN.T.copy()}),
    "slices": (_sliced_views_net, {"p": COLUMN}),
    "transposed column": (_transposed_column_net, {"x1": np.ones((3, 4)), "p2": COLUMN}),
    "view of a block": (_view_of_a_block_net, {"p": COLUMN}),
    "broadcast of a view": (_broadcast_of_a_view_net, {"p": COLUMN}),
    "reshape": (_reshape_net, {"p": COLUMN}),
    "computed column": (_computed_column_net, {"x": np.arange(12.0).reshape(4, 3) / 10, "w": COLUMN[:3]}),
}


@pytest.mark.parametrize("rows", [1, 2, 3])
@pytest.mark.parametrize("net", VIEW_NETS)
def test_a_view_read_whole_in_a_loop_reads_the_whole_array(net, rows):
    build, feeds = VIEW_NETS[net]
    g = build()
    prog, plain = gc.compile(g, blocking=rows), gc.compile(g, blocking="off")
    outputs = prog.forward(feeds)
    want = gc.evaluate(g, feeds, list(outputs))
    for name in outputs:
        close(outputs[name], want[name], "float64")
    values, grads = prog.value_and_grad(feeds)
    want_values, want_grads = plain.value_and_grad(feeds)
    for name in want_values:
        close(values[name], want_values[name], "float64")
    for name in want_grads:
        close(grads[name], want_grads[name], "float64")
        close(grads[name], central_differences(g, feeds, name), "float32")


def test_the_differential_corpus_network_runs_blocked_in_float32():
    """The network exactly as the corpus drew it (float32, blocking=2): it ran into a
    ValueError; its outputs and gradient agree with the unblocked program and with central
    differences in float64."""
    g = _transposed_column_net("float32")
    feeds = {"x1": np.ones((3, 4), np.float32), "p2": COLUMN.astype(np.float32)}
    prog, plain = gc.compile(g, blocking=2), gc.compile(g, blocking="off")
    assert "for start in range(0, 4, 2):" in prog.source  # the region is still blocked
    assert "p2.T" in prog.forward_source and "p2_rows.T" not in prog.forward_source
    outputs, want = prog.forward(feeds), plain.forward(feeds)
    for name in want:
        assert outputs[name].dtype == np.float32
        close(outputs[name], want[name], "float32")
    values, grads = prog.value_and_grad(feeds)
    want_values, want_grads = plain.value_and_grad(feeds)
    close(values["loss"], want_values["loss"], "float32")
    close(grads["p2"], want_grads["p2"], "float32")
    g64 = _transposed_column_net("float64")
    close(grads["p2"], central_differences(g64, {k: v.astype(np.float64) for k, v in feeds.items()}, "p2"), "float32")


def test_a_pairwise_kernel_blocks_under_auto_and_reads_the_transpose_whole():
    """exp(-(w*(x - x.T))**2) of a (2048, 1) x: rows of 16 KiB, so the cost model blocks it;
    x.T (1, 2048) broadcasts along the rows and every block reads it whole."""
    n = 2048
    g = gc.Graph("pairwise")
    x = g.input("x", shape=(n, 1))
    w = g.param("w", shape=(1,))
    d = w * (x - gc.transpose(x))
    g.output("loss", gc.mean(gc.exp(-gc.square(d)) * gc.tanh(d + 1.0)))
    rng = np.random.default_rng(5)
    feeds = {"x": rng.standard_normal((n, 1)), "w": np.array([0.7])}
    prog, plain = gc.compile(g, blocking="auto"), gc.compile(g, blocking="off")
    assert f"range(0, {n}, " in prog.source  # the cost model blocks it
    assert "x.T" in prog.source and "x_rows.T" not in prog.source
    close(prog.forward(feeds)["loss"], plain.forward(feeds)["loss"], "float64")
    values, grads = prog.value_and_grad(feeds)
    want_values, want_grads = plain.value_and_grad(feeds)
    close(values["loss"], want_values["loss"], "float64")
    close(grads["w"], want_grads["w"], "float64")
    close(grads["w"], central_differences(g, feeds, "w"), "float32")
