"""Values and gradients of every stage, computed here so that drawing stays a leaf.

Each stage's graph is run on the feeds by the reference interpreter, :func:`gc.evaluate`
(the one evaluator the tests trust; no code is generated to draw);
:func:`graphc.render.values.annotate_stages` then decides what each stage shows. A joint
graph's backward seed is fed with ones (d output / d output = 1, as ``value_and_grad``
does for a scalar output).

>>> import graphc as gc
>>> g = gc.Graph("doc"); x = g.input("x"); _ = g.output("y", 3 * x + 1)
>>> values = stage_values(g.nx, {"x": 2.0})
>>> float(values["y"]), float(values["mul"])
(7.0, 6.0)
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import networkx as nx
import numpy as np
import sympy

from .. import ir
from ..evaluate import evaluate
from ..render import render_program
from ..render.values import Annotations, annotate_stages, gradients_from_joint, has_backward

__all__ = ["stage_values", "stage_annotations", "graph_annotations", "render_stages"]

SOURCES = ("input", "param")


def _dims(graph: nx.MultiDiGraph, feeds: Mapping) -> dict[sympy.Symbol, int]:
    """{symbolic dim: size}, read from the shapes of the feeds."""
    sizes: dict[sympy.Symbol, int] = {}
    for name, value in feeds.items():
        for want, got in zip(graph.nodes[name].get(ir.SHAPE, ()), np.shape(value)):
            if isinstance(want, sympy.Symbol):
                sizes.setdefault(want, int(got))
    return sizes


def _with_seed(graph: nx.MultiDiGraph, feeds: Mapping) -> dict:
    """The feeds this graph reads, and ones for an input nobody feeds (the backward seed)."""
    mine = {k: v for k, v in feeds.items() if k in graph and graph.nodes[k].get(ir.OP) in SOURCES}
    sizes = _dims(graph, mine)
    for node, data in graph.nodes(data=True):
        if data.get(ir.OP) == "input" and node not in mine:
            shape = tuple(sizes.get(d, 1) if isinstance(d, sympy.Symbol) else int(d) for d in data[ir.SHAPE])
            mine[node] = np.ones(shape, dtype=data.get(ir.DTYPE, ir.DEFAULT_DTYPE))
    return mine


def stage_values(graph: nx.MultiDiGraph, feeds: Mapping) -> dict[str, np.ndarray]:
    """Every node's value for ``feeds``, from the reference interpreter."""
    with np.errstate(all="ignore"):  # NaN and Inf are drawn (in red), not warned about
        return {n: np.asarray(v) for n, v in evaluate(graph, _with_seed(graph, feeds)).items()}


def graph_annotations(graph: nx.MultiDiGraph, feeds: Mapping,
                      stages: Mapping[str, nx.MultiDiGraph] | None = None) -> Annotations:
    """Values and gradients of one graph. A joint graph carries its own gradients; a forward
    graph borrows them, by node id, from ``stages`` (a compiled program's), when given."""
    if has_backward(graph):
        values = stage_values(graph, feeds)
        grads = gradients_from_joint(graph, values)
        forward = {n: g for n, g in grads.items()
                   if n in graph and graph.nodes[n].get(ir.PHASE) != ir.BACKWARD}
        return Annotations(values, forward)
    if not stages:
        return Annotations(stage_values(graph, feeds), {})
    return stage_annotations({"this": graph, **stages}, feeds)["this"]


def stage_annotations(stages: Mapping[str, nx.MultiDiGraph], feeds: Mapping) -> dict[str, Annotations]:
    """Values and gradients for every stage (ids a stage cannot compute itself are borrowed)."""
    own = {name: stage_values(graph, feeds) for name, graph in stages.items()}
    return annotate_stages(stages, own)


def render_stages(prog, outdir: str | Path, format: str = "svg", feeds: Mapping | None = None,  # noqa: A002
                  stages=None, **options) -> list[Path]:
    """Every stage of ``prog`` (or ``stages``) into ``outdir``; with ``feeds``, values and
    gradients drawn, in files of their own (``NN-stage-values.svg``)."""
    notes = stage_annotations(prog.stages, feeds) if feeds is not None else None
    return render_program(prog, outdir, format, notes, stages, **options)
