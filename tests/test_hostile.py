"""The hostile corpus (tests/hostile_corpus.py) through the API and the command line, and the
hardening that is not about one file: special files, limits, paths, the terminal, atomic saves."""

from __future__ import annotations

import ast
import json
import os
import threading

import networkx as nx
import numpy as np
import pytest
from hostile_corpus import CASES, MAX_SIN, base, custom

import graphc as gc
from graphc.cli import main, printable, random_feeds
from graphc.errors import FileError, LimitError
from graphc.render.formulas import gradient_formulas, to_mathml


def _all_the_way(path) -> gc.testing.GradientReport:
    """What ``graphc check`` does, through the API: load, compile, run, check gradients."""
    graph = gc.load(path)
    prog = gc.compile(graph)
    feeds = random_feeds(graph.nx)
    prog.forward(feeds)
    return gc.check_gradients(prog, feeds)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_every_hostile_file_is_a_typed_error_or_a_right_answer_from_the_api(case, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = case.write(tmp_path)
    if case.expect is None:
        assert _all_the_way(path).ok
    else:
        with pytest.raises(case.error) as caught:
            _all_the_way(path)
        assert case.expect in str(caught.value)
        assert path.name in str(caught.value)  # the refusal says which file
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_every_hostile_file_is_one_escaped_line_and_status_2_on_the_command_line(case, tmp_path, capsys,
                                                                                  monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = case.write(tmp_path)
    status = main(["check", str(path)])
    out, err = capsys.readouterr()
    assert status == (0 if case.expect is None else 2), err
    if case.expect is not None:
        assert err.count("\n") == 1 and err.startswith("graphc: ") and case.expect in err
    for text in (out, err):
        assert text.isprintable() or set(text) - set(printable(text)) <= {"\n"}, repr(text)


# -- item 3: special files -----------------------------------------------------------------

def _load_within(path, seconds: float = 20.0):
    """gc.load in a thread, so a read that blocks fails the test instead of hanging it."""
    outcome: list = []

    def run():
        try:
            outcome.append(gc.load(path))
        except BaseException as error:  # noqa: BLE001 - handed to the test
            outcome.append(error)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    assert outcome, f"gc.load({path!s}) blocked"
    return outcome[0]


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_a_device_is_refused_before_any_read():
    error = _load_within("/dev/zero")
    assert isinstance(error, FileError) and "is a device" in str(error)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_without_a_writer_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "pipe.json")
    error = _load_within(tmp_path / "pipe.json")
    assert isinstance(error, FileError) and "is a FIFO" in str(error)


def test_a_folder_is_refused(tmp_path):
    (tmp_path / "net.json").mkdir()
    error = _load_within(tmp_path / "net.json")
    assert isinstance(error, FileError) and "is a folder" in str(error)
    assert main(["check", str(tmp_path / "net.json")]) == 2


def test_the_size_limit_is_what_is_read_and_can_be_raised(tmp_path):
    path = gc.save(gc.io.from_data(base()), tmp_path / "g.json")
    size = path.stat().st_size
    with pytest.raises(LimitError, match=f"is {size}, more than the limit file_bytes=100"):
        gc.load(path, limits={"file_bytes": 100})
    assert gc.load(path, limits={"file_bytes": size}).name == "plain"


# -- items 1 and 2: limits name themselves, and raising them lets a trusted file in ----------

def test_a_refused_expression_loads_once_its_limit_is_raised(tmp_path):
    path = tmp_path / "max.json"
    path.write_text(json.dumps(custom(MAX_SIN)()))
    with pytest.raises(LimitError) as caught:
        gc.load(path)
    message = str(caught.value)
    cost = gc.io.expression_cost(ast.parse(MAX_SIN, mode="eval").body)
    assert f"is {cost}, more than the limit expr_cost=2000" in message
    assert f"limits={{'expr_cost': {cost}}}" in message and f"--limit expr_cost={cost}" in message
    graph = gc.load(path, limits=gc.io.Limits(expr_cost=cost))
    assert any(gc.ops.op_for(graph, graph.nx.nodes[n]["op"]).builtin is False for n in graph.nx)


def test_the_cost_of_max_grows_with_the_square_of_its_arguments():
    def cost(text):
        return gc.io.expression_cost(ast.parse(text, mode="eval").body)

    args = [", ".join(f"sin(x0+{i})" for i in range(k)) for k in (2, 4, 8)]
    two, four, eight = (cost(f"Max({a})") for a in args)
    assert four / two > 3.5 and eight / four > 3.5  # k**2 times a sum growing with k: about k**3
    assert cost("x0 + 1") < cost("exp(exp(exp(x0)))") < cost("exp(" * 10 + "x0" + ")" * 10)


def test_the_expression_cost_counts_every_custom_op_of_the_file(tmp_path):
    data = base()
    text = "Max(sin(x0), cos(x0), tanh(x0), x0)"  # each alone within the limit, 40 together not
    single = gc.io.expression_cost(ast.parse(text, mode="eval").body)
    assert single < gc.io.Limits().expr_cost < 40 * single
    data["custom_ops"] = {f"many_{k}": {"arity": 1, "expr": text, "kink": ""} for k in range(40)}
    with pytest.raises(LimitError, match="for the file's other custom ops"):
        gc.io.from_data(data)


def test_the_command_line_raises_limits_with_a_flag(tmp_path, capsys):
    path = gc.save(gc.io.from_data(base()), tmp_path / "g.json")
    assert main(["check", str(path), "--limit", "nodes=3"]) == 2
    assert "the number of nodes is 10, more than the limit nodes=3" in capsys.readouterr().err
    assert main(["check", str(path), "--limit", "nodes=10", "--limit", "elements=100"]) == 0
    with pytest.raises(SystemExit) as exited:
        main(["check", str(path), "--limit", "bogus=1"])
    assert exited.value.code == 2 and "NAME one of file_bytes, nodes" in capsys.readouterr().err


def test_limits_themselves_are_checked():
    for bad in ({"nodes": 0}, {"rank": 65}, {"nodes": "many"}, {"speed": 1}):
        with pytest.raises(gc.GraphcError):
            gc.io.Limits.of(bad)


# -- item 4: output paths ------------------------------------------------------------------

@pytest.mark.parametrize("command", ["compile", "render", "explore"])
def test_output_folders_come_from_the_command_line_never_from_the_file(command, tmp_path, monkeypatch, capsys):
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    data = base()
    data["graph"]["name"] = "../../escaped_dir"
    (work / "net.json").write_text(json.dumps(data))
    options = ["--steps", "2"] if command == "explore" else ["--format", "dot"]
    assert main([command, "net.json", *options]) == 0
    capsys.readouterr()
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_dir()) == ["a", "b", "graphc-out", "net"]
    assert (work / "graphc-out" / "net").is_dir()


