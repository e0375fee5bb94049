"""Run one network through every path graphc offers and compare each with the oracle.

The oracle is the reference interpreter (``gc.evaluate``) on the DECLARED graph: values
at the feeds in the graph's own dtype, gradients by central differences in float64 (the
declared graph evaluated in float64, each param element moved by +-h), Hessian-vector
products by mixed second differences. Paths: ``forward``; ``value_and_grad`` without and
with ``seed``; the returned arrays' ownership; ``sgd_step`` (against p - lr grad); the
saved module (in a subprocess that cannot import graphc, sympy or networkx: see
``saved_worker.py``); ``gc.grad`` then compile; and for smooth float64 networks ``gc.grad``
twice (a Hessian-vector product). One network in four is compiled with every elementwise
region blocked two rows at a time (``Case.blocking``), so those paths run blocked loops.

Tolerances (``|found - expected| <= rtol |expected| + atol``), per dtype:

- values, float64: rtol 1e-9, atol 1e-9 (1 + M), M the largest magnitude of any node's
  value. The compiled code may fuse and reorder ~20 float ops (error ~ 20 eps M ~ 4e-15 M);
  1e-9 leaves five orders of magnitude of room and still catches any wrong formula.
- gradients, float64, against central differences with h = 1e-6 and 2e-6, Richardson
  extrapolated: rtol 1e-5, atol 1e-5 (1 + max |g|) + 1e-8 M. The quotient carries
  rounding ~1.5 eps M / h ~ 3e-10 M and truncation h^4 f^(5) / 30 (one difference's
  h^2 f'''/6 reached 4e-4 relative on a fast-oscillating sin).
- float32 (values against the float32 interpreter, gradients against the float64
  differences): rtol 2e-4 for values, 2e-3 for gradients, atol the same times (1 + max)
  plus 1e-5 M: float32's eps is 6e-8, and ~20 ops amplify it by up to ~1e3 in the
  gradients of composites (softmax, logsumexp).
- Hessian-vector products (float64 only): rtol 1e-4, atol 1e-4 (1 + |d|) + 1e-7 M, with a
  Richardson-extrapolated mixed difference (h halving from 2e-3 until two successive
  extrapolations agree to 1e-5, at most down to 2e-6; truncation O(h^4)); what is still
  unresolved there is added to atol.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import graphc as gc
from graphc import ir

from .networks import Case

H = 1e-6  # central differences step (with 2H: Richardson extrapolation)
MIN_STEP = 2e-6  # the smallest step of the mixed second differences
LR = 0.1  # sgd_step's learning rate
TOLERANCES = {  # dtype -> (values rtol, gradients rtol, M factor)
    "float64": (1e-9, 1e-5, 1e-8),
    "float32": (2e-4, 2e-3, 1e-5),
}
WORKER = Path(__file__).with_name("saved_worker.py")


@dataclass
class Disagreement:
    """One path's result that differs from the oracle (or an error where a value was due)."""

    path: str  # forward, value_and_grad, value_and_grad(seed), ownership, sgd_step, saved, ...
    what: str  # the output or param concerned
    kind: str  # value, gradient, dtype, shape, error, alias
    expected: object
    found: object

    @property
    def klass(self) -> str:
        """What makes two disagreements the same defect: the path, the kind, an error's type."""
        detail = str(self.found).split(":")[0] if self.kind == "error" else ""
        return " ".join(part for part in (self.path, self.kind, detail) if part)

    def __str__(self) -> str:
        expected, found = _short(self.expected), _short(self.found)
        return f"[{self.path}] {self.kind} of {self.what!r}: expected {expected}, found {found}"


def _short(value) -> str:
    if isinstance(value, np.ndarray):
        return np.array2string(value, precision=10, threshold=12, max_line_width=200)
    return str(value)[:400]


@dataclass
class Reference:
    values: dict  # node id -> value, declared dtype, at the feeds
    grads: dict  # param -> float64 central differences of the loss
    params: list
    magnitude: float  # M: the largest finite magnitude of any node's value (float64)
    frozen: object  # the declared graph with stop_gradient nodes as consts (for differences)
    feeds64: dict


def _largest(values: dict) -> float:
    finite = [np.max(np.abs(v[np.isfinite(v)])) for v in values.values() if np.size(v) and np.isfinite(v).any()]
    return float(max(finite, default=0.0))


