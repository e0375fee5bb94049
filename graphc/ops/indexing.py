"""Indexing and joining: ``x[:, 0]``, ``x[1:3]``, ``x[idx]``, concat, stack.

Basic indexing (ints, slices, ``None``, ``...``) is the ``index`` op; an int array along
one axis is ``take`` (a gather). Their VJPs put the cotangent back where the elements came
from: ``index_grad`` writes it into zeros (a basic index picks each element once),
``take_grad`` adds it with ``numpy.add.at`` (an index array may pick an element twice, and
both picks get their share). ``concat`` and ``stack`` take any number of operands; their
VJPs are slices of the cotangent.

An index is stored in the node's attrs in a JSON-friendly form: a tuple of items, each an
int, ``("slice", start, stop, step)`` or ``("newaxis",)``; :func:`parse_key` makes it
from what a user writes between brackets.
"""

from __future__ import annotations

import numbers

import numpy as np

from .. import shapes
from ..errors import GraphError, ShapeError, describe
from .base import Op, register
from .tensor import normalize_axes

__all__ = ["parse_key", "index_text", "statements"]


# -- the index as attrs ------------------------------------------------------------------------
def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _slice_part(value, key):
    if value is None or _is_int(value):
        return None if value is None else int(value)
    raise GraphError(f"index {key!r}: slice bounds must be ints or None, found {value!r}")


def parse_key(key, shape: tuple, what: str = "an index") -> tuple[str, dict]:
    """(op name, attrs) of ``x[key]`` for a value of ``shape``.

    >>> parse_key((slice(None), 0), (2, 3))
    ('index', {'index': (('slice', None, None, None), 0)})
    >>> parse_key([2, 0, 2], (3, 4))
    ('take', {'indices': array([2, 0, 2]), 'axis': 0})
    """
    if isinstance(key, (list, np.ndarray)):
        key = (key,)
    items = key if isinstance(key, tuple) else (key,)
    arrays = [k for k, item in enumerate(items) if isinstance(item, (list, np.ndarray))]
    if arrays:
        return _take_key(items, arrays, shape, what)
    if sum(item is Ellipsis for item in items) > 1:
        raise GraphError(f"{what}: an index can have one ellipsis (...), found {key!r}")
    used = sum(1 for item in items if item is not None and item is not Ellipsis)
    out = []
    for item in items:
        if item is Ellipsis:
            out.extend([("slice", None, None, None)] * max(len(shape) - used, 0))
        elif item is None:
            out.append(("newaxis",))
        elif _is_int(item):
            out.append(int(item))
        elif isinstance(item, slice):
            out.append(("slice", _slice_part(item.start, key), _slice_part(item.stop, key),
                        _slice_part(item.step, key)))
        else:
            raise GraphError(
                f"{what}: cannot index with {item!r} ({type(item).__name__}); use ints, slices, None, ... "
                "or one int array (x[[0, 2]]); a boolean mask has a data-dependent shape: use gc.where"
            )
    return "index", {"index": tuple(out)}


def _take_key(items, arrays, shape, what):
    if len(arrays) > 1:
        raise GraphError(f"{what}: one int array per index (a gather along one axis), found {len(arrays)}")
    axis = arrays[0]
    others = [item for k, item in enumerate(items) if k != axis]
    if any(not (isinstance(i, slice) and i == slice(None)) for i in others):
        raise GraphError(f"{what}: an int array indexes one axis, with ':' for every axis before it "
                         f"(x[idx], x[:, idx]), found {items!r}")
    indices = np.asarray(items[axis])
    if indices.dtype.kind not in "iu" and indices.size:
        raise GraphError(f"{what}: an index array must hold ints, found dtype {indices.dtype} "
                         "(a boolean mask has a data-dependent shape: use gc.where)")
    return "take", {"indices": indices.astype(np.int64), "axis": axis}


def _items(attrs) -> list:
    """The stored index items (lists after a JSON round trip) as ints and tuples."""
    return [item if _is_int(item) else tuple(item) for item in attrs["index"]]


