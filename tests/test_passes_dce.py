"""dce removes exactly the nodes from which no path reaches a named value (an output, a
gradient, an input or a param): checked against that definition, by networkx, on random
graphs with unread chains, values read twice and named values in the middle."""

import random

import networkx as nx
import pytest

from graphc import ir
from graphc.passes.dce import dce


def random_graph(seed: int, n: int = 40) -> nx.MultiDiGraph:
    rng = random.Random(seed)
    graph = ir.new_graph("random")
    for k in range(3):
        ir.add_op(graph, f"x{k}", "input", [], shape=(2,))
        graph.graph[ir.INPUTS].append(f"x{k}")
    ir.add_op(graph, "c", "const", [], {"value": 1.0})
    ids = ["x0", "x1", "x2", "c"]
    for k in range(n):
        args = [rng.choice(ids) for _ in range(rng.choice([1, 2]))]  # at times x * x
        ids.append(ir.add_op(graph, f"v{k}", "add" if len(args) == 2 else "neg", args, shape=(2,)))
    graph.graph[ir.OUTPUTS] = rng.sample(ids[4:], 2)
    if seed % 2:
        graph.graph[ir.GRADS] = {"x0": rng.choice(ids[4:])}
    return graph


def reaching_a_named_value(graph: nx.MultiDiGraph) -> set[str]:
    named = set(graph.graph[ir.OUTPUTS]) | set((graph.graph.get(ir.GRADS) or {}).values())
    named |= {n for n in graph if graph.nodes[n][ir.OP] in ("input", "param")}
    return named.union(*(nx.ancestors(graph, n) for n in named))


@pytest.mark.parametrize("seed", range(30))
def test_dce_keeps_exactly_what_reaches_a_named_value(seed):
    graph = random_graph(seed)
    out = dce(graph)
    live = reaching_a_named_value(graph)
    assert list(out.nodes) == [n for n in graph.nodes if n in live]
    assert list(out.edges(keys=True, data=True)) == [e for e in graph.edges(keys=True, data=True)
                                                      if e[0] in live and e[1] in live]
    assert out.graph["stats"]["passes"].get("dce", {}).get("removed", 0) == len(graph) - len(live)