def _frozen(graph, values64: dict):
    """The declared graph with each stop_gradient a const of its value: it has no derivative."""
    stops = [n for n, d in graph.nodes(data=True) if d[ir.OP] == "stop_gradient"]
    if not stops:
        return graph
    out = ir.copy_graph(graph)
    for node in stops:
        out.remove_edges_from(list(out.in_edges(node, keys=True)))
        value = values64[node]
        out.nodes[node].update({ir.OP: "const", ir.ATTRS: {"value": float(value) if value.ndim == 0 else value},
                                ir.DTYPE: "float64"})
    return out


def _loss(graph, feeds: dict) -> float:
    return float(gc.evaluate(graph, feeds, nodes=["loss"], dtype="float64")["loss"])


def reference(case: Case) -> Reference:
    declared = case.graph.nx
    feeds64 = {k: np.asarray(v, dtype=np.float64) for k, v in case.feeds.items()}
    values = gc.evaluate(declared, feeds64)  # declared dtypes (feeds are representable in them)
    values64 = gc.evaluate(declared, feeds64, dtype="float64")
    frozen = _frozen(declared, values64)
    params = list(declared.graph[ir.PARAMS])
    ref = Reference(values, {}, params, _largest(values64), frozen, feeds64)
    ref.grads = {name: _numeric(ref, name, lambda feeds: _loss(frozen, feeds)) for name in params}
    return ref


class Checker:
    """Compares the paths of one case with its reference, collecting disagreements."""

    def __init__(self, case: Case, ref: Reference):
        self.case, self.ref = case, ref
        self.found: list[Disagreement] = []
        rtol_v, rtol_g, m = TOLERANCES[case.dtype]
        self.rtol_v, self.rtol_g, self.m = rtol_v, rtol_g, m
        self.graph = case.graph.nx

    def add(self, *args) -> None:
        self.found.append(Disagreement(*args))

    def _dtype(self, path: str, what: str, array, want: str) -> bool:
        if np.asarray(array).dtype != np.dtype(want):
            self.add(path, what, "dtype", want, str(np.asarray(array).dtype))
            return False
        return True

    def _close(self, path, what, kind, found, expected, rtol, atol) -> None:
        found = np.asarray(found)
        if found.shape != np.shape(expected):
            self.add(path, what, "shape", np.shape(expected), found.shape)
            return
        with np.errstate(all="ignore"):
            err = np.abs(found.astype(np.float64) - expected)
            bad = ~(err <= rtol * np.abs(expected) + atol)
            same = (found == expected) | (np.isnan(found) & np.isnan(expected))  # inf == inf, nan as nan
        if np.any(bad & ~same):
            self.add(path, what, kind, np.asarray(expected), found)

    def values(self, path: str, outputs: dict, names=None) -> None:
        for name in names or self.graph.graph[ir.OUTPUTS]:
            if name not in outputs:
                self.add(path, name, "value", "an output", f"missing; returned {sorted(outputs)}")
                continue
            want = self.ref.values[name]
            self._dtype(path, name, outputs[name], self.graph.nodes[name][ir.DTYPE])
            atol = self.rtol_v * (1 + self.ref.magnitude)
            self._close(path, name, "value", outputs[name], want, self.rtol_v, atol)

    def grads(self, path: str, grads: dict, scale: float = 1.0, names: dict | None = None) -> None:
        for param in self.ref.params:
            key = (names or {}).get(param, param)
            if key not in grads:
                self.add(path, param, "gradient", "a gradient", f"missing; returned {sorted(grads)}")
                continue
            want = scale * self.ref.grads[param]
            self._dtype(path, param, grads[key], self.graph.nodes[param][ir.DTYPE])
            atol = self.rtol_g * (1 + np.max(np.abs(want), initial=0.0)) + self.m * abs(scale) * self.ref.magnitude
            self._close(path, param, "gradient", grads[key], want, self.rtol_g, atol)

    def feeds(self) -> dict:
        """Fresh feeds in the declared dtypes (writable: sgd_step updates params in place)."""
        return {k: np.array(v, dtype=self.graph.nodes[k][ir.DTYPE]) for k, v in self.case.feeds.items()}


def _guard(checker: Checker, path: str, fn) -> object:
    try:
        return fn()
    except Exception as error:  # noqa: BLE001 - any exception is a disagreement to report
        checker.add(path, "-", "error", "no error", f"{type(error).__name__}: {error}")
        return None


