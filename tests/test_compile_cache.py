"""The compile cache: a second compile of the same content is a cache hit; any change of
content or options is a miss; programs handed out share nothing mutable."""

import networkx as nx
import numpy as np
import pytest
import sympy
from graph_parts import shared, spelled

import graphc as gc
from graphc import compile_cache


@pytest.fixture(autouse=True)
def empty_cache():
    compile_cache.MEMORY.clear()
    yield
    compile_cache.MEMORY.clear()


def net(const=2.0, dtype="float64", shape=(3,), act=gc.tanh):
    g = gc.Graph("net")
    x = g.input("x", shape=("N",) + shape, dtype=dtype)
    w = g.param("w", shape=shape, dtype=dtype)
    h = act(x * w + const)
    g.output("loss", gc.mean(h * h))
    return g


FEEDS = {"x": np.arange(6.0).reshape(2, 3) / 7, "w": np.array([0.5, -1.0, 2.0])}


def hits():
    return compile_cache.MEMORY.hits


def test_a_second_compile_is_a_hit_with_a_program_of_its_own():
    first = gc.compile(net())
    second = gc.compile(net())  # built again: same content, other objects
    assert hits() == 1
    assert second is not first and second.module is not first.module
    assert second.source == first.source
    assert list(second.stages) == list(first.stages)
    for name in first.stages:
        assert second.stages[name] is not first.stages[name]
        assert list(second.stages[name].nodes(data=True)) == list(first.stages[name].nodes(data=True))
    value, grads = second.value_and_grad(FEEDS)
    fresh_value, fresh_grads = gc.compile(net(), cache=False).value_and_grad(FEEDS)
    np.testing.assert_array_equal(value["loss"], fresh_value["loss"])
    np.testing.assert_array_equal(grads["w"], fresh_grads["w"])


@pytest.mark.parametrize("changed", [
    dict(const=2.5), dict(const=-0.0), dict(dtype="float32"), dict(shape=(4,)), dict(act=gc.sigmoid),
])
def test_any_change_of_content_is_a_miss(changed):
    base = gc.compile(net(const=0.0))
    other = gc.compile(net(**{"const": 0.0, **changed}))
    assert hits() == 0
    assert other.source != base.source or changed == {"const": -0.0}


def test_a_renamed_node_is_a_miss():
    def named(label):
        g = gc.Graph("net")
        x = g.input(label, shape=(3,))
        g.output("y", gc.sum(gc.exp(x)))
        return g

    a, b = gc.compile(named("x")), gc.compile(named("z"))
    assert hits() == 0 and "z" in b.source and a.source != b.source


def test_the_options_are_part_of_the_key():
    g = gc.Graph("two")
    x = g.input("x", shape=(2,))
    a, b = g.param("a", shape=(2,)), g.param("b", shape=(2,))
    g.output("loss", gc.sum(x * a * b))
    both = gc.compile(g)
    only_a = gc.compile(g, wrt=["a"])
    assert hits() == 0 and only_a.wrt == ["a"] and both.wrt == ["a", "b"]
    assert gc.compile(g, wrt=["a"]).wrt == ["a"] and hits() == 1


def test_a_custom_op_defined_again_is_a_miss():
    def graph():
        g = gc.Graph("custom")
        x = g.input("x", shape=(2,))
        g.output("y", gc.sum(op(x)))
        return g

    op = gc.elementwise("cache_probe", lambda x: x * sympy.exp(-x))
    first = gc.compile(graph())
    op = gc.elementwise("cache_probe", lambda x: x * sympy.exp(-2 * x))
    second = gc.compile(graph())
    assert hits() == 0
    feeds = {"x": np.array([0.5, 1.5])}
    np.testing.assert_allclose(second.forward(feeds)["y"], np.sum(feeds["x"] * np.exp(-2 * feeds["x"])))
    assert first.forward(feeds)["y"] != second.forward(feeds)["y"]


