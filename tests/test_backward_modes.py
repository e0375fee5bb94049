"""backward_pass's two modes: it returns the gradients and changes no param, or, given
``update`` (what sgd_step passes), it updates every param in place and returns ().

One function, one plan: the update steps run only under ``if update is not None``. The
references are independent of that guard: float64 central differences for the gradients,
and sgd_step_atomic (backward_pass returning the gradients, then p - g) for the params,
bit for bit; a saved module, run with numpy alone, must do the same.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from numeric_reference import feed_grad

import graphc as gc
from graphc import schedule, zoo

LR = 0.05
ZOO = ["linear_regression", "relu_neuron", "wide_relu", "residual", "mlp", "deep_sigmoid", "two_moons", "blobs"]


def gradient_read_again():
    """d_p is d_z, and d_r = 2 x d_z is computed from it: p's update must wait for that read,
    and d_z, returned when backward_pass does not update, is no step's buffer to write into."""
    g = gc.Graph("again")
    x = g.input("x", shape=(4, 3))
    r, p = g.param("r", shape=(4, 3)), g.param("p", shape=(4, 3))
    g.output("loss", gc.sum(gc.tanh(x * (r * 2.0) + p)))
    rng = np.random.default_rng(5)
    return g, {"x": rng.normal(size=(4, 3)), "r": rng.normal(size=(4, 3)), "p": rng.normal(size=(4, 3))}


def shared_and_viewed():
    """W read by two layers and through its transpose: it is saved for the backward pass
    (read there), so only b travels in ``update``."""
    g = gc.Graph("shared_and_viewed")
    x = g.input("x", shape=("N", 4))
    W, b = g.param("W", shape=(4, 4)), g.param("b", shape=(4,))
    h = gc.tanh(x @ W + b)
    g.output("loss", gc.sum(gc.square(gc.sigmoid(h @ W.T) @ W)))
    rng = np.random.default_rng(3)
    return g, {"x": rng.normal(size=(5, 4)), "W": rng.normal(size=(4, 4)) / 2, "b": rng.normal(size=4)}


def normalized():
    """t's gradient d_t = x * d_loss is read again levels later (d_s = d_t * n): t's update
    must come after that read, so that the update is the last use of d_t and frees it."""
    g = gc.Graph("normalized")
    x = g.input("x", shape=(4, 3))
    p, s, t = (g.param(n, shape=(4, 3)) for n in ("p", "s", "t"))
    c = p - gc.mean(p, axis=0, keepdims=True)
    n = c / gc.sqrt(gc.mean(gc.square(c), axis=0, keepdims=True) + 1e-5)
    g.output("loss", gc.sum(x * (n * s + t)))
    rng = np.random.default_rng(7)
    return g, {k: rng.normal(size=(4, 3)) for k in ("x", "p", "s", "t")}


def scalar_between():
    """A 0-d param between array params: the atomic step computes its new value apart (its
    gradient may be a numpy scalar), so the array params come in two runs, two loops over
    slices of the params' and the gradients' tuples."""
    g = gc.Graph("scalar_between")
    x = g.input("x", shape=("N", 3))
    W, s = g.param("W", shape=(3, 3)), g.param("s", shape=())
    V, U = g.param("V", shape=(3, 3)), g.param("U", shape=(3, 1))
    g.output("loss", gc.sum(gc.tanh(gc.tanh(x @ W * s) @ V) @ U))
    rng = np.random.default_rng(9)
    return g, {"x": rng.normal(size=(5, 3)), "W": rng.normal(size=(3, 3)), "s": np.array(0.7),
               "V": rng.normal(size=(3, 3)), "U": rng.normal(size=(3, 1))}


NETS = {name: (lambda name=name: zoo.get(name)()) for name in ZOO}
NETS.update(again=gradient_read_again, shared=shared_and_viewed, normalized=normalized, scalar=scalar_between)