def check(case: Case, saved: SavedModules | None = None) -> list[Disagreement]:
    """Every disagreement between graphc's paths and the oracle for ``case``."""
    ref = reference(case)
    checker = Checker(case, ref)
    prog = _guard(checker, "compile", lambda: gc.compile(case.graph, blocking=case.blocking))
    if prog is not None:
        _guard(checker, "stages", lambda: _stages(checker, prog))
        _guard(checker, "forward", lambda: checker.values("forward", prog.forward(checker.feeds())))
        _guard(checker, "value_and_grad", lambda: _value_and_grad(checker, prog))
        _guard(checker, "value_and_grad(seed)", lambda: _seeded(checker, prog))
        _guard(checker, "sgd_step", lambda: _sgd_step(checker, prog))
        if saved is not None:
            _guard(checker, "saved", lambda: saved.check(checker, prog))
        _guard(checker, "check_gradients", lambda: _check_gradients(checker, prog))
    if "out" in checker.graph and checker.graph.nodes["out"][ir.SHAPE] != ():
        _guard(checker, "value_and_grad(seed, of=out)", lambda: _seeded_output(checker))
    _guard(checker, "gc.grad", lambda: _grad_graph(checker))
    if case.smooth and case.dtype == "float64":
        _guard(checker, "hvp", lambda: _hvp(checker))
    if prog is not None:  # last: it changes the arrays it was given, as a caller may
        _guard(checker, "ownership", lambda: _ownership(checker, prog))
    return checker.found


def _stages(checker: Checker, prog) -> None:
    """Each stage's graph, run by the interpreter, computes the declared outputs and gradients.

    This checks the passes apart from the code generator: a disagreement here names the
    first stage that changed the numbers.
    """
    for name, stage in prog.stages.items():
        if not hasattr(stage, "nodes"):
            continue
        path = f"stage {name}"
        seed = stage.graph.get(ir.SEED)
        feeds = dict(checker.case.feeds)
        if seed in stage and seed not in feeds:
            feeds[seed] = np.ones(np.shape(checker.ref.values["loss"]))
        outputs = list(checker.graph.graph[ir.OUTPUTS])
        grads = dict(stage.graph.get(ir.GRADS) or {})
        values = gc.evaluate(stage, feeds, nodes=outputs + list(grads.values()))
        checker.values(path, values, names=outputs)
        if grads:
            checker.grads(path, {p: values[n] for p, n in grads.items()})
        if checker.found and checker.found[-1].path == path:
            return  # the first stage that disagrees is the one to look at


def _value_and_grad(checker: Checker, prog) -> None:
    outputs, grads = prog.value_and_grad(checker.feeds())
    checker.values("value_and_grad", outputs)
    checker.grads("value_and_grad", grads)


def _seeded(checker: Checker, prog) -> None:
    seed = checker.case.seed
    outputs, grads = prog.value_and_grad(checker.feeds(), seed=seed)
    checker.values("value_and_grad(seed)", outputs)
    checker.grads("value_and_grad(seed)", grads, scale=seed)


def _check_gradients(checker: Checker, prog) -> None:
    """gc.check_gradients raises no false alarm on a program whose gradients agree with ours."""
    report = gc.check_gradients(prog, checker.feeds(), raise_on_failure=False)
    wrong = any(d.path == "value_and_grad" and d.kind == "gradient" for d in checker.found)
    if report.failures and not wrong:
        rows = "; ".join(f"{r.param}[{r.index}] {r.analytic} vs {r.numeric}" for r in report.failures[:4])
        checker.add("check_gradients", "-", "false failure", "ok (value_and_grad agrees with the oracle)", rows)


def _seeded_output(checker: Checker) -> None:
    """The gradient of a non-scalar output with an array cotangent: J^T r."""
    ref, graph = checker.ref, checker.graph
    shape = list(np.shape(ref.values["out"]))
    cotangent = np.random.default_rng(11).uniform(-1.0, 1.0, size=shape)
    prog = gc.compile(checker.case.graph, of="out")
    outputs, grads = prog.value_and_grad(checker.feeds(), seed=cotangent)
    checker.values("value_and_grad(seed, of=out)", outputs)
    want = {p: _numeric(ref, p, lambda feeds: float(np.sum(cotangent * _node(ref.frozen, feeds, "out"))))
            for p in ref.params}
    for param in ref.params:
        atol = checker.rtol_g * (1 + np.max(np.abs(want[param]), initial=0.0)) + checker.m * ref.magnitude
        checker._dtype("value_and_grad(seed, of=out)", param, grads[param], graph.nodes[param][ir.DTYPE])
        checker._close("value_and_grad(seed, of=out)", param, "gradient", grads[param], want[param],
                       checker.rtol_g, atol)


