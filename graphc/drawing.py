"""``gc.render``: draw any graph, with its values and gradients when given feeds.

A forward graph holds no gradient, so with feeds it is compiled here (the command-line
face of drawing may run the pipeline; the drawing and its annotations may not) and its
gradients are read off the program's joint graph by node id.

>>> import graphc as gc
>>> g, feeds = gc.zoo.relu_neuron(w=-1.0)
>>> "zero-grad" in to_digraph(g, feeds=feeds).source   # w gets no update: its edges are grey
True
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import graphviz

from .explore.annotate import graph_annotations
from .pipeline import compile as compile_graph
from .render import Drawing, as_networkx
from .render import render as draw
from .render import to_digraph as digraph
from .render.values import Annotations, has_backward

__all__ = ["render", "to_digraph", "annotations"]


def annotations(graph, feeds: Mapping) -> Annotations:
    """Values and gradients of ``graph`` for ``feeds`` (compiling a forward graph for its gradients)."""
    nx_graph = as_networkx(graph)
    stages = None if has_backward(nx_graph) else dict(compile_graph(nx_graph).stages)
    return graph_annotations(nx_graph, feeds, stages)


def to_digraph(graph, feeds: Mapping | None = None, **options) -> graphviz.Digraph:
    """The drawing of ``graph`` (with values and gradients for ``feeds``) as a Digraph."""
    return digraph(graph, annotations(graph, feeds) if feeds is not None else None, **options)


def render(graph, path: str | Path | None = None, format: str | None = None,  # noqa: A002
           feeds: Mapping | None = None, **options) -> Path | Drawing:
    """Draw any graph into ``path`` (format from the suffix); with ``feeds``, its values and
    gradients on the nodes. Without a path, a :class:`graphc.render.Drawing` (inline in Jupyter)."""
    return draw(graph, path, format, annotations(graph, feeds) if feeds is not None else None, **options)
