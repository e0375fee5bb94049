"""The exception hierarchy of graphc.

Every error graphc raises on bad input derives from :class:`GraphcError`. Messages
name the node and its op, say what was expected and what was found, and how to fix it.
"""

from __future__ import annotations

__all__ = [
    "GraphcError",
    "GraphError",
    "ShapeError",
    "HyperparameterError",
    "FeedError",
    "GradientError",
    "RenderError",
    "LimitError",
    "FileError",
    "BackendError",
    "describe",
]


class GraphcError(Exception):
    """Base class of every error graphc raises on bad input."""


class GraphError(GraphcError):
    """The graph breaks an IR invariant: a cycle, an unknown op, an arity, a name."""


class ShapeError(GraphcError):
    """Operand shapes do not fit an op's shape rule."""


class HyperparameterError(GraphcError):
    """A training setting is out of range: a learning rate, momentum, epochs, a batch size, a seed."""


class FeedError(GraphcError):
    """A feed is missing, extra, or has the wrong shape or dtype."""


class GradientError(GraphcError):
    """An analytic gradient disagrees with a numeric one, or cannot be taken."""


class RenderError(GraphcError):
    """A drawing cannot be produced (for instance Graphviz's ``dot`` is missing)."""


class BackendError(GraphcError):
    """An array library cannot run a program: unknown, not installed, or missing a setting it needs."""


class LimitError(GraphError):
    """A graph file asks for more than a loader limit allows (nodes, elements, rank, cost)."""


class FileError(GraphcError):
    """A graph file cannot be read: missing, not a regular file, too large, or not UTF-8."""


def describe(node: object, op: object | None = None) -> str:
    """Name a node (and its op) for an error message, quoting it safely.

    >>> describe("h1", "relu")
    "node 'h1' (op relu)"
    """
    text = f"node {str(node)!r}"
    return f"{text} (op {op})" if op is not None else text
