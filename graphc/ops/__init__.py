"""The op table (``OPS``): every op's facets in one entry; see ``base.Op``."""

from . import compare, composite, conv, elementwise, fused, indexing, labels, nn, special, stats, tensor, vjp  # noqa: F401 - registering the table
from .base import OPS, Op, definition, get_op, local_partials, register

__all__ = ["OPS", "Op", "definition", "get_op", "local_partials", "register"]
