"""The schedule: dependency levels, and the plan of every generated function.

Level 0 holds the sources; a node's level is one more than its deepest operand's, so
nodes of one level do not depend on one another and could run in parallel (the lecture's
"dependency driven scheduling"). Within a level, nodes keep the graph's insertion order:
the same graph always gives the same schedule.

:func:`schedule` turns the final graphs into data: a frozen :class:`FunctionPlan` per
generated function, listing its arguments, the symbolic dims it binds and where from,
and its steps in order, each with what it reads, which dying operands' buffers it may
write into (donates) and what is freed after it; what it returns and whether each
returned value must be copied so that the caller owns it. The SGD step has its own
:class:`StepPlan`. Lowering prints these plans and decides nothing about memory.

>>> import graphc as gc
>>> g = gc.Graph("doc"); x = g.input("x", shape=("N", 2)); W = g.param("W", shape=(2, 1))
>>> _ = g.output("loss", gc.sum(gc.tanh(x @ W)))
>>> plan = gc.compile(g).plan
>>> [f.name for f in plan.functions]
['forward_pass', 'train_forward', 'backward_pass']
>>> plan.sgd.updates[0].param, plan.sgd.updates[0].in_place
('W', True)
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass, replace

import networkx as nx
import sympy

from . import ir
from .errors import GraphError
from .ops.base import op_for

__all__ = [
    "levels", "mark_levels", "critical_path", "schedule", "plan_function", "without_updates",
    "Schedule", "FunctionPlan", "Step", "Returned", "StepPlan", "Update",
    "SOURCES", "ALIASES", "VIEWS", "resolve", "base", "is_inline",
]

SOURCES = ("input", "param", "const")  # values that exist before any statement runs
ALIASES = ("identity", "stop_gradient")  # ops whose value is their operand's: no statement
VIEWS = ("transpose", "reshape", "broadcast")  # ops whose value may share its operand's memory
NO_STEP = SOURCES + ALIASES  # values no statement computes
_NOT_OWNED = NO_STEP + VIEWS  # values whose buffer is not a fresh array of their own


# -- levels -------------------------------------------------------------------------------
def levels(graph: nx.MultiDiGraph) -> list[list[str]]:
    """``nx.topological_generations`` with a stable order inside each level (insertion order).

    A node's level is one more than its deepest operand's, found in one sweep of the
    topological order (networkx's generations cost several times more on big graphs).
    """
    return _grouped(graph, _depths(graph))


def _grouped(graph: nx.MultiDiGraph, depth: dict[str, int]) -> list[list[str]]:
    """The nodes level by level (``depth``: each one's), in insertion order inside each level."""
    result: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for node in graph.nodes:
        result[depth[node]].append(node)
    return result


def _depths(graph: nx.MultiDiGraph) -> dict[str, int]:
    """Each node's level. One sweep of the insertion order when that is topological (the
    passes keep it so, mostly): a node whose operand comes later stops it, and the sweep is
    made again over ``ir.topological_order`` (which also reports a cycle)."""
    pred = getattr(graph, "_pred", None) or graph.pred  # the dicts themselves: a view per node costs
    depth: dict[str, int] = {}
    level_of = depth.__getitem__
    try:
        for node in graph.nodes:
            depth[node] = max(map(level_of, pred[node]), default=-1) + 1
        return depth
    except KeyError:  # an operand not yet swept: insertion order is not topological
        depth.clear()
    for node in ir.topological_order(graph):
        depth[node] = max(map(level_of, pred[node]), default=-1) + 1
    return depth


def mark_levels(graph: nx.MultiDiGraph) -> nx.MultiDiGraph:
    """A copy of ``graph`` (``ir.editable``) with each node's ``level`` attribute set (the ``scheduled`` stage)."""
    out = ir.editable(graph)
    depth = _depths(out)
    for node, data in out._node.items():  # the node dicts themselves: a view per node costs
        data.pop(ir.MARK, None)  # marks tell what the previous pass did; scheduling changes no node
        data[ir.LEVEL] = depth[node]
    return out


def critical_path(graph: nx.MultiDiGraph) -> list[str]:
    """The longest dependency chain (its length is the number of levels)."""
    return list(nx.dag_longest_path(graph, topo_order=[n for level in levels(graph) for n in level]))


# -- the memory model: which values are other values --------------------------------------
def resolve(graph: nx.MultiDiGraph, node: str) -> str:
    """The node whose statement computes ``node``'s value (aliases have none)."""
    while ir.op_of(graph, node) in ALIASES:
        node = ir.operands(graph, node)[0]
    return node


def is_inline(graph: nx.MultiDiGraph, node: str) -> bool:
    """A transpose of all axes is written ``x.T`` where it is read: no step of its own."""
    data = graph._node[node]  # the node dicts themselves: a view per call costs (every graph has them)
    return data[ir.OP] == "transpose" and data[ir.ATTRS].get("axes") is None


def folds_into_reader(graph: nx.MultiDiGraph, node: str) -> bool:
    """A float64 ``square`` whose one reader sums (or averages) it to a number: the reader
    computes it as a dot product of the operand with itself, so it has no step of its own
    (no array of squares, one call instead of two). float32 keeps its square and numpy's
    pairwise sum: a float32 dot accumulates its error linearly in the length."""
    data = graph._node[node]
    if data[ir.OP] != "square" or data[ir.DTYPE] != "float64" or graph.out_degree(node) != 1:
        return False
    (reader,) = graph.successors(node)
    reading = graph.nodes[reader]
    return (reading[ir.OP] in ("sum", "mean") and tuple(reading[ir.SHAPE]) == ()
            and not reading[ir.ATTRS].get("keepdims", False))


def base(graph: nx.MultiDiGraph, node: str) -> str:
    """The node holding the array ``node``'s code reads (through aliases and ``.T``)."""
    node = resolve(graph, node)
    while is_inline(graph, node):
        node = resolve(graph, ir.operands(graph, node)[0])
    return node


def _memory(graph: nx.MultiDiGraph, node: str) -> tuple[str, bool]:
    """(the node owning ``node``'s memory, whether a broadcast view is on the way): read-only."""
    node, broadcast = resolve(graph, node), False
    while ir.op_of(graph, node) in VIEWS:
        broadcast = broadcast or ir.op_of(graph, node) == "broadcast"
        node = resolve(graph, ir.operands(graph, node)[0])
    return node, broadcast


# -- the order inside a level ------------------------------------------------------------
def _elementwise(graph: nx.MultiDiGraph, node: str) -> bool:
    return op_for(graph, ir.op_of(graph, node), node).elementwise


def _size(graph: nx.MultiDiGraph, node: str) -> int:
    """How many operations an elementwise step's kernel has (a plain op: one)."""
    data = graph.nodes[node]
    if ir.EXPR not in data:
        return 1
    return sum(1 for part in sympy.preorder_traversal(data[ir.EXPR][0]) if part.args)


class Facts:
    """What planning asks of each node of a graph, worked out once per node and remembered.

    A function's plan reads each node's operands, their aliases resolved, the array a value
    lives in and the arrays a view looks into; the passes of a joint graph (train_forward,
    backward_pass) ask about the same nodes, and a deep network's ~20,000 nodes made each
    question a few percent of a compile. Every answer depends only on the node's own data
    and on what it reads (never on its readers).
    """

    def __init__(self, graph: nx.MultiDiGraph, caches: tuple | None = None):
        self.graph = graph
        self._operands, self._resolved, self._memory, self._readings = caches or ({}, {}, {}, {})
        self._graph_dims: set[sympy.Symbol] | None = None

    def operands(self, node: str) -> list[str]:
        found = self._operands.get(node)
        if found is None:
            found = self._operands[node] = ir.operands(self.graph, node)
        return found

    def resolve(self, node: str) -> str:
        """:func:`resolve`, remembered."""
        found = self._resolved.get(node)
        if found is None:
            found, graph = node, self.graph
            while graph._node[found][ir.OP] in ALIASES:
                found = self.operands(found)[0]
            self._resolved[node] = found
        return found

    def memory(self, node: str) -> tuple[str, bool]:
        """:func:`_memory`, remembered."""
        found = self._memory.get(node)
        if found is None:
            owner, broadcast, nodes = self.resolve(node), False, self.graph._node
            while nodes[owner][ir.OP] in VIEWS:
                broadcast = broadcast or nodes[owner][ir.OP] == "broadcast"
                owner = self.resolve(self.operands(owner)[0])
            found = self._memory[node] = (owner, broadcast)
        return found

    def reading(self, node: str) -> tuple[str, tuple[str, ...]]:
        """(:func:`resolve` of ``node``, the arrays that value looks into when it is a view,
        nearest first, aliases resolved: the last one owns the memory; ``()`` otherwise):
        what a step reading ``node`` reads and keeps alive, remembered."""
        found = self._readings.get(node)
        if found is None:
            value = array = self.resolve(node)
            nodes, chain = self.graph._node, []
            while nodes[array][ir.OP] in VIEWS:
                array = self.resolve(self.operands(array)[0])
                chain.append(array)
            found = self._readings[node] = (value, tuple(chain))
        return found

    def arrays(self, node: str) -> tuple[str, str]:
        """(:func:`base` of ``node``, the owner of its memory: ``_memory``'s first), from its
        reading: the array its code reads (through aliases and inline transposes, which are
        views) and the one that array looks into."""
        value, chain = self.reading(node)
        base = value
        for array in chain:  # the last one is no view
            if not is_inline(self.graph, base):
                break
            base = array
        return base, chain[-1] if chain else value

    def base(self, node: str) -> str:
        """:func:`base`, from the remembered facts."""
        node = self.resolve(node)
        while is_inline(self.graph, node):
            node = self.resolve(self.operands(node)[0])
        return node

    def graph_dims(self) -> set[sympy.Symbol]:
        """:func:`_graph_dims`, remembered."""
        if self._graph_dims is None:
            self._graph_dims = _graph_dims(self.graph)
        return self._graph_dims


def _reads(levels_: list[list[str]], folded: frozenset[str], facts: Facts,
           through_views: bool = False) -> tuple[list[list[tuple]], dict[str, int], dict[str, int]]:
    """What each step reads, and the level of each value's last reader, in one sweep.

    Returns each level's steps as (node, what it reads: operand by operand, repeats too,
    aliases resolved and a folded square's operand for the square; what it keeps alive: those
    and the arrays the views among them look into); the last level reading each value
    directly (what dies in a level); and, with ``through_views``, the last level keeping each
    value alive (when an array's last use is over; else ``{}``).
    """
    reading, operands = facts.reading, facts.operands
    direct: dict[str, int] = {}
    anyhow: dict[str, int] = {}
    steps: list[list[tuple]] = []
    for k, level in enumerate(levels_):
        records = []
        for n in level:  # loops, not comprehensions: this runs for every step of every function
            read, pairs, views = [], [], False
            for a in operands(n):
                value, chain = pair = reading(a)
                if value in folded:  # its reader reads its operand instead
                    value, chain = pair = reading(operands(value)[0])
                read.append(value)
                pairs.append(pair)
                direct[value] = k
                if chain:
                    views = True
            # a view keeps the arrays it looks into alive
            alive = [a for value, chain in pairs for a in (value, *chain)] if views else read
            if through_views:
                for a in alive:
                    anyhow[a] = k
            records.append((n, read, alive))
        steps.append(records)
    return steps, direct, anyhow


def _dying(levels_: list[list], last_level: dict[str, int]) -> list[set[str]]:
    """For each level, the values whose last (direct) reader is in it; only levels of two
    steps or more ask (:func:`donor_last`), so the others stay empty."""
    dying: list[set[str]] = [set() for _ in levels_]
    for value, k in last_level.items():
        if len(levels_[k]) > 1:
            dying[k].add(value)
    return dying


def donor_last(graph: nx.MultiDiGraph, level: list[str], dying: set[str], facts: Facts | None = None,
               reads: dict[str, list[str]] | None = None) -> list[str]:
    """``level``'s steps in an order that lets the smallest kernel take over a dying buffer.

    When several elementwise steps of one level read a value that dies in this level,
    only the last of them may write into its buffer. The one with the fewest operations
    goes last: a short chain (``tanh(z * s)``) then runs in place in ``z``, while a
    longer kernel needs a buffer of its own either way (as a temporary beside the donated
    buffer, or as its result). Steps of one level do not depend on one another, so any
    order is correct; ties keep the graph's order (deterministic). ``reads`` are the steps'
    operands with aliases resolved, when the caller has them.

    >>> import graphc as gc
    >>> g = gc.Graph("doc"); x = g.input("x", shape=(3,)); p = g.param("p", shape=(3,))
    >>> z = x * p; _ = g.output("loss", gc.sum(gc.tanh(z) * (z * z + 1.0)))
    """
    if len(level) < 2:  # most levels of a deep chain: nothing to reorder
        return list(level)
    facts = facts or Facts(graph)
    reads = reads or {n: [facts.resolve(a) for a in facts.operands(n)] for n in level}
    if not any(a in dying for n in level for a in reads[n]):  # most levels: nothing to reorder
        return list(level)
    order = list(level)
    for value in dict.fromkeys(a for n in level for a in reads[n] if a in dying):
        readers = [n for n in order if value in reads[n]]
        takers = [n for n in readers if reads[n].count(value) == 1 and _elementwise(graph, n)
                  and _owns(graph, value, n)]
        if len(readers) < 2 or not takers:
            continue
        best = min(takers, key=lambda n: _size(graph, n))  # min keeps the first of equals
        if best != readers[-1]:
            order.remove(best)
            order.insert(order.index(readers[-1]) + 1, best)
    return order


# -- plans --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)  # slots: a deep network's plans have tens of thousands
class Step:
    """One statement (or kernel): compute ``node``; or, with ``grad``, an update of param
    ``node`` (``p -= grad``, in place) that runs only when the function is asked to update
    (backward_pass's ``update`` argument)."""

    node: str
    level: int
    reads: tuple[str, ...]  # the values it reads (aliases resolved), in operand order
    donates: frozenset[str]  # operands that die here and whose buffers it may write into
    frees: tuple[str, ...]  # values deleted right after it (their last reader)
    grad: str | None = None  # an update: the gradient subtracted from param ``node``
    # an update: the values deleted right after it when it runs (the gradient's arrays, which
    # the function returns when it does not update)
    frees_updating: tuple[str, ...] = ()


@dataclass(frozen=True)
class Returned:
    node: str
    copy: bool  # the value is an argument's, a constant's, a read-only view or returned twice


@dataclass(frozen=True)
class FunctionPlan:
    """Everything one generated function does, in order."""

    name: str
    doc: str
    args: tuple[str, ...]  # node ids taken as arguments, in order
    dim_args: tuple[sympy.Symbol, ...]  # symbolic dims taken as arguments, after ``args``
    binds: tuple[tuple[sympy.Symbol, str, int], ...]  # (dim, argument, axis): dim = argument.shape[axis]
    steps: tuple[Step, ...]
    returns: tuple[Returned, ...]
    saved: tuple[str, ...] = ()  # train_forward: the values backward_pass reads, returned second
    saved_dims: tuple[sympy.Symbol, ...] = ()  # ... and the dims it takes as arguments
    trailing: tuple[str, ...] = ()  # arguments after the dims: the cotangent (a node id, or "seed")
    # backward_pass: ``args`` and ``dim_args`` come as one list, ``saved``, which the function
    # empties, so that each saved value is freed after its last use there
    packed: bool = False
    folded: frozenset[str] = frozenset()  # squares their reader computes (folds_into_reader)
    # forward_backward: the first ``split`` returns are the outputs, the rest the gradients, returned
    # as two tuples; ``forward_levels`` of its levels are train_forward's, the rest backward_pass's
    split: int | None = None
    forward_levels: int = 0
    # backward_pass with update steps: the params its ``update`` argument holds (those it reads
    # nowhere else, in declaration order)
    update_args: tuple[str, ...] = ()

    @property
    def updates(self) -> bool:
        """Whether the function can update params in place (it has update steps)."""
        return any(step.grad is not None for step in self.steps)

    @property
    def level_sizes(self) -> dict[int, int]:
        """How many steps each level holds."""
        sizes: dict[int, int] = {}
        for step in self.steps:
            sizes[step.level] = sizes.get(step.level, 0) + 1
        return sizes


@dataclass(frozen=True)
class Update:
    param: str
    grad: str  # the gradient's node (as backward_pass returns it)
    in_place: bool  # an array of the param's shape: the new value is computed into its buffer


@dataclass(frozen=True)
class StepPlan:
    """``sgd_step``: train_forward, the backward pass with cotangent ``lr``, and the updates.

    The backward pass is linear in its cotangent: seeded with ``lr`` it returns
    ``lr * grad``, so each update is one subtraction. Two strategies, the same arithmetic
    (the params end bit-identical):

    - eager: ``backward_pass`` asked to update (its ``update`` argument; the plan has one
      update step per param, see :func:`plan_function`): each param is updated inside the
      backward pass, as soon as its gradient is final and every read of its old value and
      of its gradient is done, and its gradient is freed there: the memory of a
      hand-written step. An error in the middle (a floating-point error under
      ``numpy.errstate(all="raise")``) leaves some params updated and others not.
    - atomic: ``backward_pass``, then every new value computed, then copied into the
      params, which cannot fail: an error leaves every param as it was. It costs memory:
      it holds every gradient at once, so its peak cannot go below their total size.

    The generated ``sgd_step`` takes the atomic one when a floating-point error could stop
    the step (see ``graphc/lower/stoppable.py``), the eager one otherwise. ``eager`` is
    False when the joint graph has no cotangent input (SEED ``"scalar"``): there is no
    cotangent to seed with lr.
    """

    args: tuple[str, ...]  # the sources, as train_forward takes them
    seed: str  # the cotangent's node: bound to lr
    updates: tuple[Update, ...]
    eager: bool = False  # backward_pass has the update steps (and takes ``update``)


@dataclass(frozen=True)
class Schedule:
    """The plan of the generated module: its graphs and the plan of each function."""

    forward: nx.MultiDiGraph  # the inference forward graph (forward_pass reads it)
    joint: nx.MultiDiGraph | None  # the joint graph (train_forward, backward_pass)
    functions: tuple[FunctionPlan, ...]
    sgd: StepPlan | None
    parallel: object = None  # with gc.compile(parallel=k): which steps run together (graphc.together.ParallelPlan)

    def function(self, name: str) -> FunctionPlan:
        return next(f for f in self.functions if f.name == name)


_NO_DIMS = (int, bool, str, float, type(None))


def _dims_of(value) -> set[sympy.Symbol]:
    """Symbolic dims in a shape, an attribute value or an expression, or in a list of them."""
    found: set[sympy.Symbol] = set()
    stack = [value]
    while stack:  # a stack, not recursion: a function's attrs come as one list of thousands
        item = stack.pop()
        if type(item) in _NO_DIMS:  # most shape entries and attribute values
            continue
        if isinstance(item, sympy.Basic):
            found.update(s for s in item.free_symbols if isinstance(s, sympy.Symbol))
        elif isinstance(item, (tuple, list)):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
    return found


@functools.lru_cache(maxsize=4096)
def _shape_dims(value: tuple | sympy.Basic) -> frozenset[sympy.Symbol]:
    """``_dims_of`` a shape or an expression, remembered: a deep network's nodes have a few
    shapes and kernels in common, and walking them again was a tenth of planning."""
    return frozenset(_dims_of(value))


def _node_dims(graph: nx.MultiDiGraph, node: str, operands: list[str]) -> set[sympy.Symbol]:
    """Every dim a node's code could read: its shape, its operands', its attrs, its expression's."""
    nodes = graph._node
    data = nodes[node]
    dims = set(_shape_dims(tuple(data[ir.SHAPE])))
    if data.get(ir.ATTRS):
        dims |= _dims_of(data[ir.ATTRS])
    for operand in operands:
        dims |= _shape_dims(tuple(nodes[operand][ir.SHAPE]))
    if ir.EXPR in data:
        expr, symbols = data[ir.EXPR]
        dims |= _shape_dims(expr) - set(symbols)
    return dims


def _graph_dims(graph: nx.MultiDiGraph) -> set[sympy.Symbol]:
    """Every dim any node of ``graph`` could read: the dims of all shapes and attrs, and of the
    expressions (but their own symbols). The few distinct entries of thousands of shapes are
    looked at once each."""
    shapes, attrs, dims = [], [], set()
    for data in graph._node.values():  # every node's operands are nodes too
        shapes.append(data[ir.SHAPE])
        if data.get(ir.ATTRS):
            attrs.append(data[ir.ATTRS])
        if ir.EXPR in data:
            expr, symbols = data[ir.EXPR]
            dims |= _shape_dims(expr) - set(symbols)
    return dims | _dims_of(list(set(itertools.chain.from_iterable(shapes)))) | _dims_of(attrs)


def _function_dims(graph: nx.MultiDiGraph, nodes_: list[str], facts: Facts) -> set[sympy.Symbol]:
    """Every dim a function's code could read: each node's (:func:`_node_dims`), for ``nodes_``.

    They are the graph's dims or fewer, and a function usually reads every one of them in
    its first steps: the nodes are asked until all are found, then no further (asking each
    of a deep network's nodes was a sixth of planning)."""
    everything = facts.graph_dims()
    dims: set[sympy.Symbol] = set()
    for n in nodes_:
        if len(dims) == len(everything):  # a subset of ``everything`` as big as it
            break
        dims |= _node_dims(graph, n, facts.operands(n))
    return dims


def _owns(graph: nx.MultiDiGraph, operand: str, node: str) -> bool:
    """Whether ``operand``'s buffer is a fresh array of ``node``'s shape and dtype (not a view)."""
    data, target = graph._node[operand], graph._node[node]
    return (data[ir.OP] not in _NOT_OWNED and tuple(data[ir.SHAPE]) == tuple(target[ir.SHAPE])
            and data[ir.DTYPE] == target[ir.DTYPE])


def _distinct(values: list[str]) -> tuple[str, ...]:
    """``values`` without repeats, in order (most steps read one or two values)."""
    if len(values) == 1 or len(values) == 2 and values[0] != values[1]:
        return tuple(values)
    return tuple(dict.fromkeys(values))


def _donated(graph: nx.MultiDiGraph, node: str, frees: list[str], read: list[str], views: bool, facts: Facts,
             read_only: frozenset[str]) -> frozenset[str]:
    """The values dying at ``node``'s step (``frees``) whose buffers it may write into: read
    once (``read``: what it reads, repeats too), not through a view (``views``: whether it
    reads one), not ``read_only``, and a fresh array of its shape."""
    taking = [d for d in frees if d not in read_only and read.count(d) == 1 and _owns(graph, d, node)]
    if not taking or not views:  # most steps read no view
        return frozenset(taking)
    # an operand's memory seen through a view (x.T, or a transpose/reshape statement)
    viewed = {facts.memory(a)[0] for a in facts.operands(node) if facts.memory(a)[0] != facts.resolve(a)}
    return frozenset(d for d in taking if d not in viewed)


def plan_function(graph: nx.MultiDiGraph, name: str, args: list[str], body: list[list[str]],
                  returns: list[str], saved: list[str] = (), doc: str = "",
                  dims_from_caller: bool = False, needed_dims: set = frozenset(),
                  trailing: tuple[str, ...] = (), packed: bool = False,
                  read_only: frozenset[str] = frozenset(), facts: Facts | None = None,
                  updates: tuple[tuple[str, str, int], ...] = (), update_args: tuple[str, ...] = ()) -> FunctionPlan:
    """The plan of one function computing ``body`` (node ids by level) from ``args``.

    Liveness: each value is freed right after its last reader (a view keeps the array it
    looks into alive). A step may write into an operand that dies there when that
    operand is a fresh array of the step's shape, read once and not through a view.
    Symbolic dims are bound from the arguments' shapes; with ``dims_from_caller`` the
    ones no argument has are taken as arguments instead (``backward_pass`` gets them
    from ``train_forward``), otherwise they are an error. ``facts`` are ``graph``'s
    (:class:`Facts`), when the caller plans several functions of it.

    ``updates`` (param, gradient, earliest level) are steps that run only when the function
    is asked to update (backward_pass's ``update``, ``update_args`` the params it holds):
    ``param -= gradient`` in place, each at the end of the first level from its earliest
    that comes after every step reading the param's array (through a view too) and after
    the gradient is computed, and is no earlier than the last step reading the gradient's
    arrays. The function returns the gradients otherwise, so one liveness serves both: a
    gradient's arrays are never donated and are freed only after its update, when it runs
    (``Step.frees_updating``); a param read by the backward pass lives until its update.
    """
    facts = facts or Facts(graph)
    nodes = graph._node
    argset = set(args) | set(trailing)
    levels_, squares = [], []
    for level in body:
        computed = []
        for n in level:
            if n in argset:
                continue
            op = nodes[n][ir.OP]
            if op in NO_STEP or op == "transpose" and is_inline(graph, n):
                continue
            computed.append(n)
            if op == "square":
                squares.append(n)
        levels_.append(computed)
    folded = frozenset()
    if squares:
        computed = {n for level in levels_ for n in level}
        folded = frozenset(n for n in squares if folds_into_reader(graph, n) and n not in returns
                           and n not in saved and next(iter(graph.successors(n))) in computed)
        if folded:  # its reader reads its operand instead
            levels_ = [[n for n in level if n not in folded] for level in levels_]
    # one sweep: what each step reads, what dies in each level and, for the updates, when each
    # array's last use is over
    by_level, last_level, last_level_alive = _reads(levels_, folded, facts, through_views=bool(updates))
    dying = _dying(levels_, last_level)
    # the function's steps: (node, the gradient of an update or None, level, what it reads without
    # repeats, what it keeps alive, what it reads operand by operand); reads are ordered (tuples,
    # dict keys, not sets): the del lists must not follow hash order
    sequence = []
    level_of: dict[str, int] = {}  # each step's level
    for k, records in enumerate(by_level):
        if len(records) > 1:
            by_node = {record[0]: record for record in records}
            resolved = None if folded else {n: read for n, read, _ in records}  # donor_last's reads: aliases resolved
            records = [by_node[n] for n in donor_last(graph, levels_[k], dying[k], facts, resolved)]
        for n, read, alive in records:
            sequence.append((n, None, k, _distinct(read), alive, read))
            level_of[n] = k
    if updates:
        sequence = _with_updates(sequence, updates, last_level_alive, level_of, facts)
    last_use = _last_uses(sequence)
    kept = list(returns) + list(saved)
    keep = {array for n in kept for array in facts.arrays(n)}
    dead: dict[int, list[str]] = {}
    dead_updating: dict[int, list[str]] = {}  # kept values an update is the last to read
    # packed arguments are this function's: freed after their last use, and their buffers
    # may be written into, except ``read_only`` ones (the caller also returned them)
    owned = set(args) if packed else set()
    for node, i in last_use.items():
        if node in level_of or node in owned:
            if node not in keep:
                dead.setdefault(i, []).append(node)
            elif sequence[i][1] is not None:
                dead_updating.setdefault(i, []).append(node)
    steps = []
    for i, (n, grad, level, read, alive, read_all) in enumerate(sequence):
        frees = dead.get(i, ())
        if grad is not None:
            steps.append(Step(n, level, read, frozenset(), tuple(frees), grad, tuple(dead_updating.get(i, ()))))
            continue
        # only a value that dies here can be donated (every freed value is a step's or an owned argument)
        donates = _donated(graph, n, frees, read_all, alive is not read_all, facts, read_only) if frees else frozenset()
        steps.append(Step(n, level, read, donates, tuple(frees)))

    returned, seen = [], set()
    for r in returns:
        owner, broadcast = facts.memory(r)
        shared = owner in argset or nodes[owner][ir.OP] in SOURCES or owner in seen
        returned.append(Returned(r, shared or broadcast))
        seen.add(owner)

    # an update (p -= g) reads no dim
    dims = set(needed_dims) | _function_dims(graph, [step[0] for step in sequence if step[1] is None] + kept, facts)
    binds, dim_args = [], []
    for d in sorted(dims, key=lambda s: s.name):
        where = next(((a, list(nodes[a][ir.SHAPE]).index(d)) for a in args if d in tuple(nodes[a][ir.SHAPE])), None)
        if where is not None:
            binds.append((d, *where))
        elif dims_from_caller:
            dim_args.append(d)
        else:
            raise GraphError(
                f"symbolic dim {d} is used by {name} but no argument of it has that dim; "
                "declare an input with this dim"
            )
    return FunctionPlan(name, doc, tuple(args), tuple(dim_args), tuple(binds), tuple(steps), tuple(returned),
                        tuple(saved), trailing=tuple(trailing), packed=packed, folded=folded,
                        update_args=tuple(update_args) if updates else ())


def _last_uses(sequence: list[tuple]) -> dict[str, int]:
    """The index of each value's last reader in ``sequence``: the last step keeping it alive (a
    view keeps the arrays it looks into alive). The keys come in the order the values are first
    read (the order of the frees)."""
    last_use: dict[str, int] = {}
    for i, step in enumerate(sequence):
        for a in step[4]:
            last_use[a] = i
    return last_use


def _with_updates(sequence: list[tuple], updates: tuple[tuple[str, str, int], ...], last_level: dict[str, int],
                  level_of: dict[str, int], facts: Facts) -> list[tuple]:
    """``sequence`` with one update step per (param, gradient, earliest level), each at the end of
    its level (see :func:`plan_function`). ``last_level`` is the level of the last step keeping
    each value alive and ``level_of`` each step's level, the steps' without the updates."""
    placed = []
    for k, (param, grad, earliest) in enumerate(updates):
        # the gradient's arrays: the one it is (through aliases and x.T) and the one it looks into
        arrays = facts.arrays(grad)
        # it writes the param: a level after the param's last reader; it reads the gradient: after
        # its computation, and last among its readers (the end of the last one's level will do)
        levels = [earliest] + [level_of[a] + 1 for a in arrays if a in level_of]
        if param in last_level:
            levels.append(last_level[param] + 1)
        levels += [last_level[a] for a in arrays if a in last_level]
        level = max(levels)
        read = [facts.reading(param), facts.reading(grad)]
        alive = [a for value, chain in read for a in (value, *chain)]
        placed.append((level, k, (param, grad, level, (param, read[1][0]), alive, [param, read[1][0]])))
    placed.sort()  # by level, then in the order given (k: no two items tie)
    out, j = [], 0
    for step in sequence:  # the steps come by level
        while j < len(placed) and placed[j][0] < step[2]:
            out.append(placed[j][2])
            j += 1
        out.append(step)
    out.extend(item[2] for item in placed[j:])
    return out


def _backward_nodes(graph: nx.MultiDiGraph) -> set[str]:
    """What backward_pass computes: every value that depends on the cotangent.

    The rest (forward values, and backward values of forward values only, such as the
    running products interleave starts early) is computed by train_forward, which saves
    what backward_pass reads. Deciding by dependence, not by phase tags, keeps a value a
    pass merged across phases (a forward ``zeros_like(p)`` and p's zero gradient) where
    its readers need it. A joint graph whose cotangent is the constant 1 (``seed`` is
    ``"scalar"``) is split by phase.
    """
    seed = graph.graph.get(ir.SEED)
    if seed in graph:
        return nx.descendants(graph, seed)
    return {n for n, data in graph.nodes(data=True) if data.get(ir.PHASE) == ir.BACKWARD and not data.get(ir.EARLY)}


def _saved(graph: nx.MultiDiGraph, by_level: list[list[str]], seed: str, backward: set[str],
           facts: Facts | None = None) -> list[str]:
    """The forward values the backward pass reads: operands of backward nodes, and
    gradients that are forward values themselves (the arrays, through aliases and ``.T``)."""
    facts = facts or Facts(graph)
    # what backward nodes read, or is a gradient (backward_pass reads the same operands: the
    # facts remember them)
    wanted = set(graph.graph[ir.GRADS].values()).union(*(facts.operands(n) for n in backward))
    nodes = graph._node
    saved: list[str] = []
    seen: set[str] = set()  # saved, as a set: a list's `in` made this quadratic
    for level in by_level:
        for node in level:
            if node not in wanted or node == seed or node in backward or nodes[node][ir.OP] == "const":
                continue
            root = facts.base(node)
            if root not in seen and nodes[root][ir.OP] != "const" and root != seed:
                saved.append(root)
                seen.add(root)
    return saved


def schedule(forward: nx.MultiDiGraph, joint: nx.MultiDiGraph | None = None) -> Schedule:
    """The plan of every generated function for the inference graph and the joint graph."""
    functions = [plan_function(
        forward, "forward_pass", ir.sources(forward), levels(forward), list(forward.graph[ir.OUTPUTS]),
        doc="The forward pass: the graph's outputs, in OUTPUTS order.",
    )]
    if joint is None:
        return Schedule(forward, None, tuple(functions), None)
    seed = joint.graph[ir.SEED]
    depth = _depths(joint)
    by_level = _grouped(joint, depth)
    later = _backward_nodes(joint)
    facts = Facts(joint)  # the passes of the joint graph read the same nodes
    saved = _saved(joint, by_level, seed, later, facts)
    backward_body, forward_body = [], []  # each level's backward nodes, and the rest but the seed
    for level in by_level:
        back, fore = [], []
        for n in level:
            if n in later:
                back.append(n)
            elif n != seed:
                fore.append(n)
        backward_body.append(back)
        forward_body.append(fore)
    sources = [s for s in ir.sources(joint) if s != seed]
    sgd = _sgd_plan(joint, sources, seed)
    eager = sgd is not None and seed in joint  # SEED "scalar": no cotangent to seed with lr
    taken = set(saved)  # a set: a deep net has thousands of params and of saved values
    backward = plan_function(
        joint, "backward_pass", saved, backward_body,
        list(joint.graph[ir.GRADS].values()),
        doc="The backward pass: gradients in GRADS order, from the saved values and the cotangent.",
        dims_from_caller=True,
        trailing=(seed if seed in joint else "seed",),  # SEED "scalar": the cotangent is the constant 1
        packed=True, read_only=_returned_memory(joint, joint.graph[ir.OUTPUTS]), facts=facts,
        updates=_updates(sgd, depth) if eager else (),
        update_args=tuple(u.param for u in sgd.updates if u.param not in taken) if eager else (),
    )
    train = plan_function(
        joint, "train_forward", sources, forward_body,
        list(joint.graph[ir.OUTPUTS]), saved=saved,
        doc="The forward pass for training: (outputs, the values backward_pass reuses).",
        needed_dims=set(backward.dim_args), facts=facts,
    )
    train = replace(train, saved_dims=backward.dim_args)
    functions += [train, backward]
    if eager:
        sgd = replace(sgd, eager=True)
    return Schedule(forward, joint, tuple(functions), sgd)


def plan_forward_backward(plan: Schedule) -> FunctionPlan | None:
    """``forward_backward``: train_forward and backward_pass as one function from the sources and the
    cotangent of a scalar output, returning (outputs, gradients); None when the joint graph
    has no cotangent input or the output is not a scalar.

    Nothing is saved between the passes: what the backward pass reads is still there. Its
    worth is in the lowering: a blocked region of the forward pass and the backward region
    reading only its values (and the constant cotangent) run as one loop (lower/blocking.py),
    so the values the backward pass would have read back from memory are never written out.
    The lowering prints it only then; other plans do not pay for it (it is planned on demand).
    """
    joint = plan.joint
    if joint is None:
        return None
    seed = joint.graph[ir.SEED]
    if seed not in joint or tuple(joint.nodes[seed][ir.SHAPE]) != ():
        return None
    by_level = levels(joint)
    later = _backward_nodes(joint)
    forward = [[n for n in level if n not in later and n != seed] for level in by_level]
    backward = [[n for n in level if n in later] for level in by_level]
    sources = [s for s in ir.sources(joint) if s != seed]
    outputs, grads = list(joint.graph[ir.OUTPUTS]), list(joint.graph[ir.GRADS].values())
    fn = plan_function(
        joint, "forward_backward", sources, forward + backward, outputs + grads,
        doc="The forward and backward passes in one: (outputs, gradients in GRADS order) for the cotangent.",
        trailing=(seed,),
    )
    return replace(fn, split=len(outputs), forward_levels=len(forward))


def _returned_memory(graph: nx.MultiDiGraph, returns: list[str]) -> frozenset[str]:
    """The nodes whose arrays returned values are, or look into."""
    out = set()
    for r in returns:
        node = resolve(graph, r)
        out.add(node)
        while ir.op_of(graph, node) in VIEWS:
            node = resolve(graph, ir.operands(graph, node)[0])
            out.add(node)
    return frozenset(out)


def _sgd_plan(joint: nx.MultiDiGraph, sources: list[str], seed: str) -> StepPlan | None:
    """The SGD step, for a scalar output whose wrt values are all params."""
    grads = joint.graph[ir.GRADS]
    learned = set(joint.graph[ir.PARAMS])
    nodes = joint._node
    scalar = seed not in joint or tuple(nodes[seed][ir.SHAPE]) == ()
    if not scalar or not learned.issuperset(grads):
        return None
    updates = tuple(Update(name, node, bool(tuple(nodes[name][ir.SHAPE]))) for name, node in grads.items())
    return StepPlan(tuple(sources), seed, updates)


def _updates(sgd: StepPlan, depth: dict[str, int]) -> tuple[tuple[str, str, int], ...]:
    """backward_pass's update steps: (param, gradient, earliest level), one per param in GRADS
    order; none before the level after its gradient's (``depth``: each node's level;
    plan_function places each)."""
    return tuple((u.param, u.grad, depth[u.grad] + 1) for u in sgd.updates)


def without_updates(fn: FunctionPlan) -> FunctionPlan:
    """``fn`` without its update steps, for a module that never asks it to update (an array-API
    backend, which writes nothing in place; a module whose sgd_step runs forward_backward).
    What an update freed in both modes (a param the backward pass read) is freed after the
    step before it instead: nothing reads it in between."""
    if not fn.updates:
        return fn
    steps: list[Step] = []
    for step in fn.steps:
        if step.grad is None:
            steps.append(step)
        elif step.frees:
            last = steps[-1]  # a param freed here was read by a step before it
            steps[-1] = replace(last, frees=last.frees + tuple(d for d in step.frees if d not in last.frees))
    return replace(fn, steps=tuple(steps), update_args=())
