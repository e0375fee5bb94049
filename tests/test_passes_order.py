"""passes.edit.order: the one topological order, kept while the graph's nodes and edges stay
as they were, computed again after any change (networkx's methods, ir.add_op, the editor),
and handed on to begin's copy."""

import random

import networkx as nx

import graphc as gc
from graphc import ir
from graphc.ops.editor import Editor
from graphc.passes.edit import begin, order


def chain(n: int = 6) -> nx.MultiDiGraph:
    g = gc.Graph("chain")
    value = g.input("x", shape=(2,))
    for _ in range(n):
        value = gc.exp(value)
    g.output("y", value)
    return g.nx


def fresh(graph) -> tuple:
    return tuple(ir.topological_order(graph))


def test_every_kind_of_edit_is_seen():
    graph = begin(chain())
    assert order(graph) == fresh(graph)
    editor = Editor(graph)
    edits = [
        lambda: ir.add_op(graph, "late", "neg", ["x"], shape=(2,)),  # a new node, written into the dicts
        lambda: editor.set_operands("exp", ["late"]),  # exp reads a node added after it
        lambda: editor.rename("late", "later"),
        lambda: editor.move_readers("exp_1", "exp"),
        lambda: editor.remove(["exp_1"]),
        lambda: graph.add_edge("x", "exp_2", arg=0) and graph.remove_edge("x", "exp_2"),
        lambda: graph.add_node("alone", op="input"),
    ]
    for edit in edits:
        edit()
        assert order(graph) == fresh(graph)


def test_begin_hands_the_order_to_its_copy_and_the_copy_changes_alone():
    graph = begin(chain())
    Editor(graph).set_operands("exp", [ir.add_op(graph, "late", "neg", ["x"], shape=(2,))])
    known = order(graph)  # not the insertion order: exp reads a node added last
    assert known != tuple(graph.nodes)
    copy = begin(graph)
    assert order(copy) is known
    Editor(copy).remove([ir.add_op(copy, "unread", "neg", ["x"], shape=(2,))])
    Editor(copy).set_operands("exp", ["x"])
    assert order(copy) == fresh(copy) and order(graph) is known == fresh(graph)


def test_random_edits_keep_it_right():
    rng = random.Random(0)
    graph = begin(chain(12))
    editor = Editor(graph)
    for step in range(60):
        nodes = [n for n in graph if graph.nodes[n]["op"] == "exp"]
        node = rng.choice(nodes)
        earlier = [n for n in fresh(graph) if n not in nx.descendants(graph, node) and n != node]
        if rng.random() < 0.5:
            editor.set_operands(node, [rng.choice(earlier)])
        else:
            editor.set_operands(node, [ir.add_op(graph, f"new{step}", "neg", [rng.choice(earlier)], shape=(2,))])
        assert order(graph) == fresh(graph)
