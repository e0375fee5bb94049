"""optimize: canonicalize, fold, simplify, cse, dce, in this order, to a fixed point.

Rounds repeat while any pass reports a change (counted by the passes themselves, never by
comparing printed text), at most ``MAX_ROUNDS`` times. Runs on the forward graph and again
on the joint forward+backward graph after differentiation, where duplicates abound.

Guarantees: those of every pass (values kept, outputs, gradients, inputs and params keep
their ids, phases kept); the result's graph attribute ``"stats"`` (see ``passes/stats.py``)
sums every pass's counts over all rounds, with ``nodes_before``, ``nodes_after`` and
``rounds``; node marks ("created", "merged", "folded") tell what any pass did to a node.

Before: ``y = tanh(x @ W + 0) + tanh(x @ W)`` (the same layer written twice).
After: ``h = tanh(x @ W)``, ``y = h + h``.

>>> import graphc as gc
>>> g = gc.Graph("doc"); x = g.input("x", shape=(1, 2)); W = g.param("W", shape=(2, 2))
>>> _ = g.output("y", gc.tanh(x @ W + 0) + gc.tanh(x @ W))
>>> out = optimize(g.nx)
>>> stats = out.graph["stats"]
>>> stats["nodes_before"], stats["nodes_after"], stats["passes"]
(9, 5, {'canonicalize': {'add_zero': 1}, 'cse': {'merged': 2}, 'dce': {'removed': 1}})
"""

from __future__ import annotations

from collections.abc import Callable

import networkx as nx

from ..ops.editor import watching
from .canonicalize import canonicalize_in_place
from .cse import cse_in_place
from .dce import dce_in_place
from .edit import begin
from .fold import fold_in_place
from .simplify import simplify_in_place
from .stats import Stats

__all__ = ["optimize", "PASSES", "MAX_ROUNDS"]

InPlacePass = Callable[[nx.MultiDiGraph], Stats]

# The passes in order, each as the in-place body of its pure function (``cse`` is
# ``begin`` + ``cse_in_place``): optimize copies the graph once, not once per pass.
PASSES: list[tuple[str, InPlacePass]] = [
    ("canonicalize", canonicalize_in_place),
    ("fold", fold_in_place),
    ("simplify", simplify_in_place),
    ("cse", cse_in_place),
    ("dce", dce_in_place),
]
MAX_ROUNDS = 10  # every pass shrinks or settles the graph; this only guards against a bug


def optimize(graph: nx.MultiDiGraph, passes: list[tuple[str, InPlacePass]] | None = None) -> nx.MultiDiGraph:
    out = begin(graph)
    stats = Stats(rounds=0)
    # watched, the passes look again from the second round only where an edit reached (the
    # one topological order they share while none changes the structure is edit.order's)
    with watching(out):
        for _ in range(MAX_ROUNDS):
            stats.rounds += 1
            changes = 0
            for _name, run in passes or PASSES:
                done = run(out)
                stats.add(done)
                changes += done.changes
            if not changes:
                break
    return stats.attach(graph, out)
