"""The IR editor: the one way nodes are made, by the op table's own rules.

An :class:`Editor` wraps an IR graph (a ``networkx.MultiDiGraph``). :meth:`Editor.add`
checks an op's arity and attrs, infers its shape by the op's shape rule, takes its dtype
from its first operand not made of consts only (a number or a constant array adapts to the
others, as a number does in numpy), picks a fresh
id, and sets the attributes of the editor's current context
(``with editor.tagging(phase="backward"):``). VJP rules, composite expansions and
differentiation build with it; the user's :class:`graphc.Graph` is a thin face over it.
Handles (:class:`Ref`) know their editor, so rules read like the math they write:

>>> from graphc import ir
>>> ed = Editor(ir.new_graph("doc"))
>>> x = ed.source("input", "x", (2,))
>>> with ed.tagging(phase="backward"):
...     y = (x * 2.0).T
>>> y.id, y.shape, ed.graph.nodes[y.id]["phase"], ed.created
('transpose', (2,), 'backward', ['x', 'const', 'mul', 'transpose'])
"""

from __future__ import annotations

import functools
import numbers
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import networkx as nx
import numpy as np
import sympy

from .. import ir
from ..errors import GraphError, describe
from .base import OPS, Op, custom_ops, op_for
from .fused import fused_symbols

__all__ = ["Editor", "Ref", "const_value", "ChangeLog", "watching", "change_log"]


class ChangeLog:
    """What editors changed in one graph while it is watched (see :func:`watching`).

    ``touched`` lists, in order and with repeats, the ids of nodes whose own attributes or
    operand/reader edges an edit changed (a node made, rewritten, renamed or removed, the
    operands it gained or lost, the readers that moved). The optimizing passes read it to
    visit again only what an edit can have changed, and keep in ``memo`` what they derive
    from the graph (valid while the log says it is).
    """

    __slots__ = ("touched", "memo")

    def __init__(self) -> None:
        self.touched: list[str] = []
        self.memo: dict = {}


_LOGS: dict[int, tuple[nx.MultiDiGraph, ChangeLog]] = {}  # id(graph) -> (graph, its log)


@contextmanager
def watching(graph: nx.MultiDiGraph) -> Iterator[ChangeLog]:
    """Record every edit made to ``graph`` through an :class:`Editor` inside the block.

    >>> g = ir.new_graph("doc")
    >>> with watching(g) as log:
    ...     x = Editor(g).source("input", "x", (2,))
    ...     _ = Editor(g).add("exp", [x])
    >>> log.touched
    ['x', 'exp', 'x']
    """
    key = id(graph)
    outer = _LOGS.get(key)
    log = outer[1] if outer is not None else ChangeLog()
    _LOGS[key] = (graph, log)
    try:
        yield log
    finally:
        if outer is None:
            del _LOGS[key]


def change_log(graph: nx.MultiDiGraph) -> ChangeLog | None:
    """The log of a graph being watched, else None."""
    entry = _LOGS.get(id(graph))
    return entry[1] if entry is not None and entry[0] is graph else None


def _touch(graph: nx.MultiDiGraph, nodes) -> None:
    entry = _LOGS.get(id(graph))
    if entry is not None and entry[0] is graph:
        entry[1].touched.extend(nodes)


