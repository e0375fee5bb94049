"""expand: replace composite ops (softmax, logsumexp, losses) by their stable expansions.

Guarantees: the result holds primitive ops only; every composite node's id now names the
node computing its value (so outputs keep their names); values are unchanged.

Before: ``loss = mse(g, y)``. After: ``squared_error = squared_error(g, y)``,
``loss = mean(squared_error)``.
"""

from __future__ import annotations

import networkx as nx

from .. import ir
from ..ops.base import op_for
from ..ops.editor import Editor
from ..verify import topological_order

__all__ = ["expand"]


def expand(graph: nx.MultiDiGraph) -> nx.MultiDiGraph:
    out = ir.editable(graph)
    editor = Editor(out)
    changed = True
    while changed:  # expansions may use composites themselves (log_softmax -> logsumexp)
        changed = False
        for node in topological_order(out):
            op = op_for(out, ir.op_of(out, node), node)
            if not op.composite:
                continue
            args = [editor.ref(a) for a in ir.operands(out, node)]
            result = op.expand(args, ir.attrs_of(out, node))
            # the expansion's result takes the composite's place and id
            editor.move_readers(node, result.id)
            editor.remove([node])
            editor.rename(result.id, node)
            changed = True
    return out
