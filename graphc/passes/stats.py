"""What the optimizing passes did, counted by pass and by kind of change.

Every optimizing pass returns its graph with the graph attribute ``"stats"`` set to a plain
dict (JSON friendly, so saved graphs keep it)::

    {"passes": {pass name: {what: count}}, "nodes_before": int, "nodes_after": int,
     "rounds": int}

``rounds`` is 1 for a single pass; ``optimize`` sums the counts of every pass it ran over
all its rounds. :meth:`Stats.of` reads the attribute back; a pass never reads the stats of
its input (each run starts from zero), and an edit by hand that drops the attribute is fine.

>>> s = Stats()
>>> s.count("cse", "merged", 2); s.count("simplify", "log_sigmoid")
>>> s.changes, s.as_dict()["passes"]
(3, {'cse': {'merged': 2}, 'simplify': {'log_sigmoid': 1}})
"""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx

from .. import ir

__all__ = ["STATS", "Stats"]

STATS = ir.STATS  # the graph attribute


@dataclass
class Stats:
    passes: dict[str, dict[str, int]] = field(default_factory=dict)
    nodes_before: int = 0
    nodes_after: int = 0
    rounds: int = 1

    def count(self, pass_name: str, what: str, n: int = 1) -> None:
        """Record ``n`` changes of kind ``what`` by ``pass_name`` (zero counts are not kept)."""
        if n:
            counts = self.passes.setdefault(pass_name, {})
            counts[what] = counts.get(what, 0) + n

    @property
    def changes(self) -> int:
        """Total number of changes: zero means the graph is at a fixed point of the pass."""
        return sum(sum(counts.values()) for counts in self.passes.values())

    def add(self, other: Stats) -> None:
        for pass_name, counts in other.passes.items():
            for what, n in counts.items():
                self.count(pass_name, what, n)

    def as_dict(self) -> dict:
        return {
            "passes": {p: dict(c) for p, c in self.passes.items()},
            "nodes_before": self.nodes_before, "nodes_after": self.nodes_after, "rounds": self.rounds,
        }

    @classmethod
    def of(cls, graph: nx.MultiDiGraph) -> Stats:
        """The stats a pass left on ``graph`` (empty when there are none)."""
        data = graph.graph.get(STATS) or {}
        return cls(passes={p: dict(c) for p, c in data.get("passes", {}).items()},
                   nodes_before=data.get("nodes_before", 0), nodes_after=data.get("nodes_after", 0),
                   rounds=data.get("rounds", 1))

    def attach(self, before: nx.MultiDiGraph, after: nx.MultiDiGraph) -> nx.MultiDiGraph:
        """Store these stats, with the node counts of ``before`` and ``after``, on ``after``."""
        self.nodes_before = before.number_of_nodes()
        self.nodes_after = after.number_of_nodes()
        after.graph[STATS] = self.as_dict()
        return after