class Ref:
    """A handle on one node of an editor's graph; operators add nodes through the editor."""

    __slots__ = ("editor", "id")

    def __init__(self, editor: Editor, node_id: str):
        self.editor = editor
        self.id = node_id

    @property
    def op(self) -> str:
        return self.editor.graph._node[self.id][ir.OP]  # the node dicts themselves: a view per read costs

    @property
    def shape(self) -> tuple:
        return self.editor.graph._node[self.id][ir.SHAPE]

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def T(self):  # noqa: N802 - numpy's name
        return self.editor.add("transpose", [self])

    def __repr__(self) -> str:
        return f"Ref({self.id!r}, op={self.op})"

    def __add__(self, other): return self.editor.add("add", [self, other])
    def __radd__(self, other): return self.editor.add("add", [other, self])
    def __sub__(self, other): return self.editor.add("sub", [self, other])
    def __rsub__(self, other): return self.editor.add("sub", [other, self])
    def __mul__(self, other): return self.editor.add("mul", [self, other])
    def __rmul__(self, other): return self.editor.add("mul", [other, self])
    def __truediv__(self, other): return self.editor.add("div", [self, other])
    def __rtruediv__(self, other): return self.editor.add("div", [other, self])
    def __pow__(self, other): return self.editor.add("pow", [self, other])
    def __rpow__(self, other): return self.editor.add("pow", [other, self])
    def __matmul__(self, other): return self.editor.add("matmul", [self, other])
    def __rmatmul__(self, other): return self.editor.add("matmul", [other, self])
    def __neg__(self): return self.editor.add("neg", [self])
    # comparisons give boolean nodes (for gc.where); == stays identity, as handles are hashed
    def __lt__(self, other): return self.editor.add("less", [self, other])
    def __le__(self, other): return self.editor.add("less_equal", [self, other])
    def __gt__(self, other): return self.editor.add("greater", [self, other])
    def __ge__(self, other): return self.editor.add("greater_equal", [self, other])

    def __getitem__(self, key):
        """``x[:, 0]``, ``x[1:3]``, ``x[idx]`` (an int array): see ``ops/indexing.py``."""
        from .indexing import parse_key  # indexing registers ops that import this module's peers

        op_name, attrs = parse_key(key, self.shape, describe(self.id, self.op))
        return self.editor.add(op_name, [self], attrs)
    def __pos__(self): return self

    def __bool__(self):
        raise TypeError("a graphc node has no truth value; it is symbolic until the program runs")


def const_value(value, node=None, op="const") -> tuple[np.ndarray, float | np.ndarray]:
    """A const's value as an array, and as stored: a float, or a float64 array."""
    try:
        array = np.asarray(value)
    except ValueError:
        array = np.asarray(None)
    if array.dtype.kind not in "biuf":
        where = f"{describe(node, op)}: " if node is not None else ""
        raise GraphError(f"{where}a const must be a real number or array, found {value!r}")
    return array, (float(array) if array.ndim == 0 else array.astype(np.float64))


def _ops_taking_ints():
    return [op for op in OPS.values() if op.int_operands and op.function]


def constant_valued(graph: nx.MultiDiGraph, node_id: str) -> bool:
    """Whether ``node_id``'s value is made of consts only (no input or param above it)."""
    seen, todo = {node_id}, [node_id]
    while todo:
        node = todo.pop()
        preds = list(graph.predecessors(node))
        if not preds and graph.nodes[node][ir.OP] != "const":
            return False
        todo.extend(p for p in preds if p not in seen)
        seen.update(preds)
    return True


@functools.cache
def _kind(dtype) -> str:
    """numpy's kind letter of a dtype name ("f", "i", "b"...): asked several times per node made."""
    return np.dtype(dtype).kind


def _is_float(graph: nx.MultiDiGraph, node: str) -> bool:
    return _kind(graph._node[node][ir.DTYPE]) == "f"


def number_valued(graph: nx.MultiDiGraph, node_id: str) -> bool:
    """Whether ``node_id`` is a float value whose floats all come from numbers and consts: a
    bool or int operand (a comparison, an argmax) selects or indexes but brings no float, so
    ``where(argmax(p) > 0, 1.0, -1.0)`` is number-valued although p is above it. Such a value
    has no dtype of its own and takes the dtype of the float computation that reads it."""
    if not _is_float(graph, node_id):
        return False
    seen, todo = {node_id}, [node_id]
    while todo:
        node = todo.pop()
        preds = list(graph.predecessors(node))
        if not preds and graph.nodes[node][ir.OP] != "const":
            return False
        floats = [p for p in preds if p not in seen and _is_float(graph, p)]
        todo.extend(floats)
        seen.update(floats)
    return True


def _float_region(graph: nx.MultiDiGraph, node_id: str) -> set[str]:
    """``node_id`` and the float nodes above it reached through float nodes only."""
    region, todo = {node_id}, [node_id]
    while todo:
        for pred in graph.predecessors(todo.pop()):
            if pred not in region and _is_float(graph, pred):
                region.add(pred)
                todo.append(pred)
    return region


def graph_float_dtype(graph: nx.MultiDiGraph) -> str:
    """The float dtype of the graph's float inputs and params (one, verify.check_one_float_dtype
    holds it), float64 when it has none yet."""
    for node in list(graph.graph.get(ir.INPUTS, ())) + list(graph.graph.get(ir.PARAMS, ())):
        if node in graph and node != graph.graph.get(ir.SEED) and _is_float(graph, node):
            return graph.nodes[node][ir.DTYPE]
    return ir.DEFAULT_DTYPE


