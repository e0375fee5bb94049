"""`graphc explore`, the zoo's variants from the command line, and --values in files of their own."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import graphc as gc
from graphc import cli


def run(capsys, *argv):
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_explore_writes_a_page_with_the_steps_asked_for(tmp_path, capsys):
    status, out, _ = run(capsys, "explore", "two_moons", "--out", str(tmp_path / "m.html"), "--steps", "20",
                         "--lr", "0.5")
    assert status == 0 and Path(out.strip()) == tmp_path / "m.html"
    page = (tmp_path / "m.html").read_text()
    data = json.loads(re.search(r'id="graphc-data">(.*?)</script>', page, flags=re.S).group(1).replace("<\\/", "</"))
    training = data["training"]
    assert training["steps"] == 20 and training["lr"] == 0.5 and len(training["loss"]) == 21
    assert training["loss"][-1] < training["loss"][0]
    assert len(training["boundary"]["frames"]) == 21


def test_the_dead_output_variant_greys_every_weight_and_values_do_not_overwrite(tmp_path, capsys):
    plain = run(capsys, "render", "wide_relu", "--variant", "dead_output", "--format", "dot", "--out", str(tmp_path),
                "--stage", "declared")
    values = run(capsys, "render", "wide_relu", "--variant", "dead_output", "--values", "--format", "dot",
                 "--out", str(tmp_path), "--stage", "declared")
    assert plain[0] == values[0] == 0
    assert plain[1].split() != values[1].split() and sorted(p.name for p in tmp_path.iterdir()) == [
        "01-declared-values.dot", "01-declared.dot"]
    drawn = (tmp_path / "01-declared-values.dot").read_text()
    assert "zero-grad" not in (tmp_path / "01-declared.dot").read_text()
    graph, feeds = gc.zoo.wide_relu(dead_output=True)
    _, grads = gc.compile(graph).value_and_grad(feeds)
    assert all(not g.any() for g in grads.values())  # the variant is the lecture's dead output
    for param in ("W1", "W2"):
        line = next(row for row in drawn.splitlines() if f"<b>{param}</b>" in row)
        assert "zero-grad" in line


def test_variants_set_the_stack_depth_and_width(capsys):
    graph, _ = cli.resolve("deep_sigmoid", ["depth=3", "width=2"])
    assert graph.nx.graph["params"] == ["W1", "b1", "W2", "b2", "W3", "b3"]
    assert graph.nx.nodes["W1"]["shape"] == (2, 2)
    graph, _ = cli.resolve("mlp", ["widths=2,5,1", "activation=relu"])
    assert graph.nx.nodes["W1"]["shape"] == (2, 5)


@pytest.mark.parametrize("argv, words", [
    (["render", "deep_sigmoid", "--variant", "dept=3"], ["no variant 'dept'", "depth=20"]),
    (["render", "deep_sigmoid", "--variant", "depth=x"], ["depth=x", "default 20"]),
    (["render", "deep_sigmoid", "--variant", "depth"], ["needs a value", "--variant depth=VALUE"]),
    (["explore", "wide_relu", "--variant", "dead_output=maybe"], ["expected true or false"]),
])
def test_bad_variants_are_one_line_naming_the_settings(argv, words, capsys):
    status, _, err = run(capsys, *argv)
    assert status == 2 and len(err.strip().splitlines()) == 1
    for word in words:
        assert word in err


def test_a_variant_on_a_graph_file_is_refused(tmp_path, capsys):
    graph, _ = gc.zoo.relu_neuron()
    gc.save(graph, tmp_path / "n.json")
    status, _, err = run(capsys, "check", str(tmp_path / "n.json"), "--variant", "w=2")
    assert status == 2 and "is a file, not a zoo graph" in err


def test_explore_has_help(capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["explore", "--help"])
    text = capsys.readouterr().out
    assert done.value.code == 0 and "usage: graphc explore" in text
    for option in ("--out", "--steps", "--lr", "--variant"):
        assert option in text