def test_changing_a_program_changes_no_later_program():
    g = net()
    first = gc.compile(g)
    # a user takes the program apart: graphs, attribute dicts, a const's array, the module
    declared = first.stages["declared"]
    const = next(n for n, d in declared.nodes(data=True) if d["op"] == "const")
    declared.nodes[const]["attrs"]["value"] = 100.0
    declared.graph["outputs"].append("x")
    declared.add_node("intruder", op="input")
    for stage in first.stages.values():
        for _, data in stage.nodes(data=True):
            data["shape"] = ("changed",)
    first.plan.joint.graph["inputs"].clear()
    second = gc.compile(g)
    assert hits() == 1
    fresh = gc.compile(g, cache=False)
    assert second.source == fresh.source
    for name in fresh.stages:
        assert list(second.stages[name].nodes(data=True)) == list(fresh.stages[name].nodes(data=True))
        assert second.stages[name].graph["outputs"] == fresh.stages[name].graph["outputs"]
    assert second.plan.joint.graph["inputs"] == fresh.plan.joint.graph["inputs"]
    np.testing.assert_array_equal(second.forward(FEEDS)["loss"], fresh.forward(FEEDS)["loss"])


def test_an_array_const_changed_in_place_in_one_program_is_not_changed_in_the_next():
    g = gc.Graph("arr")
    x = g.input("x", shape=(3,))
    g.output("y", gc.sum(x * np.array([1.0, 2.0, 3.0])))
    first = gc.compile(g)
    arrays = [d["attrs"]["value"] for _, d in first.stages["declared"].nodes(data=True)
              if d["op"] == "const" and isinstance(d["attrs"]["value"], np.ndarray)]
    assert arrays
    arrays[0][...] = 0.0
    second = gc.compile(g)
    assert hits() == 1
    again = [d["attrs"]["value"] for _, d in second.stages["declared"].nodes(data=True)
             if d["op"] == "const" and isinstance(d["attrs"]["value"], np.ndarray)]
    np.testing.assert_array_equal(again[0], [1.0, 2.0, 3.0])


def test_cache_false_and_the_environment_variable_compile_afresh(monkeypatch):
    gc.compile(net())
    gc.compile(net(), cache=False)
    assert hits() == 0
    monkeypatch.setenv("GRAPHC_NO_CACHE", "1")
    gc.compile(net())
    assert hits() == 0


def test_a_graph_the_key_cannot_spell_compiles_without_the_cache():
    g = net()
    g.nx.graph["note"] = object()  # not content the key can spell
    first, second = gc.compile(g), gc.compile(g)
    assert hits() == 0 and not compile_cache.MEMORY.entries
    assert first.source == second.source


def test_the_key_spells_kinds_apart():
    def key(value):
        g = gc.Graph("k")
        g.nx.graph["extra"] = value
        return compile_cache.content_key(g.nx, {})

    values = [1, 1.0, True, "1", (1,), [1], {1: 1}, -0.0, 0.0, np.float32(1), np.array([1]), np.array([1.0]),
              sympy.Symbol("N"), sympy.Symbol("N", positive=True), None]
    keys = [key(v) for v in values]
    assert len(set(keys)) == len(keys)
    assert key(np.array([1.0, 2.0])) == key(np.array([1.0, 2.0]))


def test_changing_a_program_does_not_change_the_graph_it_came_from():
    g = gc.Graph("source")
    x = g.input("x", shape=(3,))
    g.output("y", gc.sum(x * np.array([1.0, 2.0, 3.0]) + 2.0))
    before = {n: dict(d["attrs"]) for n, d in g.nx.nodes(data=True)}
    prog = gc.compile(g, cache=False)
    for _, data in prog.stages["declared"].nodes(data=True):
        if data["op"] == "const":
            value = data["attrs"]["value"]
            if isinstance(value, np.ndarray):
                value[...] = -1.0
            data["attrs"]["value"] = 0.0
    for n, d in g.nx.nodes(data=True):
        assert d["attrs"].keys() == before[n].keys()
        for k, v in d["attrs"].items():
            np.testing.assert_array_equal(v, before[n][k])


def test_the_stages_of_a_cached_program_read_as_a_dict_does():
    reference = gc.compile(net(), cache=False).stages
    gc.compile(net())
    stages = gc.compile(net()).stages
    assert hits() == 1
    assert list(stages) == list(reference) == list(stages.keys()) and len(stages) == len(reference)
    assert list(reversed(stages)) == list(reversed(reference))
    def names(graphs):
        return [g.number_of_nodes() for g in graphs]

    assert names(reversed(stages.values())) == names(reversed(reference.values()))
    assert [k for k, _ in reversed(stages.items())] == list(reversed(reference))
    assert "declared" in stages and stages.get("nothing") is None and dict(stages).keys() == reference.keys()