# -- item 5: the terminal ------------------------------------------------------------------

def test_names_reach_the_terminal_escaped(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    evil = "w\x1b]0;owned\x07\x1b[2J\u202e"
    data = json.loads(json.dumps(base()).replace('"w"', json.dumps(evil)))
    (tmp_path / "net.json").write_text(json.dumps(data))
    assert main(["compile", "net.json", "--format", "dot"]) == 0
    assert main(["code", "net.json", "--backward"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    assert "w\\x1b]0;owned\\x07\\x1b[2J\\u202e" in out  # the name shows, as text


def test_printable_escapes_only_what_a_terminal_acts_on():
    assert printable("plain ünïcödé ∂L/∂w") == "plain ünïcödé ∂L/∂w"
    assert printable("a\nb") == "a\nb"
    assert printable("\x1b[31m\x9b\t\ud800\U000e0001") == "\\x1b[31m\\x9b\\x09\\ud800\\U000e0001"


# -- item 6: calls and raw networkx graphs -------------------------------------------------

def _small_program():
    g = gc.Graph("t")
    x = g.input("x", shape=("N",))
    w = g.param("w", shape=())
    g.output("loss", gc.mean(x * w))
    return gc.compile(g)


@pytest.mark.parametrize("lr", ["0.1", None, True, float("nan"), [0.1], 1j])
def test_a_step_size_of_the_wrong_type_is_a_feed_error(lr):
    prog, w = _small_program(), np.ones(())
    with pytest.raises(gc.FeedError, match="lr"):
        prog.sgd_step({"x": np.ones(3), "w": w}, lr=lr)
    assert w == 1.0  # nothing was updated


@pytest.mark.parametrize("seed", ["abc", object(), {"a": 1}])
def test_a_seed_of_the_wrong_type_is_a_feed_error(seed):
    with pytest.raises(gc.FeedError, match="seed"):
        _small_program().value_and_grad({"x": np.ones(3), "w": np.ones(())}, seed=seed)


def test_an_empty_batch_is_a_feed_error():
    prog = _small_program()
    for call in (prog.forward, prog.value_and_grad):
        with pytest.raises(gc.FeedError, match="dim N .* is 0"):
            call({"x": np.zeros(0), "w": np.ones(())})
    prog.forward({"x": np.ones(2), "w": np.ones(())})  # the fast path has seen good feeds: still refused
    with pytest.raises(gc.FeedError, match="is 0"):
        prog.forward({"x": np.zeros(0), "w": np.ones(())})


def _raw(op: str, attrs: dict, dtype: str = "float64") -> nx.DiGraph:
    G = nx.DiGraph()
    G.add_node("x", op="input", shape=(2, 3), dtype=dtype)
    G.add_node("y", op=op, attrs=attrs, dtype=dtype)
    G.add_edge("x", "y")
    return G


@pytest.mark.parametrize("op,attrs,words", [
    ("transpose", {"axes": (1.0, 0.0)}, "attr 'axes' must be None or a tuple of ints"),
    ("leaky_relu", {"alpha": "0.1"}, "attr 'alpha' must be a real number"),
    ("sum", {"axis": 1, "keepdims": "yes"}, "attr 'keepdims' must be True or False"),
    ("reshape", {"shape": (1,) * 65 + (6,)}, "attr 'shape' must be a tuple of at most 64 dims"),
])
def test_raw_networkx_attrs_of_the_wrong_kind_are_graph_errors(op, attrs, words):
    with pytest.raises(gc.GraphError, match=words):
        gc.from_networkx(_raw(op, attrs))


@pytest.mark.parametrize("dtype", ["int64", "bool", "complex128", "object"])
def test_from_networkx_refuses_dtypes_that_are_not_floats(dtype):
    with pytest.raises(gc.GraphError, match="dtype"):
        gc.from_networkx(_raw("tanh", {}, dtype))


def test_from_networkx_keeps_float_dtypes_and_computes_right():
    prog = gc.compile(gc.from_networkx(_raw("tanh", {}, "float32")))
    x = np.full((2, 3), 0.5, dtype=np.float32)
    np.testing.assert_allclose(prog.forward({"x": x})["y"], np.tanh(x), rtol=1e-6)


def test_a_name_no_file_can_hold_is_refused_before_anything_is_written(tmp_path):
    g = gc.Graph("t")
    g.output("loss", gc.sum(g.input("x\ud800", shape=(2,))))
    with pytest.raises(gc.GraphError, match="lone surrogate"):
        gc.compile(g)


def test_a_folded_constant_that_overflows_prints_as_numpy_inf():
    # found by the fuzzer: 1e200 * 1e200 folds to inf, which printed as a bare name `inf`
    g = gc.Graph("big")
    x = g.input("x", shape=(2,))
    c = g.const(1e200)
    g.output("y", gc.sum(x) + c * c)
    prog = gc.compile(g)
    assert "numpy.inf" in prog.forward_source
    assert prog.forward({"x": np.ones(2)})["y"] == np.inf


# -- item 8: gc.save replaces a file whole or not at all -----------------------------------

def test_a_failed_save_keeps_the_old_file(tmp_path, monkeypatch):
    path = gc.save(gc.io.from_data(base()), tmp_path / "net.json")
    before = path.read_bytes()
    bad = gc.Graph("t")
    bad.output("loss", gc.sum(bad.input("x\ud800", shape=(2,))))
    with pytest.raises(gc.GraphError):
        gc.save(bad, path)
    assert path.read_bytes() == before

    def full_disk(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    other = gc.Graph("other")
    other.output("y", gc.exp(other.input("x", shape=(3,))))
    with pytest.raises(OSError, match="No space"):
        gc.save(other, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["net.json"]  # no temporary file left


def test_save_keeps_its_bytes_and_the_usual_permissions(tmp_path):
    a = gc.save(gc.io.from_data(base()), tmp_path / "a.json")
    b = gc.save(gc.io.from_data(base()), tmp_path / "a.json")
    assert a.read_bytes() == b.read_bytes()
    umask = os.umask(0)
    os.umask(umask)
    assert a.stat().st_mode & 0o777 == 0o666 & ~umask


# -- item 9: the report ---------------------------------------------------------------------

def test_a_sampled_gradient_check_checks_what_the_full_one_checks_on_the_chosen_entries():
    g = gc.Graph("wide")
    x = g.input("x", shape=("N", 3))
    params = [g.param(f"w{k}", shape=(3,)) for k in range(30)]
    h = x
    for w in params:
        h = gc.tanh(h * w)
    g.output("loss", gc.mean(h))
    prog = gc.compile(g)
    feeds = random_feeds(g.nx)
    full = gc.check_gradients(prog, feeds)
    sampled = gc.check_gradients(prog, feeds, sample=10)
    assert sampled.sampled == (10, 90) and len(sampled.rows) == 11 and full.sampled is None
    rows = {(r.param, r.index): r for r in full.rows}
    for row in sampled.rows:
        assert rows[(row.param, row.index)] == row
    again = gc.check_gradients(prog, feeds, sample=10)
    assert again.rows == sampled.rows  # seeded: the same entries every time


def test_the_report_says_its_gradient_check_is_sampled(tmp_path):
    g = gc.Graph("wide")
    x = g.input("x", shape=("N", 40))
    w = g.param("w", shape=(40, 3))
    g.output("loss", gc.mean(gc.tanh(x @ w)))
    prog = gc.compile(g)
    page = prog.report(tmp_path / "r.html", feeds=random_feeds(g.nx)).read_text()
    assert "64 of their 120 entries one by one (a seeded sample)" in page


def test_a_name_like_a_formula_placeholder_shows_as_itself():
    g = gc.Graph("neuron")
    x, w = g.input("x"), g.param("gcnameb")
    g.output("loss", (w * x - 6) ** 2)
    page = to_mathml("loss", gradient_formulas(g.nx)[0][1])
    assert page.count("<mi>gcnameb</mi>") == 1 and page.count("<mi>x</mi>") == 1
