"""Generated code reads like an expert's, on every network of the lecture's zoo.

Each property is checked on the generated source: a formula comment computes what the
kernel under it computes (the comment is run as code on the values the kernel starts
from); the kink convention is said once per function; a level heading stands over two
statements or more; a buffer is never renamed by ``a = b; del b``; the forward pass is
printed once for inference and once for training (``sgd_step`` calls ``train_forward``).
"""

from __future__ import annotations

import ast
import re

import numpy as np
import pytest

import graphc as gc

ZOO = ["linear_regression", "logistic_classifier", "relu_neuron", "wide_relu", "residual", "recall_xor", "mlp",
       "deep_sigmoid", "deep_residual", "two_moons", "blobs"]

FORMULA = re.compile(r"(\s*)# (\w+) = (.+)  \((?:in (\w+)'s buffer: )?'[^']*' \w+.*\)$")


def _stack():
    """Sigmoid and tanh layers: the values the compiler names sigmoid, sigmoid_1..., which a
    formula comment must not confuse with the function sigmoid."""
    g = gc.Graph("stack")
    x, W, a = g.input("x", shape=("N", 4)), g.param("W", shape=(4, 4)), g.param("a", shape=(4,))
    h = x @ W
    for k in range(4):
        h = gc.tanh(h * a) if k % 2 else gc.sigmoid(h + a)
    g.output("loss", gc.mean(gc.square(h)))
    rng = np.random.default_rng(0)
    return g, {"x": rng.normal(size=(5, 4)), "W": rng.normal(size=(4, 4)), "a": rng.normal(size=4)}


OTHERS = {"stack": _stack}


def _program(name):
    g, feeds = (OTHERS.get(name) or gc.zoo.get(name))()
    return gc.compile(g), feeds


# what a formula comment's names mean, written here in plain numpy
READER = {"sigmoid": lambda z: 1 / (1 + np.exp(-z)),
          "softplus": lambda z: np.log1p(np.exp(-np.abs(z))) + np.maximum(z, 0)}


def _kernel_end(lines: list[str], start: int) -> int:
    """The index after the last line of the kernel that starts at ``start``."""
    k = start
    while k < len(lines):
        text = lines[k].strip()
        if not text or text.startswith(("#", "del ", "return")) or "  # " in lines[k]:
            break
        k += 1
    return k


def with_formula_checks(source: str) -> tuple[str, int]:
    """``source`` with each formula comment run as code before its kernel and compared
    with the kernel's result after it; and how many formulas it checks."""
    lines, out, count, k = source.splitlines(), [], 0, 0
    while k < len(lines):
        match = FORMULA.fullmatch(lines[k])
        if not match:
            out.append(lines[k])
            k += 1
            continue
        indent, own, formula, buffer = match.groups()
        end = _kernel_end(lines, k + 1)
        assert end > k + 1, f"formula comment {lines[k]!r} heads no kernel"
        out += [lines[k], f"{indent}__want = {formula}"] + lines[k + 1:end]
        copied = f"numpy.array({buffer or own})"  # a copy: later kernels reuse the buffer
        out.append(f"{indent}__CHECKS.append(({own!r}, __want, {copied}))")
        count, k = count + 1, end
    return "\n".join(out) + "\n", count


@pytest.mark.parametrize("name", ZOO + list(OTHERS))
def test_every_formula_comment_computes_what_the_kernel_under_it_computes(name):
    prog, feeds = _program(name)
    checked, count = with_formula_checks(prog.source)
    checks = []
    namespace = {"__CHECKS": checks, "__name__": f"checked_{name}", **READER}
    exec(compile(checked, f"<checked {name}>", "exec"), namespace)  # noqa: S102 - our own generated code
    with np.errstate(all="ignore"):
        outputs = namespace["forward"](feeds)
        seed = np.ones(np.shape(outputs[namespace["TARGET"]]))  # a constant cotangent; outputs may be arrays
        namespace["value_and_grad"](feeds, seed=seed)
    assert count > 0 and len(checks) >= count // 2, (count, len(checks))  # most kernels run on these paths
    for own, want, got in checks:
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14, err_msg=f"{name}: the formula of {own}")


