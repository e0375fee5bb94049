"""Drawings with values and gradients: compute the annotations, then let :mod:`graphc.render` draw.

``gc.render(graph, path, feeds=...)`` and ``prog.render(outdir, feeds=...)`` come here:
the values are computed by running each graph (:mod:`graphc.explore.annotate`), and the
drawing layer only draws what it is given.

>>> import graphc as gc
>>> g, feeds = gc.zoo.relu_neuron(w=-1.0)
>>> "zero-grad" in to_digraph(g, feeds=feeds).source   # w gets no update: its edges are grey
True
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import graphviz
import networkx as nx

from .. import ir
from ..pipeline import compile as compile_graph
from ..render import Drawing, as_networkx
from ..render import render as draw
from ..render import to_digraph as digraph
from ..render.values import Annotations, gradients_from_joint, has_backward
from .annotate import stage_annotations, stage_values

__all__ = ["render", "to_digraph", "graph_annotations"]


def graph_annotations(graph: nx.MultiDiGraph, feeds: Mapping) -> Annotations:
    """Values and gradients of one graph: a joint graph carries its own gradients; a forward
    graph is compiled to read them off its joint graph (by node id)."""
    if has_backward(graph):
        values = stage_values(graph, feeds)
        grads = gradients_from_joint(graph, values)
        forward = {n: g for n, g in grads.items()
                   if n in graph and graph.nodes[n].get(ir.PHASE) != ir.BACKWARD}
        return Annotations(values, forward)
    stages = dict(compile_graph(graph).stages)
    return stage_annotations({"this": graph, **stages}, feeds)["this"]


def to_digraph(graph, feeds: Mapping | None = None, **options) -> graphviz.Digraph:
    """The drawing of ``graph`` (with values and gradients for ``feeds``) as a Digraph."""
    notes = graph_annotations(as_networkx(graph), feeds) if feeds is not None else None
    return digraph(graph, notes, **options)


def render(graph, path: str | Path | None = None, format: str | None = None,  # noqa: A002
           feeds: Mapping | None = None, **options) -> Path | Drawing:
    """Draw any graph into ``path`` (format from the suffix); with ``feeds``, its values and
    gradients on the nodes. Without a path, a :class:`graphc.render.Drawing` (inline in Jupyter)."""
    notes = graph_annotations(as_networkx(graph), feeds) if feeds is not None else None
    return draw(graph, path, format, notes, **options)
