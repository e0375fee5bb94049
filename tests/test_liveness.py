"""Liveness in generated code: temporaries are deleted after their last reader, buffers are
reused only when nothing reads them any more, and ``sgd_step`` updates params in place
exactly as ``p - lr * grad`` even when a param is read after its gradient exists."""

import ast

import numpy as np
import pytest

import graphc as gc
from graphc import ir

LR = 0.05
FUNCTIONS = ("forward_pass", "train_forward", "backward_pass", "sgd_step", "sgd_step_atomic")
UPDATING = "backward_pass updating"  # backward_pass as it runs when sgd_step asks it to update


# -- the networks ----------------------------------------------------------------------------
def mlp():
    g = gc.Graph("mlp")
    x, y = g.input("x", shape=("N", 3)), g.input("y", shape=("N", 2))
    W1, b1 = g.param("W1", shape=(3, 5)), g.param("b1", shape=(5,))
    W2, b2 = g.param("W2", shape=(5, 2)), g.param("b2", shape=(2,))
    g.output("loss", gc.softmax_cross_entropy(gc.relu(x @ W1 + b1) @ W2 + b2, y))
    return g


def mlp_by_hand(f):
    """Loss and gradients of ``mlp`` written with numpy."""
    z1 = f["x"] @ f["W1"] + f["b1"]
    h = np.maximum(z1, 0)
    z2 = h @ f["W2"] + f["b2"]
    z2 = z2 - z2.max(axis=1, keepdims=True)
    p = np.exp(z2) / np.exp(z2).sum(axis=1, keepdims=True)
    n = f["x"].shape[0]
    loss = -np.sum(f["y"] * np.log(p)) / n
    dz2 = (p - f["y"]) / n
    dh = dz2 @ f["W2"].T
    dz1 = dh * (z1 >= 0)
    return loss, {"W1": f["x"].T @ dz1, "b1": dz1.sum(0), "W2": h.T @ dz2, "b2": dz2.sum(0)}


def residual(depth=3, width=4):
    g = gc.Graph("residual")
    x, y = g.input("x", shape=("N", width)), g.input("y", shape=("N", width))
    h = x
    for k in range(depth):
        W, b = g.param(f"W{k}", shape=(width, width)), g.param(f"b{k}", shape=(width,))
        h = h + gc.tanh(h @ W + b)
    g.output("loss", gc.mse(h, y))
    return g


def residual_by_hand(f, depth=3):
    hs, ts = [f["x"]], []
    for k in range(depth):
        ts.append(np.tanh(hs[-1] @ f[f"W{k}"] + f[f"b{k}"]))
        hs.append(hs[-1] + ts[-1])
    diff = hs[-1] - f["y"]
    loss = np.mean(diff**2)
    dh = 2 * diff / diff.size
    grads = {}
    for k in reversed(range(depth)):
        dz = dh * (1 - ts[k] ** 2)
        grads[f"W{k}"], grads[f"b{k}"] = hs[k].T @ dz, dz.sum(0)
        dh = dh + dz @ f[f"W{k}"].T
    return loss, grads


def square():
    """x * x: a value read twice by one statement must survive its first read."""
    g = gc.Graph("square")
    x = g.input("x", shape=("N", 3))
    W = g.param("W", shape=(3,))
    z = x * W
    g.output("loss", gc.sum(z * z + gc.exp(z) * z))
    return g


def shared():
    """One W in two layers: W is read by the backward pass after part of its gradient exists."""
    g = gc.Graph("shared")
    x = g.input("x", shape=("N", 3))
    W = g.param("W", shape=(3, 3))
    v = g.param("v", shape=(3,))
    g.output("loss", gc.sum(gc.tanh(gc.tanh(x @ W) @ W) * v))
    return g


def transposed_outputs():
    """Outputs that are transposes of temporaries (views of arrays later kernels could reuse)."""
    g = gc.Graph("transposed")
    x = g.input("x", shape=("N", 3))
    W = g.param("W", shape=(3, 4))
    z = x @ W
    g.output("zT", z.T)
    g.output("tT", gc.tanh(z).T)
    g.output("loss", gc.sum(gc.tanh(z) * z))
    return g


