"""graphc: a symbolic computational-graph compiler for neural networks.

Declare a network as a graph of ops, compile it, and get readable numpy code for its
forward and backward passes, every compiler stage as a picture, and gradients checked
against numeric ones.
"""

from . import builder as _builder
from . import datasets, init, optim, zoo
from . import functional as _functional
from . import ops as _ops  # noqa: F401 - fills the op table
from .builder import Graph, Node, from_networkx
from .drawing import render
from .errors import (
    BackendError,
    FeedError,
    GradientError,
    GraphcError,
    GraphError,
    HyperparameterError,
    RenderError,
    ShapeError,
)
from .evaluate import evaluate
from .functional import apply, batch_norm, elementwise
from .io import load, save
from .pipeline import compile, grad
from .program import Program
from .render import Drawing as _Drawing
from .render import to_digraph as _to_digraph
from .testing import check_gradients
from .training import train
from .verify import verify
from .weights import load_weights, save_weights

# The op functions (gc.relu, gc.sum, gc.mse, ...): one per entry of the op table that names one.
globals().update({_name: getattr(_functional, _name) for _name in _functional.OP_FUNCTIONS})

# Graphs show in Jupyter as their drawing; the hook keeps declaring free of render.
_builder.display = lambda graph, include, exclude: _Drawing(_to_digraph(graph))._repr_mimebundle_(include, exclude)

__version__ = "0.1.0"

__all__ = [
    "zoo", "render", "Graph", "Node", "from_networkx", "compile", "grad", "check_gradients", "Program", "verify",
    "evaluate", "elementwise", "apply", "batch_norm",
    "save", "load",
    "GraphcError", "GraphError", "ShapeError", "FeedError", "GradientError", "RenderError", "HyperparameterError",
    "BackendError",
    "datasets", "init", "optim", "train", "save_weights", "load_weights",
    *_functional.OP_FUNCTIONS,
]
