"""Drawing: every stage of the compiler as a Graphviz picture, with values and gradients.

    to_digraph(graph, annotations=...)         the graphviz.Digraph itself, to restyle
    render(graph, "g.svg", annotations=...)    one file (svg, png, pdf or dot)
    render_program(prog, outdir, annotations)  one file per stage, named in pipeline order

Drawing is a leaf: it takes graphs and the values and gradients its caller computed
(:class:`values.Annotations`, e.g. from :mod:`graphc.explore.annotate`); it never runs
the pipeline or a graph. ``gc.render(graph, feeds=...)`` and ``prog.render(outdir,
feeds=...)`` compute the annotations and call these. The visual language (kinds of
nodes, marks, ranks, greyed zero-gradient edges, NaN in red) is in ``style.py`` and
documented in ``docs/rendering.md``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from pathlib import Path

import graphviz
import networkx as nx

from .. import ir
from ..errors import RenderError
from . import backends
from .dot import DrawOptions, build
from .values import Annotations

__all__ = ["render", "render_program", "to_digraph", "Drawing", "DrawOptions", "Annotations", "stage_file",
           "stage_digraphs", "as_networkx"]

OPTIONS = tuple(f.name for f in dataclasses.fields(DrawOptions))


def as_networkx(graph) -> nx.MultiDiGraph:
    """The networkx graph inside a gc.Graph (or the networkx graph itself)."""
    if isinstance(graph, nx.DiGraph):
        return graph
    inner = getattr(graph, "nx", None)
    if isinstance(inner, nx.DiGraph):
        return inner
    raise RenderError(f"cannot draw a {type(graph).__name__}: pass a gc.Graph or a networkx graph "
                      "(a compiled program draws with prog.render(outdir))")


def _options(options: Mapping) -> DrawOptions:
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise RenderError(f"unknown drawing option(s) {', '.join(unknown)}; the options are {', '.join(OPTIONS)}")
    return DrawOptions(**options)


def to_digraph(graph, annotations: Annotations | None = None, **options) -> graphviz.Digraph:
    """The drawing of ``graph`` as a :class:`graphviz.Digraph` (restyle it, then render it).

    >>> import graphc as gc
    >>> g = gc.Graph("doc"); x = g.input("x"); _ = g.output("y", 2 * x)
    >>> dot = to_digraph(g)
    >>> "rank=same" in dot.source, dot.source == to_digraph(g).source
    (True, True)
    """
    return build(as_networkx(graph), annotations, _options(options))


class Drawing:
    """A drawing kept in memory: ``.source`` (DOT), ``.svg()``; shows inline in Jupyter."""

    def __init__(self, digraph: graphviz.Digraph):
        self.digraph = digraph

    @property
    def source(self) -> str:
        return self.digraph.source

    def svg(self) -> str:
        return backends.render_bytes(self.source, "svg").decode("utf-8")

    def _repr_svg_(self) -> str:
        return self.svg()

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        if backends.available("svg") is None:
            return {"text/plain": self.source}
        return {"image/svg+xml": self.svg(), "text/plain": f"<graphc drawing, {len(self.source)} chars of DOT>"}


def _format_of(path: Path, format: str | None) -> str:  # noqa: A002
    if format is None:
        format = path.suffix.lstrip(".").lower() or "svg"
    return backends.check_format(format)


def render(graph, path: str | Path | None = None, format: str | None = None,  # noqa: A002
           annotations: Annotations | None = None, **options) -> Path | Drawing:
    """Draw any graph into ``path`` (format from the suffix, or ``format``); return the path.

    Without a path, return a :class:`Drawing` (it shows inline in a notebook). Without
    Graphviz, the DOT text is still written next to ``path`` before the RenderError.
    """
    drawing = to_digraph(graph, annotations, **options)
    if path is None:
        return Drawing(drawing)
    path = Path(path)
    fmt = _format_of(path, format)
    if fmt != "dot" and backends.available(fmt) is None:
        fallback = backends.write(drawing.source, path.with_suffix(".dot"), "dot")
        raise RenderError(f"cannot draw {path.name}: no Graphviz ({backends.INSTALL_HINT}); "
                          f"the DOT text is in {fallback}")
    return backends.write(drawing.source, path, fmt)


def stage_file(index: int, stage: str, format: str, values: bool = False) -> str:  # noqa: A002
    """``01-declared.svg``: numbered so that a directory listing is the pipeline's order.

    Drawings with values and gradients are ``01-declared-values.svg``: they never
    overwrite the plain drawings of the same directory.

    >>> stage_file(1, "declared", "svg"), stage_file(10, "scheduled", "dot", values=True)
    ('01-declared.svg', '10-scheduled-values.dot')
    """
    tail = "-values" if values else ""
    return f"{index:02d}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', stage)}{tail}.{format}"


def stage_digraphs(prog, annotations: Mapping[str, Annotations] | None = None, stages=None,
                   **options) -> list[tuple[str, graphviz.Digraph]]:
    """(stage name, drawing) for each stage of a program, in pipeline order; ``annotations``
    maps a stage name to what is drawn on it."""
    names = list(prog.stages)
    if stages is not None:
        missing = [s for s in stages if s not in prog.stages]
        if missing:
            raise RenderError(f"unknown stage(s) {missing!r}; the program's stages are {names!r}")
        names = [s for s in names if s in set(stages)]
    notes = annotations or {}
    opts = _options(options)
    out = []
    for name in names:
        title = f"{prog.stages[name].graph.get(ir.NAME, 'graph')} · {name}"
        stage_opts = dataclasses.replace(opts, title=opts.title or title)
        out.append((name, build(prog.stages[name], notes.get(name), stage_opts)))
    return out


def render_program(prog, outdir: str | Path, format: str = "svg",  # noqa: A002
                   annotations: Mapping[str, Annotations] | None = None, stages=None, **options) -> list[Path]:
    """Draw each stage of ``prog`` into ``outdir`` as ``NN-stage.format``; return the paths."""
    backends.check_format(format)
    outdir = Path(outdir)
    drawings = stage_digraphs(prog, annotations, stages, **options)
    all_names = list(prog.stages)
    files = [(outdir / stage_file(all_names.index(name) + 1, name, format, values=annotations is not None), d)
             for name, d in drawings]
    if format != "dot" and backends.available(format) is None:
        written = [backends.write(d.source, p.with_suffix(".dot"), "dot") for p, d in files]
        raise RenderError(f"cannot draw {format.upper()}: no Graphviz ({backends.INSTALL_HINT}); "
                          f"the DOT text of each stage is in {outdir} ({len(written)} .dot files)")
    return [backends.write(d.source, p, format) for p, d in files]
