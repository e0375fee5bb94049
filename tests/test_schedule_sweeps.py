"""The schedule's sweeps against straightforward references, on random DAGs.

plan_function works out in one sweep over a function's levels what each step reads, what
it keeps alive (the arrays its views look into too), the last level reading each value
and the last level keeping it alive; last uses once over the steps with their updates; the
updates' places from those levels; and a function's dims from its first nodes when they
already hold every dim of the graph. Each test below computes the same from the
definitions, value by value and step by step, on graphs with aliases, chains of views,
values read twice, folded squares and symbolic dims.
"""

from __future__ import annotations

import random

import pytest
import sympy
from small_graphs import random_dag

from graphc import ir, schedule

DIMS = sympy.symbols("N M K", positive=True)
SHAPES = ((DIMS[0], 2), (3,), (DIMS[1], DIMS[0]), (), (4, 4))


def planning_dag(seed: int, n: int = 40):
    """random_dag's edges with ops planning cares about: sources, aliases (identity), views
    (inline and stored transposes, reshapes, broadcasts), other ops; shapes and attrs with
    symbolic dims now and then; operands in order."""
    rng = random.Random(seed)
    graph = random_dag(seed, n)
    for node in ir.topological_order(graph):
        data, edges = graph.nodes[node], list(graph.in_edges(node, keys=True))
        for position, edge in enumerate(edges):  # random_dag gives every edge arg 0
            graph.edges[edge][ir.ARG] = position
        count = len(edges)
        if not count:
            op = rng.choice(("input", "param", "const"))
        elif count == 1:
            op = rng.choice(("identity", "stop_gradient", "transpose", "reshape", "broadcast", "tanh", "square"))
        else:
            op = rng.choice(("add", "mul", "matmul"))
        attrs = {"axes": rng.choice((None, (1, 0)))} if op == "transpose" else {}
        if rng.random() < 0.1:
            attrs["size"] = rng.choice(DIMS)
        data.update({ir.OP: op, ir.ATTRS: attrs, ir.SHAPE: rng.choice(SHAPES), ir.DTYPE: "float64"})
        data.pop("mark", None)
    return graph


# -- references, from the definitions ---------------------------------------------------------
def resolved(graph, node: str) -> str:
    while graph.nodes[node][ir.OP] in schedule.ALIASES:
        node = ir.operands(graph, node)[0]
    return node


def looks_into(graph, value: str) -> list[str]:
    """The arrays a view looks into, nearest first."""
    chain = []
    while graph.nodes[value][ir.OP] in schedule.VIEWS:
        value = resolved(graph, ir.operands(graph, value)[0])
        chain.append(value)
    return chain


def reference_reads(graph, node: str, folded: frozenset[str]) -> list[str]:
    out = []
    for a in ir.operands(graph, node):
        value = resolved(graph, a)
        out.append(resolved(graph, ir.operands(graph, value)[0]) if value in folded else value)
    return out


def reference_alive(graph, read: list[str]) -> list[str]:
    return [a for value in read for a in [value] + looks_into(graph, value)]


def steps_by_level(graph, seed: int):
    """The computed nodes by level, and a few of the one-operand ones taken as folded squares
    (no longer steps: their readers read their operand)."""
    rng = random.Random(seed)
    by_level = [[n for n in level if graph.nodes[n][ir.OP] not in schedule.NO_STEP] for level in schedule.levels(graph)]
    folded = frozenset(n for level in by_level for n in level
                       if len(ir.operands(graph, n)) == 1 and graph.nodes[n][ir.OP] not in schedule.VIEWS
                       and rng.random() < 0.3)
    return [[n for n in level if n not in folded] for level in by_level], folded


SEEDS = range(60)


@pytest.mark.parametrize("seed", SEEDS)
def test_one_sweep_gives_each_steps_reads_and_each_values_last_levels(seed):
    graph = planning_dag(seed)
    levels_, folded = steps_by_level(graph, seed)
    records, last_direct, last_alive = schedule._reads(levels_, folded, schedule.Facts(graph), through_views=True)
    want_direct, want_alive = {}, {}
    for k, level in enumerate(levels_):
        assert [record[0] for record in records[k]] == level
        for node, read, alive in records[k]:
            assert read == reference_reads(graph, node, folded)
            assert alive == reference_alive(graph, read)
            for value in read:
                want_direct[value] = max(want_direct.get(value, -1), k)
            for value in alive:
                want_alive[value] = max(want_alive.get(value, -1), k)
    assert last_direct == want_direct
    assert last_alive == want_alive
    without = schedule._reads(levels_, folded, schedule.Facts(graph))
    assert without[0] == records and without[1] == last_direct and without[2] == {}