def test_a_plan_copied_when_first_read_is_the_cached_one_whatever_happened_before():
    g = net()
    first = gc.compile(g)  # a program's plan is copied from the cache entry when first read
    second = gc.compile(g)
    assert hits() == 1
    first.plan.joint.graph["inputs"].clear()  # read (copied) and changed after the second compile
    for _, data in first.plan.forward.nodes(data=True):
        data["shape"] = ("changed",)
    third = gc.compile(g)
    fresh = gc.compile(g, cache=False)
    for prog in (second, third):
        # read now, long after the entry was made: still what the pipeline made, and one graph
        # with the program's stage, as in a fresh compile
        assert prog.plan.functions == fresh.plan.functions and prog.plan.sgd == fresh.plan.sgd
        assert prog.plan.joint.graph["inputs"] == fresh.plan.joint.graph["inputs"]
        assert list(prog.plan.forward.nodes(data=True)) == list(fresh.plan.forward.nodes(data=True))
        assert prog.plan.joint is prog.stages["scheduled"] and prog.plan is prog.plan
        assert prog.plan.forward is prog.inference_stages["scheduled"]
    assert first.plan.joint is first.stages["scheduled"]
    assert fresh.plan.joint is fresh.stages["scheduled"]


class _Generic(nx.MultiDiGraph):
    """A MultiDiGraph of another type: the key spells it through the generic walk."""


def test_the_key_of_a_graph_is_what_the_generic_walk_spells():
    g = net()
    x = g.nx.graph["inputs"][0]
    g.output("sq", gc.mul(g.node(x), g.node(x)))  # one value read twice: two edges with keys 0 and 1
    g.nx.nodes[x]["note"] = {"a": (1, 2.5, None), "b": [sympy.Symbol("N")]}
    plain = _Generic()
    plain.graph.update(g.nx.graph)
    plain.add_nodes_from(g.nx.nodes(data=True))
    plain.add_edges_from(g.nx.edges(keys=True, data=True))
    assert list(plain.edges(keys=True, data=True)) == list(g.nx.edges(keys=True, data=True))
    assert compile_cache.content_key(plain, {"of": None}) == compile_cache.content_key(g.nx, {"of": None})


@pytest.mark.parametrize("where", ["shape", "arg", "key", "id"])
def test_the_key_spells_the_kinds_of_a_node_and_an_edge_apart(where):
    def key(one):
        g = net()
        x = g.nx.graph["inputs"][0]
        mul = next(n for n, d in g.nx.nodes(data=True) if d["op"] == "mul")
        (edge,) = [e for e in g.nx.in_edges(mul, keys=True) if e[0] == x]
        if where == "shape":
            g.nx.nodes[x]["shape"] = ("N", one)
        elif where == "arg":
            g.nx.edges[edge]["arg"] = one
        elif where == "key":
            data = g.nx.edges[edge]
            g.nx.remove_edge(*edge)
            g.nx.add_edge(x, mul, key=one, **data)
        else:
            g.nx.graph["extra"] = {one: 1}
        return compile_cache.content_key(g.nx, {})

    values = [0, False, 0.0, np.int64(0)]
    keys = [key(v) for v in values]
    assert len(set(keys)) == len(keys)
    assert key(0) == key(0)


# -- what a program's graph shares: nothing, however late it is first read -------------------
def arrays_net():
    g = gc.Graph("arrays")
    x = g.input("x", shape=("N", 3))
    w = g.param("w", shape=(3,))
    h = gc.tanh(x * w + np.array([1.0, 2.0, 3.0]))
    g.output("loss", gc.mean(gc.sum(h * h, axis=1)))
    return g


@pytest.mark.parametrize("how", ["miss", "hit", "uncached"])
def test_a_programs_graph_read_after_running_shares_nothing_with_the_callers_nor_another_programs(how):
    g = arrays_net()
    cache = how != "uncached"
    first = gc.compile(g, cache=cache)
    prog = gc.compile(g, cache=cache) if how == "hit" else first
    assert hits() == (1 if how == "hit" else 0)
    third = gc.compile(g, cache=cache)
    for program in (prog, third):
        program.value_and_grad(FEEDS)  # run before anything reads the graph
    assert prog.graph is prog.stages["declared"]  # one graph, as in a fresh compile
    assert third.stages["declared"] is third.graph  # the other order of first reads
    assert spelled(prog.graph) == spelled(g.nx)
    assert shared(prog.graph, g.nx) == []
    for other in {id(p): p for p in (first, third) if p is not prog}.values():
        assert shared(prog.graph, other.graph) == []
        for name, stage in other.stages.items():
            assert shared(prog.graph, stage) == [], name
    for name, stage in prog.stages.items():
        assert shared(stage, g.nx) == [], name