def index_text(items) -> str:
    """The Python text of an index: ``:, 0`` for ((slice...), 0)."""
    parts = []
    for item in items:
        if _is_int(item):
            parts.append(str(int(item)))
        elif item[0] == "newaxis":
            parts.append("None")
        else:
            _, start, stop, step = item
            text = f"{'' if start is None else start}:{'' if stop is None else stop}"
            parts.append(text + ("" if step is None else f":{step}"))
    if not parts:
        return "..."
    return parts[0] + "," if len(parts) == 1 and parts[0] == "None" else ", ".join(parts)


def _python_key(items) -> tuple:
    out = []
    for item in items:
        if _is_int(item):
            out.append(int(item))
        elif item[0] == "newaxis":
            out.append(None)
        else:
            out.append(slice(*item[1:]))
    return tuple(out)


# -- index ------------------------------------------------------------------------------------
def _index_shape(arg_shapes, attrs, node=None, op=None):
    (a,) = arg_shapes
    items = _items(attrs)
    used = [item for item in items if _is_int(item) or item[0] != "newaxis"]
    if len(used) > len(a):
        raise ShapeError(f"{describe(node, op)}: {len(used)} indices for a value of shape {shapes.fmt(a)} "
                         f"(rank {len(a)}); index at most {len(a)} axes")
    out, axis = [], 0
    for item in items:
        if not _is_int(item) and item[0] == "newaxis":
            out.append(1)
            continue
        d = a[axis]
        if _is_int(item):
            if isinstance(d, int) and not -d <= item < d:
                raise ShapeError(f"{describe(node, op)}: index {item} is out of range for axis {axis} of size {d} "
                                 f"(shape {shapes.fmt(a)}); use an int in [{-d}, {d - 1}]")
        else:
            out.append(_sliced(d, item[1:], axis, a, node, op))
        axis += 1
    return tuple(out) + tuple(a[axis:])


def _sliced(d, bounds, axis, a, node, op):
    start, stop, step = bounds
    if step == 0:
        raise ShapeError(f"{describe(node, op)}: slice step cannot be zero (axis {axis})")
    if not isinstance(d, int):
        if bounds == (None, None, None):
            return d
        raise ShapeError(f"{describe(node, op)}: axis {axis} has the symbolic size {d}; it can only be taken "
                         "whole (':'); declare a concrete size to slice it")
    size = len(range(*slice(start, stop, step).indices(d)))
    if size == 0:
        raise ShapeError(f"{describe(node, op)}: the slice {start}:{stop}:{step} of axis {axis} "
                         f"(size {d}, shape {shapes.fmt(a)}) is empty; graphc values have no empty axes")
    return size


def _lower_index(ctx, args, attrs, node):
    # a copy: basic indexing gives a view, and the generated code may write into values it owns
    return f"{args[0]}[{index_text(_items(attrs))}].copy()"


def _index_vjp(node, args, g, k):
    attrs = node.editor.graph.nodes[node.id]["attrs"]
    return g.editor.add("index_grad", [g], {"index": tuple(attrs["index"]), "shape": tuple(args[0].shape)})


register(Op(
    "index", 1, _index_shape, attrs={"index": None}, lower=_lower_index, vjp=_index_vjp,
    reference=lambda values, attrs: np.array(values[0][_python_key(_items(attrs))]),
    doc="x[index]: ints, slices, None (basic indexing, a copy)",
))


def statements(*lines: str) -> list[str]:
    """A lowering of several lines, over ``{out}`` (the result's name): an op that fills its result."""
    return list(lines)


def _zeros(ctx, attrs, node) -> str:
    dtype = ctx.graph.nodes[node]["dtype"]
    return f"{ctx.numpy}.zeros({ctx.shape(attrs['shape'])}, dtype={ctx.numpy}.{dtype})"


def _index_grad_shape(arg_shapes, attrs, node=None, op=None):
    target = shapes.normalize(attrs["shape"])
    picked = _index_shape([target], attrs, node, op)
    if tuple(picked) != tuple(arg_shapes[0]):
        raise ShapeError(f"{describe(node, op)}: the index of shape {shapes.fmt(target)} picks "
                         f"{shapes.fmt(picked)}, not the operand's {shapes.fmt(arg_shapes[0])}")
    return target


def _reference_index_grad(values, attrs):
    out = np.zeros(attrs["shape"], dtype=values[0].dtype)
    out[_python_key(_items(attrs))] = values[0]
    return out