def _node(graph, feeds: dict, node: str) -> np.ndarray:
    return gc.evaluate(graph, feeds, nodes=[node], dtype="float64")[node]


def _numeric(ref: Reference, name: str, function) -> np.ndarray:
    """Central differences of ``function(feeds)`` with respect to feed ``name``, Richardson
    extrapolated from steps 2h and h: (4 D(h) - D(2h)) / 3 cancels the h^2 f'''/6 term.

    One difference alone is not enough for every drawn network: sin of a value near 1e4
    (a squared error of a squared error of exp) has f''' ~ 6e9, so D(1e-6) is off by
    1e-3 (4e-4 relative) where graphc's gradient is right; extrapolated, what is left is
    h^4 f^(5)/30 ~ 1e-9 there, and the rounding grows only from eps M / h to 1.5 eps M / h.
    """
    grad = np.zeros_like(ref.feeds64[name])
    for index in np.ndindex(grad.shape):
        quotients = []
        for step in (2 * H, H):
            shifted = {**ref.feeds64, name: ref.feeds64[name].copy()}
            shifted[name][index] += step
            plus = function(shifted)
            shifted[name][index] -= 2 * step
            quotients.append((plus - function(shifted)) / (2 * step))
        coarse, fine = quotients
        grad[index] = (4 * fine - coarse) / 3
    return grad


def _ownership(checker: Checker, prog) -> None:
    """Returned arrays are the caller's: fresh, writable, and changing them changes nothing."""
    feeds = checker.feeds()
    outputs, grads = prog.value_and_grad(feeds)
    returned = [("output " + k, v) for k, v in outputs.items()] + [("gradient " + k, v) for k, v in grads.items()]
    for k, (name, array) in enumerate(returned):
        others = [(n, a) for n, a in returned[k + 1:]] + [("feed " + f, a) for f, a in feeds.items()]
        for other, value in others:
            if np.size(array) and np.shares_memory(array, value):
                checker.add("ownership", name, "alias", "an array of its own", f"shares memory with {other}")
        if not np.asarray(array).flags.writeable:
            checker.add("ownership", name, "alias", "a writable array", "read-only")
    changed = [array for _, array in returned if np.asarray(array).flags.writeable]
    for array in changed:
        array *= 2.0  # exact in binary floating point, and undone exactly below
    try:
        again = prog.value_and_grad(feeds)
        checker.values("ownership (second call)", again[0])
        checker.grads("ownership (second call)", again[1])
    finally:
        for array in changed:  # what the program kept of them must not leak into other checks
            array *= 0.5


def _sgd_step(checker: Checker, prog) -> None:
    feeds = checker.feeds()
    outputs = prog.sgd_step(feeds, lr=LR)
    checker.values("sgd_step", outputs)
    for param in checker.ref.params:
        want = checker.ref.feeds64[param] - LR * checker.ref.grads[param]
        atol = LR * (checker.rtol_g * (1 + np.max(np.abs(checker.ref.grads[param]), initial=0.0))
                     + checker.m * checker.ref.magnitude) + checker.rtol_v * (1 + np.max(np.abs(want), initial=0.0))
        checker._dtype("sgd_step", param, feeds[param], checker.graph.nodes[param][ir.DTYPE])
        checker._close("sgd_step", param, "updated param", feeds[param], want, checker.rtol_g, atol)


def _grad_graph(checker: Checker) -> None:
    params = checker.ref.params
    joint = gc.grad(checker.case.graph, "loss", wrt=params)
    outputs = gc.compile(joint).forward(checker.feeds())
    checker.values("gc.grad", outputs, names=list(checker.graph.graph[ir.OUTPUTS]))
    checker.grads("gc.grad", outputs, names={p: f"dloss/d{p}" for p in params})


