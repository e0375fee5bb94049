"""Find the node to blame when a gradient check fails.

For each node on the way to the output, the graph is cut there (the node becomes an
input) and the gradient of the output with respect to that node's value is checked
numerically. The culprit is a node whose own cotangent is right while the cotangent it
passes to an operand is wrong: its local derivative disagrees.
"""

from __future__ import annotations

import networkx as nx
import numpy as np

from . import ir
from .builder import Graph
from .errors import GraphcError, describe
from .evaluate import evaluate
from .verify import topological_order

__all__ = ["first_disagreeing_node", "node_values", "candidates", "blame", "cut"]

MAX_NODES = 150  # each candidate costs a compile; beyond this the search is skipped


def node_values(graph: nx.MultiDiGraph, feeds: dict, nodes: list[str]) -> dict[str, np.ndarray]:
    """The value of each of ``nodes`` for ``feeds``, from the reference interpreter, in float64."""
    values = evaluate(graph, feeds, nodes, dtype="float64")
    return {n: np.asarray(values[n], dtype=np.float64) for n in nodes}


def cut(graph: nx.MultiDiGraph, node: str) -> nx.MultiDiGraph:
    cut = ir.copy_graph(graph)
    cut.remove_edges_from(list(cut.in_edges(node, keys=True)))
    data = cut.nodes[node]
    data[ir.OP], data[ir.ATTRS] = "input", {}
    data.pop(ir.EXPR, None)
    cut.graph[ir.INPUTS].append(node)
    return cut


def _cotangent_ok(compiler, graph, node, feeds, value, target, cotangent, eps, rtol, atol, rng) -> bool:
    prog = compiler(Graph(graph.graph[ir.NAME], nx_graph=cut(graph, node)), wrt=[node], of=target)
    point = {**feeds, node: value}
    seed = None if cotangent is None else cotangent
    _, grads = prog.value_and_grad(point, seed=seed) if seed is not None else prog.value_and_grad(point)
    direction = rng.standard_normal(np.shape(value))

    def f(v):
        out = np.asarray(prog.forward({**point, node: v})[target], dtype=np.float64)
        return float(np.sum(out * cotangent)) if cotangent is not None else float(out)

    numeric = (f(value + eps * direction) - f(value - eps * direction)) / (2 * eps)
    analytic = float(np.sum(direction * grads[node]))
    return abs(numeric - analytic) <= atol + rtol * max(abs(numeric), abs(analytic))


def first_disagreeing_node(prog, feeds: dict, target: str, cotangent, eps: float, rtol: float,
                           atol: float) -> str | None:
    """``describe()`` of the node whose local derivative is wrong, or None if none is found."""
    graph = prog.forward_graph
    nodes = candidates(graph, target)
    rng = np.random.default_rng(1)

    def wrong(node: str, values: dict) -> bool:
        return not _cotangent_ok(prog.compiler, graph, node, feeds, values[node], target, cotangent,
                                 eps, rtol, atol, rng)

    return blame(graph, target, nodes, lambda: node_values(graph, feeds, nodes), wrong)


def candidates(graph: nx.MultiDiGraph, target: str) -> list[str]:
    """The computed nodes on the way to ``target`` (not ``target``), in topological order."""
    on_path = nx.ancestors(graph, target)
    return [n for n in topological_order(graph)
            if n in on_path and ir.op_of(graph, n) not in ("input", "param", "const")]


def blame(graph: nx.MultiDiGraph, target: str, nodes: list[str], values, wrong) -> str | None:
    """The nodes whose own cotangent is right while one they pass on is wrong, described.

    ``wrong(node, values)`` says whether the cotangent reaching ``node`` is wrong (it cuts
    the graph there); ``values()`` gives what it needs of the forward values. The search
    walks from the output backwards and stops at the first wrong node (each probe costs a
    compile): every consumer of that node passes it a wrong cotangent from a right one.
    None when there are too many nodes to probe or a probe cannot be compiled.
    """
    if len(nodes) > MAX_NODES:
        return None
    last_bad = None  # the bad node closest to the output: every consumer's cotangent is right
    try:
        known = values()
        last_bad = next((n for n in reversed(nodes) if wrong(n, known)), None)
    except GraphcError:
        return None
    on_path = nx.ancestors(graph, target) | {target}
    culprits = [target] if last_bad is None else sorted(
        {s for s in graph.successors(last_bad) if s in on_path}, key=str)
    return ", ".join(describe(n, ir.op_of(graph, n)) for n in culprits)
