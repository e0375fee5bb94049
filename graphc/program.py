"""Program: what ``gc.compile`` returns: run it, read its code, look at its stages."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import networkx as nx
import numpy as np

from . import ir
from .feeds import check_feeds
from .lower.load import load_source
from .lower.source import GeneratedCode
from .schedule import levels

__all__ = ["Program"]


class Program:
    """A compiled network: ``forward``, ``value_and_grad``, its source and its stages."""

    def __init__(self, graph: nx.MultiDiGraph, stages: dict[str, nx.MultiDiGraph], code: GeneratedCode,
                 wrt: list[str]):
        self.graph = graph
        self.stages = stages
        self.code = code
        self.wrt = wrt
        self.module = load_source(code.source, graph.graph[ir.NAME])

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
    def outputs(self) -> list[str]:
        return list(self.graph.graph[ir.OUTPUTS])

    def forward(self, feeds: Mapping) -> dict[str, np.ndarray]:
        """The graph's outputs for ``feeds`` (inputs and params by name)."""
        arrays = check_feeds(self.graph, feeds)
        values = self.module.forward_pass(*arrays)
        return {name: np.asarray(v) for name, v in zip(self.outputs, values)}

    def __call__(self, **feeds) -> dict[str, np.ndarray]:
        return self.forward(feeds)

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

    def __repr__(self) -> str:
        return f"<graphc Program {self.name!r}: outputs {self.outputs}, wrt {self.wrt}>"