@pytest.mark.parametrize("seed", SEEDS)
def test_last_uses_are_the_last_step_keeping_each_value_alive_in_first_read_order(seed):
    graph = planning_dag(seed)
    levels_, folded = steps_by_level(graph, seed)
    records, _, _ = schedule._reads(levels_, folded, schedule.Facts(graph))
    sequence = [(n, None, k, tuple(dict.fromkeys(read)), alive, read)
                for k, level in enumerate(records) for n, read, alive in level]
    last_use = schedule._last_uses(sequence)
    first_read = {}
    for i, step in enumerate(sequence):
        for value in reference_alive(graph, list(step[3])):
            first_read.setdefault(value, i)
    assert list(last_use) == sorted(first_read, key=first_read.get)  # the order of the frees
    for value, i in last_use.items():
        readers = [j for j, step in enumerate(sequence) if value in reference_alive(graph, list(step[3]))]
        assert i == max(readers)


@pytest.mark.parametrize("seed", SEEDS)
def test_each_update_stands_where_its_definition_puts_it(seed):
    """At the end of the first level from its earliest after the param's last use and the
    gradient's computation, and no earlier than the last use of the gradient's arrays."""
    rng = random.Random(seed)
    graph = planning_dag(seed)
    levels_, folded = steps_by_level(graph, seed)
    facts = schedule.Facts(graph)
    records, _, last_alive = schedule._reads(levels_, folded, facts, through_views=True)
    sequence = [(n, None, k, tuple(dict.fromkeys(read)), alive, read)
                for k, level in enumerate(records) for n, read, alive in level]
    steps = [step[0] for step in sequence]
    params = [n for n in graph if graph.nodes[n][ir.OP] == "param"]
    if not steps or not params:
        return
    updates = tuple((p, rng.choice(steps), rng.randrange(len(levels_) + 1)) for p in params)
    placed = schedule._with_updates(sequence, updates, last_alive, {s[0]: s[2] for s in sequence}, facts)
    assert [s for s in placed if s[1] is None] == sequence
    want = []
    for k, (param, grad, earliest) in enumerate(updates):
        arrays = (schedule.base(graph, grad), schedule._memory(graph, grad)[0])
        alive = [(s[2], reference_alive(graph, list(s[3]))) for s in sequence]
        level = max([earliest] + [lv + 1 for lv, values in alive if param in values]
                    + [s[2] + 1 for s in sequence if s[0] in arrays]
                    + [lv for lv, values in alive if any(a in values for a in arrays)])
        want.append((level, k, param, grad))
    got = [(i, s) for i, s in enumerate(placed) if s[1] is not None]
    assert [(s[2], s[0], s[1]) for _, s in got] == [(level, p, g) for level, _, p, g in sorted(want)]
    for i, update in got:  # at the end of its level
        assert all(s[2] <= update[2] for s in placed[:i])
        assert all(s[2] > update[2] for s in placed[i + 1:] if s[1] is None)
        assert update[3] == (update[0], resolved(graph, update[1]))
        assert update[4] == reference_alive(graph, list(update[3]))


@pytest.mark.parametrize("seed", SEEDS)
def test_a_functions_dims_are_the_union_of_its_nodes_dims(seed):
    rng = random.Random(seed)
    graph = planning_dag(seed)
    nodes = rng.sample(list(graph), rng.randrange(len(graph) + 1))
    want = set()
    for n in nodes:
        want |= schedule._node_dims(graph, n, ir.operands(graph, n))
    assert schedule._function_dims(graph, nodes, schedule.Facts(graph)) == want
    every = set()
    for n in graph:
        every |= schedule._node_dims(graph, n, ir.operands(graph, n))
    assert schedule._graph_dims(graph) == every


@pytest.mark.parametrize("seed", SEEDS)
def test_a_nodes_arrays_are_its_base_and_the_owner_of_its_memory(seed):
    graph = planning_dag(seed)
    facts = schedule.Facts(graph)
    for node in graph:
        assert facts.arrays(node) == (schedule.base(graph, node), schedule._memory(graph, node)[0])
        assert facts.base(node) == schedule.base(graph, node)
        assert facts.reading(node) == (resolved(graph, node), tuple(looks_into(graph, resolved(graph, node))))
