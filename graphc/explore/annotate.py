"""Values and gradients of every stage, computed here so that drawing stays a leaf.

Each stage's graph is run on the feeds; :func:`graphc.render.values.annotate_stages`
then decides what each stage shows. A joint graph's backward pass is seeded with ones
(d output / d output = 1, as ``value_and_grad`` does for a scalar output).

>>> import graphc as gc
>>> g = gc.Graph("doc"); x = g.input("x"); _ = g.output("y", 3 * x + 1)
>>> values = stage_values(g.nx, {"x": 2.0})
>>> float(values["y"]), float(values["mul"])
(7.0, 6.0)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import networkx as nx
import numpy as np

from .. import ir
from ..feeds import check_feeds
from ..lower.emit import FunctionSpec, Module
from ..lower.load import load_source
from ..ops.base import get_op
from ..render import render_program
from ..render.values import Annotations, annotate_stages
from ..schedule import levels

__all__ = ["value_runner", "stage_values", "stage_annotations", "runnable", "render_stages"]


def runnable(graph: nx.MultiDiGraph) -> bool:
    """Whether the graph can run as it is (composite ops run only after expansion)."""
    return all(not get_op(d[ir.OP], n).composite for n, d in graph.nodes(data=True))


def _seed_feeds(graph: nx.MultiDiGraph, arrays: Mapping) -> dict[str, np.ndarray]:
    """Ones for source nodes that are not the graph's inputs or params (the backward seed)."""
    extra = {}
    for node, data in graph.nodes(data=True):
        if data[ir.OP] == "input" and node not in arrays:
            shape = tuple(int(d) if not getattr(d, "free_symbols", None) else 1 for d in data[ir.SHAPE])
            extra[node] = np.ones(shape, dtype=data.get(ir.DTYPE, "float64"))
    return extra


def value_runner(graph: nx.MultiDiGraph) -> Callable[[Mapping], dict[str, np.ndarray]]:
    """A function of the feeds returning every node's value, generated once for ``graph``
    (by the graph's own lowering), so that training playback runs it at numpy speed."""
    seed = graph.graph.get(ir.SEED)
    names = [n for n in ir.sources(graph) if n != seed]
    seeds = _seed_feeds(graph, dict.fromkeys(names))
    args = names + list(seeds)
    module = Module(graph)
    for a in args:
        module.namespace.name(a)
    computed = [n for n in graph.nodes if graph.nodes[n][ir.OP] not in ("input", "param", "const")]
    spec = FunctionSpec("all_values", args, levels(graph), computed or args[:1])
    function = module.function(spec)
    constants = "".join(f"{name} = {value}\n" for name, value in module.constants.items())
    source = "import numpy\n" + constants + "\n\n" + function
    run = load_source(source, f"{graph.graph.get(ir.NAME, 'graph')} values").all_values
    consts = {node: np.asarray(data[ir.ATTRS]["value"], dtype=np.float64)
              for node, data in graph.nodes(data=True) if data[ir.OP] == "const"}

    def values(feeds: Mapping) -> dict[str, np.ndarray]:
        arrays = dict(zip(names, check_feeds(graph, {k: v for k, v in feeds.items() if k in set(names)}, names)))
        arrays.update(seeds)
        with np.errstate(all="ignore"):  # NaN and Inf are drawn (in red), not warned about
            results = run(*[arrays[a] for a in args]) if computed else ()
        out = {n: np.asarray(v) for n, v in zip(computed, results)}
        out.update({n: np.asarray(v) for n, v in arrays.items()})
        out.update(consts)
        return out

    return values


def stage_values(graph: nx.MultiDiGraph, feeds: Mapping) -> dict[str, np.ndarray]:
    """Every node's value for ``feeds``, by running the graph's own generated code."""
    return value_runner(graph)(feeds)


def stage_annotations(stages: Mapping[str, nx.MultiDiGraph], feeds: Mapping) -> dict[str, Annotations]:
    """Values and gradients for every stage (ids a stage cannot compute itself are borrowed)."""
    own = {name: stage_values(graph, feeds) if runnable(graph) else {} for name, graph in stages.items()}
    return annotate_stages(stages, own)


def render_stages(prog, outdir: str | Path, format: str = "svg", feeds: Mapping | None = None,  # noqa: A002
                  stages=None, **options) -> list[Path]:
    """Every stage of ``prog`` (or ``stages``) into ``outdir``; with ``feeds``, values and
    gradients drawn, in files of their own (``NN-stage-values.svg``)."""
    notes = stage_annotations(prog.stages, feeds) if feeds is not None else None
    return render_program(prog, outdir, format, notes, stages, **options)
