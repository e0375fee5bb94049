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

from .. import ir
from ..ops.editor import Editor
from .edit import SOURCES, Revisit, begin, is_source, protected
from .stats import Stats

__all__ = ["dce", "dce_in_place", "live_nodes", "dead_above"]


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


def _unread(graph: nx.MultiDiGraph) -> list[str]:
    """The nodes no node reads that the graph does not name (and not inputs or params).

    A dead node always leads, through its (dead) readers, to such an unread one, so none
    means nothing is dead. Watched (``optimize``), only the nodes edits touched since the
    last run can be one: after that run every node was live, and only a touched node can
    have lost its last reader, or been made.
    """
    revisit = Revisit(graph, "dce", hops=0)
    if revisit.nodes is not None:
        revisit.needs("")  # take in the edits so far
    candidates = graph._node if revisit.nodes is None else revisit.nodes
    keep, nodes, readers = protected(graph), graph._node, graph._succ
    return [n for n in candidates
            if n in readers and not readers[n] and n not in keep and nodes[n][ir.OP] not in SOURCES]


def dead_above(graph: nx.MultiDiGraph, unread: list[str]) -> set[str]:
    """``unread`` (nodes no node reads, none named) and every node all of whose readers are
    dead: the nodes from which no path reaches a named value, when ``unread`` holds every
    unread node the graph does not name. Costs the dead nodes' edges, not the graph's."""
    dead = set(unread)
    keep, nodes, pred, readers = protected(graph), graph._node, graph._pred, graph._succ
    alive_readers: dict[str, int] = {}
    stack = list(unread)
    while stack:
        for source in pred[stack.pop()]:
            if source in dead or source in keep or nodes[source][ir.OP] in SOURCES:
                continue
            left = alive_readers.get(source, len(readers[source])) - 1
            alive_readers[source] = left
            if not left:
                dead.add(source)
                stack.append(source)
    return dead


def dce(graph: nx.MultiDiGraph) -> nx.MultiDiGraph:
    out = begin(graph)
    return dce_in_place(out).attach(graph, out)


def dce_in_place(out: nx.MultiDiGraph) -> Stats:
    unread = _unread(out)
    if not unread:
        return Stats()
    found = dead_above(out, unread)
    dead = [n for n in out._node if n in found]  # in node order, as a sweep finds them
    Editor(out).remove(dead)
    stats = Stats()
    stats.count("dce", "removed", len(dead))
    return stats