def adopt_dtype(graph: nx.MultiDiGraph, node_id: str, dtype: str) -> None:
    """Give a number-valued node, every float node it is made of, and every other
    number-valued node made of those, ``dtype`` (so a float64 array const read by a float32
    computation is a float32 const, numpy never widens, and no value made of it keeps the old
    dtype). Bool and int nodes (masks, indices) keep theirs."""
    region = _float_region(graph, node_id)
    for const in [n for n in region if graph.nodes[n][ir.OP] == "const"]:
        region |= {n for n in nx.descendants(graph, const) if number_valued(graph, n)}
    for node in region:
        graph.nodes[node][ir.DTYPE] = dtype
    if _LOGS:  # someone watches a graph: building the list costs only then
        _touch(graph, region)


def _relink(graph: nx.MultiDiGraph, node_id: str, operands: Sequence[str]) -> None:
    """What removing ``node_id``'s in-edges and adding one per operand does (the same dicts,
    keys and order), on the adjacency dicts: networkx's edge calls cost more than the edit."""
    succ, into = graph._succ, graph._pred[node_id]
    for source in into:
        del succ[source][node_id]
    into.clear()
    for position, source in enumerate(operands):
        keys = into.get(source)
        if keys is None:  # one dict of keys shared by succ and pred, as networkx keeps it
            keys = into[source] = succ[source][node_id] = {}
        key = len(keys)
        while key in keys:
            key += 1
        keys[key] = {ir.ARG: position}
    nx._clear_cache(graph)


