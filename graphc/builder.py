"""Declaring networks: the :class:`Graph` builder, node handles, and ``from_networkx``.

A :class:`Graph` is a thin builder over its networkx ``MultiDiGraph`` (``g.nx``, the graph
itself, never a copy). Ops are added through :func:`apply`, which checks arity, attrs and
shapes at once, so a mistake is reported where it is made.

>>> import graphc as gc
>>> g = gc.Graph("neuron")
>>> x = g.input("x", shape=())
>>> w = g.param("w", shape=())
>>> g.output("loss", (w * x - 6) ** 2)
Node('loss', op=pow, shape=())
>>> sorted(g.nx.nodes)
['const', 'const_1', 'loss', 'mul', 'sub', 'w', 'x']
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import networkx as nx
import numpy as np

from . import ir, shapes
from .errors import GraphError, ShapeError, describe
from .ops.base import Op, OpRegistry, get_op, op_for, with_custom_op
from .ops.editor import Editor, Ref, const_value
from .verify import check_one_float_dtype, infer_shapes, verify

__all__ = ["Graph", "Node", "apply", "from_networkx"]


class Node(Ref):
    """A handle on one node of a :class:`Graph`; operators build new nodes."""

    __slots__ = ()

    @property
    def graph(self) -> Graph:
        return self.editor.face

    def named(self, name: str) -> Node:
        """Give this node a name of its own (it shows in code and drawings)."""
        self.graph._rename(self, name)
        return self

    def __repr__(self) -> str:
        return f"Node({self.id!r}, op={self.op}, shape={shapes.fmt(self.shape)})"


# How a graph shows itself in Jupyter: the package's ``_display_graph`` (the drawing lives
# in render, which a declared graph does not import), read when asked; plain text without it.
display: Callable[[nx.MultiDiGraph, object, object], dict] | None = None


class Graph:
    """A network under declaration; ``g.nx`` is its networkx ``MultiDiGraph``.

    A thin face over the IR :class:`~graphc.ops.editor.Editor`: it names sources and
    outputs, and checks the user's names; the editor makes every node.
    """

    def __init__(self, name: str = "graph", *, nx_graph: nx.MultiDiGraph | None = None):
        if not isinstance(name, str):
            raise GraphError(f"a graph name must be a str, found {name!r}")
        self.nx = nx_graph if nx_graph is not None else ir.new_graph(name)
        self.nx.graph.setdefault(ir.NAME, name)
        for key in (ir.INPUTS, ir.PARAMS, ir.OUTPUTS):
            self.nx.graph.setdefault(key, [])
        self.editor = Editor(self.nx, handle=Node)
        self.editor.face = self
        self._auto = self.editor.generated  # generated ids (a user's name never changes)
        self._float_dtype: str | None = None  # the graph's float dtype, once a float source is checked

    @property
    def created(self) -> list[str]:
        """Ids of the nodes made through this graph, in order."""
        return self.editor.created

    @property
    def name(self) -> str:
        return self.nx.graph[ir.NAME]

    def __repr__(self) -> str:
        return f"Graph({self.name!r}, {self.nx.number_of_nodes()} nodes, outputs={self.outputs})"

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        """Jupyter shows the graph as its drawing."""
        shown = display or getattr(sys.modules.get(__package__), "_display_graph", None)
        if shown is None:
            return {"text/plain": repr(self)}
        return shown(self.nx, include, exclude)

    @property
    def inputs(self) -> list[str]:
        return list(self.nx.graph[ir.INPUTS])

    @property
    def params(self) -> list[str]:
        return list(self.nx.graph[ir.PARAMS])

    @property
    def outputs(self) -> list[str]:
        return list(self.nx.graph[ir.OUTPUTS])

    def node(self, node_id: str) -> Node:
        """The handle of an existing node."""
        if node_id not in self.nx:
            raise GraphError(f"{describe(node_id)} is not in graph {self.name!r}")
        return self.editor.ref(node_id)

    __getitem__ = node

    def _check_new_name(self, name: object, what: str) -> str:
        if not isinstance(name, str) or not name:
            raise GraphError(f"{what} needs a non-empty str name, found {name!r}")
        if name in self.nx:
            raise GraphError(f"{what} {name!r}: the name is taken in graph {self.name!r}; choose another")
        return name

    def _source(self, kind: str, name: str, shape, dtype: str) -> Node:
        self._check_new_name(name, kind)
        try:
            shape = shapes.normalize(shape)
        except ShapeError as error:
            raise ShapeError(f"{describe(name, kind)}: {error}") from None
        dtype = _dtype_name(dtype, name, kind)
        self._check_float_dtype(name, kind, dtype)
        return self.editor.source(kind, name, shape, dtype)

    def _check_float_dtype(self, name: str, kind: str, dtype: str) -> None:
        """One float dtype a graph (verify.check_one_float_dtype): the first float source is
        checked against the whole graph, every later one against the dtype found then, since
        scanning every source at each declaration made declaring n of them O(n^2) (a
        10,000-node chain took 7 s to declare)."""
        if np.dtype(dtype).kind != "f" or dtype == self._float_dtype:
            return
        check_one_float_dtype(self.nx, declared=(name, kind, dtype))  # raises on a mix, naming both
        self._float_dtype = dtype

    def input(self, name: str, shape=(), dtype: str = ir.DEFAULT_DTYPE) -> Node:
        """Declare a value fed at run time; str dims (``"N"``) are symbolic."""
        return self._source("input", name, shape, dtype)

    def param(self, name: str, shape=(), dtype: str = ir.DEFAULT_DTYPE) -> Node:
        """Declare a learnable value (fed at run time; gradients are taken w.r.t. it)."""
        return self._source("param", name, shape, dtype)

    def const(self, value, name: str | None = None) -> Node:
        """A constant: a Python number or an array."""
        if name is not None:
            self._check_new_name(name, "const")
        return self.editor.const(value, name)

    def output(self, name: str, node: Node) -> Node:
        """Mark ``node`` as the output ``name``; returns the output's handle."""
        node = self._own(node, "output")
        if not isinstance(name, str) or not name:
            raise GraphError(f"an output needs a non-empty str name, found {name!r}")
        if name in self.nx.graph[ir.OUTPUTS]:
            raise GraphError(f"output {name!r} is declared twice in graph {self.name!r}")
        if node.id == name:
            pass
        elif node.id in self._auto and node.id not in self.nx.graph[ir.OUTPUTS] and name not in self.nx:
            self._rename(node, name)
        else:
            node = apply("identity", node)
            self._rename(node, name)
        self.nx.graph[ir.OUTPUTS].append(name)
        return node

    def _rename(self, node: Node, name: str) -> None:
        if node.id not in self._auto:
            raise GraphError(f"{describe(node.id, node.op)} already has a name; only generated names can change")
        self._check_new_name(name, "node")
        nx.relabel_nodes(self.nx, {node.id: name}, copy=False)
        self._auto.discard(node.id)
        self.editor.forget(node.id)
        created = self.editor.created
        created[:] = [name if c == node.id else c for c in created]
        node.id = name
        self.editor._handles[name] = node

    def _own(self, value, what: str) -> Node:
        return self.editor.operand(value, what)


