"""Graph editing shared by the optimizing passes: copy, create, replace, compare.

Every optimizing pass starts from :func:`begin` (a copy whose lists and marks are its own,
so the input graph is never touched; within ``ir.in_place`` the graph itself), creates nodes with :func:`new_node` /
:func:`const_node`, and swaps values with :func:`replace`, which keeps the ids that the
graph's attributes refer to (inputs, params, outputs, grads) alive.

>>> import graphc as gc
>>> g = gc.Graph("doc"); x = g.input("x", shape=(2,))
>>> _ = g.output("y", gc.identity(x) * 1.0)
>>> out = begin(g.nx)
>>> replace(out, "y", "identity")   # y is an output: identity takes its id
'y'
>>> ir.operands(out, "y"), sorted(out.nodes)
(['x'], ['const', 'x', 'y'])
>>> sorted(g.nx.nodes)              # the input graph is unchanged
['const', 'identity', 'x', 'y']
"""

from __future__ import annotations

import functools

import networkx as nx
import numpy as np

from .. import ir
from ..ops.base import freeze
from ..ops.editor import Editor, change_log
from ..ops.fused import fused_symbols

__all__ = [
    "SOURCES", "MAX_CONST_SIZE", "begin", "order", "Revisit", "protected", "is_source", "is_const", "const_value",
    "new_node", "fused_node", "const_node", "concrete_size", "replace", "node_key", "equivalent", "by_name",
    "symbols_in",
]

SOURCES = ("input", "param")  # values fed at run time: never merged, folded or removed
MAX_CONST_SIZE = 10_000  # passes never create a constant with more elements than this


def begin(graph: nx.MultiDiGraph) -> nx.MultiDiGraph:
    """A copy to edit (``ir.editable``: the graph itself in the pipeline's run that keeps no
    stage), with the previous pass's marks and stats cleared.

    A copy has the graph's nodes in the same order and the same edges, so the order the
    previous pass left (``order``) holds for it too: it is handed on, not computed again.
    """
    out = ir.editable(graph)
    out.graph.pop(ir.STATS, None)
    for data in out._node.values():  # the node dicts themselves: a data view costs a tuple per node
        data.pop(ir.MARK, None)
    known = _known_order(graph)
    if known is not None and _order_cache(out) is not None:
        _order_cache(out)[_ORDER] = known
    return out


_ORDER = "graphc.order"  # the key of a graph's topological order in its networkx cache


def _order_cache(graph: nx.MultiDiGraph) -> dict | None:
    """The dict networkx empties on every change of the graph's nodes or edges (each of its
    methods that changes them calls ``nx._clear_cache``, and so do ``ir.add_op`` and the
    editor's own edits of the adjacency dicts): what is kept there lasts exactly as long as the
    structure it was derived from. None for a view (its cache does not see its graph's changes)."""
    if type(graph) is not nx.MultiDiGraph or nx.is_frozen(graph):
        return None
    return getattr(graph, "__networkx_cache__", None)


def _known_order(graph: nx.MultiDiGraph) -> tuple[str, ...] | None:
    cache = _order_cache(graph)
    known = cache.get(_ORDER) if cache is not None else None
    return known if known is not None and len(known) == len(graph._node) else None


def order(graph: nx.MultiDiGraph) -> tuple[str, ...]:
    """The one topological order (``ir.topological_order``, as verify's).

    Computed again only after an edit changed the graph's nodes or edges: passes that change
    nothing (most of them, in most rounds) and the next pass's copy (``begin``) share one.
    """
    known = _known_order(graph)
    if known is not None:
        return known
    found = tuple(ir.topological_order(graph))
    cache = _order_cache(graph)
    if cache is not None:
        cache[_ORDER] = found
    return found