def test_the_check_catches_a_formula_that_does_not_match_its_kernel():
    source = "\n".join([
        "def f(a, b):",
        "    # c = a + b  ('c' fused)",
        "    c = numpy.multiply(a, b)",
        "    numpy.add(c, 1, out=c)",
        "    return c",
    ])
    checked, count = with_formula_checks(source)
    checks = []
    namespace = {"__CHECKS": checks, "numpy": np}
    exec(compile(checked, "<bad>", "exec"), namespace)  # noqa: S102
    namespace["f"](np.array([2.0]), np.array([3.0]))
    (own, want, got), = checks
    assert count == 1 and own == "c" and want[0] == 5.0 and got[0] == 7.0


@pytest.mark.parametrize("name", ["wide_relu", "logistic_classifier", "deep_sigmoid", "stack"])
def test_a_formula_comment_says_the_math_not_the_stable_code(name):
    prog, _ = _program(name)
    formulas = [line for line in prog.source.splitlines() if FORMULA.fullmatch(line)]
    assert formulas
    for line in formulas:
        said = line.split("  (")[0]
        assert ".astype(" not in said and "709.0" not in said and "logaddexp" not in said, line
    if name == "wide_relu":  # ReLU's kink: a boolean the training forward computes, z2 >= 0
        assert any("*z2_mask" in line for line in formulas)
        assert re.search(r"^\s*z2_mask = \(\w+ >= numpy\.float64\(0\.0\)\)  # 'z2_mask' greater_equal$",
                         prog.source, flags=re.M)
    assert name == "wide_relu" or any("sigmoid(" in line for line in formulas)
    code = [line.split("  #")[0].strip() for line in prog.source.splitlines()]
    assert not any(re.match(r"(sigmoid|softplus) = ", line) for line in code)  # those name the functions


def _functions(source: str):
    for function in ast.parse(source).body:
        if isinstance(function, ast.FunctionDef):
            yield function.name, ast.get_source_segment(source, function)


@pytest.mark.parametrize("name", ZOO)
def test_the_reading_rules_hold_for_every_function(name):
    prog, _ = _program(name)
    kinks = {"dReLU/dz = 0 if z < 0", "ties split the gradient"}
    for function, text in _functions(prog.source):
        lines = [line.strip() for line in text.splitlines()]
        for kink in kinks:
            assert text.count(kink) <= 1, f"{name}.{function}: the note {kink!r} is said {text.count(kink)} times"
        for k, line in enumerate(lines[:-1]):
            pair = re.fullmatch(r"(\w+) = (\w+)", line.split("  #")[0])
            assert not (pair and lines[k + 1].startswith("del ") and pair.group(2) in lines[k + 1][4:].split(", ")), \
                f"{name}.{function}: {line}; {lines[k + 1]}"
        headings = [k for k, line in enumerate(lines) if line.startswith("# level ")]
        for k in headings:
            end = next((j for j in range(k + 1, len(lines)) if lines[j].startswith("# level ")), len(lines))
            statements = [line for line in lines[k + 1:end]
                          if line and not line.startswith(("#", "del ", "return", '"""'))]
            heads = [line for line in lines[k + 1:end] if FORMULA.fullmatch(line) or "  # '" in line]
            assert len(heads) >= 2, f"{name}.{function}: {lines[k]} stands over {statements}"


@pytest.mark.parametrize("name", ZOO)
def test_the_forward_pass_is_printed_once_for_inference_and_once_for_training(name):
    prog, _ = _program(name)
    first = next(line for line in prog.forward_source.splitlines() if "  # '" in line)
    statement = first.split("  # ")[1]  # the node and op it came from: the same in both forwards
    assert prog.source.count(f"  # {statement}") <= 2, f"{name}: {statement!r} is printed more than twice"
    sgd = dict(_functions(prog.source)).get("sgd_step")  # made for a scalar target only
    assert sgd is None or "train_forward(" in sgd and f"# {statement}" not in sgd
