"""Loading a generated module: compiled one top-level def at a time, it is the module that
compiling the whole source makes (the same code objects, line numbers and all), and its
tracebacks, linecache lines and inspect.getsource point at the generated lines."""

from __future__ import annotations

import inspect
import linecache
import traceback
import types

import numpy as np
import pytest

import graphc as gc
from graphc.lower.load import _compiled, load_source, pieces


def trained():
    """An MLP with a sqrt: its backward divides by sqrt(h) (an error there under errstate)."""
    g = gc.Graph("load")
    x = g.input("x", shape=("N", 3))
    W1, b1 = g.param("W1", shape=(3, 4)), g.param("b1", shape=(4,))
    W2 = g.param("W2", shape=(4, 1))
    h = gc.sqrt(x @ W1 + b1).named("root")
    g.output("loss", gc.sum(gc.tanh(h @ W2)))
    return g


def code_objects(code: types.CodeType):
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from code_objects(const)


def functions_of(codes) -> dict[str, types.CodeType]:
    return {c.co_qualname: c for code in codes for c in code_objects(code) if c.co_name != "<module>"}


@pytest.mark.parametrize("graph", [trained, lambda: gc.zoo.get("mlp")()[0], lambda: gc.zoo.wide_relu()[0]])
def test_the_pieces_are_the_code_objects_of_the_whole_source(graph):
    source = gc.compile(graph()).source
    assert len(pieces(source)) > 3  # cut: the header, then one piece per def
    piecewise = functions_of(_compiled.__wrapped__(source, "<f>"))
    whole = functions_of([compile(source, "<f>", "exec", dont_inherit=True)])
    assert piecewise.keys() == whole.keys() and "backward_pass" in whole
    for name, want in whole.items():
        got = piecewise[name]
        assert got.co_firstlineno == want.co_firstlineno, name
        assert list(got.co_lines()) == list(want.co_lines()), name
        assert list(got.co_positions()) == list(want.co_positions()), name
        assert got == want, name  # bytecode, constants, names, flags: a call numpy.f() compiles alike


def test_a_traceback_in_the_backward_pass_shows_its_generated_line():
    prog = gc.compile(trained())
    feeds = {"x": np.zeros((2, 3)), "W1": np.ones((3, 4)), "b1": np.zeros(4), "W2": np.ones((4, 1))}
    with np.errstate(divide="raise", invalid="raise"), pytest.raises(FloatingPointError) as info:
        prog.value_and_grad(feeds)  # sqrt(0) is fine; its derivative divides by it
    frame = [f for f in traceback.extract_tb(info.value.__traceback__) if f.filename.startswith("<graphc")][-1]
    assert frame.name == "backward_pass"
    lines = prog.source.splitlines()
    first = next(k for k, line in enumerate(lines, start=1) if line.startswith("def backward_pass("))
    last = next(k for k, line in enumerate(lines[first:], start=first + 1) if line.startswith("def ")) - 1
    assert first < frame.lineno <= last, (first, frame.lineno, last)  # inside backward_pass, far down the module
    assert frame.line == lines[frame.lineno - 1].strip() == linecache.getline(frame.filename, frame.lineno).strip()
    assert "/" in frame.line or "divide" in frame.line or "sqrt" in frame.line, frame.line


def test_inspect_finds_each_generated_function():
    prog = gc.compile(trained())
    for name in ("forward_pass", "train_forward", "backward_pass", "sgd_step", "sgd_step_atomic", "value_and_grad"):
        function = getattr(prog.module, name)
        text = inspect.getsource(function)
        assert text.startswith(f"def {name}(") and text in prog.source, name
        lines, start = inspect.getsourcelines(function)
        assert prog.source.splitlines(keepends=True)[start - 1:start - 1 + len(lines)] == lines, name


def test_a_def_inside_a_string_leaves_the_module_whole():
    source = 'TEXT = """\ndef not_a_function():\n"""\n\n\ndef f():\n    return TEXT\n'
    module = load_source(source, "string")
    assert module.f() == "\ndef not_a_function():\n"
    assert not hasattr(module, "not_a_function")


def test_a_syntax_error_is_reported_at_its_line_in_the_whole_source():
    source = "import numpy\n\n\ndef f():\n    return 1\n\n\ndef g():\n    return (\n"
    with pytest.raises(SyntaxError) as info:
        load_source(source, "broken")
    assert info.value.lineno == 9, info.value.lineno


def test_decorators_stay_with_their_def_and_imports_bind_in_every_piece():
    source = ("import functools\nimport numpy as np\n\n\n@functools.lru_cache(maxsize=None)\ndef f(x):\n"
              "    return np.sqrt(x)\n\n\ndef g():\n    return f(4.0) + np.float64(1)\n")
    assert [first for first, _ in pieces(source)] == [1, 5, 10]
    module = load_source(source, "decorated")
    assert module.g() == 3.0 and module.f.cache_info().hits == 0
    whole = functions_of([compile(source, "<f>", "exec", dont_inherit=True)])
    assert functions_of(_compiled.__wrapped__(source, "<f>")) == whole


def test_an_import_after_the_first_def_leaves_the_module_whole():
    source = "import numpy\n\n\ndef f():\n    return math.pi\n\n\nimport math\n\n\ndef g():\n    return f()\n"
    assert pieces(source) is None
    assert load_source(source, "late import").g() == np.pi
