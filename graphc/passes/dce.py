"""dce: dead-code elimination.

Guarantees: every node that an output, a gradient output (graph attribute ``grads``), an
input or a param needs is kept, with its id and attributes; every other node is removed.
Inputs and params stay even when unused (they are the generated functions' arguments).
Node order is kept. Linear in the size of the graph.

Before: ``x -> exp -> y (output)``, ``x -> log`` (nothing uses it).
After: ``x -> exp -> y``.

>>> import graphc as gc
>>> g = gc.Graph("doc"); x = g.input("x", shape=(2,))
>>> unused = gc.log(x)
>>> _ = g.output("y", gc.exp(x))
>>> sorted(dce(g.nx).nodes), dce(g.nx).graph["stats"]["passes"]
(['x', 'y'], {'dce': {'removed': 1}})
"""

from __future__ import annotations

import networkx as nx

from ..ops.editor import Editor
from .edit import Revisit, begin, is_source, protected
from .stats import Stats

__all__ = ["dce", "dce_in_place", "live_nodes"]


def live_nodes(graph: nx.MultiDiGraph) -> set[str]:
    """The named values (outputs, grads, inputs, params) and everything they depend on."""
    roots = [n for n in graph.nodes if is_source(graph, n)] + sorted(protected(graph) & set(graph.nodes))
    live = set(roots)
    stack = list(roots)
    pred = graph._pred  # each operand once, in any order: all that reachability needs
    while stack:
        node = stack.pop()
        for source in pred[node]:
            if source not in live:
                live.add(source)
                stack.append(source)
    return live


def _may_have_died(graph: nx.MultiDiGraph) -> bool:
    """False when no node can be dead: after the last run every node was live, and since
    then no node that edits touched (the only ones that can have lost their last reader,
    or been made) is an unread node the graph does not name. A dead node always leads, through
    its (dead) readers, to such an unread one."""
    revisit = Revisit(graph, "dce", hops=0)
    if revisit.nodes is None:
        return True
    revisit.needs("")  # take in the edits so far
    keep = protected(graph)
    return any(n in graph and graph.out_degree(n) == 0 and n not in keep and not is_source(graph, n)
               for n in revisit.nodes)


def dce(graph: nx.MultiDiGraph) -> nx.MultiDiGraph:
    out = begin(graph)
    return dce_in_place(out).attach(graph, out)


def dce_in_place(out: nx.MultiDiGraph) -> Stats:
    if not _may_have_died(out):
        return Stats()
    live = live_nodes(out)
    dead = [n for n in out.nodes if n not in live]
    Editor(out).remove(dead)
    stats = Stats()
    stats.count("dce", "removed", len(dead))
    return stats
