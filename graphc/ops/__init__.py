"""The op table (``OPS``, the built-in ops, final once imported) and each graph's custom ops
(``op_for(graph, name)`` looks a name up in both); every op's facets in one entry: ``base.Op``."""

from . import (  # noqa: F401 - registering the table; xp_*: the helpers written over the array API
    compare,
    composite,
    conv,
    elementwise,
    fused,
    indexing,
    labels,
    nn,
    special,
    stats,
    tensor,
    vjp,
    xp_special,
    xp_windows,
)
from .base import OPS, Op, OpRegistry, custom_ops, definition, get_op, local_partials, op_for, register, seal

seal()  # every built-in op is in the table: from here on a new op is a custom op a graph carries

__all__ = ["OPS", "Op", "OpRegistry", "custom_ops", "definition", "get_op", "local_partials", "op_for", "register"]
