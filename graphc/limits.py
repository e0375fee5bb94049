"""What loading and compiling one graph file may cost (:class:`Limits`), apart from the
loader so that the command line can name the limits without importing it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace

from .errors import GraphcError, LimitError

__all__ = ["Limits", "LIMIT_NAMES", "NUMPY_MAX_RANK"]

NUMPY_MAX_RANK = 64  # numpy arrays have at most 64 dims


@dataclass(frozen=True)
class Limits:
    """What loading and compiling one graph file may cost; each limit can be raised.

    Loading refuses a file beyond any of them with a :class:`~graphc.errors.LimitError`
    naming the limit, e.g. ``gc.load(path, limits=Limits(nodes=50_000))`` or, on the
    command line, ``graphc check net.json --limit nodes=50000``. Compile time grows with
    ``nodes`` (a few ms a node), memory with ``elements`` (8 bytes each in float64), and
    the symbolic work of a custom op with ``expr_cost`` (see :func:`expression_cost`).

    >>> Limits().nodes, Limits(nodes=50).nodes
    (10000, 50)
    """

    file_bytes: int = 50_000_000  # the file's size
    nodes: int = 10_000  # nodes in the graph
    edges: int = 40_000  # edges in the graph
    elements: int = 10_000_000  # entries of all consts and params together, and of any one node
    rank: int = 32  # dims of one shape (numpy allows at most 64)
    expr_cost: int = 2_000  # the work of the custom ops' expressions together (expression_cost)

    def __post_init__(self):
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise GraphcError(f"limit {item.name} must be a positive int, found {value!r}")
        if self.rank > NUMPY_MAX_RANK:
            raise GraphcError(f"limit rank must be at most {NUMPY_MAX_RANK} (numpy's), found {self.rank}")

    @classmethod
    def of(cls, limits: Limits | Mapping | None) -> Limits:
        """``limits`` as Limits: None is the defaults, a mapping raises the limits it names."""
        if limits is None or isinstance(limits, Limits):
            return limits or cls()
        if not isinstance(limits, Mapping):
            raise GraphcError(f"limits must be a gc.io.Limits or a dict, found {type(limits).__name__}")
        unknown = sorted(set(map(str, limits)) - {item.name for item in fields(cls)})
        if unknown:
            raise GraphcError(f"unknown limit {unknown[0]!r}; the limits are {', '.join(LIMIT_NAMES)}")
        return replace(cls(), **limits)

    def refuse(self, name: str, found: int, what: str) -> LimitError:
        """The error for ``found`` over the limit ``name``, saying how to raise it."""
        return LimitError(
            f"{what} is {found}, more than the limit {name}={getattr(self, name)}; if you trust the file, raise "
            f"it: gc.load(path, limits={{{name!r}: {found}}}) or the command-line option --limit {name}={found}"
        )


LIMIT_NAMES = tuple(item.name for item in fields(Limits))