def _index_grad_vjp(node, args, g, k):
    attrs = node.editor.graph.nodes[node.id]["attrs"]
    return g.editor.add("index", [g], {"index": tuple(attrs["index"])})


register(Op(
    "index_grad", 1, _index_grad_shape, attrs={"index": None, "shape": None}, vjp=_index_grad_vjp,
    lower=lambda ctx, args, attrs, node: statements(
        f"{{out}} = {_zeros(ctx, attrs, node)}", f"{{out}}[{index_text(_items(attrs))}] = {args[0]}"),
    reference=_reference_index_grad,
    doc="zeros of shape with the operand written at index (the VJP of index)",
))


# -- take (gather) and its scatter-add ---------------------------------------------------------
def _take_shape(arg_shapes, attrs, node=None, op=None):
    (a,) = arg_shapes
    indices = np.asarray(attrs["indices"])
    axis = attrs["axis"]
    if not _is_int(axis) or not 0 <= axis < len(a):
        raise ShapeError(f"{describe(node, op)}: axis {axis!r} is out of range for shape {shapes.fmt(a)}")
    d = a[axis]
    if indices.size == 0:
        raise ShapeError(f"{describe(node, op)}: the index array is empty; graphc values have no empty axes")
    if isinstance(d, int) and (indices.min() < -d or indices.max() >= d):
        raise ShapeError(f"{describe(node, op)}: index array values {indices.min()}..{indices.max()} are out of "
                         f"range for axis {axis} of size {d} (shape {shapes.fmt(a)})")
    return tuple(a[:axis]) + tuple(int(n) for n in indices.shape) + tuple(a[axis + 1:])


def _indices_name(ctx, attrs, node) -> str:
    """The index array as a module constant (an int literal), shared by equal index arrays."""
    indices = np.asarray(attrs["indices"], dtype=np.int64)
    name = ctx.namespace.name(("const", "int64", indices.shape, indices.tobytes()), f"{node}_indices")
    ctx.constants.setdefault(name, f"{ctx.numpy}.array({indices.tolist()!r}, dtype={ctx.numpy}.int64)")
    return name


def _axis_key(axis: int, indices: str) -> str:
    return indices if axis == 0 else f"({'slice(None), ' * axis}{indices})"


def _lower_take(ctx, args, attrs, node):
    return f"{args[0]}[{_axis_key(attrs['axis'], _indices_name(ctx, attrs, node))}]"


def _take_vjp(node, args, g, k):
    attrs = node.editor.graph.nodes[node.id]["attrs"]
    return g.editor.add("take_grad", [g], {"indices": attrs["indices"], "axis": attrs["axis"],
                                           "shape": tuple(args[0].shape)})


register(Op(
    "take", 1, _take_shape, attrs={"indices": None, "axis": 0}, lower=_lower_take, vjp=_take_vjp,
    reference=lambda values, attrs: np.take(values[0], np.asarray(attrs["indices"]), axis=attrs["axis"]),
    doc="x[idx]: the entries at an int array of indices along axis (a gather)",
))


def _take_grad_shape(arg_shapes, attrs, node=None, op=None):
    target = shapes.normalize(attrs["shape"])
    picked = _take_shape([target], attrs, node, op)
    if tuple(picked) != tuple(arg_shapes[0]):
        raise ShapeError(f"{describe(node, op)}: gathering from {shapes.fmt(target)} gives {shapes.fmt(picked)}, "
                         f"not the operand's {shapes.fmt(arg_shapes[0])}")
    return target


def _reference_take_grad(values, attrs):
    (g,) = values
    out = np.zeros(attrs["shape"], dtype=g.dtype)
    indices = np.asarray(attrs["indices"])
    axis = attrs["axis"]
    # one index at a time, by loops: independent of numpy.add.at, which the lowering uses
    moved_g = np.moveaxis(g, tuple(range(axis, axis + indices.ndim)), tuple(range(indices.ndim)))
    moved_out = np.moveaxis(out, axis, 0)
    for position in np.ndindex(*indices.shape):
        moved_out[indices[position]] += moved_g[position]
    return out


def _take_grad_vjp(node, args, g, k):
    attrs = node.editor.graph.nodes[node.id]["attrs"]
    return g.editor.add("take", [g], {"indices": attrs["indices"], "axis": attrs["axis"]})


