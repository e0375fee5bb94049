"""Numeric gradient checks: a program's analytic gradients against central differences.

:func:`check_gradients` compares a program's analytic gradients with float64 central
differences in two ways: along a random direction (⟨t, Jᵀc⟩ against ⟨Jt, c⟩, seeded),
and entry by entry for small values. Where the function has a kink within ``eps`` of the
point (the one-sided differences disagree), the entry is reported as a kink, not a failure.
A mismatch raises :class:`GradientError` with a table and the first node whose local
derivative disagrees.

A float32 program is judged in two steps: its derivation on its float64 twin (as above),
then its rounding, its gradients against the twin's (:mod:`graphc.rounding`).

The check runs the pipeline (it compiles a float64 twin where it needs one), so it lives
beside the pipeline in the driver; :mod:`graphc.testing` offers it to pytest as a fixture,
and the report page is handed its result (:func:`check_for_page`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from . import ir, rounding
from .builder import Graph
from .differentiate import scalar_output
from .errors import GradientError, GraphcError
from .evaluate import evaluate
from .localize import first_disagreeing_node

__all__ = ["check_gradients", "check_for_page", "GradientReport", "PAGE_SAMPLE"]

# entries a page (the report) checks one by one, drawn from all params: its cost stays flat
PAGE_SAMPLE = 64


@dataclass
class Row:
    param: str
    index: str
    analytic: float
    numeric: float
    tolerance: float
    status: str  # "ok", "kink", "FAIL"
    # "derivation": analytic against central differences; "rounding" (a float32 program):
    # the program's gradient (analytic) against its float64 twin's (in the numeric column)
    check: str = "derivation"

    @property
    def error(self) -> float:
        return abs(self.analytic - self.numeric)


@dataclass
class GradientReport:
    """The outcome of a gradient check: one row per direction or entry checked."""

    rows: list[Row] = field(default_factory=list)
    culprit: str | None = None
    sampled: tuple[int, int] | None = None  # (entries checked, entries of all wrt values) when sampled

    @property
    def failures(self) -> list[Row]:
        return [r for r in self.rows if r.status == "FAIL"]

    @property
    def kinks(self) -> list[Row]:
        return [r for r in self.rows if r.status == "kink"]

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def failed_steps(self) -> list[str]:
        """The checks with a failing row, in the order they run: "derivation", "rounding"."""
        return [step for step in ("derivation", "rounding") if any(r.check == step for r in self.failures)]

    def table(self, rows: list[Row] | None = None) -> str:
        rows = self.rows if rows is None else rows
        head = ("param", "index", "analytic", "numeric", "error", "tolerance", "status")
        body = [(r.param, r.index, f"{r.analytic:.6g}", f"{r.numeric:.6g}", f"{r.error:.3g}",
                 f"{r.tolerance:.3g}", r.status) for r in rows]
        if any(r.check != "derivation" for r in self.rows):  # a float32 program's report: two steps
            head, body = ("check", *head), [(r.check, *line) for r, line in zip(rows, body)]
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
    # A central difference cannot resolve less than the rounding of the values it subtracts:
    # a loss of 1e22 moves by no visible amount when one small term of it changes, so that
    # resolution (a few ulp of the loss over the step) is part of the tolerance.
    resolution = 4 * np.finfo(np.float64).eps * max(abs(plus), abs(minus), abs(center)) / eps
    tolerance = atol + rtol * max(abs(numeric), abs(analytic)) + resolution
    if abs(analytic - numeric) <= tolerance:
        return numeric, tolerance, "ok"
    right, left = (plus - center) / eps, (center - minus) / eps
    if abs(right - left) > tolerance and min(abs(analytic - right), abs(analytic - left)) <= tolerance:
        return numeric, tolerance, "kink"  # one-sided slopes differ: a kink within eps
    if abs(right - left) > 10 * tolerance and abs(analytic - numeric) <= abs(right - left):
        return numeric, tolerance, "kink"
    return numeric, tolerance, "FAIL"


def check_gradients(prog, feeds: Mapping, rtol: float = 1e-5, atol: float = 1e-7, eps: float = 1e-6,
                    seed: int = 0, max_entries: int = 64, raise_on_failure: bool = True,
                    sample: int | None = None) -> GradientReport:
    """Compare ``prog``'s gradients with central differences (float64); see the module doc.

    Per-entry checks run for wrt values with at most ``max_entries`` elements; with
    ``sample``, instead, for ``sample`` entries drawn (seeded, without repeats) from all
    entries of every wrt value, so that the cost no longer grows with the model (two
    forward passes an entry); ``report.sampled`` then says how many of how many. Returns
    the report; raises :class:`GradientError` (with the table) when a check fails.

    A program that computes in fewer bits (float32) is judged in two steps, each a set of
    rows (``row.check``). The derivation: its float64 twin (the same graph compiled in
    float64) against the differences, with ``rtol`` and ``atol`` as for a float64
    program. The rounding: the program's gradients against the twin's, within ten times the
    float32 rounding noise measured around the point and a floor of 16 ulp (see
    :mod:`graphc.rounding`). The check is made at the feeds rounded to float32, the point
    the program computes at. The error says which step failed and blames a node for it.
    """
    rng = np.random.default_rng(seed)
    coarse = rounding.coarse_dtype(prog.graph)
    point = {k: np.array(v, dtype=np.float64) for k, v in feeds.items()}
    if coarse is not None:
        point = rounding.on_grid(prog.graph, point)
    derived = prog if coarse is None else rounding.twin(prog)  # the program whose derivation is judged
    exact, fixed = _reference(derived, point)  # float64, stopped values held fixed
    outputs = exact.forward({**point, **fixed})
    target = prog.of or (prog.outputs[0] if not prog.has_gradient else _scalar_name(prog))
    cotangent = None
    if not prog.has_gradient:
        cotangent = rng.standard_normal(np.shape(outputs[target]))
        if coarse is not None:  # the cotangent the float32 program is given, for the twin too
            cotangent = cotangent.astype(coarse).astype(np.float64)
    grads = _analytic(derived, point, cotangent)
    value = _scalar_function(exact, fixed, target, cotangent)
    center = value(point)
    report = GradientReport()

    direction = {name: rng.standard_normal(np.shape(point[name])) for name in prog.wrt}
    analytic = float(sum(np.sum(direction[n] * grads[n]) for n in prog.wrt))
    plus, minus = value(_shifted(point, direction, eps)), value(_shifted(point, direction, -eps))
    numeric, tolerance, status = _judge(analytic, plus, minus, center, eps, rtol, atol)
    report.rows.append(Row("<random direction>", "all", analytic, numeric, tolerance, status))

    entries = _entries(prog.wrt, point, max_entries, sample, rng, report)
    for name, flat in entries:
        index = np.unravel_index(flat, np.shape(point[name]))
        unit = {name: np.zeros(np.shape(point[name]))}
        unit[name][index] = 1.0
        a = float(np.asarray(grads[name])[index])
        plus, minus = value(_shifted(point, unit, eps)), value(_shifted(point, unit, -eps))
        numeric, tolerance, status = _judge(a, plus, minus, center, eps, rtol, atol)
        report.rows.append(Row(name, str(tuple(int(i) for i in index)), a, numeric, tolerance, status))

    floor_rtol, floor_atol = rounding.floors(float(np.finfo(coarse).eps) if coarse else 0.0, center, rtol, atol)
    if coarse is not None:
        kinks = {(r.param, r.index) for r in report.kinks}
        report.rows += rounding.rounding_rows(
            lambda *fields: Row(*fields, check="rounding"), prog, derived, point, cotangent, direction,
            entries, floor_rtol, floor_atol, seed, kinks)

    if report.failures and raise_on_failure:
        raise _failure(report, prog, derived, point, target, cotangent, coarse,
                       (eps, rtol, atol), (floor_rtol, floor_atol))
    return report


def _failure(report: GradientReport, prog, derived, point: dict, target: str, cotangent, coarse,
             derivation: tuple, floors: tuple) -> GradientError:
    """The error of a failed check: which step failed, the node blamed for it, the table."""
    eps, rtol, atol = derivation
    if "derivation" in report.failed_steps:
        report.culprit = first_disagreeing_node(derived, point, target, cotangent, eps, rtol, atol)
        what = (f"gradients of {target!r} in graph {prog.name!r} disagree with central differences "
                f"(eps={eps}, rtol={rtol}, atol={atol})")
        if coarse is not None:
            what += " (the derivation, checked on the program's float64 twin)"
        where = "the first node whose local derivative disagrees"
    else:
        report.culprit = rounding.first_rounding_node(prog, point, target, cotangent, *floors)
        what = (f"{coarse} gradients of {target!r} in graph {prog.name!r} disagree with its float64 "
                f"twin's by more than {coarse} rounding explains (the rounding; rtol={floors[0]:.3g}, "
                f"atol={floors[1]:.3g} plus {rounding.NOISE_FACTOR:g} times the noise measured around the "
                f"point); the derivation agrees with central differences")
        where = f"the first node whose {coarse} backward disagrees with the twin's"
    blamed = f"{where}: {report.culprit}" if report.culprit else "no single node's local derivative could be blamed"
    return GradientError(f"{what}; {blamed}\n" + report.table(report.failures))


def _analytic(prog, point: dict, cotangent) -> dict:
    """``prog``'s gradients at ``point`` (for ``cotangent``: a non-scalar output), as numpy arrays."""
    _, grads = prog.value_and_grad(point) if cotangent is None else prog.value_and_grad(point, seed=cotangent)
    as_numpy = getattr(getattr(prog, "runtime", None), "to_numpy", np.asarray)
    return {name: as_numpy(g) for name, g in grads.items()}  # a backend's arrays (torch tensors), as numpy


