"""graphc: a symbolic computational-graph compiler for neural networks.

Declare a network as a graph of ops, compile it, and get readable numpy code for its
forward and backward passes, every compiler stage as a picture, and gradients checked
against numeric ones.
"""

from . import datasets, init, optim, zoo
from . import ops as _ops  # noqa: F401 - fills the op table
from .builder import Graph, Node, from_networkx
from .errors import FeedError, GradientError, GraphcError, GraphError, HyperparameterError, RenderError, ShapeError
from .functional import (
    abs,
    add,
    apply,
    bce,
    bce_with_logits,
    broadcast_to,
    cos,
    div,
    elementwise,
    exp,
    identity,
    leaky_relu,
    log,
    log1p,
    log_softmax,
    logsumexp,
    matmul,
    max,
    maximum,
    mean,
    mse,
    mul,
    neg,
    pow,
    relu,
    reshape,
    sigmoid,
    sin,
    softmax,
    softmax_cross_entropy,
    softplus,
    sqrt,
    square,
    stop_gradient,
    sub,
    sum,
    tanh,
    transpose,
)
from .io import load, save
from .pipeline import compile, grad
from .program import Program
from .render import render
from .testing import check_gradients
from .training import train
from .verify import verify
from .weights import load_weights, save_weights

__version__ = "0.1.0"

__all__ = [
    "zoo", "render", "Graph", "Node", "from_networkx", "compile", "grad", "check_gradients", "Program", "verify",
    "elementwise", "apply",
    "save", "load",
    "GraphcError", "GraphError", "ShapeError", "FeedError", "GradientError", "RenderError", "HyperparameterError",
    "datasets", "init", "optim", "train", "save_weights", "load_weights",
    "relu", "leaky_relu", "sigmoid", "tanh", "softplus", "identity", "exp", "log", "log1p", "sin",
    "cos", "sqrt", "abs", "square", "neg", "maximum", "add", "sub", "mul", "div", "pow", "matmul",
    "transpose", "reshape", "sum", "mean", "max", "broadcast_to", "stop_gradient", "softmax",
    "log_softmax", "logsumexp", "mse", "bce", "bce_with_logits", "softmax_cross_entropy",
]
