"""Program: what ``gc.compile`` returns: run it, read its code, look at its stages."""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import networkx as nx
import numpy as np

from . import ir
from .differentiate import scalar_output
from .errors import BackendError, FeedError, GradientError
from .feeds import (
    STEP_UNROLLED,
    FeedChecker,
    check_seed,
    check_step_size,
    no_step_check,
    positional_function,
    step_check,
)
from .files import replace_file
from .lower.libraries import runtime
from .lower.load import load_source
from .lower.source import GeneratedCode, lower
from .schedule import Schedule, critical_path, levels

__all__ = ["Program"]


class Program:
    """A compiled network: ``forward``, ``value_and_grad``, its source and its stages.

    A plain record of what the pipeline produced: the declared graph, every stage's
    graph by name, the schedule (``plan``), the generated code and its loaded module.
    """

    def __init__(self, declared: nx.MultiDiGraph, stages: dict[str, nx.MultiDiGraph],
                 inference_stages: dict[str, nx.MultiDiGraph], plan: Schedule | Callable[[], Schedule],
                 code: GeneratedCode,
                 wrt: list[str], of: str | None, target: str,
                 inference: Callable[[Sequence[str]], Program] | None = None,
                 compiler: Callable[..., Program] | None = None, backend: str = "numpy", threads: int = 1,
                 graph: Callable[[], nx.MultiDiGraph] | None = None):
        # what the program's own checks read (never changed here); ``prog.graph`` is this graph,
        # or what ``graph()`` gives when prog.graph is first read: gc.compile's programs make
        # their own copy of it then (most programs are run, and running reads no more than
        # ``declared``), prog.to's shares the graph of the program it came from
        self._declared = declared
        self.graph = declared if graph is None else graph
        self.stages = stages
        self.inference_stages = inference_stages
        self.plan = plan  # or a function making it, called when the plan is first read (a cached program's copy)
        self.code = code
        self.wrt = wrt
        self.of = of
        self.target = target  # the output differentiated
        self.inference = inference  # compiles the program of some outputs alone (prog.predict)
        # the pipeline that made this program (gc.compile), for the checks that compile a twin of it
        self.compiler = compiler
        self.runtime = runtime(backend)  # the array library the module runs on
        self.threads = threads  # the pool the plan's groups run on (1: every statement in order)
        self.module = load_source(code.source, declared.graph[ir.NAME])
        # the module's passes as the methods call them: held to one BLAS thread while a parallel
        # plan's pool runs, else the functions themselves (a context costs a small step ~5 %)
        # (one thread: no pool, and the plan is not read, so a cached program's plan is copied only if asked for)
        blas = one_blas_thread() if threads > 1 and self.plan.parallel is not None and self.plan.parallel.groups \
            else None
        self._forward_pass, self._train_forward, self._backward_pass, self._sgd_step = (
            _held(getattr(self.module, name, None), blas)
            for name in ("forward_pass", "train_forward", "backward_pass", "sgd_step"))
        # both passes in one, when the module has it (a blocked loop joins them: lower/source.py)
        self._forward_backward = _held(getattr(self.module, "forward_backward", None), blas)
        self._sgd_step_atomic = _held(getattr(self.module, "sgd_step_atomic", self.module.sgd_step), blas) \
            if hasattr(self.module, "sgd_step") else None
        self._check_feeds = FeedChecker(declared)
        self._sources = ir.sources(declared)
        params = set(declared.graph[ir.PARAMS])
        self._param_positions = [k for k, name in enumerate(self._sources) if name in params]
        self._input_positions = [k for k, name in enumerate(self._sources) if name not in params]
        # sgd_step's checks of every call: the params and inputs among the checked arrays, and
        # the params as the caller passed them (the arrays that must be updated)
        self._params_of = _getter(self._param_positions)
        self._inputs_of = _getter(self._input_positions)
        self._param_feeds = _getter([self._sources[k] for k in self._param_positions])
        self._nones = (None,) * len(self._sources)
        # the arrays of a call that repeats the last step's (feeds.step_check), else None
        self._checked_step = no_step_check
        # what every call needs, worked out once: a training loop calls these thousands of times
        self._outputs = tuple(declared.graph[ir.OUTPUTS])
        # from the code, not the plan: a program from the disk cache reads its plan only when asked
        self._differentiated = bool(code.backward_source)  # train_forward and backward_pass
        self._gradient = self.has_gradient
        if self._differentiated:
            dtype = np.dtype(declared.nodes[self.target][ir.DTYPE])  # the declared graph: reading a stage would copy it
            self._one = dtype.type(1.0)  # the cotangent of a scalar output: a numpy scalar of its dtype
        numpy = self.runtime.namespace is None
        # the call value_and_grad makes thousands of times: numpy feeds, a scalar target, no seed
        self._seeded_by_one = numpy and self._differentiated and self._gradient
        # numpy hands a 0-d result back as a numpy scalar: those positions become 0-d arrays
        # (the generated code already copies every value the caller would not own)
        self._results = _keyer(self._outputs, _scalars(declared, self._outputs) if numpy else ())
        self._gradients = _keyer(wrt, _scalars(declared, wrt) if numpy and self._differentiated else ())
        self._outputs_of_step = _keyer(self._outputs, ())  # sgd_step's: the values as the module returns them
        self._arrays = self._check_feeds if numpy else self._foreign_arrays
        self._on_numpy = numpy

    @property
    def backend(self) -> str:
        """The array library the program runs on: ``"numpy"``, ``"torch"``, ``"jax"``, ..."""
        return self.runtime.name

    def to(self, backend: str) -> Program:
        """The same program on another array library (``"torch"``, ``"jax"``, ``"cupy"``,
        ``"array_api_strict"``, ``"numpy"``): the same plan, printed for that library."""
        return with_backend(self, backend)

    def _foreign_arrays(self, feeds: Mapping) -> list:
        """The feeds checked, as arrays of the program's library (not numpy)."""
        rt = self.runtime
        if not isinstance(feeds, Mapping):
            return self._check_feeds(feeds)  # raises the explanation
        checked = self._check_feeds({k: rt.stand_in(v) for k, v in feeds.items()})
        return [rt.asarray(feeds[name] if rt.is_native(feeds[name]) else array, self._declared.nodes[name][ir.DTYPE])
                for name, array in zip(self._sources, checked)]

    @property
    def graph(self) -> nx.MultiDiGraph:
        """The declared graph (the ``declared`` stage), the program's own."""
        if callable(self._graph):  # a networkx graph is never callable
            self._graph = self._graph()
        return self._graph

    @graph.setter
    def graph(self, graph: nx.MultiDiGraph | Callable[[], nx.MultiDiGraph]) -> None:
        self._graph = graph

    @property
    def plan(self) -> Schedule:
        """The schedule the code was printed from (``graphc/schedule.py``)."""
        if callable(self._plan):  # a Schedule is data, never callable
            self._plan = self._plan()
        return self._plan

    @plan.setter
    def plan(self, plan: Schedule | Callable[[], Schedule]) -> None:
        self._plan = plan

    @property
    def forward_graph(self) -> nx.MultiDiGraph:
        """The optimized forward graph (the ``optimized`` stage)."""
        return self.stages["optimized"]

    @property
    def name(self) -> str:
        return self.graph.graph[ir.NAME]

    @property
    def source(self) -> str:
        """The whole generated module."""
        return self.code.source

    @property
    def forward_source(self) -> str:
        """The generated forward function."""
        return self.code.forward_source

    @property
    def backward_source(self) -> str:
        """The generated training forward and backward functions."""
        return self.code.backward_source

    @property
    def levels(self) -> list[list[str]]:
        """Dependency levels of the final graph; each a list of node ids."""
        return levels(self.stages["scheduled"])

    @property
    def critical_path(self) -> list[str]:
        """The longest dependency chain of the final graph (node ids, first to last)."""
        return critical_path(self.stages["scheduled"])

    @property
    def stats(self) -> dict[str, dict]:
        """What each stage's passes did: {stage: {"passes": {pass: {what: n}}, nodes...}}."""
        return {name: dict(graph.graph[ir.STATS]) for name, graph in self.stages.items() if ir.STATS in graph.graph}

    def summary(self) -> str:
        """A plain-text account of the compilation: stages, pass statistics, schedule."""
        lines = [f"graphc program {self.name!r}: outputs {self.outputs}, wrt {self.wrt}", "", "stages:"]
        for k, (name, graph) in enumerate(self.stages.items(), 1):
            lines.append(f"  {k:2d}. {name:<16} {graph.number_of_nodes():6d} nodes")
            for pass_name, counts in (graph.graph.get(ir.STATS) or {}).get("passes", {}).items():
                done = ", ".join(f"{what} {n}" for what, n in sorted(counts.items()))
                lines.append(f"        {pass_name:<13} {done}")
        widths = [len(level) for level in self.levels]
        lines += ["", f"schedule: {len(widths)} dependency levels, widest {max(widths, default=0)}, "
                  f"critical path {len(self.critical_path)} nodes",
                  "  level widths: " + " ".join(str(w) for w in widths)]
        return "\n".join(lines)

    @property
    def outputs(self) -> list[str]:
        return list(self.graph.graph[ir.OUTPUTS])

    def forward(self, feeds: Mapping) -> dict[str, np.ndarray]:
        """The graph's outputs for ``feeds`` (inputs and params by name)."""
        return self._results(self._forward_pass(*self._arrays(feeds)))

    def __call__(self, **feeds) -> dict[str, np.ndarray]:
        return self.forward(feeds)

    @property
    def has_gradient(self) -> bool:
        """Whether ``value_and_grad`` works without a seed: a scalar output is differentiated."""
        if not self._differentiated:
            return False
        nodes = self._declared.nodes  # the outputs' shapes are the declared ones (every stage keeps them)
        shape = tuple(nodes[self.target][ir.SHAPE])
        scalars = [o for o in self._outputs if tuple(nodes[o][ir.SHAPE]) == ()]
        return shape == () and (self.of is not None or scalars == [self.target])

    def value_and_grad(self, feeds: Mapping, seed=None) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """(outputs, gradients keyed by wrt name) for ``feeds``.

        The gradient is of the scalar output; ``seed`` is an explicit cotangent of the
        output (``of`` at compile time, else the first), needed when no output is a scalar.
        Every returned array is the caller's own.
        """
        arrays = self._arrays(feeds)
        if seed is None and self._seeded_by_one:  # the loop's call: nothing to decide
            if self._forward_backward is not None:
                outputs, grads = self._forward_backward(*arrays, self._one)
                return self._results(outputs), self._gradients(grads)
            outputs, saved = self._train_forward(*arrays)
            grads = self._backward_pass(saved, self._one)
            return self._results(outputs), self._gradients(grads)
        if seed is None and not self._gradient:
            scalar_output(self.forward_graph, self.of)  # raises the explanation
        if not self._differentiated:  # nothing to differentiate
            return self._results(self._forward_pass(*arrays)), {}
        outputs, saved = self._train_forward(*arrays)
        rt = self.runtime
        if seed is None and rt.namespace is None:  # a scalar output: a numpy scalar of its dtype, as sgd_step passes
            cotangent = self._one
        else:
            value = outputs[self._outputs.index(self.target)]
            dtype = self._one.dtype.name
            if seed is None:
                cotangent = rt.one(dtype)
            elif rt.namespace is None:
                cotangent = check_seed(seed, np.shape(value), self.target, dtype)
            else:
                checked = check_seed(rt.stand_in(seed), tuple(value.shape), self.target, dtype)
                cotangent = rt.asarray(seed if rt.is_native(seed) else checked, dtype)
        grads = self._backward_pass(saved, cotangent)
        return self._results(outputs), self._gradients(grads)

    def sgd_step(self, feeds: Mapping, lr: float = 0.01) -> dict[str, np.ndarray]:
        """One step of SGD, the lecture's update W <- W - lr dL/dW, in place; returns the outputs.

        Runs the generated ``sgd_step``: the training forward, then the backward pass,
        which updates each param as soon as its gradient is complete and nothing reads its
        old value (a hand-written step's order and memory). ``lr`` and the feeds are checked
        first. When a floating-point error could stop the step midway (numpy's error state
        says ``raise``, ``call`` or ``log`` for some error, as under
        ``numpy.errstate(all="raise")``, or says ``warn`` and a warnings filter turns
        numpy's RuntimeWarning into an error), the step is all-or-nothing instead: every new
        value is computed before the first param changes, so the error leaves every param as
        it was, at the cost of holding every gradient at once. The params end bit-identical
        either way. Params must be writable numpy arrays of their declared dtype (they are
        updated where they are). A call with the last step's params and feeds of its shapes
        and dtypes (a training loop's) compares only what could have changed since
        (:func:`graphc.feeds.step_check`): about 1 us for six feeds instead of 3.5.
        """
        if not self._on_numpy:
            self._numpy_only("sgd_step")  # raises the explanation
        lr = check_step_size(lr)
        arrays = self._checked_step(feeds)
        if arrays is not None:  # the call a loop makes: the arrays of the last step, every check still holding
            return self._outputs_of_step(self._sgd_step(*arrays, lr))
        arrays = self._check_feeds(feeds)
        step = self._step_for(feeds, arrays)
        if step is not None:  # the usual call
            if step is self._sgd_step and len(arrays) <= STEP_UNROLLED:  # the next call with these params is quick
                self._checked_step = step_check(self._check_feeds.pick, self._param_positions, arrays)
            return self._outputs_of_step(step(*arrays, lr))
        if not self._differentiated:  # nothing to learn
            return dict(zip(self._outputs, map(np.asarray, self.module.forward_pass(*arrays))))
        if not hasattr(self.module, "sgd_step"):  # printed when the plan has one (numpy writes in place)
            raise GradientError(
                f"program {self.name!r} has no SGD step: it needs a scalar output and wrt naming params only"
            )
        return self._outputs_of_step(step(*arrays, lr))

    def _step_for(self, feeds: Mapping, arrays) -> Callable:
        """The generated step these arrays can take: ``sgd_step``, or ``sgd_step_atomic`` when an
        input shares a param's memory (it would see the update; there every read happens
        before the first write); a FeedError for a param that cannot be updated in place
        (read-only, converted into a copy, or overlapping another param)."""
        params = self._params_of(arrays)
        # a converted copy would be updated instead of the caller's array
        if not (all(map(_WRITEABLE, params)) and all(map(operator.is_, params, self._param_feeds(feeds)))):
            self._refuse_params(feeds, arrays)
        # the usual call: every array owns its memory (no base), checked in C-level maps (a third
        # of the time of the loop below, which is the general case)
        if all(map(operator.is_, map(_BASE, arrays), self._nones)):
            owners = set(map(id, params))  # distinct arrays that own their memory do not overlap
            if len(owners) == len(params) and owners.isdisjoint(map(id, self._inputs_of(arrays))):
                return self._sgd_step
        roots = [p if p.base is None else p.base for p in params]  # the arrays owning their memory
        owners = set(map(id, roots))
        if len(owners) != len(roots):
            self._refuse_shared_params(params, roots)
        for array in self._inputs_of(arrays):
            if id(array if array.base is None else array.base) in owners and any(
                    np.shares_memory(array, p) for p in params):
                return self._sgd_step_atomic
        return self._sgd_step

    def _refuse_params(self, feeds: Mapping, arrays) -> None:
        """The FeedError of the first param that is read-only or not the caller's own array."""
        for k in self._param_positions:
            name = self._sources[k]
            if not arrays[k].flags.writeable or arrays[k] is not feeds[name]:
                raise FeedError(
                    f"param {name!r} must be a writable {self._declared.nodes[name][ir.DTYPE]} numpy array to be "
                    f"updated in place, found {type(feeds[name]).__name__}; pass numpy.asarray(value, dtype=float)"
                )

    def _refuse_shared_params(self, params, roots) -> None:
        """A FeedError when two params overlap in memory (views of one buffer that do not
        overlap are fine): each is updated in place, so one would see the other's update.
        Every pair of views of one buffer is compared, not only neighbours."""
        names = [self._sources[k] for k in self._param_positions]
        for k in range(len(params)):
            for j in range(k):
                if roots[j] is roots[k] and np.shares_memory(params[j], params[k]):
                    raise FeedError(
                        f"params {names[j]!r} and {names[k]!r} share memory (the same array, or overlapping views "
                        f"of one), and sgd_step updates each in place; pass separate arrays, e.g. {names[k]}.copy()"
                    )

    def train_step(self, optimizer):
        """``step(feeds) -> loss``: forward, backward and ``optimizer``'s update of every
        param in place (see :mod:`graphc.step`); the optimizer keeps its state."""
        from .step import TrainStep

        self._numpy_only("train_step")
        return TrainStep(self, optimizer)

    def _numpy_only(self, what: str) -> None:
        if self.runtime.namespace is not None:
            raise BackendError(
                f"{what} updates numpy params in place, and program {self.name!r} runs on {self.backend!r}; "
                f"train on prog.to('numpy'), or take value_and_grad on {self.backend!r} arrays and update them yourself"
            )

    def predict(self, feeds: Mapping, outputs: list[str] | None = None) -> dict[str, np.ndarray]:
        """The outputs that need no labels (default: all but the loss), from the inputs they
        read; other feeds (the labels) may be left out (see :mod:`graphc.predict`)."""
        from .predict import predict

        return predict(self, feeds, outputs)

    def save(self, path: str | Path) -> Path:
        """Write the generated module (numpy only) to ``path``, replacing a file there whole."""
        return replace_file(path, self.source.encode("utf-8"))

    def render(self, outdir: str | Path, format: str = "svg", feeds: Mapping | None = None,  # noqa: A002
               stages: list[str] | None = None, **options) -> list[Path]:
        """Draw every stage (or ``stages``) into ``outdir``, one file each; returns the paths.

        With ``feeds``, values and gradients are drawn, in files of their own (``NN-stage-values.svg``).
        """
        from .explore.annotate import render_stages

        return render_stages(self, outdir, format=format, feeds=feeds, stages=stages, **options)

    def report(self, path: str | Path, feeds: Mapping | None = None) -> Path:
        """Write one self-contained HTML page: every stage drawn, the code, the checks."""
        from .gradcheck import check_for_page
        from .report import write_report

        return write_report(self, path, feeds=feeds, check=check_for_page(self, feeds))

    def explore(self, path: str | Path, feeds: Mapping | None = None, train: int | None = None,
                lr: float = 0.1) -> Path:
        """Write the explorer, one self-contained HTML page: every stage, pannable and zoomable,
        each node's formula, code, value and gradient; with ``train``, that many SGD steps from
        ``feeds`` replayed (loss curve, gradients per layer, the decision boundary of 2-D data)."""
        from .explore.page import write_explorer

        return write_explorer(self, path, feeds=feeds, train=train, lr=lr)

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        """Jupyter shows the program as the drawing of its final graph."""
        from .render import Drawing, to_digraph

        return Drawing(to_digraph(self.stages["scheduled"]))._repr_mimebundle_(include, exclude)

    def __repr__(self) -> str:
        on = "" if self.backend == "numpy" else f" on {self.backend}"
        return f"<graphc Program {self.name!r}: outputs {self.outputs}, wrt {self.wrt}{on}>"


