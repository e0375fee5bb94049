"""Dependency levels: the lecture's "dependency driven scheduling".

Level 0 holds the sources; a node's level is one more than its deepest operand's, so
nodes of one level do not depend on one another and could run in parallel. Within a
level, nodes keep the graph's insertion order: the same graph always gives the same
schedule.
"""

from __future__ import annotations

import networkx as nx

from . import ir

__all__ = ["levels", "schedule", "critical_path"]


def levels(graph: nx.MultiDiGraph) -> list[list[str]]:
    """``nx.topological_generations`` with a stable order inside each level."""
    index = {node: k for k, node in enumerate(graph.nodes)}
    return [sorted(generation, key=index.__getitem__) for generation in nx.topological_generations(graph)]


def schedule(graph: nx.MultiDiGraph) -> nx.MultiDiGraph:
    """A copy of ``graph`` with each node's ``level`` attribute set."""
    out = ir.copy_graph(graph)
    for node in out.nodes:  # marks tell what the previous pass did; scheduling changes no node
        out.nodes[node].pop(ir.MARK, None)
    for k, generation in enumerate(levels(out)):
        for node in generation:
            out.nodes[node][ir.LEVEL] = k
    return out


def critical_path(graph: nx.MultiDiGraph) -> list[str]:
    """The longest dependency chain (its length is the number of levels)."""
    return list(nx.dag_longest_path(graph, topo_order=[n for level in levels(graph) for n in level]))