def _hvp(checker: Checker) -> None:
    """H v by gc.grad twice, against mixed second differences of the declared graph."""
    params = checker.ref.params
    if not params:
        return
    rng = np.random.default_rng(7)
    v = {p: rng.standard_normal(np.shape(checker.ref.feeds64[p])) for p in params}
    w = {p: rng.standard_normal(np.shape(checker.ref.feeds64[p])) for p in params}
    first = gc.grad(checker.case.graph, "loss", wrt=params)
    parts = [gc.sum(first[f"dloss/d{p}"] * first.const(v[p])) for p in params]
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    first.output("vg", total)
    second = gc.grad(first, "vg", wrt=params)
    hv = gc.compile(second).forward(checker.feeds())
    found = float(sum(np.sum(w[p] * hv[f"dvg/d{p}"]) for p in params))
    want, unresolved = _mixed_difference(checker.ref, v, w)
    atol = 1e-4 * (1 + abs(want)) + 1e-7 * checker.ref.magnitude + unresolved
    checker._close("hvp", "w . H v", "value", np.float64(found), np.float64(want), 1e-4, atol)


def _mixed_difference(ref: Reference, v: dict, w: dict) -> tuple[float, float]:
    """(w . H v by Richardson-extrapolated mixed differences, what is left unresolved).

    Steps halve from 2e-3 until two successive extrapolations agree to 1e-5 (relative):
    a loss that oscillates fast (sin of a value near 1e4) needs steps near 4e-6, where a
    fixed 2e-3 gave a number unrelated to the curvature (5e3 for -1.6e8). Below
    ``MIN_STEP`` rounding (eps |f| / h^2) takes over; if the steps never agree by then,
    the last change between them (truncation and rounding) is the reference's own
    uncertainty, and the check allows it.
    """
    def at(h):
        total = 0.0
        for sv, sw in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
            moved = {**ref.feeds64, **{p: ref.feeds64[p] + h * (sv * v[p] + sw * w[p]) for p in v}}
            total += sv * sw * _loss(ref.frozen, moved)
        return total / (4 * h * h)

    step, coarse = 2e-3, at(2e-3)
    previous, change = None, float("inf")
    while step / 2 >= MIN_STEP:
        fine = at(step / 2)
        estimate = (4 * fine - coarse) / 3
        if previous is not None:
            change = abs(estimate - previous)
            if change <= 1e-5 * (1 + abs(estimate)):
                return estimate, 0.0
        previous, coarse, step = estimate, fine, step / 2
    return previous, change


class SavedModules:
    """One subprocess that imports saved modules with graphc, sympy and networkx blocked."""

    def __init__(self):
        self.dir = tempfile.TemporaryDirectory(prefix="graphc-saved-")
        self.count = 0
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        self.process = subprocess.Popen([sys.executable, "-I", str(WORKER)], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, env=env, bufsize=1)

    def run(self, source_path: Path, feeds: dict, seed: float) -> dict:
        self.count += 1
        feeds_path = Path(self.dir.name) / f"feeds{self.count}.npz"
        out_path = Path(self.dir.name) / f"out{self.count}.npz"
        np.savez(feeds_path, **{f"feed/{k}": v for k, v in feeds.items()})
        request = {"module": str(source_path), "feeds": str(feeds_path), "out": str(out_path), "seed": seed}
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        reply = json.loads(self.process.stdout.readline())
        with np.load(out_path) as data:
            arrays = {key: data[key] for key in data.files}
        for path in (feeds_path, out_path):
            path.unlink()
        return {"errors": reply["errors"], "arrays": arrays}

    def check(self, checker: Checker, prog) -> None:
        source = prog.save(Path(self.dir.name) / f"net{self.count + 1}.py")
        result = self.run(source, checker.feeds(), checker.case.seed)
        source.unlink()
        for path, error in result["errors"].items():
            checker.add(path, "-", "error", "no error", error)
        arrays = result["arrays"]
        for path, scale in (("saved", 1.0), ("saved(seed)", checker.case.seed)):
            values = {k.split("/", 2)[2]: v for k, v in arrays.items() if k.startswith(f"{path}/value/")}
            grads = {k.split("/", 2)[2]: v for k, v in arrays.items() if k.startswith(f"{path}/grad/")}
            if values:
                checker.values(path, values)
            if grads or values:
                checker.grads(path, grads, scale=scale)
        forward = {k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith("forward/")}
        if forward:
            checker.values("saved forward", forward)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            self.process.wait(timeout=30)
        self.dir.cleanup()