def _held(function: Callable | None, blas: Callable | None) -> Callable | None:
    """``function``, run with BLAS held to one thread when ``blas`` (a context) is given."""
    if function is None or blas is None:
        return function

    def held(*args):
        with blas():
            return function(*args)

    return held


_WRITEABLE = operator.attrgetter("flags.writeable")

_BASE = operator.attrgetter("base")


def _getter(keys: Sequence) -> Callable[[Sequence], tuple]:
    """``items -> tuple(items[k] for k in keys)``, in one C call for two keys or more."""
    keys = tuple(keys)
    if len(keys) >= 2:
        return operator.itemgetter(*keys)
    if len(keys) == 1:
        (key,) = keys
        return lambda items: (items[key],)
    return lambda items: ()


def _scalars(graph: nx.MultiDiGraph, names: Sequence[str]) -> tuple[int, ...]:
    """The positions of ``names`` whose declared shape is () (numpy computes them as numpy scalars)."""
    nodes = graph._node  # the node dicts themselves: a view per name costs (a big net has thousands of params)
    return tuple(k for k, name in enumerate(names) if tuple(nodes[name][ir.SHAPE]) == ())


UNROLLED = 64  # names keyed by one generated dict display; more are zipped


def _keyer(names: Sequence[str], scalars: tuple[int, ...]) -> Callable[[Sequence], dict]:
    """``values -> {name: value}``, the values at ``scalars`` as 0-d numpy arrays.

    Up to UNROLLED names, one dict display with the names bound as the function's own
    variables (:func:`_unrolled_keyer`): ``dict(zip(names, values))`` costs three times
    as much for four names (0.29 against 0.10 us, CPython 3.11).
    """
    names = tuple(names)
    if names and len(names) <= UNROLLED:
        return _unrolled_keyer(len(names), tuple(scalars))(np.asarray, *names)

    def keyed(values: Sequence) -> dict:
        values = list(values)
        for k in scalars:
            values[k] = np.asarray(values[k])
        return dict(zip(names, values))

    return keyed


