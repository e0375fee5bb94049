"""The explorer: one self-contained HTML page to step through every stage and replay training.

The page holds its data as one JSON document (every stage laid out, each node's formula
as MathML, its generated lines, its value and gradient summarized; the training history)
and a small script of our own that draws it as SVG: no library and no network. Pan and
zoom are a transform on one SVG group (wheel, drag, keys), which keeps the page light
enough for a 2,000-node joint graph, whose middle levels start summarized and expand on a
click. Tests find its parts by ``data-testid`` (``stage-slider``, ``graph``,
``node-panel``, ``loss-curve``, ``loss-point``, ``boundary``, ``play``); the root element
carries ``data-step`` and ``data-stage``; each drawn node carries ``data-node`` and a
summary ``data-nodes``.

>>> import graphc as gc
>>> g, feeds = gc.zoo.relu_neuron(w=-1.0)
>>> html = explorer_html(gc.compile(g), feeds=feeds, train=2, lr=0.01)
>>> 'data-testid="stage-slider"' in html and 'data-stage="declared"' in html
True
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

import networkx as nx
import numpy as np

from .. import ir
from ..errors import FeedError
from ..ops.base import op_for
from ..render import style
from ..render.formulas import to_mathml
from ..render.labels import node_expression, shape_text
from ..render.values import Annotations
from .annotate import stage_annotations
from .code import lines_by_node
from .layout import layout
from .summary import num as _num
from .summary import tensor_summary
from .training import History
from .training import train as train_steps

__all__ = ["explorer_html", "write_explorer", "explorer_data", "SUMMARY_ABOVE", "tensor_summary"]

SUMMARY_ABOVE = 400  # nodes; a bigger stage opens with its middle levels summarized
BLOCKS = 8  # at most this many summary blocks across a big stage
EDGE_COLUMNS = 6  # columns at each end of a big stage drawn in full


def _kink(graph: nx.MultiDiGraph, node: str) -> str:
    data = graph.nodes[node]
    if (data.get(ir.ATTRS) or {}).get("kink"):
        return str(data[ir.ATTRS]["kink"])
    try:
        return op_for(graph, data[ir.OP], node).kink
    except Exception:  # noqa: BLE001 - an unknown op simply has no convention to show
        return ""


def _changes(graph: nx.MultiDiGraph, previous: nx.MultiDiGraph | None) -> tuple[set[str], set[str], int]:
    """(ids new in this stage, ids whose op or operands changed, how many ids were removed)."""
    if previous is None:
        return set(), set(), 0
    added = {n for n in graph.nodes if n not in previous}
    changed = {n for n in graph.nodes if n in previous and n not in added and (
        graph.nodes[n].get(ir.OP) != previous.nodes[n].get(ir.OP)
        or ir.operands(graph, n) != ir.operands(previous, n))}
    removed = sum(1 for n in previous.nodes if n not in graph)
    return added, changed, removed


def _pass_text(graph: nx.MultiDiGraph) -> str:
    passes = (graph.graph.get(ir.STATS) or {}).get("passes", {})
    return "; ".join(f"{p}: " + ", ".join(f"{what} {n}" for what, n in sorted(c.items())) for p, c in passes.items())


def _blocks(order: list[str], column: dict[str, int]) -> list[list[str]]:
    """The middle columns of a big stage cut into at most BLOCKS runs, each a summary; the
    first and last EDGE_COLUMNS columns (where the data come in and the loss goes out) stay drawn."""
    last = max(column.values(), default=0)
    middle = range(EDGE_COLUMNS, last - EDGE_COLUMNS + 1)
    if len(middle) < 2:
        return []
    size = max(1, math.ceil(len(middle) / BLOCKS))
    runs: dict[int, list[str]] = {}
    for node in order:
        if column[node] in middle:
            runs.setdefault((column[node] - EDGE_COLUMNS) // size, []).append(node)
    return [runs[b] for b in sorted(runs) if len(runs[b]) > 1]


def _block_record(members: list[int], nodes: list[dict], graph: nx.MultiDiGraph, ids: list[str]) -> dict:
    boxes = [nodes[i] for i in members]
    x0, y0 = min(b["x"] for b in boxes), min(b["y"] for b in boxes)
    x1, y1 = max(b["x"] + b["w"] for b in boxes), max(b["y"] + b["h"] for b in boxes)
    ops: dict[str, int] = {}
    for i in members:
        op = str(graph.nodes[ids[i]].get(ir.OP))
        ops[op] = ops.get(op, 0) + 1
    top = sorted(ops.items(), key=lambda item: (-item[1], item[0]))
    text = ", ".join(f"{op} ×{n}" for op, n in top[:4]) + (" …" if len(top) > 4 else "")
    cols = sorted({b["col"] for b in boxes})
    return {"members": members, "x": x0, "y": y0, "w": x1 - x0, "h": y1 - y0,
            "label": f"⋯ {len(members)} nodes, levels {cols[0]}–{cols[-1]}", "ops": text}


def _formula_index(expr_cache: dict, formulas: list[str], graph, node: str) -> int | None:
    expr = node_expression(graph, node)
    if expr is None:
        return None
    key = (node, expr)
    if key not in expr_cache:
        try:
            formulas.append(to_mathml(node, expr))
            expr_cache[key] = len(formulas) - 1
        except Exception:  # noqa: BLE001 - a formula is a nicety; the node still shows without it
            expr_cache[key] = None
    return expr_cache[key]


def _stage_record(name: str, graph: nx.MultiDiGraph, previous, notes: Annotations | None,
                  expr_cache: dict, formulas: list[str]) -> dict:
    order = [n for n in graph.nodes]
    labels = {n: max(len(str(n)), len(f"{graph.nodes[n].get(ir.OP)} · {shape_text(graph.nodes[n].get(ir.SHAPE, ()))}"))
              for n in order}
    column, boxes = layout(graph, labels)
    order = sorted(order, key=lambda n: (column[n], boxes[n].y))
    index = {n: k for k, n in enumerate(order)}
    added, changed, removed = _changes(graph, previous)
    nodes = []
    for node in order:
        data = graph.nodes[node]
        box = boxes[node]
        record = {"id": str(node), "op": str(data.get(ir.OP)), "kind": style.kind_of(graph, node),
                  "shape": shape_text(data.get(ir.SHAPE, ())), "x": round(box.x, 1), "y": round(box.y, 1),
                  "w": round(box.w, 1), "h": round(box.h, 1), "col": column[node]}
        if data.get(ir.PHASE) == ir.BACKWARD:
            record["backward"] = 1
        if data.get(ir.GRAD_OF) is not None:
            record["grad_of"] = str(data[ir.GRAD_OF])
        if data.get(ir.MARK) in style.MARKS:
            record["mark"] = str(data[ir.MARK])
        if node in added:
            record["added"] = 1
        if node in changed:
            record["changed"] = 1
        kink = _kink(graph, node)
        if kink:
            record["kink"] = kink
        formula = _formula_index(expr_cache, formulas, graph, node)
        if formula is not None:
            record["formula"] = formula
        if notes is not None and node in notes.grads and not np.any(notes.grads[node]):
            record["zero_grad"] = 1
        nodes.append(record)
    edges = []
    for target in order:
        backward = graph.nodes[target].get(ir.PHASE) == ir.BACKWARD
        for position, source in enumerate(ir.operands(graph, target)):
            edges.append([index[source], index[target], 1 if backward else 0, position])
    blocks = _blocks(order, column) if len(order) > SUMMARY_ABOVE else []
    return {"name": name, "nodes": nodes, "edges": edges, "removed": removed,
            "added": len(added), "changed": len(changed), "passes": _pass_text(graph),
            "blocks": [_block_record([index[n] for n in b], nodes, graph, order) for b in blocks]}


def _history_record(history: History) -> dict:
    out = {"steps": history.steps, "lr": history.lr, "loss": [_num(v) for v in history.loss],
           "params": {name: [_num(v) for v in norms] for name, norms in history.param_norms.items()},
           "grads": {node: [_num(v) for v in mags] for node, mags in history.node_grads.items()},
           "param_values": history.param_values, "param_grads": history.param_grads}
    b = history.boundary
    if b is not None:
        out["boundary"] = {"input": b.input, "output": b.output, "extent": [_num(v) for v in b.extent],
                           "points": b.points, "classes": b.classes, "frames": b.frames}
    return out


def explorer_data(prog, feeds: Mapping | None = None, train: int | None = None, lr: float = 0.1) -> dict:
    """Everything the page shows, as plain data (JSON-ready)."""
    notes = stage_annotations(prog.stages, feeds) if feeds is not None else {}
    stages, previous, expr_cache, formulas = [], None, {}, []
    for name, graph in prog.stages.items():
        stages.append(_stage_record(name, graph, previous, notes.get(name), expr_cache, formulas))
        previous = graph
    values: dict[str, dict] = {}
    grads: dict[str, dict] = {}
    for note in notes.values():
        for node, value in note.values.items():
            if node not in values:
                values[str(node)] = tensor_summary(value)
        for node, grad in note.grads.items():
            if node not in grads:
                grads[str(node)] = tensor_summary(grad)
    all_ids = {n for graph in prog.stages.values() for n in graph.nodes}
    data = {"name": prog.name, "outputs": list(prog.outputs), "wrt": list(prog.wrt), "stages": stages,
            "formulas": formulas, "values": values, "grads": grads,
            "code": lines_by_node(prog.source, sorted(all_ids, key=str))}
    if train is not None:
        if feeds is None:
            raise FeedError("explore(train=...) needs feeds: the data and the initial params to train from")
        data["training"] = _history_record(train_steps(prog, feeds, int(train), lr))
    elif grads:  # no playback: edges still show the gradients of the feeds given
        data["training"] = None
        data["still"] = {node: [_num(float(np.mean(np.abs(np.asarray(g, dtype=float)))))]
                         for note in notes.values() for node, g in note.grads.items()}
    return data


def _asset(name: str) -> str:
    return resources.files("graphc.explore").joinpath("assets", name).read_text(encoding="utf-8")


def _json_for_script(data: dict) -> str:
    """JSON that cannot end its <script> element early."""
    text = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.replace("</", "<\\/").replace("<!--", "<\\!--")


def explorer_html(prog, feeds: Mapping | None = None, train: int | None = None, lr: float = 0.1) -> str:
    """The whole page as a string."""
    data = explorer_data(prog, feeds, train, lr)
    first = data["stages"][0]["name"] if data["stages"] else ""
    title = f"graphc explorer: {prog.name}"
    body = _asset("explorer.html").replace("{{title}}", html.escape(title))
    has_training = bool(data.get("training"))
    body = body.replace("{{training_hidden}}", "" if has_training else " hidden")
    return (f'<!DOCTYPE html>\n<html lang="en" data-step="0" data-stage="{html.escape(first)}">'
            f'<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(title)}</title><style>{_asset('explorer.css')}</style></head><body>"
            f"{body}"
            f'<script type="application/json" id="graphc-data">{_json_for_script(data)}</script>'
            f"<script>{_asset('explorer.js')}</script></body></html>\n")


def write_explorer(prog, path: str | Path, feeds: Mapping | None = None, train: int | None = None,
                   lr: float = 0.1) -> Path:
    """Write the explorer page of ``prog`` to ``path``; return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(explorer_html(prog, feeds, train, lr), encoding="utf-8")
    return path