_const_value = const_value


def _dtype_name(dtype, node, op) -> str:
    try:
        kind = np.dtype(dtype)
    except TypeError:
        raise GraphError(f"{describe(node, op)}: unknown dtype {dtype!r}; use 'float64' or 'float32'") from None
    if kind.name == "int64" and op == "input":  # class labels: ops that take them say so (Op.int_operands)
        return kind.name
    if kind.kind != "f":
        also = " (int64 for an input of class labels)" if op == "input" else " (gradients are taken w.r.t. it)"
        raise GraphError(f"{describe(node, op)}: dtype must be a float type{also}, found {kind.name}")
    return kind.name


def apply(op: str | Op, *operands, **attrs) -> Node:
    """Add the node ``op(*operands)`` to the operands' graph and return its handle.

    ``op`` is an op's name (built in, or a custom op the graph carries) or an :class:`Op`
    record (a custom one joins the graph's custom ops). Python numbers among the operands
    become constants; attrs are checked against the op's declared attrs and shapes against
    its shape rule, right here.
    """
    name = op.name if isinstance(op, Op) else op
    graph = next((o.graph for o in operands if isinstance(o, Node)), None)
    if graph is None:
        if not isinstance(op, Op):
            get_op(op)  # an unknown name is the first thing to say
        raise GraphError(f"op {name}: at least one operand must be a graphc Node, found {operands!r}")
    return graph.editor.add(op, operands, attrs)