def read_after_gradient():
    """d_W2 = h.T @ d_y exists while d_h = d_y @ W2.T still has to read W2; W1 is read through
    its transpose in a later layer (h2 = h @ W1.T), after d_W1's first part exists."""
    g = gc.Graph("late")
    x = g.input("x", shape=("N", 3))
    W1 = g.param("W1", shape=(3, 3))
    W2 = g.param("W2", shape=(3, 2))
    h = gc.tanh(x @ W1)
    h2 = gc.sigmoid(h @ W1.T)
    g.output("loss", gc.sum(gc.square(h2 @ W2)))
    return g


def tied():
    """The gradient of each param is the other param: updates must read the old values."""
    g = gc.Graph("tied")
    a, b = g.param("a", shape=(3,)), g.param("b", shape=(3,))
    g.output("loss", gc.sum(a * b))
    return g


NETWORKS = {"mlp": mlp, "residual": residual, "square": square, "shared": shared,
            "transposed": transposed_outputs, "late": read_after_gradient, "tied": tied}


def feeds_for(graph: gc.Graph, seed: int = 0, n: int = 6) -> dict:
    rng = np.random.default_rng(seed)
    out = {}
    for name in graph.inputs + graph.params:
        shape = tuple(n if not isinstance(d, int) else d for d in graph.nx.nodes[name][ir.SHAPE])
        out[name] = rng.normal(size=shape)
    if graph.nx.graph[ir.NAME] == "mlp":
        out["y"] = np.eye(2)[rng.integers(0, 2, size=n)]
    return out


def copies(feeds: dict) -> dict:
    return {k: np.array(v, dtype=np.float64, copy=True) for k, v in feeds.items()}


@pytest.fixture(scope="module", params=sorted(NETWORKS))
def compiled(request):
    graph = NETWORKS[request.param]()
    return graph, gc.compile(graph)


# -- the source --------------------------------------------------------------------------------
def functions(source: str) -> dict[str, ast.FunctionDef]:
    """The generated functions; backward_pass as the straight-line code it runs in each mode:
    without ``update`` (under "backward_pass") and with it (under UPDATING, when it can)."""
    tree = ast.parse(source)
    found = {f.name: f for f in tree.body if isinstance(f, ast.FunctionDef) and f.name in FUNCTIONS}
    if "backward_pass" in found and any(_guard(st) for st in found["backward_pass"].body):
        found[UPDATING] = _mode(found["backward_pass"], updating=True)
        found["backward_pass"] = _mode(found["backward_pass"], updating=False)
    return found


def _guard(statement: ast.stmt) -> bool:
    return isinstance(statement, ast.If) and ast.unparse(statement.test) == "update is not None"


def _mode(function: ast.FunctionDef, updating: bool) -> ast.FunctionDef:
    """``function`` (backward_pass) with ``update`` given or not: each ``if update is not None:``
    block inlined or dropped, the conditional return resolved; updating, the params unpacked
    from ``update`` become arguments (nothing of the function's own to free)."""
    body, args = [], [a.arg for a in function.args.args if a.arg != "update"]
    for statement in function.body:
        if _guard(statement):
            assert not statement.orelse, ast.unparse(statement)
            inner = statement.body if updating else []
            for st in inner:
                if isinstance(st, ast.Assign) and ast.unparse(st.value) == "update":
                    args += names(st.targets[0], ast.Store)
                else:
                    assert not _guard(st), "a guard inside a guard"
                    body.append(st)
        elif isinstance(statement, ast.Return) and isinstance(statement.value, ast.IfExp):
            assert ast.unparse(statement.value.test) == "update is not None"
            body.append(ast.Return(statement.value.body if updating else statement.value.orelse))
        else:
            assert "update" not in names(statement, ast.Load), ast.unparse(statement)
            body.append(statement)
    signature = ast.arguments(posonlyargs=[], args=[ast.arg(a) for a in args], kwonlyargs=[], kw_defaults=[],
                              defaults=[])
    return ast.FunctionDef(name=function.name, args=signature, body=body, decorator_list=[])


def names(node: ast.AST, ctx) -> list[str]:
    return [n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ctx)]


