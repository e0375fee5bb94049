"""The rounding step of a gradient check: a float32 program against its float64 twin.

:func:`graphc.gradcheck.check_gradients` judges a program that computes in fewer bits
than float64 in two steps. The derivation: its float64 twin (the same graph compiled in
float64) against central differences, as a float64 program is judged. The rounding,
here: the program's gradients against the twin's. How far apart rounding alone may put
them depends on the conditioning of the computation, which no fixed number of ulps
captures (``cos(exp(v))`` turns the rounding of ``v`` into relative errors of 1e-3 and
more in the gradient), so it is measured, not guessed:

The noise is measured two ways, and the tolerance is :data:`NOISE_FACTOR` times the larger
spread of either, plus a floor of :data:`FLOOR_ULPS` ulp:

- both programs run at the point and at :data:`NEIGHBOURS` float32 points around it (each
  float feed moved by 1 to :data:`ULPS` ulps). The moves change the roundings the float32
  program makes while the twin gives the exact gradient at each point, so the residual
  r = (float32 gradient) − (twin's gradient) changes from point to point; its spread,
  max |r_neighbour − r_point|, is the size of the rounding noise;
- some roundings the moves cannot stir: a sigmoid within 6e-5 of 1 rounds to the same
  float32 at every neighbour, and the backward reads 1 − s, with a 1e-3 relative error.
  So the reference interpreter also runs the program's joint graph (forward and backward)
  in float64 with every value it computes multiplied by 1 + δ, |δ| up to half an ulp
  (Monte Carlo arithmetic, :func:`rounded_joint`): the spread of those gradients is what
  float32 rounding of each value does to them;
- a wrong float32 gradient (a dropped term, a factor, a cast to float16) gives the same
  residual at every neighbour and is no rounding of a value: it does not spread, and fails.

On 993 float32 networks of the differential corpus (all ops, with the floor set to 0 for
the measurement) the largest difference was 0.18 of its tolerance; with the moves alone
(no simulation) 4 failed; the three looked at were each a sigmoid near 1 under a cancelling sum.

When the rounding step fails, :func:`first_rounding_node` cuts the graph at each node
in turn, as :mod:`graphc.localize` does for the derivation, and compares the float32
cotangent reaching it with the twin's by the same rule.
"""

from __future__ import annotations

import networkx as nx
import numpy as np

from . import ir
from .builder import Graph
from .evaluate import evaluate
from .localize import blame, candidates, cut

__all__ = ["coarse_dtype", "float64_copy", "twin", "rounded_joint", "on_grid", "rounding_rows", "first_rounding_node",
           "floors", "NEIGHBOURS", "ULPS", "NOISE_FACTOR", "FLOOR_ULPS"]

NEIGHBOURS = 4  # float32 points around the point at which the noise is measured
ULPS = 4  # each float feed element moves by 1 to ULPS ulps (random sign) at a neighbour
# Gaussian noise: P(|r_point| > 10 max of 4 |r_k - r_point|) = 2e-6 a row (3 samples: 5e-5)
NOISE_FACTOR = 10.0
FLOOR_ULPS = 16  # rounding neither the moves nor the simulation stir: the floor of the tolerance


def coarse_dtype(graph: nx.MultiDiGraph) -> np.dtype | None:
    """The least precise float dtype the graph computes in when coarser than float64, else None."""
    dtypes = {np.dtype(data[ir.DTYPE]) for _, data in graph.nodes(data=True)}
    coarse = [d for d in dtypes if d.kind == "f" and d.itemsize < 8]  # not masks (bool), labels (int)
    return min(coarse, key=lambda d: d.itemsize, default=None)


def float64_copy(graph: nx.MultiDiGraph) -> nx.MultiDiGraph:
    """The same graph computing in float64: every float node's dtype is float64 (labels, masks stay)."""
    out = ir.copy_graph(graph)
    for _, data in out.nodes(data=True):
        if np.dtype(data[ir.DTYPE]).kind == "f":
            data[ir.DTYPE] = "float64"
    return out


def twin(prog, graph: nx.MultiDiGraph | None = None, **options):
    """``prog``'s float64 twin: its declared graph (or ``graph``) compiled in float64, as ``prog`` was."""
    graph = prog.graph if graph is None else graph
    options = {"wrt": prog.wrt, "of": prog.of, **options}
    return prog.compiler(Graph(graph.graph[ir.NAME], nx_graph=float64_copy(graph)), **options)


