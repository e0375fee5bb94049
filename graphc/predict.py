"""``prog.predict(feeds)``: the outputs that need no labels, from the inputs they read.

The inference program is the declared graph cut down to the requested outputs and
everything they depend on (so a classifier's ``y`` is no longer an input), compiled by
the ordinary pipeline (``prog.inference``, which ``gc.compile`` gives every program)
once per set of outputs and kept. By default the
outputs are all but the loss (the one scalar output, or ``of``).

>>> import numpy as np, graphc as gc
>>> graph, feeds = gc.zoo.blobs()
>>> prog = gc.compile(graph)
>>> without_labels = {k: v for k, v in feeds.items() if k != "y"}
>>> logits = prog.predict(without_labels)["g"]
>>> logits.shape, bool(np.allclose(logits, prog.forward(feeds)["g"]))
((150, 3), True)
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence

import networkx as nx
import numpy as np

from . import ir
from .differentiate import scalar_output
from .errors import FeedError, GradientError, GraphcError

__all__ = ["predict", "prediction_outputs", "inference_graph"]

_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # program -> {outputs: inference program}


def prediction_outputs(graph: nx.MultiDiGraph, of: str | None = None) -> list[str]:
    """Every output but the loss (the scalar output whose gradient is taken, if any)."""
    outputs = list(graph.graph[ir.OUTPUTS])
    try:
        loss = scalar_output(graph, of)
    except GradientError:
        return outputs
    rest = [name for name in outputs if name != loss]
    if not rest:
        raise GraphcError(
            f"graph {graph.graph[ir.NAME]!r} has no output to predict: its only output is the loss {loss!r}; "
            "declare the prediction too, e.g. g.output('g', logits)"
        )
    return rest


def inference_graph(graph: nx.MultiDiGraph, outputs: Sequence[str]) -> nx.MultiDiGraph:
    """The part of ``graph`` that ``outputs`` depend on, with only the inputs and params they read."""
    declared = list(graph.graph[ir.OUTPUTS])
    unknown = [name for name in outputs if name not in declared]
    if unknown:
        raise GraphcError(f"{unknown[0]!r} is not an output of graph {graph.graph[ir.NAME]!r}; outputs: {declared!r}")
    keep = set(outputs)
    for name in outputs:
        keep |= nx.ancestors(graph, name)
    cut = graph.subgraph(keep).copy()  # the original's node order, so the same code every time
    cut.graph = ir.copy_graph(graph).graph
    cut.graph[ir.OUTPUTS] = list(outputs)
    for key in (ir.INPUTS, ir.PARAMS):
        cut.graph[key] = [name for name in graph.graph[key] if name in keep]
    return cut


def _compiled(prog, outputs: tuple[str, ...]):
    """The inference program of ``outputs``, compiled once by the pipeline that made ``prog``."""
    if prog.inference is None:
        raise GraphcError(f"program {prog.name!r} cannot compile its outputs alone: make it with gc.compile")
    cache = _COMPILED.setdefault(prog, {})
    if outputs not in cache:
        cache[outputs] = prog.inference(outputs)
    return cache[outputs]


def predict(prog, feeds: Mapping, outputs: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """``outputs`` (default: :func:`prediction_outputs`) for ``feeds``; feeds the outputs do
    not read (labels) may be given or left out, names the graph does not have are an error."""
    if not isinstance(feeds, Mapping):
        raise FeedError(f"feeds must be a dict of name -> array, found {type(feeds).__name__}")
    chosen = tuple(prediction_outputs(prog.graph, prog.of) if outputs is None else outputs)
    inference = _compiled(prog, chosen)
    known = set(ir.sources(prog.graph))
    extra = sorted((k for k in feeds if k not in known), key=str)
    if extra:
        raise FeedError(
            f"unexpected feed {extra[0]!r}: graph {prog.name!r} has no input or param of that name; "
            f"its feeds are {sorted(known)!r}"
        )
    needed = set(ir.sources(inference.graph))
    return inference.forward({k: v for k, v in feeds.items() if k in needed})