def test_temporaries_are_deleted_and_never_read_after(compiled):
    _, prog = compiled
    found = functions(prog.source)
    assert "forward_pass" in found and "backward_pass" in found
    assert (UPDATING in found) == bool(prog.plan.sgd and prog.plan.sgd.eager)  # both modes checked
    for name, function in found.items():
        params = {a.arg for a in function.args.args}
        returned = set(names(function.body[-1], ast.Load))
        assigned, deleted = set(), set()
        for statement in function.body:  # straight-line code: statements in order
            read = set(names(statement, ast.Load))  # and ``p -= g`` reads p (its Name says Store only)
            read |= {n.target.id for n in ast.walk(statement) if isinstance(n, ast.AugAssign)
                     and isinstance(n.target, ast.Name)}
            gone = read & deleted
            assert not gone, f"{name}: {sorted(gone)} read after del:\n{ast.unparse(statement)}"
            if isinstance(statement, ast.Delete):
                deleted |= set(names(statement, ast.Del))
            written = set(names(statement, ast.Store))
            assigned |= written
            deleted -= written
        arrays = {n for n in assigned if n not in returned and n not in params}
        scalars = {n for n in arrays if _dim_binding(function, n)}
        if name in ("sgd_step", "sgd_step_atomic"):  # the new values: kept until the params take them
            arrays -= _new_values(function) | _loop_targets(function) | _tuples_of(function, params)
        assert arrays - scalars <= deleted, f"{name}: never deleted: {sorted(arrays - scalars - deleted)}"


def _new_values(function: ast.FunctionDef) -> set[str]:
    """The names sgd_step copies into its params at the end: ``W[...] = new``, or a loop
    ``for param, new in zip((W, b), (d_W, d_b)): param[...] = new`` (the second tuple's names, or
    the tuple's own name: ``zip(params, grads)``)."""
    found = {n for st in function.body if isinstance(st, ast.Assign) and isinstance(st.targets[0], ast.Subscript)
             for n in names(st.value, ast.Load)}
    for st in function.body:
        writes = isinstance(st, ast.For) and any(isinstance(b, ast.Assign) and isinstance(b.targets[0], ast.Subscript)
                                                 for b in st.body)
        if writes and isinstance(st.iter, ast.Call) and len(st.iter.args) == 2:
            found |= set(names(st.iter.args[1], ast.Load))
    return found


def _tuples_of(function: ast.FunctionDef, params: set[str]) -> set[str]:
    """Names bound to a tuple of the function's own arguments (``params = (W, b)``): it holds
    no array of its own, so nothing is freed by deleting it."""
    return {st.targets[0].id for st in function.body
            if isinstance(st, ast.Assign) and isinstance(st.targets[0], ast.Name) and isinstance(st.value, ast.Tuple)
            and all(isinstance(e, ast.Name) and e.id in params for e in st.value.elts)}


def _loop_targets(function: ast.FunctionDef) -> set[str]:
    """The names a loop over the params binds: each names a param or its new value, bound elsewhere."""
    return {n for st in function.body if isinstance(st, ast.For) for n in names(st.target, ast.Store)}


def _dim_binding(function: ast.FunctionDef, name: str) -> bool:
    """``N = x.shape[0]``: a dim bound from a shape, a number that lives to the end."""
    for statement in function.body:
        if isinstance(statement, ast.Assign) and names(statement, ast.Store) == [name]:
            return isinstance(statement.value, ast.Subscript) and "shape" in ast.unparse(statement.value)
    return False


def test_the_mlp_source_frees_its_activations():
    prog = gc.compile(mlp())
    assert "del " in prog.forward_source and "del " in prog.backward_source


# -- values ----------------------------------------------------------------------------------
@pytest.mark.parametrize("build, by_hand", [(mlp, mlp_by_hand), (residual, residual_by_hand)])
def test_values_and_gradients_match_numpy_by_hand(build, by_hand):
    graph = build()
    prog = gc.compile(graph)
    feeds = feeds_for(graph, seed=1)
    want_loss, want_grads = by_hand(copies(feeds))
    untouched = copies(feeds)
    outputs, grads = prog.value_and_grad(feeds)
    np.testing.assert_allclose(outputs["loss"], want_loss, rtol=1e-12)
    np.testing.assert_allclose(prog.forward(feeds)["loss"], want_loss, rtol=1e-12)
    assert grads.keys() == want_grads.keys()
    for name, want in want_grads.items():
        np.testing.assert_allclose(grads[name], want, rtol=1e-10, atol=1e-14, err_msg=name)
    for name, value in feeds.items():
        assert value.tobytes() == untouched[name].tobytes(), f"feed {name} was written into"


def test_gradients_agree_with_central_differences(compiled):
    graph, prog = compiled
    feeds = feeds_for(graph, seed=2)
    report = gc.check_gradients(prog, feeds)
    assert report.ok and report.rows