class Revisit:
    """The nodes a pass must look at again, for a pass whose decision at a node reads only
    that node and its operands up to ``hops`` levels up.

    Without a change log (the graph is not watched) or on the pass's first run, that is
    every node. Afterwards it is every node an edit touched since the pass last started,
    and the readers of those up to ``hops`` levels down: anywhere else the pass would see
    what it saw last time, and decide nothing again. Edits made while the pass runs (its
    own) join as they happen, so a sweep in order reaches what they changed, as a full
    sweep does.

    >>> import graphc as gc
    >>> from graphc.ops.editor import watching
    >>> g = gc.Graph("doc"); x = g.input("x", shape=(2,)); _ = g.output("y", gc.exp(gc.neg(x)))
    >>> with watching(g.nx):
    ...     first = Revisit(g.nx, "doc", hops=1)
    ...     Editor(g.nx).retag("neg", mark="created")
    ...     again = Revisit(g.nx, "doc", hops=1)
    >>> [n for n in order(g.nx) if first.needs(n)], [n for n in order(g.nx) if again.needs(n)]
    (['x', 'neg', 'y'], ['neg', 'y'])
    """

    def __init__(self, graph: nx.MultiDiGraph, name: str, hops: int):
        self.graph, self.hops = graph, hops
        self.log = change_log(graph)
        self.nodes: dict[str, int] | None = None  # None: every node
        if self.log is None:
            return
        key = ("revisit", name)
        start = self.log.memo.get(key)
        self.log.memo[key] = self.read = len(self.log.touched)
        if start is not None:
            self.nodes = {}
            self.read = start

    def needs(self, node: str) -> bool:
        if self.nodes is None:
            return True
        if self.read < len(self.log.touched):
            self._grow()
        return node in self.nodes

    def _grow(self) -> None:
        # each node with the levels still to go below it: a node reached last at the edge of
        # an earlier touch's reach and touched itself now passes the change on further
        succ, reach = self.graph._succ, self.nodes
        frontier = [(n, self.hops) for n in self.log.touched[self.read:] if n in succ]
        self.read = len(self.log.touched)
        while frontier:
            node, left = frontier.pop()
            if reach.get(node, -1) >= left:
                continue
            reach[node] = left
            if left:
                frontier.extend((r, left - 1) for r in succ[node])


def protected(graph: nx.MultiDiGraph) -> set[str]:
    """Ids named by the graph's attributes: outputs and gradient outputs keep their ids."""
    return set(graph.graph.get(ir.OUTPUTS, ())) | set((graph.graph.get(ir.GRADS) or {}).values())


def is_source(graph: nx.MultiDiGraph, node: str) -> bool:
    return graph._node[node][ir.OP] in SOURCES  # the node dicts themselves: a view per call costs


def is_const(graph: nx.MultiDiGraph, node: str) -> bool:
    return graph._node[node][ir.OP] == "const"


def const_value(graph: nx.MultiDiGraph, node: str) -> np.ndarray:
    return np.asarray(graph._node[node][ir.ATTRS]["value"], dtype=np.float64)


def concrete_size(shape: tuple) -> int | None:
    """The number of elements of a shape without symbolic dims, else None."""
    if not all(isinstance(d, (int, np.integer)) for d in shape):
        return None
    return int(np.prod(shape, dtype=np.int64))


def _editor(graph: nx.MultiDiGraph, like: str) -> tuple[Editor, dict]:
    """The IR editor over ``graph``, and the tags of a node a pass makes in ``like``'s place."""
    tags = {ir.MARK: "created"}
    if ir.PHASE in graph._node[like]:
        tags[ir.PHASE] = graph._node[like][ir.PHASE]
    return Editor(graph), tags


def new_node(graph: nx.MultiDiGraph, op: str, args: list[str], attrs: dict | None = None,
             like: str | None = None, expr: tuple | None = None) -> str:
    """Add ``op(*args)`` (shape by the op's rule), marked "created", in ``like``'s phase;
    ``expr`` is a fused node's ``(expression, symbols)``."""
    like = like if like is not None else args[0]
    editor, tags = _editor(graph, like)
    with editor.tagging(**tags):
        return editor.add(op, [editor.ref(a) for a in args], attrs,
                          dtype=graph._node[like].get(ir.DTYPE, ir.DEFAULT_DTYPE), expr=expr).id


