"""Numeric gradient checks, and the pytest plugin that offers them as a fixture.

:func:`check_gradients` compares a program's analytic gradients with float64 central
differences in two ways: along a random direction (⟨t, Jᵀc⟩ against ⟨Jt, c⟩, seeded),
and entry by entry for small values. Where the function has a kink within ``eps`` of the
point (the one-sided differences disagree), the entry is reported as a kink, not a failure.
A mismatch raises :class:`GradientError` with a table and the first node whose local
derivative disagrees.

In pytest (the plugin is registered through the ``pytest11`` entry point)::

    def test_my_net(gradcheck):
        gradcheck(prog, feeds)          # raises GradientError on a mismatch
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from . import ir
from .builder import Graph
from .differentiate import scalar_output
from .errors import GradientError
from .evaluate import evaluate
from .localize import first_disagreeing_node
from .pipeline import compile as compile_graph

__all__ = ["check_gradients", "GradientReport", "gradcheck"]


@dataclass
class Row:
    param: str
    index: str
    analytic: float
    numeric: float
    tolerance: float
    status: str  # "ok", "kink", "FAIL"

    @property
    def error(self) -> float:
        return abs(self.analytic - self.numeric)


@dataclass
class GradientReport:
    """The outcome of a gradient check: one row per direction or entry checked."""

    rows: list[Row] = field(default_factory=list)
    culprit: str | None = None

    @property
    def failures(self) -> list[Row]:
        return [r for r in self.rows if r.status == "FAIL"]

    @property
    def kinks(self) -> list[Row]:
        return [r for r in self.rows if r.status == "kink"]

    @property
    def ok(self) -> bool:
        return not self.failures

    def table(self, rows: list[Row] | None = None) -> str:
        rows = self.rows if rows is None else rows
        head = ("param", "index", "analytic", "numeric", "error", "tolerance", "status")
        body = [(r.param, r.index, f"{r.analytic:.6g}", f"{r.numeric:.6g}", f"{r.error:.3g}",
                 f"{r.tolerance:.3g}", r.status) for r in rows]
        widths = [max(len(str(x)) for x in column) for column in zip(head, *body)]
        lines = ["  ".join(str(x).ljust(w) for x, w in zip(line, widths)).rstrip() for line in [head, *body]]
        return "\n".join(lines)

    def __str__(self) -> str:
        summary = f"{len(self.rows)} checks: {len(self.failures)} failed, {len(self.kinks)} at kinks"
        return summary + "\n" + self.table()


def _scalar_function(prog, fixed: dict, target: str, cotangent):
    def value(point: dict) -> float:
        out = np.asarray(prog.forward({**point, **fixed})[target], dtype=np.float64)
        return float(np.sum(out * cotangent)) if cotangent is not None else float(out)

    return value


def _shifted(feeds: dict, direction: dict, step: float) -> dict:
    return {k: (v + step * direction[k] if k in direction else v) for k, v in feeds.items()}


def _judge(analytic: float, plus: float, minus: float, center: float, eps: float,
           rtol: float, atol: float) -> tuple[float, float, str]:
    numeric = (plus - minus) / (2 * eps)
    tolerance = atol + rtol * max(abs(numeric), abs(analytic))
    if abs(analytic - numeric) <= tolerance:
        return numeric, tolerance, "ok"
    right, left = (plus - center) / eps, (center - minus) / eps
    if abs(right - left) > tolerance and min(abs(analytic - right), abs(analytic - left)) <= tolerance:
        return numeric, tolerance, "kink"  # one-sided slopes differ: a kink within eps
    if abs(right - left) > 10 * tolerance and abs(analytic - numeric) <= abs(right - left):
        return numeric, tolerance, "kink"
    return numeric, tolerance, "FAIL"


def check_gradients(prog, feeds: Mapping, rtol: float = 1e-5, atol: float = 1e-7, eps: float = 1e-6,
                    seed: int = 0, max_entries: int = 64, raise_on_failure: bool = True) -> GradientReport:
    """Compare ``prog``'s gradients with central differences (float64); see the module doc.

    Per-entry checks run for wrt values with at most ``max_entries`` elements. Returns the
    report; raises :class:`GradientError` (with the table) when a check fails.
    """
    if not hasattr(prog, "value_and_grad"):
        prog = compile_graph(prog)
    rng = np.random.default_rng(seed)
    point = {k: np.array(v, dtype=np.float64) for k, v in feeds.items()}
    exact, fixed = _reference(prog, point)  # float64, stopped values held fixed
    outputs = exact.forward({**point, **fixed})
    target = prog.of or (prog.outputs[0] if not prog.has_gradient else _scalar_name(prog))
    cotangent = None
    if prog.has_gradient:
        _, grads = prog.value_and_grad(point)
    else:
        cotangent = rng.standard_normal(np.shape(outputs[target]))
        _, grads = prog.value_and_grad(point, seed=cotangent)
    value = _scalar_function(exact, fixed, target, cotangent)
    center = value(point)
    report = GradientReport()

    direction = {name: rng.standard_normal(np.shape(point[name])) for name in prog.wrt}
    analytic = float(sum(np.sum(direction[n] * grads[n]) for n in prog.wrt))
    plus, minus = value(_shifted(point, direction, eps)), value(_shifted(point, direction, -eps))
    numeric, tolerance, status = _judge(analytic, plus, minus, center, eps, rtol, atol)
    report.rows.append(Row("<random direction>", "all", analytic, numeric, tolerance, status))

    for name in prog.wrt:
        size = np.size(point[name])
        if size > max_entries:
            continue
        for flat in range(size):
            index = np.unravel_index(flat, np.shape(point[name]))
            unit = {name: np.zeros(np.shape(point[name]))}
            unit[name][index] = 1.0
            a = float(np.asarray(grads[name])[index])
            plus, minus = value(_shifted(point, unit, eps)), value(_shifted(point, unit, -eps))
            numeric, tolerance, status = _judge(a, plus, minus, center, eps, rtol, atol)
            report.rows.append(Row(name, str(tuple(int(i) for i in index)), a, numeric, tolerance, status))

    if report.failures and raise_on_failure:
        report.culprit = first_disagreeing_node(prog, point, target, cotangent, eps, rtol, atol)
        where = (f"the first node whose local derivative disagrees: {report.culprit}"
                 if report.culprit else "no single node's local derivative could be blamed")
        raise GradientError(
            f"gradients of {target!r} in graph {prog.name!r} disagree with central differences "
            f"(eps={eps}, rtol={rtol}, atol={atol}); {where}\n" + report.table(report.failures)
        )
    return report


def _scalar_name(prog) -> str:
    return scalar_output(prog.forward_graph, prog.of)


def _reference(prog, point: dict):
    """The program the differences are taken on, and what it is fed beyond ``point``.

    It computes in float64 whatever ``prog``'s dtype. A ``stop_gradient`` defines the
    gradient of the function with the stopped value held constant, so there the value is
    cut out and fed as it is at ``point`` (from the reference interpreter): the
    differences then measure what the gradient claims. ``prog`` itself when neither applies.
    """
    declared = prog.graph
    stopped = [n for n in declared.nodes if declared.nodes[n][ir.OP] == "stop_gradient"]
    floats = [n for n, data in declared.nodes(data=True) if np.dtype(data[ir.DTYPE]).kind == "f"]
    if not stopped and all(declared.nodes[n][ir.DTYPE] == "float64" for n in floats):
        return prog, {}
    fixed = evaluate(declared, point, stopped, dtype="float64") if stopped else {}
    twin = ir.copy_graph(declared)
    for node in floats:  # labels (int64) and masks (bool) keep their dtypes
        twin.nodes[node][ir.DTYPE] = "float64"
    for node in stopped:
        twin.remove_edges_from(list(twin.in_edges(node, keys=True)))
        twin.nodes[node][ir.OP], twin.nodes[node][ir.ATTRS] = "input", {}
        twin.graph[ir.INPUTS] = [*twin.graph[ir.INPUTS], node]
    compiled = compile_graph(Graph(twin.graph[ir.NAME], nx_graph=twin), wrt=prog.wrt, of=prog.of)
    return compiled, {n: np.asarray(v, dtype=np.float64) for n, v in fixed.items()}


# -- the pytest plugin ------------------------------------------------------------------
try:
    import pytest
except ImportError:  # pragma: no cover - pytest is only needed for the fixture
    pytest = None

if pytest is not None:

    @pytest.fixture
    def gradcheck():
        """A fixture: ``gradcheck(prog_or_graph, feeds, **options)`` runs check_gradients."""

        def run(prog, feeds, **options) -> GradientReport:
            return check_gradients(prog, feeds, **options)

        return run
