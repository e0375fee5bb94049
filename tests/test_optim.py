"""Optimizers: each compiled update rule against PyTorch's documented algorithm, step by step.

The reference is independent of graphc: a hand-written numpy forward and backward pass of
a small tanh network, and the update rules transcribed from the pseudo-code in PyTorch's
documentation of torch.optim.SGD, Adam and AdamW. When torch is installed the same runs
are compared with torch itself.
"""

import io
import math
import os
import subprocess
import sys
import tokenize

import numpy as np
import pytest

import graphc as gc

STEPS = 10
TOL = 1e-12


def small_net():
    g = gc.Graph("small")
    x, y = g.input("x", shape=("N", 3)), g.input("y", shape=("N", 2))
    W1, b1 = g.param("W1", shape=(3, 4)), g.param("b1", shape=(4,))
    W2, b2 = g.param("W2", shape=(4, 2)), g.param("b2", shape=(2,))
    out = gc.tanh(x @ W1 + b1) @ W2 + b2
    g.output("loss", gc.mse(out, y))
    return gc.compile(g)


def small_feeds(seed=0):
    rng = np.random.default_rng(seed)
    return {"x": rng.normal(size=(5, 3)), "y": rng.normal(size=(5, 2)),
            "W1": rng.normal(size=(3, 4)), "b1": rng.normal(size=4),
            "W2": rng.normal(size=(4, 2)), "b2": rng.normal(size=2)}


def reference_loss_and_grads(p, x, y):
    """The small net's mean squared error and its gradients, by hand."""
    h = np.tanh(x @ p["W1"] + p["b1"])
    out = h @ p["W2"] + p["b2"]
    d_out = 2 * (out - y) / out.size
    d_z1 = (d_out @ p["W2"].T) * (1 - h * h)
    grads = {"W2": h.T @ d_out, "b2": d_out.sum(axis=0), "W1": x.T @ d_z1, "b1": d_z1.sum(axis=0)}
    return float(np.mean((out - y) ** 2)), grads


