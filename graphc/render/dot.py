"""Build the Graphviz drawing of one graph: a :class:`graphviz.Digraph`, DOT text deterministic.

Nodes get generated DOT ids (``n0``, ``n1``... in level order), so no user name ever
reaches the DOT syntax outside an escaped HTML-like label. Dependency levels are ranks
(``rank=same``), the critical path is drawn bold red, fused kernels sit in clusters that
show their formula, and with annotations every node carries its value and gradient.
"""

from __future__ import annotations

from dataclasses import dataclass

import graphviz
import networkx as nx
import numpy as np

from .. import ir
from ..schedule import critical_path, levels
from . import collapse, style
from .labels import esc, is_bad, node_formula, shape_text, short, summary, zero_count
from .values import Annotations, edge_is_dead

__all__ = ["DrawOptions", "build", "LIMIT_LAYOUT_ABOVE"]

LIMIT_LAYOUT_ABOVE = 80  # nodes; above this, Graphviz's layout search is capped


@dataclass(frozen=True)
class DrawOptions:
    title: str | None = None  # defaults to the graph's name
    rankdir: str = "LR"
    ranks: bool = True  # one rank per dependency level
    critical: bool = True  # highlight the critical path
    legend: bool = True
    formulas: bool = True
    max_nodes: int = 300  # above this, repeated levels are summarized; full=True draws all
    max_levels: int = 32  # above this many levels (drawn left to right), the middle ones are summarized
    full: bool = False


def _label(graph, node: str, kind: str, ann: Annotations | None, opts: DrawOptions, formula_lines) -> str:
    data = graph.nodes[node]
    rows = [f"<b>{esc(short(node))}</b>"]
    op = data.get(ir.OP, "?")
    detail = op if kind not in ("input", "param", "const") else kind
    if op == "const" and not data.get(ir.SHAPE):
        detail = f"const {summary(data[ir.ATTRS]['value'])}"
    rows.append(f'<font point-size="10">{esc(detail)} · {esc(shape_text(data.get(ir.SHAPE, ())))}</font>')
    if data.get(ir.GRAD_OF) is not None:
        holder = esc(short(str(data[ir.GRAD_OF])))
        rows.append(f'<font point-size="10" color="{style.GRAD}">holds ∂ out / ∂ {holder}</font>')
    if formula_lines:  # one line, as a reader writes it
        rows.append(f'<font face="Helvetica" point-size="11">{esc(" ".join(formula_lines))}</font>')
    mark = data.get(ir.MARK)
    if mark in style.MARKS:
        text, colour = style.MARKS[mark]
        rows.append(f'<font color="{colour}" point-size="10"><b>{esc(text)}</b></font>')
    grid = _entry_grid(ann, node) if ann is not None else None
    if grid:
        rows.append(grid)
    elif ann is not None and node in ann.values:
        value = ann.values[node]
        colour = style.BAD if is_bad(value) else "#111827"
        rows.append(f'<font color="{colour}" point-size="10">= {_two_lines(summary(value))}</font>')
    if ann is not None and node in ann.grads and not grid:
        grad = ann.grads[node]
        zeros, size = zero_count(grad)
        colour = style.BAD if is_bad(grad) else (style.GREY_TEXT if zeros == size else style.GRAD)
        extra = f" ({zeros} of {size} zero)" if 0 < zeros < size else ""
        rows.append(f'<font color="{colour}" point-size="10">∇ {_two_lines(summary(grad) + extra)}</font>')
    return "<" + _join(rows) + ">"


def _two_lines(text: str) -> str:
    """A tensor's summary ("4×4: −1…2, mean 0.3 ▁▃█") on two short lines, shape and range
    over mean and histogram: long one-line labels are what made value drawings wide."""
    head, sep, tail = text.partition(", mean ")
    return esc(head) + ("<br/>" + esc("mean " + tail) if sep else "")


