"""Program: what ``gc.compile`` returns: run it, read its code, look at its stages."""

from __future__ import annotations

import types
from collections.abc import Mapping
from pathlib import Path

import networkx as nx
import numpy as np

from . import ir
from .errors import FeedError
from .feeds import FeedChecker, check_seed, check_step_size
from .lower.load import load_source
from .lower.source import GeneratedCode
from .schedule import levels

__all__ = ["Program"]


class Program:
    """A compiled network: ``forward``, ``value_and_grad``, its source and its stages."""

    def __init__(self, graph: nx.MultiDiGraph, stages: dict[str, nx.MultiDiGraph], code: GeneratedCode,
                 wrt: list[str], of: str | None, forward_graph: nx.MultiDiGraph):
        self.graph = graph
        self.stages = stages
        self.code = code
        self.wrt = wrt
        self.of = of
        self.forward_graph = forward_graph
        self.module = load_source(code.source, graph.graph[ir.NAME])
        self._seeded: types.ModuleType | None = None
        self._check_feeds = FeedChecker(graph)
        self._sources = ir.sources(graph)
        params = set(graph.graph[ir.PARAMS])
        self._param_positions = [k for k, name in enumerate(self._sources) if name in params]

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
        from .schedule import critical_path

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
        arrays = self._check_feeds(feeds)
        values = self.module.forward_pass(*arrays)
        return {name: np.asarray(v) for name, v in zip(self.outputs, values)}

    def __call__(self, **feeds) -> dict[str, np.ndarray]:
        return self.forward(feeds)

    @property
    def has_gradient(self) -> bool:
        """Whether a scalar output was found and its gradient compiled."""
        return "differentiated" in self.stages

    def value_and_grad(self, feeds: Mapping, seed=None) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """(outputs, gradients keyed by wrt name) for ``feeds``.

        The gradient is of the scalar output; ``seed`` is an explicit cotangent of the
        output (``of`` at compile time, else the first), needed when no output is a scalar.
        """
        arrays = self._check_feeds(feeds)
        if seed is None:
            if not self.has_gradient:
                from .differentiate import scalar_output

                scalar_output(self.forward_graph, self.of)  # raises the explanation
            outputs, saved = self.module.train_forward(*arrays)
            grads = self.module.backward_pass(*saved, 1.0)
        else:
            module = self._seeded_module()
            outputs, saved = module.train_forward(*arrays)
            target = self.of if self.of is not None else self.outputs[0]
            cotangent = check_seed(seed, np.shape(outputs[self.outputs.index(target)]), target)
            grads = module.backward_pass(*saved, cotangent)
        return (
            {name: np.asarray(v) for name, v in zip(self.outputs, outputs)},
            {name: np.asarray(v) for name, v in zip(self.wrt, grads)},
        )

    def sgd_step(self, feeds: Mapping, lr: float = 0.01) -> dict[str, np.ndarray]:
        """One step of SGD, the lecture's update W <- W - lr dL/dW, in place; returns the outputs.

        Runs the generated ``sgd_step``: forward, backward, and each param's update as soon
        as its gradient exists, so only one gradient is alive at a time. Params must be
        writable float64 numpy arrays (they are updated where they are).
        """
        step = getattr(self.module, "sgd_step", None)
        if step is None:
            from .errors import GradientError

            raise GradientError(
                f"program {self.name!r} has no SGD step: it needs a scalar output and wrt naming params only"
            )
        lr = check_step_size(lr)
        arrays = self._check_feeds(feeds)
        for k in self._param_positions:  # a converted copy would be updated instead of the caller's array
            if arrays[k] is not feeds[self._sources[k]] or not arrays[k].flags.writeable:
                name = self._sources[k]
                raise FeedError(
                    f"param {name!r} must be a writable {self.graph.nodes[name][ir.DTYPE]} numpy array to be "
                    f"updated in place, found {type(feeds[name]).__name__}; pass numpy.asarray(value, dtype=float)"
                )
        return dict(zip(self.outputs, step(*arrays, lr)))

    def _seeded_module(self) -> types.ModuleType:
        if self._seeded is None:
            from .lower.source import generate
            from .pipeline import INFERENCE_STAGES, gradient_stages, run_stages

            stages = gradient_stages(self.forward_graph, self.wrt, self.of, seeded=True)
            self.seeded_stages = stages
            code = generate(run_stages(self.forward_graph, INFERENCE_STAGES, {}), stages["scheduled"])
            self._seeded = load_source(code.source, self.name + " (seeded)")
        return self._seeded

    def save(self, path: str | Path) -> Path:
        """Write the generated module (numpy only) to ``path``."""
        path = Path(path)
        path.write_text(self.source, encoding="utf-8")
        return path

    def render(self, outdir: str | Path, format: str = "svg", feeds: Mapping | None = None,  # noqa: A002
               stages: list[str] | None = None, **options) -> list[Path]:
        """Draw every stage (or ``stages``) into ``outdir``, one file each; returns the paths."""
        from .render import render_program

        return render_program(self, outdir, format=format, feeds=feeds, stages=stages, **options)

    def report(self, path: str | Path, feeds: Mapping | None = None) -> Path:
        """Write one self-contained HTML page: every stage drawn, the code, the checks."""
        from .render.report import write_report

        return write_report(self, path, feeds=feeds)

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        """Jupyter shows the program as the drawing of its final graph."""
        from .render import Drawing, to_digraph

        return Drawing(to_digraph(self.stages["scheduled"]))._repr_mimebundle_(include, exclude)

    def __repr__(self) -> str:
        return f"<graphc Program {self.name!r}: outputs {self.outputs}, wrt {self.wrt}>"
