"""Check every IR invariant, and infer shapes.

:func:`verify` raises a typed error naming the node, its op and its operands, what was
expected, what was found, and how to fix it. Tests run it after every stage.
"""

from __future__ import annotations

import networkx as nx
import numpy as np
import sympy

from . import ir, shapes
from .errors import GraphError, ShapeError, describe
from .ops.attrs import check_attrs
from .ops.base import OpRegistry, op_for

__all__ = ["check_one_float_dtype", "verify", "infer_shapes", "topological_order"]


topological_order = ir.topological_order  # the one order (ties by insertion order)


def _where(graph, node) -> str:
    data = graph.nodes[node]
    args = ir.operands(graph, node)
    suffix = f" with operands {args!r}" if args else ""
    return describe(node, data.get(ir.OP)) + suffix


def _check_node(graph: nx.MultiDiGraph, node) -> tuple:
    """Check one node's own invariants; return its op and its operands in order (which the
    shape and dtype checks read: the in-edges are read once per node)."""
    if type(node) is not str or not node or not node.isascii():  # a plain ASCII id needs no closer look
        _check_id(node)
    data = graph._node[node]  # the node dicts themselves: a view per lookup was a tenth of verifying
    if ir.OP not in data:
        raise GraphError(f"{describe(node)} has no 'op' attribute; set it to one of the op table's names")
    op = op_for(graph, data[ir.OP], node)
    attrs = data.get(ir.ATTRS)
    if not isinstance(attrs, dict):
        raise GraphError(
            f"{describe(node, op.name)}: 'attrs' must be a dict, found {attrs!r}; "
            "set it to {} or to a dict of the op's parameters"
        )
    if attrs:
        if not op.attrs.keys() >= attrs.keys():
            unknown = sorted(set(attrs) - set(op.attrs))
            raise GraphError(
                f"{describe(node, op.name)}: unknown attr(s) {', '.join(map(str, unknown))}; "
                f"the op takes {sorted(op.attrs) or 'none'}"
            )
        check_attrs(node, op.name, attrs)
    if op.name == "const" and attrs.get("value") is None:
        raise GraphError(f"{describe(node, op.name)}: a const needs attrs['value'], a number or an array")
    # (source, arg) of each in-edge, in networkx's order, read from the predecessor dicts (an
    # edge view per node was half of checking it); a loop, not a comprehension: most nodes have one or two
    sources, positions = [], []
    if type(graph) is nx.MultiDiGraph or graph.is_multigraph():
        for source, keys in graph._pred[node].items():
            for edge in keys.values():
                sources.append(source)
                positions.append(edge.get(ir.ARG))
    else:
        for source, edge in graph._pred[node].items():
            sources.append(source)
            positions.append(edge.get(ir.ARG))
    count = len(sources)
    arity = count if op.arity < 0 else op.arity
    if op.name == "fused" and not _has_expression(data, arity):  # variadic concat/stack carry none
        raise GraphError(
            f"{describe(node, op.name)}: attribute 'expr' must be (sympy expression, symbols) with one "
            f"symbol per operand ({arity}), found {data.get(ir.EXPR)!r}"
        )
    if count != arity:
        raise GraphError(
            f"{describe(node, op.name)}: expected {op.arity} operand(s), found {count} "
            f"(from {sorted(str(s) for s in sources)!r}); connect exactly {op.arity} edge(s) into it"
        )
    if count == 1:
        position = positions[0]
        if not (type(position) is int or _is_position(position)) or position != 0:
            _bad_positions(node, op, arity, positions)
    elif count == 2 and type(positions[0]) is type(positions[1]) is int and positions in ([0, 1], [1, 0]):
        if positions[0]:  # (the edge into position 1 came first)
            sources.reverse()
    elif count:
        # each position an int (not a bool) in 0..k-1, each once: ir.operands' order
        ordered = [_UNSET] * count
        for source, position in zip(sources, positions):
            if (not (type(position) is int or _is_position(position)) or not 0 <= position < count
                    or ordered[position] is not _UNSET):
                _bad_positions(node, op, arity, positions)
            ordered[position] = source
        sources = ordered
    if op.arity == 0 and op.name != "const" and ir.SHAPE not in data:
        raise ShapeError(f"{describe(node, op.name)}: a source needs a declared shape, e.g. shape=('N', 2)")
    return op, sources