def test_edits_of_the_callers_graph_and_of_the_programs_change_neither_the_program_nor_the_next_compile():
    g = arrays_net()
    prog = gc.compile(g)  # nothing of it read but what running reads
    reference = gc.compile(arrays_net(), cache=False)  # the same content, built again
    const = next(n for n, d in g.nx.nodes(data=True) if isinstance(d["attrs"].get("value"), np.ndarray))
    summed = next(n for n, d in g.nx.nodes(data=True) if d["op"] == "sum")

    def take_apart(graph):
        graph.nodes[const]["attrs"]["value"][...] = -5.0  # the array, in place
        graph.nodes[summed]["attrs"]["axis"] = 0  # an attrs dict, in place
        graph.nodes["x"]["shape"] = ("N", 99)
        graph.graph["outputs"].append("x")
        for data in graph._pred[summed].values():  # an edge's data, in place
            for edge in data.values():
                edge["arg"] = 4

    take_apart(g.nx)
    # read late: the graph and the stages as compiled
    assert spelled(prog.graph) == spelled(reference.graph)
    for name in ("optimized", "scheduled"):
        assert spelled(prog.stages[name]) == spelled(reference.stages[name])
    take_apart(prog.graph)
    # the program runs, and checks its feeds, as compiled
    np.testing.assert_array_equal(prog.forward(FEEDS)["loss"], reference.forward(FEEDS)["loss"])
    with pytest.raises(gc.FeedError) as raised:
        prog.forward({**FEEDS, "x": np.ones((2, 99))})
    with pytest.raises(gc.FeedError) as expected:
        reference.forward({**FEEDS, "x": np.ones((2, 99))})
    assert str(raised.value) == str(expected.value)
    again = gc.compile(arrays_net())
    assert hits() == 1
    assert spelled(again.graph) == spelled(reference.graph)
    assert [spelled(s) for s in again.stages.values()] == [spelled(s) for s in reference.stages.values()]
    np.testing.assert_array_equal(again.forward(FEEDS)["loss"], reference.forward(FEEDS)["loss"])


def test_compiling_and_running_copy_the_declared_graph_once_and_a_hit_not_at_all(monkeypatch):
    copies = []
    copy = compile_cache.fresh_copy

    def counted(value, memo=None):
        if isinstance(value, nx.MultiDiGraph) and (memo is None or id(value) not in memo):
            copies.append(value)
        return copy(value, memo)

    monkeypatch.setattr(compile_cache, "fresh_copy", counted)
    g = arrays_net()
    for expected in (1, 0):  # a miss copies the caller's graph; a hit, nothing
        copies.clear()
        prog = gc.compile(g)
        prog.value_and_grad(FEEDS)
        prog.forward(FEEDS)
        prog.sgd_step(dict(FEEDS, w=FEEDS["w"].copy()), lr=0.1)
        assert len(copies) == expected
        assert prog.graph is prog.graph  # first read: the program's own copy, made once
        assert len(copies) == expected + 1
        assert prog.to("numpy").graph is prog.graph  # the same program printed again: the same graph
    assert hits() == 1


def test_the_key_of_plain_nodes_follows_each_nodes_own_shape_and_op():
    def chain(last_dim=1000, last_op=gc.tanh):
        g = gc.Graph("chain")
        h = g.input("x", shape=("N", 8))
        for k in range(30):
            h = gc.tanh(h) if k < 29 else last_op(h)
        g.output("y", h)
        for data in g.nx._node.values():  # a new tuple and new int objects for each node
            data["shape"] = ("N", int("1000"))
        data["shape"] = ("N", int(str(last_dim)))  # the last node's
        return g.nx

    assert compile_cache.content_key(chain(), {}) == compile_cache.content_key(chain(), {})
    assert compile_cache.content_key(chain(), {}) != compile_cache.content_key(chain(1001), {})
    assert compile_cache.content_key(chain(), {}) != compile_cache.content_key(chain(1000, gc.exp), {})