def on_grid(graph: nx.MultiDiGraph, feeds: dict) -> dict:
    """``feeds`` (float64) with every feed of a coarse float node rounded to that dtype:
    the point the coarse program computes at, given to its twin too."""
    out = {}
    for name, value in feeds.items():
        dtype = np.dtype(graph.nodes[name][ir.DTYPE]) if name in graph else None
        coarse = dtype is not None and dtype.kind == "f" and dtype.itemsize < 8
        out[name] = np.asarray(value, dtype=dtype).astype(np.float64) if coarse else value
    return out


def _neighbour(graph: nx.MultiDiGraph, point: dict, rng) -> dict:
    """A point of the coarse dtype's grid 1 to ULPS ulps from ``point`` in every coarse float feed."""
    out = {}
    for name, value in point.items():
        dtype = np.dtype(graph.nodes[name][ir.DTYPE]) if name in graph else None
        if dtype is None or dtype.kind != "f" or dtype.itemsize >= 8:
            out[name] = value
            continue
        coarse = np.asarray(value, dtype=dtype)
        steps = rng.integers(1, ULPS + 1, size=coarse.shape) * rng.choice([-1, 1], size=coarse.shape)
        moved = coarse + steps.astype(dtype) * np.spacing(coarse)  # small multiples of an ulp: exact
        out[name] = np.asarray(moved, dtype=dtype).astype(np.float64)
    return out


def _gradients(prog, point: dict, cotangent) -> dict:
    """``prog``'s analytic gradients at ``point`` as float64 numpy arrays."""
    _, grads = prog.value_and_grad(point) if cotangent is None else prog.value_and_grad(point, seed=cotangent)
    as_numpy = getattr(getattr(prog, "runtime", None), "to_numpy", np.asarray)
    return {name: np.asarray(as_numpy(g), dtype=np.float64) for name, g in grads.items()}


class Samples:
    """What the rounding step compares: both programs' gradients at the point (index 0) and
    at its neighbours, and the twin's gradients with float32 rounding simulated."""

    def __init__(self, coarse, exact, point: dict, cotangent, rng):
        points = [point] + [_neighbour(coarse.graph, point, rng) for _ in range(NEIGHBOURS)]
        self.coarse = [_gradients(coarse, p, cotangent) for p in points]
        self.exact = [_gradients(exact, p, cotangent) for p in points]
        self.simulated = _simulated(coarse, point, cotangent, rng)  # [unrounded, rounded samples...]

    def judge(self, project, rtol: float, atol: float):
        """(coarse, exact, tolerance, within) of ``project(gradients)`` at the point, elementwise."""
        a, b = np.asarray(project(self.coarse[0])), np.asarray(project(self.exact[0]))
        residual = a - b
        with np.errstate(invalid="ignore", over="ignore"):
            spreads = [np.abs(project(c) - project(e) - residual) for c, e in zip(self.coarse[1:], self.exact[1:])]
            spreads += [np.abs(project(r) - project(self.simulated[0])) for r in self.simulated[1:]]
            # where a sample overflows there is no measure: that sample adds no noise
            noise = np.max([np.where(np.isfinite(s), s, 0.0) for s in spreads], axis=0)
            tolerance = atol + rtol * np.maximum(np.abs(a), np.abs(b)) + NOISE_FACTOR * noise
            within = (a == b) | (np.abs(residual) <= tolerance)
        return a, b, tolerance, within


def rounded_joint(prog) -> tuple[nx.MultiDiGraph, dict] | None:
    """``prog``'s joint graph (forward and backward, the ``optimized_joint`` stage) in
    float64 with a rounding factor after every float value it computes: (graph, {factor
    input: the value it rounds}); None for a program without one.

    Run by the reference interpreter with factors 1 + δ, |δ| up to half the coarse dtype's
    eps, it computes what rounding each value to that dtype does to the gradients (Monte
    Carlo arithmetic, one rounding per value): a value the moves of the feeds cannot stir
    (a sigmoid within 6e-5 of 1, whose 1 - s the backward reads) is stirred here, in the
    forward and in the backward alike.
    """
    stage = getattr(prog, "stages", {}).get("optimized_joint")
    if stage is None or not stage.graph.get(ir.GRADS):
        return None
    graph = float64_copy(stage)
    factors = {}
    for node in list(ir.topological_order(graph)):
        data = graph.nodes[node]
        readers = list(graph.out_edges(node, data=ir.ARG))
        if data[ir.OP] in ("input", "param") or np.dtype(data[ir.DTYPE]).kind != "f" or not readers:
            continue
        factor = ir.add_op(graph, ir.fresh_id(graph, f"rounding_{node}"), "input", [], {}, data[ir.SHAPE], "float64")
        graph.graph[ir.INPUTS] = [*graph.graph[ir.INPUTS], factor]
        rounded = ir.add_op(graph, ir.fresh_id(graph, f"{node}_rounded"), "mul", [node, factor], {},
                            data[ir.SHAPE], "float64")
        graph.remove_edges_from([edge for edge in graph.out_edges(node, keys=True) if edge[1] != rounded])
        for _, reader, position in readers:  # every reader reads the rounded value, at the same position
            graph.add_edge(rounded, reader, **{ir.ARG: position})
        factors[factor] = node
    return graph, factors