_UNSET = object()


def _is_position(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_id(node) -> None:
    if not isinstance(node, str) or not node:
        raise GraphError(f"node id {node!r} is not a non-empty str; name every node with a string")
    if not node.isascii() and not _utf8(node):
        raise GraphError(f"node id {node!r} holds a lone surrogate, which no file or page can hold; rename it")


def _bad_positions(node, op, arity: int, found: list) -> None:
    raise GraphError(
        f"{describe(node, op.name)}: operand positions (edge attribute 'arg') must be "
        f"0..{arity - 1} without gaps or repeats, found {found!r}; give each in-edge its operand "
        "position as an int, e.g. graph.add_edge(a, node, arg=0)"
    )


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _has_expression(data: dict, arity: int) -> bool:
    value = data.get(ir.EXPR)
    return (isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], sympy.Expr)
            and len(value[1]) == arity)


def _check_lists(graph: nx.MultiDiGraph, counts: dict) -> None:
    """The inputs, params and outputs lists; ``counts``: how many input and param nodes the graph holds."""
    nodes = graph._node
    for key, op in ((ir.INPUTS, "input"), (ir.PARAMS, "param")):
        listed = graph.graph.get(key)
        if not isinstance(listed, list):
            raise GraphError(f"graph attribute {key!r} must be a list of node ids, found {listed!r}")
        for node in listed:
            if node not in graph or nodes[node].get(ir.OP) != op:
                raise GraphError(f"graph attribute {key!r} names {node!r}, which is not an {op} node of the graph")
        known = set(listed)
        if len(known) != len(listed):
            raise GraphError(f"graph attribute {key!r} names a node twice: {listed!r:.120}; list each once")
        if counts[op] != len(known):  # (each listed node is one of them): some are not listed
            missing = [n for n, d in nodes.items() if d.get(ir.OP) == op and n not in known]
            raise GraphError(f"{describe(missing[0], op)} is not listed in graph attribute {key!r}; add it")
    outputs = graph.graph.get(ir.OUTPUTS)
    if not isinstance(outputs, list) or not outputs:
        raise GraphError("the graph declares no outputs; mark one with g.output(name, node)")
    for node in outputs:
        if node not in graph:
            raise GraphError(f"output {node!r} is not a node of the graph")
    if len(set(outputs)) != len(outputs):
        raise GraphError(f"graph outputs {outputs!r} name a node twice")


def _check_registry(graph: nx.MultiDiGraph) -> None:
    registry = graph.graph.get(ir.CUSTOM_OPS)
    if registry is not None and not isinstance(registry, OpRegistry):
        raise GraphError(f"graph attribute {ir.CUSTOM_OPS!r} must be a graphc OpRegistry (the graph's custom ops), "
                         f"found {type(registry).__name__}; make custom ops with gc.elementwise and apply them")


def infer_shapes(graph: nx.MultiDiGraph) -> None:
    """Fill in the shape of every op node that has none (in place)."""
    for node in topological_order(graph):
        data = graph.nodes[node]
        if ir.SHAPE in data:
            continue
        op, args = _check_node(graph, node)
        data[ir.SHAPE] = op.shape([graph.nodes[a][ir.SHAPE] for a in args], data[ir.ATTRS], node, op.name)


