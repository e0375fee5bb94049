"""graphc: a symbolic computational-graph compiler for neural networks.

Declare a network as a graph of ops, compile it, and get readable numpy code for its
forward and backward passes, every compiler stage as a picture, and gradients checked
against numeric ones.

The public names are loaded when first used (PEP 562): ``import graphc`` costs little,
and sympy, networkx, graphviz and pytest are imported by the parts that need them.
"""

from __future__ import annotations

import importlib
import os
import sys
import types

from .errors import (  # noqa: F401 - public names (light: the errors import nothing)
    BackendError,
    FeedError,
    GradientError,
    GraphcError,
    GraphError,
    HyperparameterError,
    RenderError,
    ShapeError,
)

__version__ = "0.1.0"

# Each public name but the op functions, and the module it comes from. The op functions
# (gc.relu, gc.sum, gc.mse, ...: one per entry of the op table that names one) come from
# graphc.functional; their list is the op table's, read when first asked for.
_MODULES = ("zoo", "datasets", "init", "optim")
_NAMES = {
    "render": "drawing", "Graph": "builder", "Node": "builder", "from_networkx": "builder",
    "compile": "pipeline", "grad": "pipeline", "check_gradients": "testing", "Program": "program",
    "verify": "verify", "evaluate": "evaluate", "elementwise": "functional", "apply": "functional",
    "batch_norm": "functional", "save": "io", "load": "io", "train": "training",
    "save_weights": "weights", "load_weights": "weights",
}
_ERRORS = ["GraphcError", "GraphError", "ShapeError", "FeedError", "GradientError", "RenderError",
           "HyperparameterError", "BackendError"]
_LEADING = [
    "zoo", "render", "Graph", "Node", "from_networkx", "compile", "grad", "check_gradients", "Program", "verify",
    "evaluate", "elementwise", "apply", "batch_norm", "save", "load", *_ERRORS,
    "datasets", "init", "optim", "train", "save_weights", "load_weights",
]


def _op_functions() -> list[str]:
    return list(importlib.import_module(".functional", __name__).OP_FUNCTIONS)


def _submodules() -> set[str]:
    """The package's modules by name: ``from . import cli`` asks the package for ``cli``
    first, and that question must not load the op table."""
    folder = __path__[0]
    return {name.removesuffix(".py") for name in os.listdir(folder)
            if name.endswith(".py") or os.path.isfile(os.path.join(folder, name, "__init__.py"))}


def __getattr__(name: str):
    if name == "__all__":
        value = [*_LEADING, *_op_functions()]
    elif name in _MODULES:
        value = importlib.import_module(f".{name}", __name__)
    elif name in _NAMES:
        value = getattr(importlib.import_module(f".{_NAMES[name]}", __name__), name)
    elif name in _submodules():  # gc.io, gc.ir, ...: what import graphc used to load with everything
        value = importlib.import_module(f".{name}", __name__)
    elif not name.startswith("_") and name in _op_functions():
        value = getattr(importlib.import_module(".functional", __name__), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__getattr__("__all__")))


def _display_graph(graph, include, exclude) -> dict:
    """How a declared graph shows in Jupyter (builder calls it; a declared graph does not
    import the drawing)."""
    from .render import Drawing, to_digraph

    return Drawing(to_digraph(graph))._repr_mimebundle_(include, exclude)


class _Package(types.ModuleType):
    """The package module: its public ``render``, ``evaluate`` and ``verify`` are functions
    that share their names with submodules. Importing a submodule sets it on its package;
    here the function keeps the name (the submodule is in ``sys.modules`` all the same)."""

    def __setattr__(self, name: str, value) -> None:
        if isinstance(value, types.ModuleType) and name in _NAMES:
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
