"""The disk cache (gc.compile(cache_dir=...), GRAPHC_CACHE_DIR): a compile in a new process
finds the module an earlier one wrote; a torn, edited or foreign entry is compiled afresh;
other graphs and options find other entries; a program from disk computes what an uncached
compile's program computes, and its stages and plan are an uncached compile's."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from graph_parts import shared, spelled

import graphc as gc
from graphc import compile_cache, disk_cache

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def fresh_counts(monkeypatch):
    """No memory hits between compiles of one test (each must reach the disk), fresh counts."""
    monkeypatch.delenv("GRAPHC_CACHE_DIR", raising=False)
    monkeypatch.delenv("GRAPHC_NO_CACHE", raising=False)
    monkeypatch.setattr(compile_cache, "MEMORY", compile_cache.MemoryCache(size=0))
    monkeypatch.setattr(disk_cache, "COUNTS", disk_cache.Counts())


def net(const=2.0, act=gc.tanh, name="net"):
    g = gc.Graph(name)
    x = g.input("x", shape=("N", 3))
    w = g.param("w", shape=(3,))
    v = g.param("v", shape=(3,))
    h = act(x * w + const) * v
    g.output("loss", gc.mean(h * h))
    g.output("h", h)
    return g


def feeds():
    return {"x": np.arange(6.0).reshape(2, 3) / 7, "w": np.array([0.5, -1.0, 2.0]), "v": np.array([1.0, 0.3, -0.2])}


def entries(folder):
    return sorted(p.name for p in Path(folder).iterdir())


def counts():
    c = disk_cache.COUNTS
    return c.hits, c.misses, c.refused


def test_a_compile_in_a_new_process_reads_the_entry_an_earlier_one_wrote(tmp_path):
    child = (
        "import time, graphc as gc\n"
        "from graphc import disk_cache\n"
        "import test_disk_cache as t\n"
        "start = time.process_time()\n"
        "prog = gc.compile(t.net())\n"
        "spent = time.process_time() - start\n"
        "loss = float(prog.value_and_grad(t.feeds())[0]['loss'])\n"
        "c = disk_cache.COUNTS\n"
        "print(c.hits, c.misses, c.refused, repr(loss), spent)\n"
    )
    env = {**os.environ, "GRAPHC_CACHE_DIR": str(tmp_path / "cache"),
           "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    env.pop("GRAPHC_NO_CACHE", None)

    def run():
        done = subprocess.run([sys.executable, "-c", child], env=env, capture_output=True, text=True, check=True)
        hits, misses, refused, loss, _ = done.stdout.split()
        return (int(hits), int(misses), int(refused)), float(loss)

    first, first_loss = run()
    second, second_loss = run()
    assert first == (0, 1, 0) and second == (1, 0, 0)
    assert len(entries(tmp_path / "cache")) == 1
    expected = gc.compile(net(), cache=False).value_and_grad(feeds())[0]["loss"]
    assert first_loss == second_loss == float(expected)


def test_a_program_from_disk_is_an_uncached_compiles_program(tmp_path):
    gc.compile(net(), cache_dir=tmp_path)
    prog = gc.compile(net(), cache_dir=tmp_path)
    fresh = gc.compile(net(), cache=False)
    assert counts() == (1, 1, 0)
    assert prog.source == fresh.source and prog.forward_source == fresh.forward_source
    assert prog.backward_source == fresh.backward_source
    for ours, theirs in [(prog.forward(feeds()), fresh.forward(feeds()))] + list(
            zip(prog.value_and_grad(feeds()), fresh.value_and_grad(feeds()))):
        assert ours.keys() == theirs.keys()
        for name in ours:
            np.testing.assert_array_equal(ours[name], theirs[name])
    a, b = feeds(), feeds()
    np.testing.assert_array_equal(prog.sgd_step(a, lr=0.1)["loss"], fresh.sgd_step(b, lr=0.1)["loss"])
    np.testing.assert_array_equal(a["w"], b["w"])
    assert prog.has_gradient and prog.wrt == fresh.wrt and prog.target == fresh.target
    # the stages and the schedule are worked out when read, and are the uncached ones
    assert list(prog.stages) == list(fresh.stages)
    for name in fresh.stages:
        assert list(prog.stages[name].nodes(data=True)) == list(fresh.stages[name].nodes(data=True))
        assert list(prog.stages[name].edges(keys=True, data=True)) == list(fresh.stages[name].edges(keys=True,
                                                                                                    data=True))
    assert list(prog.inference_stages) == list(fresh.inference_stages)
    assert prog.levels == fresh.levels and prog.plan.functions == fresh.plan.functions
    assert prog.summary() == fresh.summary()
    assert prog.to("numpy").source == fresh.source


def test_a_program_from_disk_shares_nothing_with_the_callers_graph_and_its_stages_are_the_graph_as_compiled(
        tmp_path):
    gc.compile(net(), cache_dir=tmp_path)
    g = net()
    prog = gc.compile(g, cache_dir=tmp_path)
    assert counts() == (1, 1, 0)
    fresh = gc.compile(net(), cache=False)
    prog.forward(feeds())
    for data in g.nx._node.values():  # the caller's graph changed after the compile
        data["shape"] = ("changed",)
        data["attrs"]["changed"] = True
    g.nx.graph["outputs"].clear()
    assert spelled(prog.graph) == spelled(fresh.graph)  # read late: the graph as compiled
    assert shared(prog.graph, g.nx) == []
    for data in prog.graph._node.values():  # the program's graph changed before its stages are read
        data["shape"] = ("changed",)
        data["attrs"]["changed"] = True
    prog.graph.graph["outputs"].clear()
    for name in fresh.stages:
        assert spelled(prog.stages[name]) == spelled(fresh.stages[name]), name
        assert shared(prog.stages[name], prog.graph) == shared(prog.stages[name], g.nx) == [], name
    assert prog.plan.functions == fresh.plan.functions
    np.testing.assert_array_equal(prog.forward(feeds())["loss"], fresh.forward(feeds())["loss"])


def test_a_torn_or_edited_entry_is_compiled_afresh_and_written_again(tmp_path):
    gc.compile(net(), cache_dir=tmp_path)
    (name,) = entries(tmp_path)
    path = tmp_path / name
    whole = path.read_text()
    data = json.loads(whole)
    edited = dict(data, source=data["source"].replace("def forward_pass(", "import os\ndef forward_pass(", 1))
    damages = [
        whole[: len(whole) // 2],  # torn
        json.dumps(edited),  # the module edited, its sha256 not
        json.dumps(dict(data, key="0" * 64)),  # another entry's key
        json.dumps(dict(data, format="graphc compile cache 0")),
        json.dumps([data]),
        "\xff not json",
    ]
    fresh = gc.compile(net(), cache=False)
    for k, damaged in enumerate(damages, start=1):
        path.write_text(damaged)
        os.chmod(path, 0o600)
        prog = gc.compile(net(), cache_dir=tmp_path)
        assert counts() == (0, 1, k), damaged[:40]
        assert prog.source == fresh.source and "import os" not in prog.source
        assert type(prog.plan) is type(fresh.plan)  # compiled, not read
        assert json.loads(path.read_text()) == data  # the entry is whole again
    gc.compile(net(), cache_dir=tmp_path)
    assert counts() == (1, 1, len(damages))


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="file modes and owners are POSIX")
def test_an_entry_others_may_write_is_not_read(tmp_path):
    gc.compile(net(), cache_dir=tmp_path)
    (name,) = entries(tmp_path)
    assert os.stat(tmp_path / name).st_mode & 0o777 == 0o600
    os.chmod(tmp_path / name, 0o620)  # group-writable: someone else may have put it there
    gc.compile(net(), cache_dir=tmp_path)
    assert counts() == (0, 1, 1)
    assert os.stat(tmp_path / name).st_mode & 0o777 == 0o600  # written again, ours alone


def test_other_graphs_and_options_find_other_entries(tmp_path):
    variants = [
        (net(), {}),
        (net(const=2.5), {}),
        (net(act=gc.sigmoid), {}),
        (net(name="other"), {}),
        (net(), {"wrt": ["w"]}),
        (net(), {"wrt": []}),
        (net(), {"of": "loss", "wrt": ["v"]}),
    ]
    sources = []
    for graph, options in variants:
        sources.append(gc.compile(graph, cache_dir=tmp_path, **options).source)
    assert counts() == (0, len(variants), 0) and len(entries(tmp_path)) == len(variants)
    for (graph, options), source in zip(variants, sources):
        prog = gc.compile(graph, cache_dir=tmp_path, **options)
        assert prog.source == source == gc.compile(graph, cache=False, **options).source
    assert counts() == (len(variants), len(variants), 0)


def test_the_environment_variable_turns_it_on_and_no_cache_turns_it_off(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path / "env"))
    gc.compile(net())
    assert len(entries(tmp_path / "env")) == 1
    monkeypatch.setenv("GRAPHC_NO_CACHE", "1")
    gc.compile(net(const=3.0))
    gc.compile(net(), cache_dir=tmp_path / "env")
    gc.compile(net(const=4.0), cache=False, cache_dir=tmp_path / "env")
    assert len(entries(tmp_path / "env")) == 1 and counts() == (0, 1, 0)


def test_a_cache_dir_that_is_no_folder_is_a_typed_error(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(gc.errors.FileError, match="cannot be used as a folder"):
        gc.compile(net(), cache_dir=afile)
    with pytest.raises(gc.errors.FileError, match="cache_dir must be a path"):
        gc.compile(net(), cache_dir=3)


def test_a_program_found_in_memory_is_written_to_a_folder_without_its_entry(tmp_path, monkeypatch):
    monkeypatch.setattr(compile_cache, "MEMORY", compile_cache.MemoryCache())
    first = gc.compile(net())
    assert not (tmp_path / "later").exists()
    second = gc.compile(net(), cache_dir=tmp_path / "later")
    assert compile_cache.MEMORY.hits == 1 and len(entries(tmp_path / "later")) == 1
    monkeypatch.setattr(compile_cache, "MEMORY", compile_cache.MemoryCache())
    third = gc.compile(net(), cache_dir=tmp_path / "later")
    assert counts() == (1, 0, 0) and first.source == second.source == third.source