def verify(graph: nx.MultiDiGraph) -> nx.MultiDiGraph:
    """Check every invariant of the IR; return the graph unchanged or raise.

    Checks: a networkx (Multi)DiGraph; str node ids; acyclic (a cycle names its nodes);
    known ops; attrs; arity; operand positions 0..k-1; the inputs/params/outputs lists;
    every shape equals what the op's shape rule infers from the operands; a node's dtype is
    its operands' when they agree; phases; a node
    tagged ``grad_of`` X, and the ``grads`` entry of X, has X's shape; the attributes
    passes set (mark, level, fused_size, early, expr) hold what ``docs/ir.md`` says.

    The first defect is raised, in this order of kinds: a node's own (op, attrs, operands),
    a cycle, the lists, one float dtype, shapes and dtypes (the first node in topological
    order), the tags (phase, ``grad_of``), ``grads``, the pass attributes; within a kind,
    the first node's defect (in the graph's node order, but for shapes).
    """
    if not isinstance(graph, nx.DiGraph):
        raise GraphError(f"expected a networkx MultiDiGraph, found {type(graph).__name__}")
    _check_registry(graph)
    nodes, pred = graph._node, graph._pred
    # One walk over the nodes, in their order, does every check of a node: a graph bigger
    # than the processor's caches is read from memory once, not once per kind of check.
    # A node's own defect is raised when met; the first of each later kind is kept (any
    # exception: a check raises what it raises) and raised after the walk, in its turn.
    # While each node comes after its operands the walk is the topological order (the
    # ready node of smallest insertion index comes next), so shapes are checked on the
    # way; from the first node that does not, they are checked after the walk, along the
    # topological order (which starts with the nodes the walk had checked).
    placed: set = set()
    covers, place = placed.issuperset, placed.add
    later: dict | None = None  # node -> (op, operands), from the first node out of order on
    counts = {"input": 0, "param": 0}  # the nodes of each kind, for _check_lists
    shape_defect = tag_defect = None  # the first of each, in node order
    misplaced = None  # the first node whose pass attributes are wrong: named after the gradients
    for node, data in nodes.items():
        op, args = _check_node(graph, node)
        source = op.arity == 0 and op.name != "const"  # an input or param: its declared shape is the truth
        if source:
            if op.name in counts:
                counts[op.name] += 1
        elif later is not None:
            later[node] = op, args
        elif pred[node] and not covers(pred[node]):
            later = {node: (op, args)}
        elif shape_defect is None:
            try:
                _check_shape(graph, node, data, op, args)
            except Exception as error:  # noqa: BLE001 - raised after the earlier kinds' checks
                shape_defect = error
        if later is None:
            place(node)
        if tag_defect is None and (data.get(ir.PHASE) not in _PHASES or data.get(ir.GRAD_OF) is not None):
            try:
                _check_gradient_tags(nodes, node, data)
            except Exception as error:  # noqa: BLE001 - raised after the shapes' checks
                tag_defect = error
        if misplaced is None:
            level = data.get(ir.LEVEL)  # most nodes hold a plain level and no other pass attribute
            if ((level is not None and (type(level) is not int or level < 0) or ir.MARK in data
                 or ir.FUSED_SIZE in data or ir.EARLY in data or ir.EXPR in data)
                    and _pass_attribute_defect(data) is not None):
                misplaced = node
    order = topological_order(graph) if later is not None else None  # (a cycle is named here)
    _check_lists(graph, counts)
    check_one_float_dtype(graph)  # a mixed declaration is named at its source, before any op reading it
    if shape_defect is not None:
        raise shape_defect
    if order is not None:
        for node in order:
            if node in later:
                _check_shape(graph, node, nodes[node], *later[node])
    if tag_defect is not None:
        raise tag_defect
    _check_grads(graph)
    if misplaced is not None:
        raise GraphError(f"{describe(misplaced, nodes[misplaced][ir.OP])}: {_pass_attribute_defect(nodes[misplaced])}")
    return graph


