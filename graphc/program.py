"""Program: what ``gc.compile`` returns: run it, read its code, look at its stages."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from pathlib import Path

import networkx as nx
import numpy as np

from . import ir
from .differentiate import scalar_output
from .errors import BackendError, FeedError, GradientError
from .feeds import FeedChecker, check_seed, check_step_size
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
                 inference_stages: dict[str, nx.MultiDiGraph], plan: Schedule, code: GeneratedCode,
                 wrt: list[str], of: str | None, target: str,
                 inference: Callable[[Sequence[str]], Program] | None = None,
                 compiler: Callable[..., Program] | None = None, backend: str = "numpy", threads: int = 1):
        self.graph = declared
        self.stages = stages
        self.inference_stages = inference_stages
        self.plan = plan
        self.code = code
        self.wrt = wrt
        self.of = of
        self.target = target  # the output differentiated
        self.inference = inference  # compiles the program of some outputs alone (prog.predict)
        # the pipeline that made this program (gc.compile), for the checks that compile a twin of it
        self.compiler = compiler
        self.runtime = runtime(backend)  # the array library the module runs on
        self.threads = threads  # the pool the plan's groups run on (1: every statement in order)
        self._blas = one_blas_thread() if plan.parallel is not None and plan.parallel.groups else nullcontext
        self.module = load_source(code.source, declared.graph[ir.NAME])
        self._check_feeds = FeedChecker(declared)
        self._sources = ir.sources(declared)
        params = set(declared.graph[ir.PARAMS])
        self._param_positions = [k for k, name in enumerate(self._sources) if name in params]
        # what every call needs, worked out once: a training loop calls these thousands of times
        self._outputs = tuple(declared.graph[ir.OUTPUTS])
        # from the code, not the plan: a program from the disk cache reads its plan only when asked
        self._differentiated = bool(code.backward_source)  # train_forward and backward_pass
        self._gradient = self.has_gradient
        if self._differentiated:
            dtype = np.dtype(declared.nodes[self.target][ir.DTYPE])  # the declared graph: reading a stage would copy it
            self._one = dtype.type(1.0)  # the cotangent of a scalar output: a numpy scalar of its dtype

    @property
    def backend(self) -> str:
        """The array library the program runs on: ``"numpy"``, ``"torch"``, ``"jax"``, ..."""
        return self.runtime.name

    def to(self, backend: str) -> Program:
        """The same program on another array library (``"torch"``, ``"jax"``, ``"cupy"``,
        ``"array_api_strict"``, ``"numpy"``): the same plan, printed for that library."""
        return with_backend(self, backend)

    def _arrays(self, feeds: Mapping) -> list:
        """The feeds checked, as arrays of the program's library."""
        if self.runtime.namespace is None:
            return self._check_feeds(feeds)
        rt = self.runtime
        if not isinstance(feeds, Mapping):
            return self._check_feeds(feeds)  # raises the explanation
        checked = self._check_feeds({k: rt.stand_in(v) for k, v in feeds.items()})
        return [rt.asarray(feeds[name] if rt.is_native(feeds[name]) else array, self.graph.nodes[name][ir.DTYPE])
                for name, array in zip(self._sources, checked)]

    def _result(self, value):
        return np.asarray(value) if self.runtime.namespace is None else value

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
        arrays = self._arrays(feeds)
        with self._blas():
            values = self.module.forward_pass(*arrays)
        return {name: self._result(v) for name, v in zip(self._outputs, values)}

    def __call__(self, **feeds) -> dict[str, np.ndarray]:
        return self.forward(feeds)

    @property
    def has_gradient(self) -> bool:
        """Whether ``value_and_grad`` works without a seed: a scalar output is differentiated."""
        if not self._differentiated:
            return False
        nodes = self.graph.nodes  # the outputs' shapes are the declared ones (every stage keeps them)
        shape = tuple(nodes[self.target][ir.SHAPE])
        scalars = [o for o in self.outputs if tuple(nodes[o][ir.SHAPE]) == ()]
        return shape == () and (self.of is not None or scalars == [self.target])

    def value_and_grad(self, feeds: Mapping, seed=None) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """(outputs, gradients keyed by wrt name) for ``feeds``.

        The gradient is of the scalar output; ``seed`` is an explicit cotangent of the
        output (``of`` at compile time, else the first), needed when no output is a scalar.
        Every returned array is the caller's own.
        """
        arrays = self._arrays(feeds)
        if seed is None and not self._gradient:
            scalar_output(self.forward_graph, self.of)  # raises the explanation
        if not self._differentiated:  # nothing to differentiate
            with self._blas():
                outputs = self.module.forward_pass(*arrays)
            return {name: self._result(v) for name, v in zip(self._outputs, outputs)}, {}
        with self._blas():
            outputs, saved = self.module.train_forward(*arrays)
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
        with self._blas():
            grads = self.module.backward_pass(saved, cotangent)
        return (
            {name: self._result(v) for name, v in zip(self._outputs, outputs)},
            {name: self._result(v) for name, v in zip(self.wrt, grads)},
        )

    def sgd_step(self, feeds: Mapping, lr: float = 0.01) -> dict[str, np.ndarray]:
        """One step of SGD, the lecture's update W <- W - lr dL/dW, in place; returns the outputs.

        Runs the generated ``sgd_step``: the training forward, the backward pass, then the
        updates. The step is all-or-nothing: ``lr`` and the feeds are checked first, and
        every new value is computed before the first param changes, so an error (a
        floating-point error under ``numpy.errstate(all="raise")``) leaves every param as
        it was. Params must be writable numpy arrays of their declared dtype (they are
        updated where they are).
        """
        self._numpy_only("sgd_step")
        lr = check_step_size(lr)
        arrays = self._check_feeds(feeds)
        sources = self._sources
        for k in self._param_positions:  # a converted copy would be updated instead of the caller's array
            if not arrays[k].flags.writeable or arrays[k] is not feeds[sources[k]]:
                name = self._sources[k]
                raise FeedError(
                    f"param {name!r} must be a writable {self.graph.nodes[name][ir.DTYPE]} numpy array to be "
                    f"updated in place, found {type(feeds[name]).__name__}; pass numpy.asarray(value, dtype=float)"
                )
        if not self._differentiated:  # nothing to learn
            return dict(zip(self._outputs, map(np.asarray, self.module.forward_pass(*arrays))))
        if not hasattr(self.module, "sgd_step"):  # printed when the plan has one (numpy writes in place)
            raise GradientError(
                f"program {self.name!r} has no SGD step: it needs a scalar output and wrt naming params only"
            )
        with self._blas():
            return dict(zip(self._outputs, self.module.sgd_step(*arrays, lr)))

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


def with_backend(prog: Program, backend: str) -> Program:
    """``prog`` lowered again, from its plan, for the array library ``backend``."""
    rt = runtime(backend)
    rt.check_dtypes({data[ir.DTYPE] for _, data in prog.graph.nodes(data=True)}, prog.name)
    code = lower(prog.plan, rt.library.backend, rt.library.namespace)
    return Program(declared=prog.graph, stages=prog.stages, inference_stages=prog.inference_stages, plan=prog.plan,
                   code=code, wrt=prog.wrt, of=prog.of, target=prog.target, inference=prog.inference,
                   compiler=prog.compiler, backend=backend, threads=prog.threads)


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