def _entries(wrt, point, max_entries: int, sample: int | None, rng, report: GradientReport):
    """(wrt name, flat index) pairs to check one by one: all of the small values, or a sample."""
    sizes = [int(np.size(point[name])) for name in wrt]
    if sample is None:
        return [(name, flat) for name, size in zip(wrt, sizes) if size <= max_entries for flat in range(size)]
    total = sum(sizes)
    chosen = np.sort(rng.choice(total, size=min(sample, total), replace=False)) if total else []
    starts = np.cumsum([0] + sizes)
    report.sampled = (len(chosen), total)
    return [(wrt[k], int(c - starts[k])) for c in chosen for k in [int(np.searchsorted(starts, c, "right")) - 1]]


def _scalar_name(prog) -> str:
    return scalar_output(prog.graph, prog.of)  # the declared graph: a stage is made when first read


def _reference(prog, point: dict):
    """The program the differences are taken on, and what it is fed beyond ``point``.

    It computes in float64 whatever ``prog``'s dtype. A ``stop_gradient`` defines the
    gradient of the function with the stopped value held constant, so there the value is
    cut out and fed as it is at ``point`` (from the reference interpreter): the
    differences then measure what the gradient claims. ``prog`` itself when neither applies.
    """
    declared = prog.graph
    stopped = [n for n in declared.nodes if declared.nodes[n][ir.OP] == "stop_gradient"]
    if not stopped and rounding.coarse_dtype(declared) is None:
        return prog, {}
    fixed = evaluate(declared, point, stopped, dtype="float64") if stopped else {}
    twin = rounding.float64_copy(declared)  # labels (int64) and masks (bool) keep their dtypes
    for node in stopped:
        twin.remove_edges_from(list(twin.in_edges(node, keys=True)))
        twin.nodes[node][ir.OP], twin.nodes[node][ir.ATTRS] = "input", {}
        twin.graph[ir.INPUTS] = [*twin.graph[ir.INPUTS], node]
    compiled = prog.compiler(Graph(twin.graph[ir.NAME], nx_graph=twin), wrt=prog.wrt, of=prog.of)
    return compiled, {n: np.asarray(v, dtype=np.float64) for n, v in fixed.items()}


def check_for_page(prog, feeds: Mapping | None):
    """The gradient check a page shows: a sampled :class:`GradientReport`, the
    :class:`GraphcError` that stopped it, or None without feeds. It never raises."""
    if feeds is None:
        return None
    try:
        return check_gradients(prog, feeds, raise_on_failure=False, sample=PAGE_SAMPLE)
    except GraphcError as error:
        return error