class ReferenceSGD:
    """torch.optim.SGD's documented algorithm (dampening 0, maximize False)."""

    def __init__(self, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
        self.lr, self.mu, self.nesterov, self.wd, self.b, self.t = lr, momentum, nesterov, weight_decay, {}, 0

    def step(self, params, grads):
        self.t += 1
        for name, g in grads.items():
            if self.wd != 0:
                g = g + self.wd * params[name]
            if self.mu != 0:
                self.b[name] = g if self.t == 1 else self.mu * self.b[name] + g
                g = g + self.mu * self.b[name] if self.nesterov else self.b[name]
            params[name] = params[name] - self.lr * g


class ReferenceAdam:
    """torch.optim.Adam's (decoupled=False) and AdamW's (decoupled=True) documented algorithm."""

    def __init__(self, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled=False):
        self.lr, (self.b1, self.b2), self.eps, self.wd, self.decoupled = lr, betas, eps, weight_decay, decoupled
        self.m, self.v, self.t = {}, {}, 0

    def step(self, params, grads):
        self.t += 1
        for name, g in grads.items():
            p = params[name]
            if self.decoupled:
                p = p - self.lr * self.wd * p
            elif self.wd != 0:
                g = g + self.wd * p
            m = self.b1 * self.m.get(name, 0.0) + (1 - self.b1) * g
            v = self.b2 * self.v.get(name, 0.0) + (1 - self.b2) * g * g
            self.m[name], self.v[name] = m, v
            m_hat, v_hat = m / (1 - self.b1 ** self.t), v / (1 - self.b2 ** self.t)
            params[name] = p - self.lr * m_hat / (np.sqrt(v_hat) + self.eps)


CASES = {
    "sgd": (lambda: gc.optim.SGD(lr=0.1), lambda: ReferenceSGD(0.1)),
    "sgd_weight_decay": (lambda: gc.optim.SGD(lr=0.1, weight_decay=0.05), lambda: ReferenceSGD(0.1, weight_decay=0.05)),
    "momentum": (lambda: gc.optim.SGD(lr=0.05, momentum=0.9), lambda: ReferenceSGD(0.05, momentum=0.9)),
    "nesterov": (lambda: gc.optim.SGD(lr=0.05, momentum=0.9, nesterov=True),
                 lambda: ReferenceSGD(0.05, momentum=0.9, nesterov=True)),
    "nesterov_weight_decay": (lambda: gc.optim.SGD(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.1),
                              lambda: ReferenceSGD(0.05, momentum=0.8, nesterov=True, weight_decay=0.1)),
    "adam": (lambda: gc.optim.Adam(lr=0.05), lambda: ReferenceAdam(0.05)),
    "adam_settings": (lambda: gc.optim.Adam(lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1),
                      lambda: ReferenceAdam(0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
    "adamw": (lambda: gc.optim.AdamW(lr=0.05), lambda: ReferenceAdam(0.05, weight_decay=0.01, decoupled=True)),
    "adamw_strong_decay": (lambda: gc.optim.AdamW(lr=0.05, weight_decay=0.5),
                           lambda: ReferenceAdam(0.05, weight_decay=0.5, decoupled=True)),
}
PARAMS = ("W1", "b1", "W2", "b2")


@pytest.mark.parametrize("case", list(CASES))
def test_each_optimizer_follows_its_published_rule_for_ten_steps(case):
    make, make_reference = CASES[case]
    prog, feeds = small_net(), small_feeds()
    step, reference = prog.train_step(make()), make_reference()
    start = {name: feeds[name].copy() for name in PARAMS}
    expected = {name: feeds[name].copy() for name in PARAMS}
    for k in range(STEPS):
        want_loss, grads = reference_loss_and_grads(expected, feeds["x"], feeds["y"])
        loss = step(feeds)
        reference.step(expected, grads)
        assert abs(loss - want_loss) <= TOL, f"step {k + 1}: the loss of the forward pass that made the update"
        for name in PARAMS:
            np.testing.assert_allclose(feeds[name], expected[name], rtol=0, atol=TOL, err_msg=f"{name}, step {k + 1}")
    moved = max(np.max(np.abs(feeds[name] - start[name])) for name in PARAMS)
    assert moved > 1e-2  # the params did move: equality above is not two runs that stood still


@pytest.mark.parametrize("case", list(CASES))
def test_each_optimizer_matches_torch_itself(case):
    torch = pytest.importorskip("torch")
    make, _ = CASES[case]
    optimizer = make()
    prog, feeds = small_net(), small_feeds(seed=1)
    tensors = {name: torch.tensor(feeds[name], dtype=torch.float64, requires_grad=True) for name in PARAMS}
    x, y = (torch.tensor(feeds[k], dtype=torch.float64) for k in ("x", "y"))
    settings = dict(optimizer.settings)
    if isinstance(optimizer, gc.optim.SGD):
        theirs = torch.optim.SGD(tensors.values(), lr=settings["lr"], momentum=settings["momentum"],
                                 nesterov=optimizer.nesterov, weight_decay=settings["weight_decay"])
    else:
        kind = torch.optim.AdamW if isinstance(optimizer, gc.optim.AdamW) else torch.optim.Adam
        theirs = kind(tensors.values(), lr=settings["lr"], betas=(settings["beta1"], settings["beta2"]),
                      eps=settings["eps"], weight_decay=settings["weight_decay"])
    step = prog.train_step(optimizer)
    for k in range(STEPS):
        theirs.zero_grad()
        out = torch.tanh(x @ tensors["W1"] + tensors["b1"]) @ tensors["W2"] + tensors["b2"]
        their_loss = ((out - y) ** 2).mean()
        their_loss.backward()
        theirs.step()
        assert abs(step(feeds) - their_loss.item()) <= TOL
        for name in PARAMS:
            np.testing.assert_allclose(feeds[name], tensors[name].detach().numpy(), rtol=0, atol=TOL,
                                       err_msg=f"{name}, step {k + 1}")


def test_the_optimizer_keeps_its_state_between_steps_and_programs():
    """Momentum carries over from one train_step to another built on the same optimizer,
    as PyTorch's optimizer keeps per-param state; reset() forgets it."""
    optimizer = gc.optim.SGD(lr=0.05, momentum=0.9)
    prog, feeds = small_net(), small_feeds()
    expected = {name: feeds[name].copy() for name in PARAMS}
    reference = ReferenceSGD(0.05, momentum=0.9)
    for make_step in (lambda: prog.train_step(optimizer), lambda: small_net().train_step(optimizer)):
        step = make_step()
        for _ in range(3):
            reference.step(expected, reference_loss_and_grads(expected, feeds["x"], feeds["y"])[1])
            step(feeds)
    for name in PARAMS:
        np.testing.assert_allclose(feeds[name], expected[name], rtol=0, atol=TOL)
    assert optimizer.steps == {name: 6 for name in PARAMS}
    optimizer.reset()
    assert optimizer.state == {} and optimizer.steps == {}


def test_updates_are_in_place_in_the_callers_arrays_and_inputs_are_untouched():
    prog, feeds = small_net(), small_feeds()
    arrays = {name: feeds[name] for name in feeds}
    inputs = {k: feeds[k].copy() for k in ("x", "y")}
    prog.train_step(gc.optim.Adam(lr=0.1, weight_decay=0.1))(feeds)
    assert all(feeds[name] is arrays[name] for name in feeds)
    for k in ("x", "y"):
        np.testing.assert_array_equal(feeds[k], inputs[k])


def test_a_gradient_that_is_a_feed_is_never_written_into():
    """d(sum(x * w))/dw is x itself: weight decay and Nesterov rebind the gradient, never
    update it in place, so the input x stays as it was."""
    g = gc.Graph("dot"); x = g.input("x", shape=(3,)); w = g.param("w", shape=(3,))
    g.output("loss", gc.sum(x * w))
    prog = gc.compile(g)
    feeds = {"x": np.array([1.0, -2.0, 3.0]), "w": np.array([0.5, 0.5, 0.5])}
    for optimizer in (gc.optim.SGD(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.5),
                      gc.optim.Adam(lr=0.1, weight_decay=0.5)):
        step = prog.train_step(optimizer)
        for _ in range(3):
            step(feeds)
        np.testing.assert_array_equal(feeds["x"], [1.0, -2.0, 3.0])


def test_params_that_cannot_be_updated_in_place_are_refused():
    """A list, a read-only array or another dtype would be converted: the copy would learn."""
    prog, feeds = small_net(), small_feeds()
    step = prog.train_step(gc.optim.SGD(lr=0.1))
    listed = {**feeds, "W1": feeds["W1"].tolist()}
    with pytest.raises(gc.FeedError, match="'W1' must be a writable float64 numpy array"):
        step(listed)
    frozen = {**feeds, "b1": feeds["b1"].copy()}
    frozen["b1"].flags.writeable = False
    with pytest.raises(gc.FeedError, match="'b1' must be a writable"):
        step(frozen)
    with pytest.raises(gc.FeedError, match="'b2' must be a writable"):
        step({**feeds, "b2": feeds["b2"].astype(np.float32)})


def test_train_step_refuses_wrt_inputs_and_non_optimizers():
    g = gc.Graph("in"); x = g.input("x", shape=(2,)); w = g.param("w", shape=(2,))
    g.output("loss", gc.sum(x * w))
    with pytest.raises(gc.GradientError, match="input 'x'"):
        gc.compile(g, wrt=["x", "w"]).train_step(gc.optim.SGD(lr=0.1))
    with pytest.raises(gc.GraphcError, match="needs a graphc optimizer"):
        gc.compile(g).train_step("adam")


def test_state_of_another_shape_is_an_error():
    optimizer = gc.optim.Adam(lr=0.1)
    optimizer.update("w", np.zeros(3), np.ones(3))
    with pytest.raises(gc.FeedError, match=r"'w' has shape \(4,\).*state for it has shape \(3,\)"):
        optimizer.update("w", np.zeros(4), np.ones(4))


@pytest.mark.parametrize("lr", [-0.1, 0.0, math.nan, math.inf, 1e6, 11.0])
@pytest.mark.parametrize("kind", [gc.optim.SGD, gc.optim.Adam, gc.optim.AdamW])
def test_bad_learning_rates_are_typed_errors_naming_lr(kind, lr):
    with pytest.raises(gc.HyperparameterError, match=r"\blr\b"):
        kind(lr=lr)


@pytest.mark.parametrize("make,match", [
    (lambda: gc.optim.SGD(lr="0.1"), "lr must be a real number"),
    (lambda: gc.optim.SGD(lr=True), "lr must be a real number"),
    (lambda: gc.optim.SGD(lr=0.1, momentum=1.0), r"momentum must lie in \[0, 1\)"),
    (lambda: gc.optim.SGD(lr=0.1, momentum=-0.5), "momentum must lie"),
    (lambda: gc.optim.SGD(lr=0.1, nesterov=True), "Nesterov momentum needs a momentum"),
    (lambda: gc.optim.SGD(lr=0.1, weight_decay=-1), "weight_decay must be 0 or more"),
    (lambda: gc.optim.SGD(lr=0.1, weight_decay=math.nan), "weight_decay must be finite"),
    (lambda: gc.optim.Adam(lr=0.1, betas=(0.9,)), "betas must be a pair"),
    (lambda: gc.optim.Adam(lr=0.1, betas=(0.9, 1.0)), "beta2 must lie"),
    (lambda: gc.optim.AdamW(lr=0.1, betas=(-0.1, 0.9)), "beta1 must lie"),
    (lambda: gc.optim.Adam(lr=0.1, eps=0.0), "eps must be positive"),
])
def test_bad_settings_are_typed_errors(make, match):
    with pytest.raises(gc.HyperparameterError, match=match):
        make()


def test_the_update_is_printed_code_with_settings_as_arguments():
    """The rule is printed once from its expressions; settings are arguments, not constants,
    and terms whose setting is zero are left out."""
    plain, decayed = gc.optim.Adam(lr=0.1), gc.optim.Adam(lr=0.5, weight_decay=0.1)
    assert "weight_decay" not in plain.source and "g = g + p*weight_decay" in decayed.source
    assert gc.optim.Adam(lr=0.3).source == plain.source  # another lr, the same code
    assert "0.1" not in plain.source
    assert "m *= beta1" in plain.source and "numpy.sqrt" in plain.source
    compile(plain.source, "<adam>", "exec")
    assert "p *= -lr*weight_decay + 1" in gc.optim.AdamW(lr=0.1).source  # decoupled: the param itself


def test_update_source_is_identical_across_hash_seeds():
    code = ("import graphc as gc; print(gc.optim.SGD(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1).source);"
            "print(gc.optim.AdamW(lr=0.1).source);"
            "print(gc.compile(gc.zoo.blobs()[0]).train_step(gc.optim.Adam(lr=0.1, weight_decay=0.1)).source)")
    here = (gc.optim.SGD(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1).source + "\n"
            + gc.optim.AdamW(lr=0.1).source + "\n"
            + gc.compile(gc.zoo.blobs()[0]).train_step(gc.optim.Adam(lr=0.1, weight_decay=0.1)).source + "\n")
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": "4242"}).stdout
    assert there == here


def test_the_learning_rate_can_follow_a_schedule_and_stays_checked():
    optimizer = gc.optim.SGD(lr=0.1)
    source = optimizer.source
    prog, feeds = small_net(), small_feeds()
    expected = {name: feeds[name].copy() for name in PARAMS}
    step = prog.train_step(optimizer)
    for lr in (0.1, 0.05, 0.025):
        optimizer.lr = lr
        grads = reference_loss_and_grads(expected, feeds["x"], feeds["y"])[1]
        ReferenceSGD(lr).step(expected, grads)
        step(feeds)
    for name in PARAMS:
        np.testing.assert_allclose(feeds[name], expected[name], rtol=0, atol=TOL)
    assert optimizer.source == source  # the settings are arguments: no new code
    with pytest.raises(gc.HyperparameterError, match="lr must be positive"):
        optimizer.lr = -1.0
    assert optimizer.lr == 0.025


@pytest.mark.parametrize("case", ["nesterov_weight_decay", "adam_settings", "adamw"])
def test_float32_params_and_state_stay_float32(case):
    """A float32 network learns in float32 (its state too), close to the float64 run."""
    def build(dtype):
        g = gc.Graph("small32")
        x, y = g.input("x", shape=("N", 3), dtype=dtype), g.input("y", shape=("N", 2), dtype=dtype)
        W1, b1 = g.param("W1", shape=(3, 4), dtype=dtype), g.param("b1", shape=(4,), dtype=dtype)
        W2, b2 = g.param("W2", shape=(4, 2), dtype=dtype), g.param("b2", shape=(2,), dtype=dtype)
        g.output("loss", gc.mse(gc.tanh(x @ W1 + b1) @ W2 + b2, y))
        return gc.compile(g)

    make, _ = CASES[case]
    wide, narrow = small_feeds(), {k: v.astype(np.float32) for k, v in small_feeds().items()}
    optimizer = make()
    wide_step, narrow_step = build("float64").train_step(make()), build("float32").train_step(optimizer)
    for _ in range(STEPS):
        wide_step(wide)
        narrow_step(narrow)
    for name in PARAMS:
        assert narrow[name].dtype == np.float32
        assert all(a.dtype == np.float32 for a in optimizer.state[name].values())
        np.testing.assert_allclose(narrow[name], wide[name], rtol=1e-4, atol=1e-5)


def test_one_generated_update_for_every_param_with_names_made_safe():
    """The step's update is one printed function over every param; any param name (a
    setting's name, another param's gradient name, quotes, a newline) becomes a legal,
    distinct identifier, and the result is the rule's, param by param."""
    names = ["lr", "d_w", "w", 'x"""\nimport os #']
    g = gc.Graph("names"); x = g.input("x", shape=(2,))
    params = [g.param(name, shape=(2,)) for name in names]
    total = params[0] * x
    for k, p in enumerate(params[1:], 2):
        total = total + gc.tanh(p * x * k)
    g.output("loss", gc.sum(total * total))
    prog = gc.compile(g)
    rng = np.random.default_rng(3)
    feeds = {"x": rng.normal(size=2), **{name: rng.normal(size=2) for name in names}}
    expected = {name: feeds[name].copy() for name in names}
    step, by_param = prog.train_step(gc.optim.Adam(lr=0.1, weight_decay=0.1)), gc.optim.Adam(lr=0.1, weight_decay=0.1)
    for _ in range(4):
        _, grads = prog.value_and_grad({**feeds, **expected})
        by_param.update_all(expected, grads)
        step(feeds)
    for name in names:  # the same rule, printed twice (by the emitter, by the rule): equal to rounding
        np.testing.assert_allclose(feeds[name], expected[name], rtol=0, atol=TOL)
    # the name reaches the code only inside comments (as its repr): no token of code says import os
    code = [tok for tok in tokenize.generate_tokens(io.StringIO(step.source).readline) if tok.type != tokenize.COMMENT]
    assert "import os" in step.source and not any(tok.string == "os" or "import os" in tok.string for tok in code)
    assert "    lr_, d_lr, m_lr, v_lr,\n" in step.source
    assert "\n    t, lr, beta1, beta2, eps, weight_decay,\n" in step.source
    assert step.source == prog.train_step(gc.optim.Adam(lr=0.5, weight_decay=0.2)).source  # settings are arguments


def test_params_stepped_apart_keep_their_own_step_counts():
    """When the optimizer also updated some params elsewhere, each param keeps its own t
    (the per-param update), as PyTorch keeps state["step"] per param."""
    prog, feeds = small_net(), small_feeds()
    twin = {name: feeds[name].copy() for name in feeds}
    ours, theirs = gc.optim.Adam(lr=0.05), gc.optim.Adam(lr=0.05)
    for optimizer, arrays in ((ours, feeds), (theirs, twin)):
        optimizer.update("b2", arrays["b2"], np.ones(2))  # one step more for b2
    step = prog.train_step(ours)
    for _ in range(3):
        step(feeds)
        _, grads = prog.value_and_grad(twin)
        theirs.update_all(twin, grads)
    assert ours.steps == theirs.steps == {"W1": 3, "b1": 3, "W2": 3, "b2": 4}
    for name in PARAMS:
        np.testing.assert_array_equal(feeds[name], twin[name])


def _by_param_path(make, feeds):
    """Today's reference path inside graphc: value_and_grad, then the optimizer's own
    per-param update (its generated one-param function), one call per param."""
    optimizer, prog = make(), small_net()

    def step(arrays):
        outputs, grads = prog.value_and_grad(arrays)
        for name in PARAMS:
            optimizer.update(name, arrays[name], grads[name])
        return float(outputs["loss"])
    return step


def _reference_state(reference, name):
    """The reference's state for param ``name`` by the rule's state names."""
    if isinstance(reference, ReferenceSGD):
        return {"buf": reference.b[name]} if reference.mu else {}
    return {"m": reference.m[name], "v": reference.v[name]}


@pytest.mark.parametrize("case", list(CASES))
def test_the_compiled_step_is_one_function_whose_state_is_the_rules(case):
    """The generated train_step (forward, backward and update in one function) matches, for
    ten steps, both the per-param path (value_and_grad, then one update per param) and the
    hand-written rule; its state, read by the names step.source gives it, is the rule's
    momentum buffer or moments, step by step; value_and_grad is not called."""
    make, make_reference = CASES[case]
    prog, feeds = small_net(), small_feeds()
    step, reference = prog.train_step(make()), make_reference()
    twin = {name: feeds[name].copy() for name in feeds}
    by_param = _by_param_path(make, twin)
    expected = {name: feeds[name].copy() for name in PARAMS}

    def refused(*_args, **_kwargs):
        raise AssertionError("the compiled step runs its own generated function")
    prog.value_and_grad = refused
    for k in range(STEPS):
        grads = reference_loss_and_grads(expected, feeds["x"], feeds["y"])[1]
        loss = step(feeds)
        assert loss == pytest.approx(by_param(twin), abs=TOL)
        reference.step(expected, grads)
        state = step.state
        assert state["t"] == k + 1
        for name in PARAMS:
            np.testing.assert_allclose(feeds[name], twin[name], rtol=0, atol=TOL, err_msg=f"{name}, step {k + 1}")
            np.testing.assert_allclose(feeds[name], expected[name], rtol=0, atol=TOL, err_msg=f"{name}, step {k + 1}")
            named = {role: state[ident] for ident, (param, role) in step.state_names.items() if param == name}
            want = _reference_state(reference, name)
            assert sorted(named) == sorted(want)
            for role in want:
                np.testing.assert_allclose(named[role], want[role], rtol=0, atol=TOL, err_msg=f"{role} of {name}")
    assert "def train_step(" in step.source and "train_forward(" in step.source and "backward_pass(" in step.source
    for ident in step.state_names:  # every state array is an argument of the step, by its name
        assert f" {ident}," in step.source.split("):")[0]


def test_a_saved_step_state_resumes_where_it_stopped(tmp_path):
    """Five steps, save, a fresh optimizer loads the file and takes five more: the same
    params and state as ten steps in one go."""
    make = CASES["adam_settings"][0]
    straight, resumed = small_feeds(), small_feeds()
    prog = small_net()
    step = prog.train_step(make())
    for _ in range(STEPS):
        step(straight)
    first = prog.train_step(make())
    for _ in range(STEPS // 2):
        first(resumed)
    path = first.save_state(tmp_path / "adam.npz")
    second = prog.train_step(make())
    second.load_state(path)
    assert second.t == STEPS // 2
    for _ in range(STEPS - STEPS // 2):
        second(resumed)
    for name in PARAMS:
        np.testing.assert_array_equal(resumed[name], straight[name])
    for ident, value in step.state.items():
        np.testing.assert_array_equal(second.state[ident], value)


def test_a_bad_step_state_file_is_a_feed_error_naming_the_value(tmp_path):
    prog, feeds = small_net(), small_feeds()
    step = prog.train_step(gc.optim.SGD(lr=0.1, momentum=0.9))
    with pytest.raises(gc.GraphcError, match="no optimizer state for 'W1' yet"):
        step.save_state(tmp_path / "early.npz")
    step(feeds)
    good = dict(np.load(step.save_state(tmp_path / "s.npz")))
    cases = {
        "missing": ({k: v for k, v in good.items() if k != "buf_b2"}, r"missing \['buf_b2'\]"),
        "unknown": ({**good, "extra": np.zeros(1)}, r"unknown \['extra'\]"),
        "shape": ({**good, "buf_W1": np.zeros((4, 3))}, r"'buf_W1' \(state 'buf' of param 'W1'\) must be float64 "
                                                         r"of shape \(3, 4\), found float64 of shape \(4, 3\)"),
        "count": ({**good, "t": np.array(-1)}, "'t' must be a step count"),
    }
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(gc.FeedError, match="not a step state file"):
        step.load_state(tmp_path / "text.npz")
    for label, (arrays, match) in cases.items():
        np.savez(tmp_path / f"{label}.npz", **arrays)
        with pytest.raises(gc.FeedError, match=match):
            step.load_state(tmp_path / f"{label}.npz")
    np.testing.assert_array_equal(step.state["buf_W1"], good["buf_W1"])  # a refused file changed nothing


def test_a_failing_update_changes_no_param_and_no_state():
    """The step computes every new value before it writes one: an overflow in the update
    (under numpy.errstate(all="raise")) leaves the params, the momentum buffer and the step
    count as they were."""
    g = gc.Graph("big"); x = g.input("x", shape=(1,)); w = g.param("w", shape=(1,)); b = g.param("b", shape=(1,))
    g.output("loss", gc.sum(x * w + b))
    step = gc.compile(g).train_step(gc.optim.SGD(lr=10.0, momentum=0.9, weight_decay=0.5))
    feeds = {"x": np.ones(1), "w": np.array([1.0]), "b": np.array([0.0])}
    step(feeds)
    before = {"w": feeds["w"].copy(), "b": feeds["b"].copy(), **{k: np.copy(v) for k, v in step.state.items()}}
    feeds["w"][...] = 1e308  # wd * w + dL/dw = 5e307: w - lr * buf overflows
    before["w"] = feeds["w"].copy()
    with np.errstate(all="raise"), pytest.raises(FloatingPointError):
        step(feeds)
    for name in ("w", "b"):
        np.testing.assert_array_equal(feeds[name], before[name])
    for ident, value in step.state.items():
        np.testing.assert_array_equal(value, before[ident], err_msg=ident)
    assert step.t == 1


def test_the_update_is_a_graph_of_the_rule_planned_and_printed_by_the_compiler():
    """step.update.graph holds the state and the settings as inputs and one elementwise node
    per assignment of the rule per param; its outputs are the new params and state, which
    step.plan returns, and a scalar param is updated too."""
    g = gc.Graph("scalar"); x = g.input("x", shape=("N",)); s = g.param("s", shape=()); w = g.param("w", shape=(2, 3))
    g.output("loss", gc.sum(gc.tanh(x * s)) + gc.sum(w * w))
    prog = gc.compile(g)
    step = prog.train_step(gc.optim.AdamW(lr=0.1))
    graph = step.update.graph
    inputs = set(graph.graph["inputs"])
    assert {node for node, _, _ in step.update.state} <= inputs and set(step.update.scalars) <= inputs
    # AdamW per param: the decay, m, v, the param; and the bias corrections once, for both
    assert [graph.nodes[n]["op"] for n in graph if n not in inputs and n not in ("s", "w")] == ["fused"] * 10
    assert [r.node for r in step.plan.returns] == [new for _, new in step.update.updated] == graph.graph["outputs"]
    assert tuple(graph.nodes["new_w"]["shape"]) == (2, 3) and tuple(graph.nodes["new_s"]["shape"]) == ()
    feeds = {"x": np.array([0.5, -1.0, 2.0]), "s": np.array(0.3), "w": np.ones((2, 3))}
    expected = {"s": feeds["s"].copy(), "w": feeds["w"].copy()}
    reference = ReferenceAdam(0.1, weight_decay=0.01, decoupled=True)
    for _ in range(3):
        _, grads = prog.value_and_grad({**feeds, **expected})
        reference.step(expected, grads)
        step(feeds)
    for name in ("s", "w"):
        np.testing.assert_allclose(feeds[name], expected[name], rtol=0, atol=TOL)


@pytest.mark.parametrize("case", ["nesterov_weight_decay", "adam_settings", "adamw"])
def test_the_update_graph_verifies_and_the_reference_interpreter_agrees_with_its_code(case):
    """The update graph is a graph of graphc's IR: verify accepts it, and graphc's reference
    interpreter, run on it, gives the new params and state the generated update returns."""
    from graphc.evaluate import evaluate
    from graphc.verify import verify

    prog, feeds = small_net(), small_feeds()
    step = prog.train_step(CASES[case][0]())
    update = step.update
    verify(update.graph)
    for _ in range(2):  # a state that is not zeros
        step(feeds)
    _, grads = prog.value_and_grad(feeds)
    given = {p: feeds[p] for p in update.params}
    given.update({g: grads[p] for p, g in zip(update.params, update.grads)})
    given.update({node: step.state[ident] for ident, (node, _p, _r) in zip(step.state_names, update.state)})
    optimizer = step.optimizer
    given.update(dict(zip(update.scalars, [np.float64(step.t + 1)]
                          + [np.float64(optimizer.settings[h]) for h in optimizer.rule.hyper])))
    interpreted = evaluate(update.graph, given, [new for _, new in update.updated])
    printed = step._update(*[given[a] for a in update.arguments])
    assert len(printed) == len(update.updated)
    for (node, new), value in zip(update.updated, printed):
        np.testing.assert_allclose(value, interpreted[new], rtol=0, atol=TOL, err_msg=node)
        assert not np.allclose(value, given[node])  # every value moves: the comparison is not of inputs


def test_a_program_with_nothing_to_learn_steps_its_forward_pass_alone():
    """No param: the step is the forward pass and its loss; the update computes nothing
    (not even Adam's bias corrections) and no state appears."""
    g = gc.Graph("fixed"); x = g.input("x", shape=(2,))
    g.output("loss", gc.sum(x * x))
    step = gc.compile(g).train_step(gc.optim.Adam(lr=0.1))
    assert step({"x": np.array([1.0, 2.0])}) == 5.0
    assert step.state == {"t": 0} and step.params == []
    assert "forward_pass(x)" in step.source and "bias_root" not in step.source