def _check_shape(graph: nx.MultiDiGraph, node, data: dict, op, args: list) -> None:
    """An op node's shape is what its op's rule gives for its operands' shapes, and its
    dtype what its op's rule gives (or its operands' when they agree)."""
    nodes = graph._node
    dtype = data.get(ir.DTYPE)
    arg_shapes = []
    agree = True  # every operand of the node's own dtype
    for a in args:
        operand = nodes[a]
        if ir.SHAPE not in operand:
            raise ShapeError(f"{describe(a, operand[ir.OP])} has no shape; run infer_shapes first")
        arg_shapes.append(operand[ir.SHAPE])
        if agree:
            other = operand.get(ir.DTYPE)
            agree = other is dtype or other == dtype
    expected = op.shape(arg_shapes, data[ir.ATTRS], node, op.name)
    found = data.get(ir.SHAPE)
    if found is None or found is not expected and tuple(found) != tuple(expected):
        raise ShapeError(
            f"{_where(graph, node)}: declared shape {shapes.fmt(found) if found is not None else 'none'} "
            f"but its operands give {shapes.fmt(expected)}; fix the declaration or the operands"
        )
    if op.dtype is not None or not agree:
        _check_dtype(graph, node, op, args)  # (operands all of the node's dtype, no rule: nothing to check)


def check_one_float_dtype(graph: nx.MultiDiGraph, declared: tuple[str, str, str] | None = None) -> None:
    """Every float input and param of a graph has one float dtype; ``declared`` is a source
    about to be added, as (name, "input" or "param", dtype).

    numpy widens float32 with float64 silently, so a float64 param in a float32 network
    would make its values float64 against their declared dtype (and its gradient float32):
    a mix is refused where it is declared. Numbers and consts adapt to the graph's dtype,
    and int or bool inputs (labels, masks) are not floats.
    """
    seed = graph.graph.get(ir.SEED)  # the cotangent input of a joint graph has its target's dtype, by construction
    nodes = graph._node
    sources = [(n, nodes[n][ir.OP], nodes[n].get(ir.DTYPE))
               for n in list(graph.graph.get(ir.INPUTS, ())) + list(graph.graph.get(ir.PARAMS, ()))
               if n in graph and n != seed]
    first: dict[str, tuple[str, str]] = {}
    for node, kind, dtype in sources + ([declared] if declared else []):
        if dtype is None or _kind(dtype) != "f":
            continue
        first.setdefault(dtype, (node, kind))
        if len(first) > 1:
            (one, (one_node, one_kind)) = next(iter(first.items()))
            raise GraphError(
                f"{describe(node, kind)} is {dtype}, but {describe(one_node, one_kind)} of graph "
                f"{graph.graph.get(ir.NAME)!r} is {one}: a graph computes in one float dtype (numpy would "
                f"silently widen the narrower values); declare {node!r} dtype={one!r}, or every input and "
                f"param {dtype!r}"
            )


def _widens(operands: str, result: str) -> bool:
    """An int or bool operand read into a float result."""
    return np.dtype(operands).kind in "biu" and np.dtype(result).kind == "f"


def _check_dtype(graph: nx.MultiDiGraph, node, op, args: list) -> None:
    """A node has the dtype its op's rule gives (comparisons: bool, argmax: int64), and an op
    without a rule computes in its operands' dtype when they agree (it widens or narrows nothing)."""
    nodes = graph._node
    found = nodes[node].get(ir.DTYPE)
    dtypes = [nodes[a].get(ir.DTYPE) for a in args]
    floats = sorted({d for d in dtypes if d and _kind(d) == "f"})
    if len(floats) > 1:  # numpy would widen the narrower values: no op reads two float dtypes
        mixed = ", ".join(f"{describe(a, nodes[a][ir.OP])} {nodes[a].get(ir.DTYPE)}" for a in args
                          if nodes[a].get(ir.DTYPE) in floats)
        raise GraphError(f"{_where(graph, node)}: its float operands have two dtypes ({mixed}), so numpy would "
                         f"widen the {floats[0]} values to {floats[-1]}; a value made of numbers takes the "
                         "dtype of the float values it meets: make every float operand one dtype")
    if op.dtype is not None and args:
        expected = op.dtype(dtypes)
        if found != expected:
            raise GraphError(f"{_where(graph, node)}: declared dtype {found} but op {op.name}'s rule gives "
                             f"{expected} for its operands; declare it {expected}")
        return
    distinct = set(dtypes)
    if len(distinct) == 1 and found not in distinct:
        (expected,) = distinct
        if ir.EXPR in nodes[node] and _widens(expected, found):
            return  # a kernel whose float numbers were inlined (argmax * 1.0) computes in floats
        raise GraphError(
            f"{_where(graph, node)}: declared dtype {found} but its operands are all {expected}; "
            f"declare it {expected} (an op computes in its operands' dtype)"
        )