def from_networkx(source: nx.DiGraph, name: str | None = None, ops=()) -> Graph:
    """A :class:`Graph` over a raw networkx graph whose nodes carry ``op``, ``shape``, ``attrs``.

    A ``MultiDiGraph`` is used as is (``g.nx is source``); a ``DiGraph`` is converted to
    one. Nodes name built-in ops, or the custom ops in ``ops`` (functions made by
    ``gc.elementwise``, or ``Op`` records), which the graph then carries. Edges carry
    ``arg``, the operand position (it may be left out for one-operand ops).
    ``inputs``/``params`` default to the input/param nodes in node order and ``outputs`` to
    the nodes nothing consumes. Shapes of op nodes are inferred where missing, then the
    whole graph is verified.
    """
    if not isinstance(source, nx.DiGraph):
        raise GraphError(f"from_networkx takes a networkx DiGraph or MultiDiGraph, found {type(source).__name__}")
    graph = source if isinstance(source, nx.MultiDiGraph) else nx.MultiDiGraph(source)
    graph.graph.setdefault(ir.NAME, name or source.graph.get(ir.NAME, "graph"))
    if name is not None:
        graph.graph[ir.NAME] = name
    _carry(graph, ops)
    for node, data in graph.nodes(data=True):
        if ir.OP not in data:
            raise GraphError(f"{describe(node)} has no 'op' attribute; set it to one of the op table's names")
        op_for(graph, data[ir.OP], node)
        data.setdefault(ir.ATTRS, {})
        data[ir.DTYPE] = _dtype_name(data.get(ir.DTYPE, ir.DEFAULT_DTYPE), node, data[ir.OP])
        if data[ir.OP] == "const" and isinstance(data[ir.ATTRS], dict) and data[ir.ATTRS].get("value") is not None:
            # stored as the builder stores it (a float, or a float64 array), so a list has its shape
            data[ir.ATTRS] = {**data[ir.ATTRS], "value": _const_value(data[ir.ATTRS]["value"], node, "const")[1]}
        if ir.SHAPE in data:
            try:
                data[ir.SHAPE] = shapes.normalize(data[ir.SHAPE])
            except ShapeError as error:
                raise ShapeError(f"{describe(node, data[ir.OP])}: {error}") from None
    for source_node, target, _key, data in graph.edges(keys=True, data=True):
        if ir.ARG not in data:
            if op_for(graph, graph.nodes[target][ir.OP]).arity == 1:
                data[ir.ARG] = 0
            else:
                raise GraphError(
                    f"edge {source_node!r} -> {target!r}: {describe(target, graph.nodes[target][ir.OP])} "
                    "takes several operands, so the edge needs its operand position in attribute 'arg'"
                )
    order = list(graph.nodes)
    graph.graph.setdefault(ir.INPUTS, [n for n in order if graph.nodes[n][ir.OP] == "input"])
    graph.graph.setdefault(ir.PARAMS, [n for n in order if graph.nodes[n][ir.OP] == "param"])
    graph.graph.setdefault(ir.OUTPUTS, [n for n in order if graph.out_degree(n) == 0
                                        and graph.nodes[n][ir.OP] not in ("input", "param", "const")])
    for key in (ir.INPUTS, ir.PARAMS, ir.OUTPUTS):
        graph.graph[key] = list(graph.graph[key])
    infer_shapes(graph)
    verify(graph)
    return Graph(graph.graph[ir.NAME], nx_graph=graph)


def _carry(graph: nx.MultiDiGraph, ops) -> None:
    """Give ``graph`` the custom ops ``ops`` (user functions or Op records)."""
    registry = graph.graph.get(ir.CUSTOM_OPS)
    if registry is not None and not isinstance(registry, OpRegistry):
        raise GraphError(f"graph attribute {ir.CUSTOM_OPS!r} must be a graphc OpRegistry, found "
                         f"{type(registry).__name__}; pass custom ops as from_networkx(..., ops=[...])")
    for op in ops:
        record = getattr(op, "op", op)
        if not isinstance(record, Op):
            raise GraphError(f"from_networkx: ops= takes functions made by gc.elementwise or Op records, "
                             f"found {type(op).__name__} {op!r:.60}")
        with_custom_op(graph, record)
