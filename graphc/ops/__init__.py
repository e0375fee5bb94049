"""The op table (``OPS``): every op's facets in one entry; see ``base.Op``."""

from . import composite, elementwise, fused, tensor, vjp  # noqa: F401 - registering the table
from .base import OPS, Op, definition, get_op, local_partials, register

__all__ = ["OPS", "Op", "definition", "get_op", "local_partials", "register"]
