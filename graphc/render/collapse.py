"""Keep big drawings legible: above a node budget, the middle levels become one summary node.

The first and last dependency levels are drawn in full (where the inputs come in and the
loss goes out); the levels between are replaced by one node that says how many nodes it
hides, which ops they are, and, when the hidden levels repeat (a stack of identical
layers), how many repeats of which block. ``full=True`` draws everything.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import networkx as nx

from .. import ir
from .labels import esc

__all__ = ["Plan", "Summary", "plan", "period"]

MAX_PERIOD = 16


@dataclass
class Summary:
    members: list[str]
    first_level: int
    last_level: int
    ops: list[tuple[str, int]]
    repeats: tuple[int, int] | None  # (period in levels, number of repeats)

    def label_html(self) -> str:
        rows = [f"<b>⋯ {len(self.members):,} nodes hidden</b>",
                esc(f"levels {self.first_level}–{self.last_level}")]
        if self.repeats:
            size, count = self.repeats
            rows.append(esc(f"{count} repeats of a {size}-level block"))
        rows.append(esc(", ".join(f"{op} ×{n}" for op, n in self.ops[:6]) + (" …" if len(self.ops) > 6 else "")))
        rows.append('<font point-size="9">draw them all with full=True</font>')
        return "<br/>".join(rows)


@dataclass
class Plan:
    hidden: set[str] = field(default_factory=set)
    summaries: list[Summary] = field(default_factory=list)


def period(signatures: list[tuple]) -> tuple[int, int] | None:
    """The smallest block of levels that repeats through ``signatures``, and its count.

    >>> period([("add",), ("tanh",), ("add",), ("tanh",), ("add",), ("tanh",)])
    (2, 3)
    >>> period([("a",), ("b",), ("c",)]) is None
    True
    """
    n = len(signatures)
    for p in range(1, min(MAX_PERIOD, n // 2) + 1):
        if all(signatures[i] == signatures[i + p] for i in range(n - p)):
            return p, n // p
    return None


def plan(graph: nx.MultiDiGraph, by_level: list[list[str]], max_nodes: int, full: bool,
         max_levels: int | None = None) -> Plan:
    """Which nodes to hide behind a summary so that about ``max_nodes`` nodes and at most
    ``max_levels`` levels stay drawn (a long chain is as unreadable as a wide graph: a
    20-layer stack drawn left to right was 30,000 pt wide)."""
    total = sum(len(level) for level in by_level)
    too_long = max_levels is not None and len(by_level) > max_levels
    if full or (total <= max_nodes and not too_long):
        return Plan()
    levels_each = max_levels // 2 if too_long else len(by_level)
    head, budget = 0, max_nodes // 2
    while head < min(len(by_level), levels_each) and budget - len(by_level[head]) >= 0:
        budget -= len(by_level[head])
        head += 1
    tail, budget = len(by_level), max_nodes - max_nodes // 2
    while tail > max(head, len(by_level) - levels_each) and budget - len(by_level[tail - 1]) >= 0:
        budget -= len(by_level[tail - 1])
        tail -= 1
    head = max(head, 1)
    if tail <= head:
        return Plan()
    middle = by_level[head:tail]
    members = [n for level in middle for n in level]
    ops = Counter(str(graph.nodes[n][ir.OP]) for n in members)
    signatures = [tuple(sorted(str(graph.nodes[n][ir.OP]) for n in level)) for level in middle]
    summary = Summary(members, head, tail - 1, sorted(ops.items(), key=lambda item: (-item[1], item[0])),
                      period(signatures))
    return Plan(hidden=set(members), summaries=[summary])