def test_the_atomic_step_with_a_scalar_param_between_arrays_moves_each_by_lr_times_its_gradient():
    graph, feeds = scalar_between()
    prog = gc.compile(graph)
    atomic = prog.source.split("\ndef sgd_step_atomic(")[1].split("\ndef ")[0]
    assert "zip(params[2:4], grads[2:4])" in atomic and "new_s = s - grads[1]" in atomic, atomic
    _, grads = prog.value_and_grad(copies(feeds))
    loss = lambda f: float(gc.evaluate(graph, f, "loss")["loss"])  # noqa: E731
    stepped = copies(feeds)
    prog.module.sgd_step_atomic(*args_of(prog.module, stepped), LR)
    for name in graph.params:
        np.testing.assert_allclose(grads[name], feed_grad(loss, feeds, name), rtol=1e-6, atol=1e-9, err_msg=name)
        np.testing.assert_allclose(stepped[name], feeds[name] - LR * grads[name], rtol=1e-14, atol=1e-15,
                                   err_msg=name)


def copies(feeds: dict) -> dict:
    return {k: np.array(v, dtype=np.float64, copy=True) for k, v in feeds.items()}


def args_of(module, arrays: dict) -> list:
    return [arrays[name] for name in module.INPUTS + module.PARAMS]


def update_args(prog, arrays: dict) -> tuple:
    """What sgd_step passes as ``update``: the params backward_pass does not otherwise read."""
    return tuple(arrays[name] for name in prog.plan.function("backward_pass").update_args)


@pytest.fixture(scope="module", params=sorted(NETS))
def net(request):
    graph, feeds = NETS[request.param]()
    return graph, copies(feeds), gc.compile(graph)


def test_without_update_no_param_changes_and_the_gradients_are_central_differences(net):
    graph, feeds, prog = net
    module, arrays = prog.module, copies(feeds)
    outputs, saved = module.train_forward(*args_of(module, arrays))
    grads = dict(zip(module.GRADS, module.backward_pass(saved, np.float64(1.0))))
    for name in graph.params:
        assert arrays[name].tobytes() == feeds[name].tobytes(), f"{name} changed"
    _, expected = prog.value_and_grad(copies(feeds))
    loss = lambda f: float(gc.evaluate(graph, f, "loss")["loss"])  # noqa: E731
    for name in graph.params:
        assert grads[name].tobytes() == expected[name].tobytes(), name
        np.testing.assert_allclose(grads[name], feed_grad(loss, feeds, name), rtol=1e-6, atol=1e-8, err_msg=name)


def test_with_update_every_param_is_the_atomic_steps_bit_for_bit(net):
    graph, feeds, prog = net
    module = prog.module
    eager, atomic = copies(feeds), copies(feeds)
    _, saved = module.train_forward(*args_of(module, eager))
    assert module.backward_pass(saved, np.float64(LR), update=update_args(prog, eager)) == ()
    assert saved == []  # emptied: each saved value was freed after its last use
    module.sgd_step_atomic(*args_of(module, atomic), LR)
    moved = [name for name in graph.params if not np.array_equal(atomic[name], feeds[name])]
    assert moved, "the step moved no param"
    for name in graph.params:
        assert eager[name].tobytes() == atomic[name].tobytes(), f"{name} differs from the atomic step"
    for name in graph.inputs:
        assert eager[name].tobytes() == feeds[name].tobytes(), f"input {name} was written into"


def test_each_param_has_one_update_after_every_read_of_it_and_of_its_gradient(net):
    graph, _, prog = net
    plan = prog.plan.function("backward_pass")
    updates = [k for k, step in enumerate(plan.steps) if step.grad is not None]
    assert sorted(plan.steps[k].node for k in updates) == sorted(graph.params)
    joint = prog.plan.joint
    for k in updates:
        step = plan.steps[k]
        arrays = {step.node, schedule.base(joint, step.grad), schedule._memory(joint, step.grad)[0]}
        for later in plan.steps[k + 1:]:
            if later.grad is None:
                read = {schedule._memory(joint, r)[0] for r in later.reads} | set(later.reads)
                assert not read & arrays, f"{later.node!r} reads {sorted(read & arrays)} after {step.node!r}'s update"
        assert not any(arrays & s.donates for s in plan.steps), "a gradient's buffer was written into"