register(Op(
    "take_grad", 1, _take_grad_shape, attrs={"indices": None, "axis": 0, "shape": None}, vjp=_take_grad_vjp,
    lower=lambda ctx, args, attrs, node: statements(
        f"{{out}} = {_zeros(ctx, attrs, node)}",
        f"{ctx.numpy}.add.at({{out}}, {_axis_key(attrs['axis'], _indices_name(ctx, attrs, node))}, {args[0]})"),
    reference=_reference_take_grad,
    doc="zeros of shape with the operand added at the indices (numpy.add.at: the VJP of take)",
))


# -- concat and stack ------------------------------------------------------------------------
def _joined_axis(arg_shapes, attrs, node, op, rank):
    if not arg_shapes:
        raise ShapeError(f"{describe(node, op)}: needs at least one operand")
    return normalize_axes(attrs.get("axis"), rank, node, op)[0]


def _concat_shape(arg_shapes, attrs, node=None, op=None):
    first = tuple(arg_shapes[0]) if arg_shapes else ()
    if arg_shapes and not first:
        raise ShapeError(f"{describe(node, op)}: cannot concatenate scalars; use gc.stack")
    axis = _joined_axis(arg_shapes, attrs, node, op, len(first))
    for k, s in enumerate(arg_shapes):
        if len(s) != len(first) or any(d != e for i, (d, e) in enumerate(zip(s, first)) if i != axis):
            raise ShapeError(f"{describe(node, op)}: operand {k} has shape {shapes.fmt(s)}, operand 0 "
                             f"{shapes.fmt(first)}; they must agree on every axis but axis {axis}")
    return first[:axis] + (sum(s[axis] for s in arg_shapes),) + first[axis + 1:]


def _stack_shape(arg_shapes, attrs, node=None, op=None):
    first = tuple(arg_shapes[0]) if arg_shapes else ()
    axis = _joined_axis(arg_shapes, attrs, node, op, len(first) + 1)
    for k, s in enumerate(arg_shapes):
        if tuple(s) != first:
            raise ShapeError(f"{describe(node, op)}: operand {k} has shape {shapes.fmt(s)}, operand 0 "
                             f"{shapes.fmt(first)}; stacked values must have one shape")
    return first[:axis] + (len(arg_shapes),) + first[axis:]


def _axis_of(node, rank: int) -> int:
    return normalize_axes(node.editor.graph.nodes[node.id]["attrs"].get("axis"), rank)[0]


def _slice_along(axis: int, start, stop) -> tuple:
    return (("slice", None, None, None),) * axis + (("slice", start, stop, None),)


def _concat_vjp(node, args, g, k):
    axis = _axis_of(node, len(g.shape))
    start = sum(a.shape[axis] for a in args[:k])
    if any(not isinstance(a.shape[axis], int) for a in args):
        raise GraphError(f"{describe(node.id, 'concat')}: its gradient slices axis {axis}, "
                         "which has a symbolic size; concatenate along a concrete axis")
    return g.editor.add("index", [g], {"index": _slice_along(axis, start, start + args[k].shape[axis])})


def _stack_vjp(node, args, g, k):
    axis = _axis_of(node, len(g.shape))
    return g.editor.add("index", [g], {"index": (("slice", None, None, None),) * axis + (k,)})


def _lower_joined(function):
    def lower(ctx, args, attrs, node):
        axis = normalize_axes(attrs.get("axis"), len(ctx.graph.nodes[node]["shape"]))[0]
        return f"{ctx.numpy}.{function}([{', '.join(args)}], axis={axis})"

    return lower


register(Op(
    "concat", -1, _concat_shape, attrs={"axis": 0}, lower=_lower_joined("concatenate"), vjp=_concat_vjp,
    reference=lambda values, attrs: np.concatenate(values, axis=attrs["axis"]),
    doc="the operands joined along an existing axis", function="concat", operand_names=("values",),
))
register(Op(
    "stack", -1, _stack_shape, attrs={"axis": 0}, lower=_lower_joined("stack"), vjp=_stack_vjp,
    reference=lambda values, attrs: np.stack(values, axis=attrs["axis"]),
    doc="the operands (of one shape) stacked along a new axis", function="stack", operand_names=("values",),
))