def fused_node(graph: nx.MultiDiGraph, expr, args: list[str], like: str, kink: str = "") -> str:
    """A new ``fused`` node computing ``expr`` (over ``a0, a1, ...``, one per operand)."""
    return new_node(graph, "fused", args, {"kink": kink}, like=like, expr=(expr, fused_symbols(len(args))))


def const_node(graph: nx.MultiDiGraph, value, like: str) -> str:
    """A new const holding ``value`` (a scalar is stored as a float, as the builder does)."""
    editor, tags = _editor(graph, like)
    with editor.tagging(**tags):
        return editor.const(np.asarray(value, dtype=np.float64), dtype=graph._node[like].get(ir.DTYPE,
                                                                                           ir.DEFAULT_DTYPE)).id


def replace(graph: nx.MultiDiGraph, old: str, new: str) -> str:
    """Let ``new`` compute ``old``'s value; return the id that now holds it.

    Consumers of ``old`` move to ``new`` (operand positions kept) and ``old`` goes, except
    when the graph names ``old`` (an output or a gradient): then the id stays, either by
    renaming ``new`` to it (when ``new`` is an unnamed op or const) or, when ``new`` must
    keep its own id too, by turning ``old`` into ``identity(new)``. Returns ``old`` if
    nothing had to change (``old`` already is ``identity(new)``).
    """
    if old == new:
        return old
    keep = protected(graph)
    editor = Editor(graph)
    if old not in keep:
        editor.move_readers(old, new)
        if ir.GRAD_OF in graph._node[old] and graph._node[new].get(ir.PHASE) == ir.BACKWARD \
                and ir.GRAD_OF not in graph._node[new]:
            editor.retag(new, **{ir.GRAD_OF: graph._node[old][ir.GRAD_OF]})  # it holds that gradient now
        editor.remove([old])
        if graph._node[new].get(ir.MARK) == "created" and new not in keep:
            editor.rename(new, old)  # a node a pass just made takes the name
            return old
        return new
    named = graph._node[old]
    if new not in keep and not is_source(graph, new):
        editor.move_readers(old, new)
        # the named value keeps what the graph says of it
        editor.retag(new, **{key: named[key] for key in (ir.PHASE, ir.GRAD_OF) if key in named})
        editor.remove([old])
        editor.rename(new, old)
        return old
    if named[ir.OP] == "identity" and ir.operands(graph, old) == [new]:
        return old
    editor.rewrite(old, "identity", [new], mark="created")
    return old


def node_key(data: dict) -> tuple:
    """What makes two nodes alike for structural comparison: op, attrs, shape, dtype, expr."""
    return (data[ir.OP], freeze(data.get(ir.ATTRS) or {}), tuple(map(str, data.get(ir.SHAPE, ()))),
            data.get(ir.DTYPE, ir.DEFAULT_DTYPE), data.get(ir.EXPR))


def equivalent(a: nx.MultiDiGraph, b: nx.MultiDiGraph) -> bool:
    """Isomorphic with equal op, attrs, shape, dtype on nodes and operand positions on edges."""
    return nx.is_isomorphic(
        a, b,
        node_match=lambda x, y: node_key(x) == node_key(y),
        edge_match=lambda x, y: sorted(e.get(ir.ARG) for e in x.values()) == sorted(e.get(ir.ARG) for e in y.values()),
    )


def by_name(symbols) -> list:
    """Symbols sorted by their printed names (``sorted(symbols, key=str)``), each name printed
    once: sympy's printer costs microseconds a call, and the kernels of a deep network ask
    for the same few symbols thousands of times."""
    return sorted(symbols, key=_printed)


_printed = functools.lru_cache(maxsize=8192)(str)


@functools.lru_cache(maxsize=4096)
def symbols_in(expr) -> frozenset:
    """``expr.free_symbols``, found once per expression: sympy walks the tree on every
    asking, and the kernels of a deep network ask about the same few factors again and again."""
    return frozenset(expr.free_symbols)