class Editor:
    """Makes nodes in ``graph`` (in place), each by its op's rules, in the current context."""

    def __init__(self, graph: nx.MultiDiGraph, handle: Callable[[Editor, str], Ref] = Ref):
        self.graph = graph
        self.created: list[str] = []  # ids of the nodes this editor made, in order
        self.generated: set[str] = set()  # the ids it chose itself (a face may rename those)
        self._handle = handle
        self._handles: dict[str, Ref] = {}
        self._tags: dict[str, object] = {}

    # -- handles -----------------------------------------------------------------------
    def ref(self, node_id: str) -> Ref:
        """The handle of an existing node."""
        try:
            known = node_id in self.graph._node  # what ``in graph`` asks, without its call
        except TypeError:  # an unhashable id names no node
            known = False
        if not known:
            raise GraphError(f"{describe(node_id)} is not in graph {self.graph.graph.get(ir.NAME)!r}")
        handle = self._handles.get(node_id)
        if handle is None:
            handle = self._handles[node_id] = self._handle(self, node_id)
        return handle

    def forget(self, node_id: str) -> None:
        """Drop the handle of a node whose id changes or goes (renames, replacements)."""
        self._handles.pop(node_id, None)

    # -- context -----------------------------------------------------------------------
    @contextmanager
    def tagging(self, **tags) -> Iterator[None]:
        """Every node made inside gets these attributes (``phase``, ``grad_of``, ``mark``)."""
        unknown = set(tags) - {ir.PHASE, ir.GRAD_OF, ir.MARK}
        if unknown:
            raise TypeError(f"tagging takes phase, grad_of and mark, not {sorted(unknown)}")
        outer = self._tags
        self._tags = {**outer, **tags}
        try:
            yield
        finally:
            self._tags = outer

    def retag(self, node_id: str, **tags) -> None:
        """Set attributes of an existing node (``phase``, ``grad_of``, ``mark``, ``early``)."""
        self.graph._node[node_id].update(tags)
        if _LOGS:  # someone watches a graph: building the list costs only then
            _touch(self.graph, (node_id,))

    # -- making nodes --------------------------------------------------------------------
    def fresh(self, stem: str) -> str:
        node_id = ir.fresh_id(self.graph, stem)
        self.generated.add(node_id)
        return node_id

    def _record(self, node_id: str) -> Ref:
        if self._tags:
            self.graph._node[node_id].update(self._tags)
        if _LOGS:  # someone watches a graph: building the list costs only then
            _touch(self.graph, [node_id, *self.graph._pred[node_id]])  # its operands gained a reader
        self.created.append(node_id)
        handle = self._handles.get(node_id)  # ref's, but for its test: the node was just added
        if handle is None:
            handle = self._handles[node_id] = self._handle(self, node_id)
        return handle

    def source(self, kind: str, node_id: str, shape: tuple, dtype: str = ir.DEFAULT_DTYPE) -> Ref:
        """An input or param ``node_id`` (listed in the graph's inputs or params)."""
        ir.add_op(self.graph, node_id, kind, [], {}, tuple(shape), dtype)
        self.graph.graph[ir.INPUTS if kind == "input" else ir.PARAMS].append(node_id)
        return self._record(node_id)

    def const(self, value, node_id: str | None = None, dtype: str = ir.DEFAULT_DTYPE) -> Ref:
        """A constant: a Python number or an array."""
        array, stored = const_value(value, node_id)
        node_id = node_id if node_id is not None else self.fresh("const")
        ir.add_op(self.graph, node_id, "const", [], {"value": stored}, array.shape, dtype)
        return self._record(node_id)

    def operand(self, value, what: str) -> Ref:
        """A handle for an operand: a handle of this graph, or a number made a const."""
        if isinstance(value, Ref):
            if value.editor.graph is not self.graph:
                raise GraphError(
                    f"{what}: {describe(value.id, value.op)} belongs to graph "
                    f"{value.editor.graph.graph.get(ir.NAME)!r}, not {self.graph.graph.get(ir.NAME)!r}; "
                    "build each network in one Graph"
                )
            return value
        if isinstance(value, (numbers.Real, np.ndarray, np.generic)):
            return self.const(value)
        raise GraphError(f"{what}: expected a graphc Node or a number, found {type(value).__name__} {value!r}")

    def add(self, op_name: str | Op, operands: Sequence, attrs: dict | None = None, node_id: str | None = None,
            dtype: str | None = None, expr: tuple | None = None) -> Ref:
        """Add ``op_name(*operands)``: arity, attrs and shape checked by the op's rules; the
        dtype is the first non-const operand's unless given. ``op_name`` is a name the graph
        knows (``op_for``) or an ``Op`` record; a custom record joins the graph's custom ops.
        ``expr`` is a fused node's ``(expression, symbols)``."""
        record = op_name if isinstance(op_name, Op) else None
        op = record if record is not None else op_for(self.graph, op_name)
        op_name = op.name
        # a custom record joins the graph's ops; a name the graph defines otherwise is refused before any change
        registry = custom_ops(self.graph).with_op(op) if record is not None and OPS.get(op_name) is not op else None
        attrs = dict(attrs or {})
        if op.arity >= 0 and len(operands) != op.arity:
            raise GraphError(f"op {op_name} takes {op.arity} operand(s), found {len(operands)}")
        if attrs and not op.attrs.keys() >= attrs.keys():
            unknown = sorted(set(attrs) - set(op.attrs))
            if unknown:
                raise GraphError(
                    f"op {op_name}: unknown attr(s) {', '.join(unknown)}; it takes {sorted(op.attrs) or 'none'}"
                )
        full = {**op.attrs, **attrs}
        graph, nodes = self.graph, self.graph._node  # the node dicts themselves: a view per lookup costs
        # a handle of this graph is its own operand; anything else goes through operand's checks
        args = [o if isinstance(o, Ref) and o.editor.graph is graph else self.operand(o, f"op {op_name}")
                for o in operands]
        self._check_int_inputs(op, args)
        node_id = node_id if node_id is not None else self.fresh(op_name)
        shape = op.shape([nodes[a.id][ir.SHAPE] for a in args], full, node_id, op_name)
        operand_dtype = self._dtype_of(args)
        target = dtype if dtype is not None and _kind(dtype) == "f" else operand_dtype
        if _kind(target) == "f":  # a number, or a value made of consts only, adopts the
            for arg in args:      # float dtype the op computes in (x > 0.5: 0.5 is x's)
                own = nodes[arg.id][ir.DTYPE]
                if own != target and number_valued(graph, arg.id):
                    adopt_dtype(graph, arg.id, target)
        if dtype is None:  # the op's dtype rule (bool comparisons, int64 argmax) sees adopted consts
            dtype = op.dtype([nodes[a.id][ir.DTYPE] for a in args]) if op.dtype else operand_dtype
        if registry is not None:
            self.graph.graph[ir.CUSTOM_OPS] = registry
        if expr is not None and op_name != "fused":
            raise GraphError(f"op {op_name}: only a fused node carries an expression (expr)")
        ir.add_op(self.graph, node_id, op_name, [a.id for a in args], full, shape, dtype,
                  **({ir.EXPR: expr} if expr is not None else {}))
        return self._record(node_id)

    def _check_int_inputs(self, op, args: list[Ref]) -> None:
        """An int64 input (class labels) is read only where an op takes one (``Op.int_operands``)."""
        nodes = self.graph._node
        for position, arg in enumerate(args):
            data = nodes[arg.id]
            if data[ir.OP] == "input" and _kind(data[ir.DTYPE]) in "iu" and position not in op.int_operands:
                takers = sorted(o.name for o in _ops_taking_ints())
                raise GraphError(
                    f"op {op.name}: operand {position} is {describe(arg.id, 'input')}, declared {data[ir.DTYPE]}; "
                    f"op {op.name} takes float values there. int64 inputs are class labels, read by "
                    f"{', '.join(takers)}; declare the input dtype='float64' to compute with it"
                )

    def _dtype_of(self, args: list[Ref]) -> str:
        """An op's dtype: its first operand's whose value is not made of consts only (a
        number or a constant array adapts to the other operands, as a number does in numpy:
        ``0.5 + x`` and ``c @ x`` of a float32 x are float32)."""
        nodes = self.graph._node
        dtypes = [nodes[arg.id][ir.DTYPE] for arg in args]
        if len(set(dtypes)) <= 1:  # only a mix needs the (longer) look at where values come from
            return dtypes[0] if dtypes else ir.DEFAULT_DTYPE
        values = [d for arg, d in zip(args, dtypes)
                  if not (constant_valued(self.graph, arg.id) or number_valued(self.graph, arg.id))]
        floats = [d for d in values if _kind(d) == "f"]
        if floats:  # a boolean mask or int index next to a float value: the float's dtype
            return floats[0]
        if values and len(values) < len(args):  # mask * 1.0, where(mask, 1.0, -1.0): the floats
            return graph_float_dtype(self.graph)  # are numbers, computed in the graph's float dtype
        return values[0] if values else dtypes[0]

    def fused(self, fn: Callable, operands: Sequence, kink: str = "") -> Ref:
        """A ``fused`` node computing ``fn(*symbols)`` elementwise over ``operands``."""
        symbols = fused_symbols(len(operands))
        return self.add("fused", operands, {"kink": kink}, expr=(sympy.sympify(fn(*symbols)), symbols))

    # -- changing nodes in place (the passes) -----------------------------------------------
    def set_operands(self, node_id: str, operands: Sequence[str]) -> None:
        """Make ``operands`` (ids, in order) the operands of ``node_id``, edges ``arg`` 0..k-1."""
        if _LOGS:  # someone watches a graph: building the list costs only then
            _touch(self.graph, [node_id, *self.graph._pred[node_id], *operands])
        graph = self.graph
        if type(graph) is nx.MultiDiGraph and node_id not in operands and all(s in graph._succ for s in operands):
            _relink(graph, node_id, operands)
            return
        graph.remove_edges_from(list(graph.in_edges(node_id, keys=True)))
        for position, source in enumerate(operands):
            graph.add_edge(source, node_id, **{ir.ARG: position})

    def rewrite(self, node_id: str, op_name: str, operands: Sequence[str] = (), attrs: dict | None = None, *,
                expr: tuple | None = None, size: int | None = None, mark: str | None = None) -> Ref:
        """Make ``node_id`` compute ``op_name(*operands)`` in place, for the nodes that read it.

        Its id, phase, ``grad_of`` and dtype stay, so do its readers; its operand edges, op
        and attrs (checked against the op's, defaults filled in) are replaced. The op's shape
        rule must give the node's shape: a rewrite never changes what its readers see.
        ``expr`` is a fused node's ``(expression, symbols)`` and ``size`` the ops it holds
        (both dropped from a node that is not fused); ``mark`` says what the pass did.

        >>> ed = Editor(ir.new_graph("doc"))
        >>> x = ed.source("input", "x", (2,))
        >>> y = ed.add("exp", [x * 2.0])
        >>> _ = ed.rewrite(y.id, "const", attrs={"value": 1.0}, mark="folded")
        Traceback (most recent call last):
        ...
        graphc.errors.GraphError: node 'exp' (op exp): rewriting it as const gives shape (), not its shape (2,); ...
        >>> _ = ed.rewrite(y.id, "fused", [x.id], {"kink": ""}, expr=(sympy.exp(2 * sympy.Symbol("a0")),
        ...                (sympy.Symbol("a0"),)), size=2, mark="fused")
        >>> ir.operands(ed.graph, "exp"), ed.graph.nodes["exp"]["op"], ed.graph.nodes["exp"]["fused_size"]
        (['x'], 'fused', 2)
        """
        data = self.graph._node[node_id]
        op = op_for(self.graph, op_name, node_id)
        full = {**op.attrs, **dict(attrs or {})}
        unknown = sorted(set(full) - set(op.attrs))
        if unknown or (op.arity >= 0 and len(operands) != op.arity):
            raise GraphError(f"{describe(node_id, data[ir.OP])}: cannot rewrite it as {op_name} of "
                             f"{len(operands)} operand(s) with attrs {sorted(full)}; op {op_name} takes "
                             f"{op.arity} operand(s) and attrs {sorted(op.attrs) or 'none'}")
        if op.source:
            shape = op.shape([], full, node_id, op_name)
        else:
            shape = op.shape([self.graph._node[a][ir.SHAPE] for a in operands], full, node_id, op_name)
        if tuple(shape) != tuple(data[ir.SHAPE]):
            raise GraphError(f"{describe(node_id, data[ir.OP])}: rewriting it as {op_name} gives shape "
                             f"{tuple(shape)}, not its shape {tuple(data[ir.SHAPE])}; a rewrite keeps the value's "
                             "shape")
        self.set_operands(node_id, operands)
        data[ir.OP], data[ir.ATTRS] = op_name, full
        for key, value in ((ir.EXPR, expr), (ir.FUSED_SIZE, size)):
            if value is not None:
                data[key] = value
            elif key in data and (op_name != "fused" or key == ir.EXPR):
                del data[key]
        if mark is not None:
            data[ir.MARK] = mark
        return self.ref(node_id)

    def fold(self, node_id: str, value) -> Ref:
        """Make ``node_id`` the const ``value`` (a float, or a float64 array), marked "folded"."""
        _, stored = const_value(value, node_id)
        return self.rewrite(node_id, "const", (), {"value": stored}, mark="folded")

    def move_readers(self, old: str, new: str) -> None:
        """Every reader of ``old`` reads ``new`` instead, at the same operand position."""
        if _LOGS:  # someone watches a graph: building the list costs only then
            _touch(self.graph, [old, new, *self.graph._succ[old]])
        for _, target, position in list(self.graph.out_edges(old, data=ir.ARG)):
            self.graph.add_edge(new, target, **{ir.ARG: position})
        self.graph.remove_edges_from(list(self.graph.out_edges(old, keys=True)))

    def rename(self, node_id: str, new_id: str) -> None:
        """Give a node another id (a free one); its edges and attributes stay."""
        nx.relabel_nodes(self.graph, {node_id: new_id}, copy=False)
        self.forget(node_id)
        # its readers read another id now, and its operands have another reader
        if _LOGS:  # someone watches a graph: building the list costs only then
            _touch(self.graph, [node_id, new_id, *self.graph._pred[new_id], *self.graph._succ[new_id]])

    def remove(self, node_ids: Sequence[str]) -> None:
        """Take nodes (and their edges) out of the graph."""
        graph = self.graph
        if _LOGS:  # someone watches a graph: building the list costs only then
            _touch(graph, [n for node in node_ids if node in graph
                           for n in (node, *graph._pred[node], *graph._succ[node])])
        self.graph.remove_nodes_from(node_ids)
        for node_id in node_ids:
            self.forget(node_id)

    # -- the tensor ops rules use most ------------------------------------------------------
    def sum(self, x: Ref, axis=None, keepdims: bool = False) -> Ref:
        return self.add("sum", [x], {"axis": axis, "keepdims": keepdims})

    def reshape(self, x: Ref, shape: tuple) -> Ref:
        return self.add("reshape", [x], {"shape": tuple(shape)})

    def broadcast(self, x: Ref, shape: tuple) -> Ref:
        return self.add("broadcast", [x], {"shape": tuple(shape)})

    def transpose(self, x: Ref, axes=None) -> Ref:
        return self.add("transpose", [x], {"axes": None if axes is None else tuple(axes)})
