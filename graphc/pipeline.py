"""The compiler's pipeline: one ordered list of named stages, read top to bottom.

    declare -> verify -> rewrite composites -> expand composites -> optimize
            -> differentiate -> optimize the joint graph -> fuse -> schedule -> lower -> load

Every stage's output is kept by name (``Program.stages``) for drawing and testing.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Sequence

import networkx as nx

from . import ir
from .builder import Graph, from_networkx
from .differentiate import differentiate, scalar_output
from .errors import GradientError
from .lower.source import generate
from .passes.expand import expand
from .passes.fuse import fuse
from .passes.interleave import interleave
from .passes.optimize import optimize
from .passes.share import share
from .passes.stable import rewrite_composites
from .program import Program
from .schedule import schedule
from .verify import verify

__all__ = ["compile", "grad", "FORWARD_STAGES", "JOINT_STAGES", "gradient_stages"]

Pass = Callable[[nx.MultiDiGraph], nx.MultiDiGraph]

# The forward graph's stages, in order.
FORWARD_STAGES: list[tuple[str, Pass]] = [
    ("rewritten", rewrite_composites),  # log(softmax) -> log_softmax, bce(sigmoid) -> logits form
    ("expanded", expand),
    ("optimized", optimize),
]

# After differentiation, the joint forward+backward graph's stages, in order.
JOINT_STAGES: list[tuple[str, Pass]] = [
    ("optimized_joint", optimize),
    ("fused", fuse),
    ("shared", share),  # a costly part two kernels repeat (sigmoid in silu and silu') is computed once
    ("interleaved", interleave),  # long backward products start during the forward pass
    ("scheduled", schedule),
]

# The inference forward graph's last stages (its code is ``Program.forward_source``).
INFERENCE_STAGES: list[tuple[str, Pass]] = [
    ("fused", fuse),
    ("scheduled", schedule),
]


def run_stages(graph: nx.MultiDiGraph, stages: list[tuple[str, Pass]], into: dict,
               check: bool = False) -> nx.MultiDiGraph:
    """Run ``stages`` in order, keeping each output in ``into``; ``check`` verifies each one.

    Every pass is verified after every stage by the tests; compile verifies the declared
    graph and the graphs it lowers (verify is linear, but costs as much as a cheap pass).
    """
    for name, stage in stages:
        inherited = graph.graph.get(ir.STATS)
        graph = stage(graph)
        if check:
            verify(graph)
        if inherited is not None and graph.graph.get(ir.STATS) == inherited:
            graph.graph.pop(ir.STATS)  # each stage shows what its own pass did, nothing older
        into[name] = graph
    return graph


def gradient_stages(forward: nx.MultiDiGraph, wrt: Sequence[str] | None, of: str | None,
                    seeded: bool) -> dict[str, nx.MultiDiGraph]:
    """The stages from differentiation on: {"differentiated": ..., ..., "scheduled": ...}."""
    joint = differentiate(forward, wrt, of, seeded=seeded)
    joint.graph.pop(ir.STATS, None)
    stages = {"differentiated": joint}
    verify(run_stages(stages["differentiated"], JOINT_STAGES, stages))
    return stages


def _as_graph(graph: Graph | nx.DiGraph) -> Graph:
    return graph if isinstance(graph, Graph) else from_networkx(graph)


def compile(graph: Graph | nx.DiGraph, wrt: Sequence[str] | None = None, of: str | None = None) -> Program:  # noqa: A001
    """Compile a declared network into a :class:`Program`.

    ``wrt`` (default: every param) names the values gradients are taken with respect to;
    ``of`` the output whose gradient is taken (default: the one scalar output). A graph
    without a scalar output compiles for the forward pass; ``value_and_grad`` then needs
    an explicit cotangent ``seed``.

    >>> import graphc as gc
    >>> g = gc.Graph("affine"); x = g.input("x", shape=(2,))
    >>> _ = g.output("y", 2 * x + 1)
    >>> gc.compile(g).forward({"x": [1.0, 2.0]})["y"]
    array([3., 5.])

    Python's cyclic garbage collector is paused meanwhile: compiling allocates many
    small objects that live until the end, and every collection would walk them all
    again (a 10,000-node graph compiled about a third slower, and worse than linearly).
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _compile(graph, wrt, of)
    finally:
        if collecting:
            gc.enable()


def _compile(graph: Graph | nx.DiGraph, wrt: Sequence[str] | None, of: str | None) -> Program:
    """The pipeline itself: every stage in order, then lowering and loading."""
    declared = verify(ir.copy_graph(_as_graph(graph).nx))
    stages: dict[str, nx.MultiDiGraph] = {"declared": declared}
    forward = run_stages(declared, FORWARD_STAGES, stages)
    wrt = list(declared.graph[ir.PARAMS] if wrt is None else wrt)
    if of is not None and of not in declared.graph[ir.OUTPUTS]:
        raise GradientError(f"of={of!r} is not an output of graph {declared.graph[ir.NAME]!r}; "
                            f"outputs are {declared.graph[ir.OUTPUTS]!r}")
    joint = None
    try:
        scalar_output(forward, of)
    except GradientError:  # no scalar to differentiate: forward only, gradients need a seed
        run_stages(forward, INFERENCE_STAGES, stages)
    else:
        stages.update(gradient_stages(forward, wrt, of, seeded=False))
        joint = stages["scheduled"]
    code = generate(verify(run_stages(forward, INFERENCE_STAGES, {})), joint)
    return Program(graph=declared, stages=stages, code=code, wrt=wrt, of=of, forward_graph=forward)


def grad(graph: Graph | nx.DiGraph, of: str, wrt: Sequence[str] | None = None) -> Graph:
    """A new graph: ``graph`` plus the gradient of output ``of`` w.r.t. each of ``wrt``.

    The gradients are ordinary outputs named ``d<of>/d<name>``, computed by ordinary ops,
    so the result can be differentiated again (Hessian-vector products, gradient penalties).

    >>> import graphc as gc
    >>> g = gc.Graph("cube"); x = g.input("x", shape=())
    >>> _ = g.output("y", x ** 3)
    >>> g2 = gc.grad(g, "y", wrt=["x"])
    >>> g2.outputs
    ['y', 'dy/dx']
    >>> float(gc.compile(g2).forward({"x": 2.0})["dy/dx"])
    12.0
    """
    source = _as_graph(graph)
    forward = expand(verify(ir.copy_graph(source.nx)))
    joint = differentiate(forward, wrt, of)
    for node in joint.nodes:
        joint.nodes[node][ir.PHASE] = ir.FORWARD
    out = Graph(joint.graph[ir.NAME], nx_graph=joint)
    for name, node in joint.graph.pop(ir.GRADS).items():
        output = f"d{of}/d{name}"
        if output in joint:
            output = ir.fresh_id(joint, output)
        identity = Graph.node(out, node)
        out._auto.add(node)
        out.output(output, identity)
    joint.graph.pop(ir.SEED, None)
    verify(joint)
    return out