def _simulated(prog, point: dict, cotangent, rng) -> list[dict]:
    """The gradients of ``prog``'s joint graph with rounding simulated (:func:`rounded_joint`):
    first with no rounding (factors 1), then NEIGHBOURS samples; [] without a joint graph."""
    made = rounded_joint(prog)
    if made is None:
        return []
    graph, factors = made
    grads = dict(graph.graph[ir.GRADS])
    seed = graph.graph.get(ir.SEED)
    unrounded = prog.stages["optimized_joint"]  # the values' shapes and the gradients, without factors
    feeds = dict(point)
    if seed in graph:  # the cotangent of the output: 1 for a scalar loss
        feeds[seed] = np.ones(()) if cotangent is None else np.asarray(cotangent, dtype=np.float64)
    values = evaluate(unrounded, feeds, sorted(set(factors.values()) | set(grads.values())), dtype="float64")
    shapes = {factor: np.shape(values[node]) for factor, node in factors.items()}  # symbolic dims bound
    eps = float(np.finfo(coarse_dtype(prog.graph)).eps)
    out = [{name: np.asarray(values[node], dtype=np.float64) for name, node in grads.items()}]
    for _ in range(NEIGHBOURS):
        computed = evaluate(graph, {**feeds, **_roundings(shapes, eps, rng)}, list(grads.values()), dtype="float64")
        out.append({name: np.asarray(computed[node], dtype=np.float64) for name, node in grads.items()})
    return out


def _roundings(shapes: dict, eps: float, rng) -> dict:
    """Feeds of the rounding factors: 1 + δ, δ uniform within half an ulp (eps / 2) of 1."""
    return {name: 1.0 + 0.5 * eps * rng.uniform(-1.0, 1.0, size=shape) for name, shape in shapes.items()}


def floors(eps: float, center: float, rtol: float, atol: float) -> tuple[float, float]:
    """(rtol, atol) no finer than FLOOR_ULPS ulp of the coarse dtype (atol: of the loss's size)."""
    resolution = FLOOR_ULPS * eps
    return max(rtol, resolution), max(atol, resolution * max(1.0, abs(center)))


def rounding_rows(row, coarse, exact, point: dict, cotangent, direction: dict, entries, rtol: float,
                  atol: float, seed: int, kinks: set) -> list:
    """The rows of the rounding step: the random direction, then each entry of ``entries``.

    ``row(param, index, analytic, reference, tolerance, status)`` makes a row; ``rtol`` and
    ``atol`` are the floors (:func:`floors`); ``kinks`` holds the (param, index) pairs the
    derivation found within eps of a kink, where rounding may take the other side of it.
    """
    samples = Samples(coarse, exact, point, cotangent, np.random.default_rng(seed))
    checks = [("<random direction>", "all", lambda g: sum(np.sum(direction[n] * g[n]) for n in direction))]
    for name, flat in entries:
        index = np.unravel_index(flat, np.shape(point[name]))
        checks.append((name, str(tuple(int(i) for i in index)), lambda g, n=name, i=index: g[n][i]))
    rows = []
    for param, index, project in checks:
        a, b, tolerance, within = samples.judge(project, rtol, atol)
        status = "ok" if within else "kink" if (param, index) in kinks else "FAIL"
        rows.append(row(param, index, float(a), float(b), float(tolerance), status))
    return rows


def first_rounding_node(prog, point: dict, target: str, cotangent, rtol: float, atol: float) -> str | None:
    """``describe()`` of the node whose float32 backward disagrees with the twin's beyond
    rounding (its cotangent is right, one it passes on is not), or None if none is found."""
    graph = prog.forward_graph
    nodes = candidates(graph, target)
    rng = np.random.default_rng(1)

    def values() -> dict:  # in the program's own dtype: the values the float32 program has
        computed = evaluate(graph, point, nodes)
        return {n: np.asarray(computed[n]).astype(np.float64) for n in nodes}

    def wrong(node: str, known: dict) -> bool:
        at = cut(graph, node)
        coarse = prog.compiler(Graph(graph.graph[ir.NAME], nx_graph=at), wrt=[node], of=target)
        exact = twin(prog, at, wrt=[node], of=target)
        samples = Samples(coarse, exact, {**point, node: known[node]}, cotangent, rng)
        return not np.all(samples.judge(lambda g: g[node], rtol, atol)[3])

    return blame(graph, target, nodes, values, wrong)