def test_outputs_that_are_transposes_of_temporaries_keep_their_values():
    graph = transposed_outputs()
    prog = gc.compile(graph)
    feeds = feeds_for(graph, seed=3)
    z = feeds["x"] @ feeds["W"]
    for outputs in (prog.forward(feeds), prog.value_and_grad(feeds)[0], prog.sgd_step(copies(feeds), LR)):
        np.testing.assert_allclose(outputs["zT"], z.T, rtol=1e-13)
        np.testing.assert_allclose(outputs["tT"], np.tanh(z).T, rtol=1e-13)
        np.testing.assert_allclose(outputs["loss"], np.sum(np.tanh(z) * z), rtol=1e-12)


def test_x_times_x_reads_its_operand_twice():
    graph = square()
    prog = gc.compile(graph)
    feeds = feeds_for(graph, seed=4)
    z = feeds["x"] * feeds["W"]
    outputs, grads = prog.value_and_grad(feeds)
    np.testing.assert_allclose(outputs["loss"], np.sum(z * z + np.exp(z) * z), rtol=1e-12)
    dz = 2 * z + np.exp(z) * (1 + z)
    np.testing.assert_allclose(grads["W"], (dz * feeds["x"]).sum(0), rtol=1e-11)


def test_a_donor_read_through_its_transpose_in_the_same_kernel_is_not_overwritten():
    g = gc.Graph("view")
    x = g.input("x", shape=(3, 3))
    W = g.param("W", shape=(3, 3))
    h = x @ W
    g.output("y", gc.exp(h) * h.T)
    feeds = feeds_for(g, seed=5)
    z = feeds["x"] @ feeds["W"]
    np.testing.assert_allclose(gc.compile(g).forward(feeds)["y"], np.exp(z) * z.T, rtol=1e-13)


# -- sgd_step --------------------------------------------------------------------------------
def test_sgd_step_updates_params_in_place_as_p_minus_lr_grad(compiled):
    graph, prog = compiled
    feeds = feeds_for(graph, seed=6)
    outputs, grads = prog.value_and_grad(copies(feeds))
    stepped = copies(feeds)
    arrays = {name: stepped[name] for name in graph.params}
    returned = prog.sgd_step(stepped, LR)
    for name in graph.params:
        assert stepped[name] is arrays[name], "updated where it is, not replaced"
        np.testing.assert_allclose(stepped[name], feeds[name] - LR * grads[name], rtol=1e-13, atol=1e-15,
                                   err_msg=name)
    for name in graph.inputs:
        assert stepped[name].tobytes() == feeds[name].tobytes(), f"input {name} was written into"
    for name, value in outputs.items():
        if not name.endswith("T"):
            np.testing.assert_allclose(returned[name], value, rtol=1e-12, err_msg=name)


def test_repeated_sgd_steps_follow_value_and_grad():
    graph = read_after_gradient()
    prog = gc.compile(graph)
    by_step, by_grad = copies(feeds_for(graph, seed=7)), copies(feeds_for(graph, seed=7))
    for _ in range(3):
        _, grads = prog.value_and_grad(by_grad)
        for name in graph.params:
            by_grad[name] = by_grad[name] - LR * grads[name]
        prog.sgd_step(by_step, LR)
    for name in graph.params:
        np.testing.assert_allclose(by_step[name], by_grad[name], rtol=1e-12, err_msg=name)


def _writes_param(statement: ast.stmt, param: str, tuples: dict[str, list[str]]) -> bool:
    """``W[...] = new`` (the atomic step) or ``W -= g`` (backward_pass updating; numpy's subtract into W),
    or a ufunc call writing ``out=W``; or a loop over the params doing so for ``W``
    (``for p, new in zip((W, b), (d_W, d_b)): p[...] = new``, or over a tuple of them bound
    before, ``tuples``: ``zip(params, grads)``, ``zip(params[0:2], grads[0:2])``)."""
    if isinstance(statement, ast.For):
        targets, zipped = statement.target, statement.iter
        if not (isinstance(targets, ast.Tuple) and isinstance(zipped, ast.Call) and len(zipped.args) == 2):
            return False
        loop_param = targets.elts[0].id
        return param in _elements(zipped.args[0], tuples) and any(_writes_param(b, loop_param, tuples)
                                                                  for b in statement.body)
    if isinstance(statement, ast.AugAssign):
        return isinstance(statement.target, ast.Name) and statement.target.id == param
    if isinstance(statement, ast.Assign):
        return isinstance(statement.targets[0], ast.Subscript) and statement.targets[0].value.id == param
    call = statement.value if isinstance(statement, ast.Expr) else None
    return isinstance(call, ast.Call) and any(k.arg == "out" and ast.unparse(k.value) == param for k in call.keywords)