@functools.cache
def _unrolled_keyer(count: int, scalars: tuple[int, ...]) -> Callable:
    """``make(asarray, k0, k1, ...) -> keyed``, ``keyed(values) = {k0: v0, k1: asarray(v1), ...}``.

    Its source is made of positions alone (``k0``, ``v0``): no name or value is ever part
    of it, and it is compiled once per count and set of scalar positions.
    """
    keys = ", ".join(f"k{k}" for k in range(count))
    values = ", ".join(f"v{k}" for k in range(count))
    items = ", ".join(f"k{k}: asarray(v{k})" if k in scalars else f"k{k}: v{k}" for k in range(count))
    source = (f"def make(asarray, {keys}):\n"
              f"    def keyed(values):\n"
              f"        {values}, = values\n"
              f"        return {{{items}}}\n"
              f"    return keyed\n")
    return positional_function(source, f"the result dict of {count} values")


def with_backend(prog: Program, backend: str) -> Program:
    """``prog`` lowered again, from its plan, for the array library ``backend``."""
    rt = runtime(backend)
    declared = prog._declared  # what the plan was made from; the new program's graph is prog.graph itself
    rt.check_dtypes({data[ir.DTYPE] for data in declared._node.values()}, declared.graph[ir.NAME])
    code = lower(prog.plan, rt.library.backend, rt.library.namespace)
    return Program(declared=declared, stages=prog.stages, inference_stages=prog.inference_stages, plan=prog.plan,
                   code=code, wrt=prog.wrt, of=prog.of, target=prog.target, inference=prog.inference,
                   compiler=prog.compiler, backend=backend, threads=prog.threads,
                   graph=functools.partial(getattr, prog, "graph"))


def check_threads(parallel: object) -> int:
    """``parallel`` as a number of threads (1: no pool), or a BackendError."""
    if isinstance(parallel, bool) or not isinstance(parallel, int) or parallel < 1:
        raise BackendError(f"parallel must be a whole number of threads >= 1 (1: no pool), found {parallel!r}")
    return parallel


def one_blas_thread() -> Callable:
    """A context that runs BLAS on one thread: the pool's threads each run one BLAS call, and a
    BLAS that also spread each call over every core would fight them for the cores."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        raise BackendError("parallel=k needs threadpoolctl to keep BLAS to one thread per pool thread; "
                           "install it: pip install 'graphc[parallel]' (threadpoolctl)") from None
    controller = ThreadpoolController()
    return lambda: controller.limit(limits=1, user_api="blas")