def test_a_gradient_read_again_is_no_buffer_to_write_into_and_both_modes_are_right():
    graph, feeds = gradient_read_again()
    prog = gc.compile(graph)
    grads = prog.value_and_grad(copies(feeds))[1]
    loss = lambda f: float(gc.evaluate(graph, f, "loss")["loss"])  # noqa: E731
    for name in graph.params:
        np.testing.assert_allclose(grads[name], feed_grad(loss, feeds, name), rtol=1e-6, atol=1e-9)
    stepped = copies(feeds)
    prog.sgd_step(stepped, LR)
    for name in graph.params:
        np.testing.assert_allclose(stepped[name], feeds[name] - LR * grads[name], rtol=1e-14, atol=1e-15)


def test_sgd_step_asks_backward_pass_to_update_and_the_atomic_step_does_not():
    prog = gc.compile(shared_and_viewed()[0])
    assert prog.plan.function("backward_pass").update_args == ("b",)
    eager = prog.source.split("\ndef sgd_step(")[1].split("\ndef ")[0]
    atomic = prog.source.split("\ndef sgd_step_atomic(")[1].split("\ndef ")[0]
    assert "backward_pass(saved, numpy.float64(lr), update=(b,))" in eager
    assert "backward_pass(saved, numpy.float64(lr))" in atomic
    assert "def backward_update" not in prog.source


def test_a_saved_module_has_both_modes_with_numpy_alone(tmp_path):
    graph, feeds = shared_and_viewed()
    prog = gc.compile(graph)
    path = prog.save(tmp_path / "modes.py")
    expected_grads = prog.value_and_grad(copies(feeds))[1]
    atomic = copies(feeds)
    prog.module.sgd_step_atomic(*args_of(prog.module, atomic), LR)
    values = json.dumps({k: v.tolist() for k, v in feeds.items()})
    code = f"""
import sys; sys.modules['graphc'] = None; sys.modules['sympy'] = None; sys.modules['networkx'] = None
import importlib.util, json, numpy as np
spec = importlib.util.spec_from_file_location('modes', {str(path)!r})
m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
feeds = {{k: np.array(v) for k, v in json.loads({values!r}).items()}}
arrays = {{k: v.copy() for k, v in feeds.items()}}
_, saved = m.train_forward(*(arrays[k] for k in m.INPUTS + m.PARAMS))
grads = m.backward_pass(saved, np.float64(1.0))
unchanged = all(arrays[k].tobytes() == feeds[k].tobytes() for k in m.PARAMS)
_, saved = m.train_forward(*(arrays[k] for k in m.INPUTS + m.PARAMS))
returned = m.backward_pass(saved, np.float64({LR!r}), update=(arrays['b'],))
print(json.dumps({{"unchanged": unchanged, "returned": list(returned),
                  "grads": {{k: g.tolist() for k, g in zip(m.GRADS, grads)}},
                  "params": {{k: arrays[k].tolist() for k in m.PARAMS}}}}))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["unchanged"] and result["returned"] == []
    for name in graph.params:  # json floats round-trip exactly (shortest repr)
        assert np.array(result["grads"][name]).tobytes() == expected_grads[name].tobytes(), name
        assert np.array(result["params"][name]).tobytes() == atomic[name].tobytes(), name


def test_an_array_api_module_has_no_update_mode_and_the_same_gradients():
    graph, feeds = shared_and_viewed()
    numpy_prog = gc.compile(graph)
    strict = gc.compile(graph, backend="array_api_strict")
    backward = strict.source.split("\ndef backward_pass(")[1].split("\ndef ")[0]
    assert strict.plan.function("backward_pass").updates  # planned with them, printed without
    assert "update" not in backward and "def sgd_step" not in strict.source
    grads = {k: np.asarray(v._array) for k, v in strict.value_and_grad(copies(feeds))[1].items()}
    for name, value in numpy_prog.value_and_grad(copies(feeds))[1].items():
        np.testing.assert_allclose(grads[name], value, rtol=1e-13, atol=1e-15)