def _join(rows: list[str]) -> str:
    """Rows of a label; a table cannot follow a <br/> in Graphviz's grammar, so wrap the lot."""
    if not any(r.startswith("<table") for r in rows):
        return "<br/>".join(rows)
    cells = "".join(f"<tr><td>{r}</td></tr>" for r in rows)
    return f'<table border="0" cellborder="0" cellspacing="0" cellpadding="0">{cells}</table>'


GRID_MAX = 6  # tensors up to this many entries show each entry, with its gradient; larger ones a summary


def _entry_grid(ann: Annotations, node: str) -> str | None:
    """Each entry's value over its gradient; entries whose gradient is exactly zero greyed.

    This is the lecture's dead-ReLU picture for a weight matrix: the weights that get no
    update are the grey cells.
    """
    if node not in ann.values or node not in ann.grads:
        return None
    value, grad = np.asarray(ann.values[node]), np.asarray(ann.grads[node])
    if value.ndim == 0 or value.size > GRID_MAX or value.shape != grad.shape:
        return None
    table = value.reshape(value.shape[0], -1) if value.ndim > 1 else value.reshape(1, -1)
    grads = grad.reshape(table.shape)
    rows = []
    for i in range(table.shape[0]):
        cells = []
        for j in range(table.shape[1]):
            v, d = float(table[i, j]), float(grads[i, j])
            bad = not (np.isfinite(v) and np.isfinite(d))
            colour = style.BAD if bad else (style.GREY_TEXT if d == 0 else "#111827")
            grad_colour = style.BAD if bad else (style.GREY_TEXT if d == 0 else style.GRAD)
            fill = style.GREY_FILL if d == 0 else "#ffffff"
            cells.append(f'<td bgcolor="{fill}" border="1" color="#d1d5db"><font color="{colour}" point-size="10">'
                         f'{esc(summary(v))}</font><br/><font color="{grad_colour}" point-size="10">'
                         f'∇ {esc(summary(d))}</font></td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return '<table border="0" cellborder="1" cellspacing="0" cellpadding="2">' + "".join(rows) + "</table>"


def _zero_backward(graph, node: str, ann: Annotations | None) -> bool:
    """A backward node whose value (a cotangent or a part of one) is exactly zero: the
    dead chain of the backward pass, greyed as the forward edges it mirrors."""
    return (ann is not None and graph.nodes[node].get(ir.PHASE) == ir.BACKWARD and node in ann.values
            and not np.any(np.asarray(ann.values[node])))


def _classes(node, kind, data, ann, on_path, graph=None) -> str:
    names = [kind]
    if data.get(ir.MARK) in style.MARKS:
        names.append(data[ir.MARK])
    if ann is not None:
        if (node in ann.grads and not (ann.grads[node] != 0).any()) or (
                graph is not None and _zero_backward(graph, node, ann)):
            names.append("zero-grad")
        if any(is_bad(v[node]) for v in (ann.values, ann.grads) if node in v):
            names.append("bad")
    if on_path:
        names.append("critical")
    return " ".join(names)


def build(graph: nx.MultiDiGraph, ann: Annotations | None = None,
          opts: DrawOptions = DrawOptions()) -> graphviz.Digraph:
    """The drawing of ``graph`` (optionally with values and gradients) as a Digraph."""
    title = opts.title if opts.title is not None else str(graph.graph.get(ir.NAME, "graph"))
    by_level = levels(graph)
    level_of = _level_of(graph, by_level)
    plan = collapse.plan(graph, _display_levels(level_of), opts.max_nodes, opts.full, opts.max_levels)
    order = [n for level in by_level for n in level if n not in plan.hidden]
    ids = {n: f"n{k}" for k, n in enumerate(order)}
    for k, summary_node in enumerate(plan.summaries):
        for member in summary_node.members:
            ids[member] = f"s{k}"
    path = critical_path(graph) if opts.critical and graph.number_of_nodes() > 1 else []
    path_edges = set(zip(path, path[1:]))
    on_path = set(path) if path_edges else set()

    dot = graphviz.Digraph(name="graphc", engine="dot")
    dot.attr(rankdir=opts.rankdir, label=f"<<b>{esc(title)}</b>>", labelloc="t", fontname="Helvetica",
             fontsize="16", newrank="true", nodesep="0.25", ranksep="0.45")
    drawn = len(order) + len(plan.summaries)
    if drawn > LIMIT_LAYOUT_ABOVE:
        # dot's x-coordinate network simplex is super-linear on joint graphs (a 300-node one
        # took minutes); capping its iterations keeps the levels and costs some straightness.
        dot.attr(nslimit="1", nslimit1="1", mclimit="0.1", searchsize="10")
    dot.attr("node", fontname="Helvetica", fontsize="12", margin="0.12,0.06")
    dot.attr("edge", arrowsize="0.7")

    kinds_used: list[str] = []
    marks_used: list[str] = []
    fused: set[str] = set()
    for node in order:
        kind = style.kind_of(graph, node)
        mark = graph.nodes[node].get(ir.MARK)
        kinds_used += [kind] if kind not in kinds_used else []
        marks_used += [mark] if mark in style.MARKS and mark not in marks_used else []
        if kind == "fused":
            fused.add(node)
        _node(dot, graph, node, ids[node], kind, ann, opts, node in on_path)
    for k, summary_node in enumerate(plan.summaries):
        dot.node(f"s{k}", label=f"<{summary_node.label_html()}>", shape="box3d", style="filled",
                 fillcolor="#f9fafb", color="#6b7280", **{"class": "summary"})

    _edges(dot, graph, order, ids, ann, path_edges, plan, level_of if opts.ranks else None,
           stubs=drawn > LIMIT_LAYOUT_ABOVE)
    if opts.ranks and drawn <= LIMIT_LAYOUT_ABOVE:  # above it, minlen alone gives the ranks
        _ranks(dot, level_of, ids, fused, plan)
    if opts.legend:
        dot.node("legend", label=style.legend_label(
            kinds_used, marks_used, values=bool(ann and ann.values), grads=bool(ann and ann.grads),
            critical=bool(path_edges)), shape="plain", **{"class": "legend"})
    return dot


FORMULA_KINDS = ("op", "output", "fused", "backward")


def _node(dot, graph, node: str, dot_id: str, kind: str, ann, opts: DrawOptions, on_path: bool) -> None:
    """One node statement (inside its own cluster for a fused kernel)."""
    data = graph.nodes[node]
    formula_lines = node_formula(graph, node) if opts.formulas and kind in FORMULA_KINDS else None
    attrs = style.node_attrs(kind, data.get(ir.MARK))
    grad = ann.grads.get(node) if ann is not None else None
    if (grad is not None and not np.any(grad) and kind == "param") or _zero_backward(graph, node, ann):
        attrs.update(fillcolor=style.GREY_FILL, fontcolor=style.GREY_TEXT, color=style.GREY_TEXT)
    if ann is not None and any(is_bad(v[node]) for v in (ann.values, ann.grads) if node in v):
        attrs.update(color=style.BAD, penwidth="2.4")
    attrs["class"] = _classes(node, kind, data, ann, on_path, graph)
    label = _label(graph, node, kind, ann, opts, formula_lines)
    if kind != "fused":
        dot.node(dot_id, label=label, **attrs)
        return
    with dot.subgraph(name=f"cluster_{dot_id}") as cluster:
        text = "".join(esc(line) + '<br align="left"/>' for line in formula_lines or ("",))
        cluster.attr(label=f'<<font point-size="10">fused kernel</font><br/><font face="Helvetica">{text}</font>>',
                     style="rounded,dashed", color=style.KINDS["fused"].border, fontname="Helvetica")
        cluster.node(dot_id, label=label, **attrs)


SOURCE_OPS = ("input", "param", "const")


def _display_levels(level_of: dict[str, int]) -> list[list[str]]:
    groups: list[list[str]] = [[] for _ in range(max(level_of.values(), default=-1) + 1)]
    for node, k in level_of.items():
        groups[k].append(node)
    return groups


def _level_of(graph, by_level) -> dict[str, int]:
    """The rank each node is drawn at: its dependency level, except that inputs, params and
    constants (all level 0) sit one rank before their first consumer, next to where they
    are used, instead of in one long column with edges across the whole picture."""
    level = {n: k for k, nodes in enumerate(by_level) for n in nodes}
    for node in list(level):
        if graph.nodes[node].get(ir.OP) in SOURCE_OPS:
            consumers = [level[v] for v in graph.successors(node)]
            level[node] = max(min(consumers, default=1) - 1, 0)
    return level


STUB_SPAN = 3  # in big drawings, a forward value reused this many ranks later is a stub


def _edges(dot, graph, order, ids, ann, path_edges, plan, level_of, stubs: bool = False) -> None:
    """Operand edges in level order. In big drawings the long edges from a forward value to
    the backward node reusing it become a small "↪ name" stub beside the user: those edges
    are what makes Graphviz slow (each rank crossed is a virtual node) and unreadable."""
    seen_summary_edges: set[tuple[str, str]] = set()
    levels_known = level_of or {}
    stub_count = 0
    targets = order + [m for s in plan.summaries for m in s.members]
    for target in targets:
        for position, source in enumerate(ir.operands(graph, target)):
            tail, head = ids[source], ids[target]
            if tail == head:
                continue  # inside one summary
            if tail.startswith("s") or head.startswith("s"):
                if (tail, head) in seen_summary_edges:
                    continue
                seen_summary_edges.add((tail, head))
                dot.edge(tail, head, color="#9ca3af", style="dotted", **{"class": "summary"})
                continue
            backward = graph.nodes[target].get(ir.PHASE) == ir.BACKWARD
            if stubs and backward and levels_known.get(target, 0) - levels_known.get(source, 0) > STUB_SPAN:
                stub = f"r{stub_count}"
                stub_count += 1
                dot.node(stub, label=f'<<font point-size="9">↪ {esc(short(source, 24))}</font>>', shape="plaintext",
                         **{"class": "stub"})
                dot.edge(stub, head, color=style.EDGE["backward"]["color"], style="dotted", **{"class": "stub"})
                continue
            attrs: dict[str, str] = dict(style.EDGE["backward" if backward else "plain"])
            classes = ["backward" if backward else "forward"]
            if (source, target) in path_edges:
                attrs.update(style.EDGE["critical"])
                classes.append("critical")
            if ann is not None and not backward and graph.nodes[source].get(ir.PHASE) != ir.BACKWARD \
                    and edge_is_dead(ann, source, target):
                attrs.update(style.EDGE["zero"])
                classes.append("zero-grad")
            elif backward and _zero_backward(graph, source, ann):  # a zero cotangent flows on
                attrs.update(style.EDGE["zero"])
                classes.append("zero-grad")
            if len(ir.operands(graph, target)) > 1 and not _commutative(graph, target):
                attrs["taillabel"] = ""
                attrs["headlabel"] = str(position)
                attrs["labelfontsize"] = "8"
            if level_of is not None and level_of[target] - level_of[source] > 1:
                # With every edge exactly its minlen, dot's optimal ranking is the levels
                # themselves: ranks that cost no rank=same solving on big graphs.
                attrs["minlen"] = str(level_of[target] - level_of[source])
            attrs["class"] = " ".join(classes)
            dot.edge(tail, head, **attrs)


def _commutative(graph, node) -> bool:
    from ..ops.base import op_for

    return op_for(graph, graph.nodes[node][ir.OP], node).commutative


def _ranks(dot, level_of, ids, clustered: set[str], plan) -> None:
    groups: dict[int, list[str]] = {}
    for node, k in level_of.items():  # level_of follows the levels' order: deterministic
        if node in clustered or node in plan.hidden:
            continue
        groups.setdefault(k, []).append(ids[node])
    for k in sorted(groups):
        if len(groups[k]) < 2:
            continue
        with dot.subgraph() as same:
            same.attr(rank="same")
            for member in groups[k]:
                same.node(member)