def _tuples(body: list[ast.stmt]) -> dict[str, list[str]]:
    """The names bound to a tuple of names (``params = (W, b)``): their elements."""
    return {st.targets[0].id: names(st.value, ast.Load) for st in body if isinstance(st, ast.Assign)
            and isinstance(st.targets[0], ast.Name) and isinstance(st.value, ast.Tuple)}


def _elements(node: ast.expr, tuples: dict[str, list[str]]) -> list[str]:
    """The names a loop's sequence holds: a tuple literal, a tuple's name, or a slice of it."""
    if isinstance(node, ast.Name) and node.id in tuples:
        return tuples[node.id]
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and isinstance(node.slice, ast.Slice):
        return tuples[node.value.id][node.slice.lower.value:node.slice.upper.value]
    return names(node, ast.Load)


@pytest.mark.parametrize("function", ["sgd_step_atomic", UPDATING])
def test_the_update_waits_for_the_last_read_of_its_param(function):
    prog = gc.compile(read_after_gradient())
    body = functions(prog.source)[function].body
    tuples = _tuples(body)
    for param in ("W1", "W2"):  # the update writes into the param
        update = next(k for k, st in enumerate(body) if _writes_param(st, param, tuples))
        reads = [k for k, st in enumerate(body) if k != update and param in names(st, ast.Load)
                 and not isinstance(st, ast.Delete)]
        assert reads and max(reads) < update, f"{param} is read after its update:\n{ast.unparse(body[update])}"


def test_tied_params_update_from_their_old_values():
    graph = tied()
    prog = gc.compile(graph)
    feeds = feeds_for(graph, seed=8)
    stepped = copies(feeds)
    prog.sgd_step(stepped, LR)
    np.testing.assert_allclose(stepped["a"], feeds["a"] - LR * feeds["b"], rtol=1e-14)
    np.testing.assert_allclose(stepped["b"], feeds["b"] - LR * feeds["a"], rtol=1e-14)


def test_sgd_step_returns_the_outputs_of_the_params_it_was_given():
    g = gc.Graph("view_out")
    x = g.input("x", shape=("N", 3))
    W = g.param("W", shape=(3, 3))
    g.output("Wt", W.T)
    g.output("loss", gc.sum(gc.tanh(x @ W)))
    prog = gc.compile(g)
    feeds = feeds_for(g, seed=9)
    returned = prog.sgd_step(copies(feeds), LR)
    np.testing.assert_array_equal(returned["Wt"], feeds["W"].T)


def test_sgd_step_needs_writable_float64_arrays_for_params():
    graph = mlp()
    prog = gc.compile(graph)
    feeds = feeds_for(graph)
    bad_values = {"float32": feeds["W1"].astype(np.float32), "list": feeds["W1"].tolist()}
    readonly = feeds["W1"].copy()
    readonly.flags.writeable = False
    bad_values["read-only"] = readonly
    for why, value in bad_values.items():
        with pytest.raises(gc.FeedError, match="W1"):
            prog.sgd_step({**copies(feeds), "W1": value}, LR)
            pytest.fail(f"a {why} W1 was accepted")
    inputs_as_lists = {**copies(feeds), "x": feeds["x"].tolist()}  # inputs are converted: fine
    prog.sgd_step(inputs_as_lists, LR)


def test_sgd_step_without_a_scalar_output_raises_a_gradient_error():
    g = gc.Graph("no_scalar")
    x = g.input("x", shape=("N", 3))
    W = g.param("W", shape=(3, 2))
    g.output("y", gc.tanh(x @ W))
    prog = gc.compile(g)
    feeds = feeds_for(g)
    with pytest.raises(gc.GradientError, match="scalar"):
        prog.sgd_step(feeds, LR)
    np.testing.assert_array_equal(feeds["W"], feeds_for(g)["W"])


def test_sgd_step_with_respect_to_an_input_raises_a_gradient_error():
    graph = mlp()
    prog = gc.compile(graph, wrt=["x", "W1"])
    with pytest.raises(gc.GradientError):
        prog.sgd_step(feeds_for(graph), LR)
