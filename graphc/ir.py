"""The IR contract: attribute keys, operand order, and graph-level bookkeeping.

A graph is a :class:`networkx.MultiDiGraph` (a value may feed one op twice, ``x * x``).
Node ids are strings; any string is allowed. The full contract is in ``docs/ir.md``.

Node attributes
    ``op``     name in the op table
    ``attrs``  op parameters (axis, keepdims, value, ...), a dict
    ``shape``  tuple of ints and sympy Symbols
    ``dtype``  a numpy dtype name, ``"float64"`` by default
    passes add ``phase`` ("forward"/"backward"), ``grad_of``, ``level``, ``expr``, ``mark``
Edge attribute
    ``arg``    operand position 0..k-1; only :func:`operands` reads predecessors
Graph attributes
    ``name``, ``inputs``, ``params``, ``outputs`` (ordered lists of node ids), and after
    differentiation ``grads`` (ordered {wrt name: node id}) and ``seed``; ``custom_ops``,
    the custom ops the graph's nodes may name (an immutable ``graphc.ops.base.OpRegistry``,
    shared by copies).
"""

from __future__ import annotations

import contextlib
import contextvars
import heapq
import itertools
from collections.abc import Iterator

import networkx as nx

from .errors import GraphError

# Node attribute keys.
OP = "op"
ATTRS = "attrs"
SHAPE = "shape"
DTYPE = "dtype"
PHASE = "phase"
GRAD_OF = "grad_of"
LEVEL = "level"
EXPR = "expr"
MARK = "mark"
FUSED_SIZE = "fused_size"  # how many ops a fused node holds (fusion's region cap counts them)
EARLY = "early"  # a backward node the training forward computes (interleave's running products)

# Edge attribute key.
ARG = "arg"

# Graph attribute keys.
NAME = "name"
INPUTS = "inputs"
PARAMS = "params"
OUTPUTS = "outputs"
GRADS = "grads"
SEED = "seed"
STATS = "stats"  # what the optimizing passes did (see passes/stats.py)
CUSTOM_OPS = "custom_ops"  # the graph's own ops (an immutable OpRegistry; see ops/base.py)

# Phases.
FORWARD = "forward"
BACKWARD = "backward"

# What a pass did to a node (attribute ``mark``), for drawings.
MARKS = ("created", "merged", "folded", "fused")

DEFAULT_DTYPE = "float64"

__all__ = [
    "OP", "ATTRS", "SHAPE", "DTYPE", "PHASE", "GRAD_OF", "LEVEL", "EXPR", "MARK", "EARLY", "FUSED_SIZE", "ARG",
    "NAME", "INPUTS", "PARAMS", "OUTPUTS", "GRADS", "SEED", "STATS", "CUSTOM_OPS", "FORWARD", "BACKWARD", "MARKS",
    "DEFAULT_DTYPE", "operands", "new_graph", "op_of", "attrs_of", "shape_of", "sources", "topological_order",
    "copy_graph", "editable", "in_place", "relabeled", "fresh_id", "add_op",
]


def operands(graph: nx.MultiDiGraph, node: str) -> list[str]:
    """The operands of ``node`` in order (by the ``arg`` of each in-edge).

    This is the one place that reads predecessors; everything else calls it.

    >>> g = new_graph("doc")
    >>> g.add_node("x", op="input"); g.add_node("y", op="mul")
    >>> _ = g.add_edge("x", "y", arg=1); _ = g.add_edge("x", "y", arg=0)
    >>> operands(g, "y")
    ['x', 'x']
    """
    # the predecessor dicts directly: building an edge view (or an adjacency view) per call
    # dominated passes on big graphs
    if type(graph) is nx.MultiDiGraph:
        into = graph._pred[node]
        count = len(into)
        if count == 1:  # one operand, or one value read at several positions (x * x)
            (source, keys), = into.items()
            return [source] * len(keys)
        if count == 2:  # two values, each read once (x @ W, h + b): no list of pairs to sort
            (first, once), (second, twice) = into.items()
            if len(once) == 1 and len(twice) == 1:
                (data,), (other,) = once.values(), twice.values()
                a, b = data[ARG], other[ARG]
                return [first, second] if a < b or a == b and first < second else [second, first]
        elif not count:
            return []
        edges = [(data[ARG], source) for source, keys in into.items() for data in keys.values()]
    else:
        pred = getattr(graph, "_pred", None) or graph.pred
        if graph.is_multigraph():
            edges = [(data[ARG], source) for source, keys in pred[node].items() for data in keys.values()]
        else:  # a plain DiGraph handed in by a user
            edges = [(data[ARG], source) for source, data in pred[node].items()]
    if len(edges) < 2:
        return [source for _, source in edges]
    edges.sort()
    return [source for _, source in edges]


def new_graph(name: str = "graph") -> nx.MultiDiGraph:
    """An empty IR graph with its graph attributes in place."""
    graph = nx.MultiDiGraph()
    graph.graph.update({NAME: name, INPUTS: [], PARAMS: [], OUTPUTS: []})
    return graph


