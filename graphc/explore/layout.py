"""Where each node of a stage sits on the explorer's canvas: layered, left to right.

A node's column is as late as its consumers allow (so inputs, params and constants sit
one column before their first consumer, as the Graphviz drawings place them); inside a column, nodes are
ordered by the mean row of their operands (one barycentre sweep), which keeps most edges
short and straight. Pure and linear in the graph's size, so a 2,000-node joint graph is
laid out in milliseconds and the same graph always lands in the same place.

>>> import networkx as nx
>>> g = nx.MultiDiGraph()
>>> for n, op in [("x", "input"), ("w", "param"), ("z", "mul"), ("y", "relu")]: g.add_node(n, op=op)
>>> for a, b, k in [("x", "z", 0), ("w", "z", 1), ("z", "y", 0)]: _ = g.add_edge(a, b, arg=k)
>>> columns(g)
{'x': 0, 'w': 0, 'z': 1, 'y': 2}
"""

from __future__ import annotations

import networkx as nx

from ..schedule import levels

__all__ = ["columns", "rows", "Box", "layout", "COLUMN_GAP", "ROW_HEIGHT"]

COLUMN_GAP = 56  # px between the widest box of a column and the next column
ROW_HEIGHT = 58  # px per row
CHAR_WIDTH = 7.4  # px per character of a 12-px label: boxes are as wide as their text


def columns(graph: nx.MultiDiGraph) -> dict[str, int]:
    """Node id -> column: as late as its consumers allow (one column before the first of
    them), never before its dependency level. Params and the transposes of weights the
    backward pass needs then sit next to where they are used, not in one long first column."""
    by_level = levels(graph)
    column = {n: k for k, nodes in enumerate(by_level) for n in nodes}
    for node in reversed([n for nodes in by_level for n in nodes]):
        consumers = [column[v] for v in graph.successors(node)]
        if consumers:
            column[node] = max(column[node], min(consumers) - 1)
    return column


def rows(graph: nx.MultiDiGraph, column: dict[str, int]) -> dict[str, int]:
    """Node id -> row inside its column, ordered by the mean row of its operands."""
    by_column: dict[int, list[str]] = {}
    for node in column:  # column follows the levels' order: deterministic
        by_column.setdefault(column[node], []).append(node)
    row: dict[str, int] = {}
    for k in sorted(by_column):
        weights = []
        for position, node in enumerate(by_column[k]):
            placed = [row[p] for p in graph.predecessors(node) if p in row]
            weights.append((sum(placed) / len(placed) if placed else float(position), position, node))
        row.update({node: r for r, (_, _, node) in enumerate(sorted(weights))})
    return row


class Box:
    """A node's rectangle on the canvas (top-left corner, width, height), in px."""

    __slots__ = ("x", "y", "w", "h")

    def __init__(self, x: float, y: float, w: float, h: float):
        self.x, self.y, self.w, self.h = x, y, w, h


def layout(graph: nx.MultiDiGraph, label_chars: dict[str, int]) -> tuple[dict[str, int], dict[str, Box]]:
    """(column of each node, its box); a box is wide enough for its longest label line."""
    column = columns(graph)
    row = rows(graph, column)
    widths = {n: max(96.0, 24 + CHAR_WIDTH * label_chars.get(n, 8)) for n in column}
    column_width: dict[int, float] = {}
    for node, k in column.items():
        column_width[k] = max(column_width.get(k, 0.0), widths[node])
    height = {k: 0 for k in column_width}
    for node, k in column.items():
        height[k] = max(height[k], row[node] + 1)
    tallest = max(height.values(), default=1)
    left, x = {}, 0.0
    for k in sorted(column_width):
        left[k] = x
        x += column_width[k] + COLUMN_GAP
    boxes = {}
    for node, k in column.items():
        offset = (tallest - height[k]) * ROW_HEIGHT / 2  # short columns sit in the middle
        boxes[node] = Box(left[k] + (column_width[k] - widths[node]) / 2, offset + row[node] * ROW_HEIGHT,
                          widths[node], 42.0)
    return column, boxes
