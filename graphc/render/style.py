"""The visual language: one style per kind of node and edge, and the legend drawn on each picture.

Kinds are decided from the IR alone (op, phase, expr, mark), so a node looks the same in
every stage it appears in. Colours are chosen to stay readable in print and for the
common colour-vision deficiencies (hue plus shape plus border, never hue alone).
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from .. import ir
from .labels import esc

__all__ = ["NodeStyle", "KINDS", "MARKS", "kind_of", "node_attrs", "EDGE", "legend_label", "BAD", "GRAD",
           "GREY_FILL", "GREY_TEXT"]


@dataclass(frozen=True)
class NodeStyle:
    shape: str
    fill: str
    border: str
    title: str  # how the legend names the kind
    style: str = "filled"


KINDS: dict[str, NodeStyle] = {
    "input": NodeStyle("invhouse", "#dbeafe", "#1d4ed8", "input (fed data)"),
    "param": NodeStyle("box", "#dcfce7", "#15803d", "param (learned)", "filled,rounded"),
    "const": NodeStyle("box", "#f3f4f6", "#6b7280", "constant", "filled,dashed"),
    "op": NodeStyle("box", "#ffffff", "#374151", "op (forward)", "filled,rounded"),
    "fused": NodeStyle("box", "#ede9fe", "#6d28d9", "fused kernel", "filled,rounded"),
    "output": NodeStyle("box", "#fef9c3", "#a16207", "output", "filled,rounded,bold"),
    "backward": NodeStyle("box", "#ffedd5", "#c2410c", "backward (gradient)", "filled,rounded"),
}

# What the previous pass did to a node: (badge text, border colour).
MARKS: dict[str, tuple[str, str]] = {
    "created": ("✚ created", "#0891b2"),
    "merged": ("⇄ merged", "#db2777"),
    "folded": ("◆ folded", "#7c3aed"),
    "fused": ("⊕ fused", "#6d28d9"),
}

EDGE = {
    "plain": {"color": "#4b5563"},
    "backward": {"color": "#c2410c", "style": "dashed"},
    "critical": {"color": "#111827", "penwidth": "2.6"},  # black and bold: red is kept for NaN/Inf
    "zero": {"color": "#c9c9c9", "fontcolor": "#b0b0b0", "style": "dashed"},
}

BAD = "#dc2626"  # NaN and Inf, and nothing else
GRAD = "#1e3a8a"  # every gradient number (∇), in a label or in a cell
GREY_FILL, GREY_TEXT = "#f1f1f1", "#9a9a9a"  # no gradient flows: zero-gradient params and backward nodes


def kind_of(graph: nx.MultiDiGraph, node: str) -> str:
    """The drawing kind of a node: input, param, const, op, fused, output or backward."""
    data = graph.nodes[node]
    op = data.get(ir.OP)
    if op in ("input", "param", "const"):
        return op
    if data.get(ir.PHASE) == ir.BACKWARD:
        return "backward"
    if ir.EXPR in data:
        return "fused"
    if node in graph.graph.get(ir.OUTPUTS, ()):
        return "output"
    return "op"


def node_attrs(kind: str, mark: str | None = None) -> dict[str, str]:
    s = KINDS[kind]
    attrs = {"shape": s.shape, "style": s.style, "fillcolor": s.fill, "color": s.border}
    if mark in MARKS:
        attrs.update(color=MARKS[mark][1], penwidth="2.2", peripheries="2")
    return attrs


def legend_label(kinds: list[str], marks: list[str], *, values: bool, grads: bool, critical: bool) -> str:
    """An HTML-like table naming each kind, mark and edge style the picture uses."""
    rows = ['<tr><td colspan="2"><b>legend</b></td></tr>']
    for kind in kinds:
        s = KINDS[kind]
        rows.append(f'<tr><td bgcolor="{s.fill}" border="1" color="{s.border}">  </td>'
                    f'<td align="left">{esc(s.title)}</td></tr>')
    for mark in marks:
        text, colour = MARKS[mark]
        rows.append(f'<tr><td border="2" color="{colour}">  </td>'
                    f'<td align="left">{esc(text)} by the previous pass</td></tr>')
    if critical:
        rows.append(f'<tr><td><font color="{EDGE["critical"]["color"]}"><b>━━</b></font></td>'
                    '<td align="left">critical path (longest dependency chain)</td></tr>')
    rows.append('<tr><td>▭ ▭</td><td align="left">nodes lined up = one dependency level</td></tr>')
    if values:
        rows.append('<tr><td>=</td>'
                    '<td align="left">forward value (tensors: shape, min…max, mean, ▁▃█ histogram)</td></tr>')
        rows.append(f'<tr><td><font color="{BAD}">nan</font></td><td align="left">NaN or Inf</td></tr>')
    if grads:
        rows.append(f'<tr><td><font color="{GRAD}">∇</font></td>'
                    '<td align="left">gradient of the output w.r.t. the node</td></tr>')
        rows.append(f'<tr><td><font color="{EDGE["zero"]["color"]}"><b>╌╌</b></font></td>'
                    '<td align="left">no gradient flows (exactly zero), forward and backward</td></tr>')
    body = "".join(rows)
    return f'<<table border="0" cellborder="0" cellspacing="2" cellpadding="2">{body}</table>>'