def op_of(graph: nx.MultiDiGraph, node: str) -> str:
    return graph._node[node][OP]  # the node dicts themselves: a view per call costs (every graph has them)


def attrs_of(graph: nx.MultiDiGraph, node: str) -> dict:
    return graph.nodes[node].get(ATTRS) or {}


def shape_of(graph: nx.MultiDiGraph, node: str) -> tuple:
    return graph.nodes[node][SHAPE]


def sources(graph: nx.MultiDiGraph) -> list[str]:
    """Inputs then params, in declaration order."""
    return list(graph.graph[INPUTS]) + list(graph.graph[PARAMS])


def add_op(graph: nx.MultiDiGraph, node: str, op: str, args: list[str], attrs: dict | None = None,
           shape: tuple = (), dtype: str = DEFAULT_DTYPE, **extra) -> str:
    """Add one op node with its operand edges (positions 0..k-1); return its id."""
    succ = graph._succ
    if type(graph) is not nx.MultiDiGraph or node in succ or node is None or not all(a in succ for a in args):
        graph.add_node(node, **{OP: op, ATTRS: dict(attrs or {}), SHAPE: tuple(shape), DTYPE: dtype}, **extra)
        for position, source in enumerate(args):
            graph.add_edge(source, node, **{ARG: position})
        return node
    # a new node reading nodes of the graph: what add_node and add_edge make (the same dicts,
    # keys and order), written straight into the adjacency dicts; their calls cost more than the edit
    data = {OP: op, ATTRS: dict(attrs or {}), SHAPE: tuple(shape), DTYPE: dtype}
    data.update(extra)
    graph._node[node] = data
    succ[node] = {}
    into = graph._pred[node] = {}
    for position, source in enumerate(args):
        keys = into.get(source)
        if keys is None:  # one dict of keys shared by succ and pred, as networkx keeps it
            keys = into[source] = succ[source][node] = {}
        keys[len(keys)] = {ARG: position}  # a new node's keys from one source are 0, 1, ...
    nx._clear_cache(graph)
    return node


def copy_graph(graph: nx.MultiDiGraph) -> nx.MultiDiGraph:
    """A copy a pass may change freely: nodes, edges, attribute dicts and graph attributes.

    Node attribute dicts are new (values shared: shapes, attrs dicts are replaced, never
    mutated in place, by passes); graph attributes (lists, dicts) are copied one level deep.
    """
    out = _copy_multidigraph(graph) if type(graph) is nx.MultiDiGraph else graph.copy()
    out.graph = {key: (value.copy() if isinstance(value, (list, dict, set)) else value)
                 for key, value in graph.graph.items()}
    return out


# Set by the pipeline's run that keeps no stage (gc.compile's own): each pass then edits the
# graph it is given, and nobody reads the graph a pass started from again. A context
# variable, so a compile in another thread still copies.
_IN_PLACE: contextvars.ContextVar[bool] = contextvars.ContextVar("graphc_in_place", default=False)


@contextlib.contextmanager
def in_place(on: bool = True) -> Iterator[None]:
    """Inside the block, :func:`editable` hands a pass ``graph`` itself (``on``) or a copy (not ``on``)."""
    token = _IN_PLACE.set(on)
    try:
        yield
    finally:
        _IN_PLACE.reset(token)


def editable(graph: nx.MultiDiGraph) -> nx.MultiDiGraph:
    """The graph a pass edits: a copy (:func:`copy_graph`), so that ``graph`` stays as it was,
    or, inside :func:`in_place`, ``graph`` itself.

    >>> g = new_graph("doc")
    >>> editable(g) is g
    False
    >>> with in_place():
    ...     editable(g) is g
    True
    """
    return graph if _IN_PLACE.get() else copy_graph(graph)


def _copy_multidigraph(graph: nx.MultiDiGraph) -> nx.MultiDiGraph:
    """What ``graph.copy()`` makes (same node, edge and key order, new attribute dicts),
    built straight from the adjacency dicts: networkx's copy re-adds every edge through
    ``add_edges_from`` and was the largest single cost of compiling a big graph."""
    out = nx.MultiDiGraph()
    nodes = {node: data.copy() for node, data in graph._node.items()}
    succ: dict = {node: {} for node in nodes}
    pred: dict = {node: {} for node in nodes}
    for source, targets in graph._succ.items():
        out_edges = succ[source]
        for target, keys in targets.items():
            # one dict of keys shared by succ and pred, as networkx keeps it; one edge (the
            # usual pair) without a comprehension
            if len(keys) == 1:
                for key, data in keys.items():
                    out_edges[target] = pred[target][source] = {key: data.copy()}
            else:
                out_edges[target] = pred[target][source] = {key: data.copy() for key, data in keys.items()}
    out._node, out._adj, out._pred = nodes, succ, pred
    out._succ = succ
    return out