def _kind(dtype) -> str:
    """``np.dtype(dtype).kind``, looked up once per dtype name (a graph has one or two)."""
    try:
        return _KINDS[dtype]
    except KeyError:
        kind = _KINDS[dtype] = np.dtype(dtype).kind
        return kind
    except TypeError:  # an unhashable dtype spelling: numpy says what it is
        return np.dtype(dtype).kind


_KINDS: dict = {}


_PHASES = (None, ir.FORWARD, ir.BACKWARD)


def _check_gradient_tags(nodes: dict, node, data: dict) -> None:
    """A node's phase is forward or backward, and a node tagged ``grad_of`` X has X's shape."""
    phase = data.get(ir.PHASE)
    if phase not in _PHASES:
        raise GraphError(f"{describe(node, data[ir.OP])}: phase must be 'forward' or 'backward', found {phase!r}")
    of = data.get(ir.GRAD_OF)
    if of is not None and of in nodes and tuple(nodes[of][ir.SHAPE]) != tuple(data[ir.SHAPE]):
        raise ShapeError(
            f"{describe(node, data[ir.OP])} holds the gradient of {of!r}, so it needs {of!r}'s shape "
            f"{shapes.fmt(nodes[of][ir.SHAPE])}, found {shapes.fmt(data[ir.SHAPE])}"
        )


def _pass_attribute_defect(data: dict) -> str | None:
    """What is wrong with a node's ``mark``, ``level``, ``fused_size``, ``early`` or ``expr``, if anything."""
    mark = data.get(ir.MARK)
    if mark is not None and mark not in ir.MARKS:
        return f"mark must be one of {', '.join(ir.MARKS)}, found {mark!r}"
    level = data.get(ir.LEVEL)
    if level is not None and (isinstance(level, bool) or not isinstance(level, int) or level < 0):
        return f"level must be an int >= 0 (its dependency level), found {level!r}"
    size = data.get(ir.FUSED_SIZE)
    if size is not None and (data[ir.OP] != "fused" or isinstance(size, bool) or not isinstance(size, int)
                             or size < 1):
        return f"fused_size is the number of ops a fused node holds (an int >= 1), found {size!r}"
    if ir.EARLY in data and (data[ir.EARLY] is not True or data.get(ir.PHASE) != ir.BACKWARD):
        return (f"early marks a backward node the training forward computes (True), "
                f"found {data[ir.EARLY]!r} in phase {data.get(ir.PHASE)!r}")
    if ir.EXPR in data and data[ir.OP] != "fused":
        return "only a fused node carries an expression (attribute expr)"
    return None


def _check_grads(graph: nx.MultiDiGraph) -> None:
    """The ``grads`` entry of X names a node of the graph with X's shape."""
    grads = graph.graph.get(ir.GRADS)
    if grads is None:
        return
    if not isinstance(grads, dict):
        raise GraphError(f"graph attribute 'grads' must be a dict of wrt name -> node id, found {grads!r}")
    for name, node in grads.items():
        if node not in graph:
            raise GraphError(f"graph attribute 'grads' names {node!r} for {name!r}, which is not a node of the graph")
        if name in graph and tuple(graph.nodes[name][ir.SHAPE]) != tuple(graph.nodes[node][ir.SHAPE]):
            raise ShapeError(
                f"the gradient of {name!r} ({describe(node, graph.nodes[node][ir.OP])}) has shape "
                f"{shapes.fmt(graph.nodes[node][ir.SHAPE])}, not {name!r}'s {shapes.fmt(graph.nodes[name][ir.SHAPE])}"
            )
