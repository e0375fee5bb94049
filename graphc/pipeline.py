"""The compiler's pipeline: one ordered list of named stages, read top to bottom.

    declare -> verify -> expand composites -> [optimize] -> [differentiate -> optimize]
            -> [fuse] -> schedule -> lower to numpy -> load

Every stage's output is kept by name (``Program.stages``) for drawing and testing.
"""

from __future__ import annotations

from collections.abc import Callable

import networkx as nx

from . import ir
from .builder import Graph
from .lower.source import generate
from .passes.expand import expand
from .program import Program
from .schedule import schedule
from .verify import verify

__all__ = ["compile", "FORWARD_STAGES"]

Pass = Callable[[nx.MultiDiGraph], nx.MultiDiGraph]

# The forward pipeline, in order: (stage name, pass).
FORWARD_STAGES: list[tuple[str, Pass]] = [
    ("expanded", expand),
    ("scheduled", schedule),
]


def run_stages(graph: nx.MultiDiGraph, stages: list[tuple[str, Pass]], into: dict) -> nx.MultiDiGraph:
    for name, stage in stages:
        graph = verify(stage(graph))
        into[name] = graph
    return graph


def compile(graph: Graph | nx.DiGraph, wrt: list[str] | None = None) -> Program:  # noqa: A001 - the API's name
    """Compile a declared network into a :class:`Program`.

    >>> import graphc as gc
    >>> g = gc.Graph("affine"); x = g.input("x", shape=(2,))
    >>> _ = g.output("y", 2 * x + 1)
    >>> gc.compile(g).forward({"x": [1.0, 2.0]})["y"]
    array([3., 5.])
    """
    from .builder import from_networkx

    if not isinstance(graph, Graph):
        graph = from_networkx(graph)
    declared = verify(graph.nx.copy())
    stages: dict[str, nx.MultiDiGraph] = {"declared": declared}
    forward = run_stages(declared, FORWARD_STAGES, stages)
    code = generate(forward)
    return Program(graph=declared, stages=stages, code=code, wrt=list(declared.graph[ir.PARAMS] if wrt is None else wrt))