def relabeled(graph: nx.MultiDiGraph, mapping: dict) -> nx.MultiDiGraph:
    """What ``nx.relabel_nodes(graph, mapping, copy=True)`` makes (node, edge and key order
    kept), for a graph its maker drops: its attribute dicts move to the new graph instead
    of being copied, and its graph attributes are shared. ``mapping`` renames nodes one to
    one, onto ids the graph does not hold.

    >>> g = new_graph("doc"); g.add_node("a", op="input")
    >>> relabeled(g, {"a": "b"}).nodes(data=True)
    NodeDataView({'b': {'op': 'input'}})
    """
    if type(graph) is not nx.MultiDiGraph:
        return nx.relabel_nodes(graph, mapping, copy=True)
    name = mapping.get
    nodes = {name(node, node): data for node, data in graph._node.items()}
    if len(nodes) != len(graph._node):
        raise ValueError("relabeled: the mapping merges nodes")
    succ: dict = {node: {} for node in nodes}
    pred: dict = {node: {} for node in nodes}
    for source, targets in graph._succ.items():
        source = name(source, source)
        out_edges = succ[source]
        for target, keys in targets.items():
            target = name(target, target)
            out_edges[target] = pred[target][source] = keys  # one key dict for succ and pred, as networkx keeps it
    out = nx.MultiDiGraph()
    out._node, out._adj, out._pred = nodes, succ, pred
    out._succ = succ
    out.graph.update(graph.graph)
    return out


def fresh_id(graph: nx.MultiDiGraph, stem: str) -> str:
    """A node id not yet in the graph: ``stem``, ``stem_1``, ``stem_2``... deterministic."""
    if stem not in graph:
        return stem
    counter = graph.graph.setdefault("_counters", {})
    k = counter.get(stem, 0)
    while True:
        k += 1
        candidate = f"{stem}_{k}"
        if candidate not in graph:
            counter[stem] = k
            return candidate


def topological_order(graph: nx.DiGraph) -> list[str]:
    """The one topological order: ties broken by insertion order, so it is deterministic.

    It is Kahn's algorithm taking the ready node of smallest insertion index each time
    (``nx.lexicographical_topological_sort`` keyed by insertion index), found in one sweep
    of the insertion order: a node whose operands are all placed is the smallest ready one
    when the sweep reaches it, so it is placed there; one that is not waits for its last
    operand, and is then placed before the sweep goes on (it comes before every node the
    sweep has not reached). Only the waiting nodes pass through a heap, so a graph
    inserted nearly in order (the passes append the nodes they make, and a rename moves a
    node to the end) costs one subset test per node. A cycle is reported with its nodes.

    >>> g = new_graph("doc")
    >>> g.add_node("a", op="input")
    >>> add_op(g, "b", "neg", ["a"])
    'b'
    >>> topological_order(g)
    ['a', 'b']
    """
    pred = getattr(graph, "_pred", None) or graph.pred  # the dicts themselves: a view per node costs
    placed: set = set()
    covers, place = placed.issuperset, placed.add
    sweep = iter(graph.nodes)
    for first in sweep:
        operands = pred[first]
        if operands and not covers(operands):
            break
        place(first)
    else:  # the usual case: the insertion order is topological (a node is added after its operands)
        return list(graph.nodes)
    # from the first node that must wait on: the nodes before it are placed, in order
    result = list(itertools.islice(graph.nodes, len(placed)))
    put = result.append
    missing: dict = {}  # a waiting node -> how many of its operands are not placed yet
    waiters: dict = {}  # an operand not placed yet -> (sweep index, node) of the waiting nodes reading it
    ready: list = []  # a heap of (sweep index, node): waiting nodes whose operands are all placed now
    for k, node in enumerate(itertools.chain((first,), sweep), start=len(placed)):
        operands = pred[node]
        if operands and not covers(operands):
            absent = [source for source in operands if source not in placed]
            missing[node] = len(absent)
            for source in absent:
                waiters.setdefault(source, []).append((k, node))
            continue
        place(node)
        put(node)
        if node in waiters:
            _release(node, waiters, missing, ready, placed, result)
    if len(result) != len(graph):
        raise GraphError(_cycle_message(graph))
    return result


def _release(node, waiters: dict, missing: dict, ready: list, placed: set, result: list) -> None:
    """Place, smallest sweep index first, every waiting node that ``node`` (just placed) was
    the last missing operand of, and in turn those they free."""
    freed = waiters.pop(node)
    push, pop = heapq.heappush, heapq.heappop
    while True:
        alone = None  # a chain frees one node at a time: placed next without the heap
        for entry in freed:
            waiting = entry[1]
            left = missing[waiting] - 1
            missing[waiting] = left
            if not left:
                if alone is None and not ready:
                    alone = entry
                else:
                    if alone is not None:
                        push(ready, alone)
                        alone = None
                    push(ready, entry)
        if alone is not None:
            node = alone[1]
        elif ready:
            node = pop(ready)[1]
        else:
            return
        placed.add(node)
        result.append(node)
        freed = waiters.pop(node, ())


def _cycle_message(graph: nx.DiGraph) -> str:
    cycle = nx.find_cycle(graph)
    names = [edge[0] for edge in cycle] + [cycle[0][0]]
    return ("the graph has a cycle: " + " -> ".join(repr(str(n)) for n in names)
            + "; a computational graph must be acyclic: remove one of these edges")
