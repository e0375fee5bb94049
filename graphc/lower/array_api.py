"""The array-API backend: the same plan printed for the Python array API standard.

Every call goes through ``xp``, the namespace of whichever array library runs the module
(``array_api_compat.torch``, ``jax.numpy``, ``array_api_strict``): functions the standard
names (``xp.pow``, ``xp.concat``, ``xp.permute_dims``, ``xp.astype``), no array methods
beyond ``.T`` of a matrix and ``.shape``, no numpy scalars (a Python number takes the
dtype of the array it meets), and no ``out=``: the standard has none and some libraries
(JAX) cannot write into an array at all. A kernel is therefore one expression, and the
module has no ``sgd_step`` (it writes params in place).

Two backends share the printer: ``ARRAY_API`` for libraries whose arrays may be written
(PyTorch, CuPy, numpy, array_api_strict), where the VJP of ``x[index]`` fills zeros
with ``out[index] = g``, and ``ARRAY_API_IMMUTABLE`` (JAX), where it is carried back by
products with one-hot vectors and 0/1 matrices, axis by axis. The VJPs of ``take`` and
``pick`` are written without writes everywhere, as products with a one-hot mask.

>>> z = sympy.Symbol("z", real=True)
>>> print_xp(sympy.Heaviside(z, 1), "float32")
'xp.astype(z >= 0, xp.float32)'
>>> print_xp(sympy.atan(z) + sympy.Max(z, 0))  # numpy's arctan is the standard's atan
'xp.atan(z) + xp.maximum(0, z)'
>>> print_xp(sympy.sqrt(2) * z)  # xp.sqrt(2) would be an error: the standard's functions take arrays
'1.4142135623730951*z'
"""

from __future__ import annotations

import dataclasses

import sympy

from .. import ir, shapes
from ..ops.indexing import index_text, normalize_axes
from ..ops.printing import GraphcPrinter, _irrational_number
from .backend import Backend, register_backend

__all__ = ["ARRAY_API", "ARRAY_API_IMMUTABLE", "print_xp", "xp_kernel"]

XP = "xp"

# numpy's names for what the standard calls otherwise
RENAMED = {"absolute": "abs", "power": "pow", "arccos": "acos", "arcsin": "asin", "arctan": "atan",
           "arctan2": "atan2", "arccosh": "acosh", "arcsinh": "asinh", "arctanh": "atanh",
           "concatenate": "concat", "transpose": "permute_dims"}


class ArrayApiPrinter(GraphcPrinter):
    """The graphc printer with every ``numpy.f`` written ``xp.f`` in the standard's name."""

    def _module_format(self, fqn, register=True):
        if fqn.startswith("numpy."):
            name = fqn[len("numpy."):]
            return f"{XP}.{RENAMED.get(name, name)}"
        return super()._module_format(fqn, register)

    def _print(self, expr, **kwargs):
        # xp.sqrt(5) is an error (the standard's functions take arrays): a number is a float
        if _irrational_number(expr):
            return self._print_Float(sympy.Float(expr.evalf(30)))
        return super()._print(expr, **kwargs)

    def _branch(self, value):
        return self._print(value)  # a Python number adopts the dtype of the array it meets

    def _print_where(self, expr):
        condition, a, b = expr.args
        if a == 1 and b == 0:  # a bool as a number (a kink mask): where() of two numbers is refused
            return f"{XP}.astype({self._print(condition)}, {XP}.{self.dtype})"
        return super()._print_where(expr)

    def _print_Heaviside(self, expr):
        arg = expr.args[0]
        at = expr.args[1] if len(expr.args) > 1 else sympy.Rational(1, 2)
        if at in (0, 1):
            compare = ">=" if at == 1 else ">"
            return f"{XP}.astype({self._print(arg)} {compare} 0, {XP}.{self.dtype})"
        half = self._print(sympy.Piecewise((1, arg > 0), (at, sympy.Eq(arg, 0)), (0, True)))
        return f"{XP}.astype({half}, {XP}.{self.dtype})"


_PRINTERS: dict[str, ArrayApiPrinter] = {}


def print_xp(expr: sympy.Expr, dtype: str = "float64") -> str:
    """Array-API source for a sympy expression (steps as masks of ``dtype``)."""
    printer = _PRINTERS.get(dtype)
    if printer is None:
        printer = _PRINTERS[dtype] = ArrayApiPrinter(dtype=dtype)
    return printer.doprint(expr)


def xp_kernel(expr, target, leaf_shapes, donors=frozenset(), numpy=XP, shape_text="", shape=None,
              dtype="float64") -> list[str]:
    """An elementwise node as one expression: no buffer is written, so every library runs it.

    A result whose operands broadcast to less than the node's shape is broadcast to it
    (``x - x + w`` reads w only); a result that is a number becomes a full array.
    """
    arrays = [tuple(s) for symbol, s in leaf_shapes.items() if symbol in expr.free_symbols and tuple(s)]
    text = print_xp(expr, dtype)
    if shape is None:
        return [f"{target} = {text}"]
    if not arrays:
        return [f"{target} = {XP}.full({shape_text}, {text}, dtype={XP}.{dtype})"]
    if tuple(shapes.broadcast(arrays)) != tuple(shape):
        return [f"{target} = {XP}.broadcast_to({text}, {shape_text})"]
    return [f"{target} = {text}"]


# -- tensor ops ---------------------------------------------------------------------------
def _axis(attrs):
    axis = attrs.get("axis")
    axis = tuple(axis) if isinstance(axis, list) else axis
    return axis[0] if isinstance(axis, tuple) and len(axis) == 1 else axis


def _reducer(function):
    def lower(ctx, args, attrs, node):
        axis = _axis(attrs)
        options = [] if axis is None else [f"axis={axis!r}"]
        if attrs.get("keepdims", False):
            options.append("keepdims=True")
        return f"{XP}.{function}({', '.join([args[0], *options])})"

    return lower


def _mean(ctx, args, attrs, node):
    shape = ctx.graph.nodes[ir.operands(ctx.graph, node)[0]][ir.SHAPE]
    count = [ctx.dim(shape[a]) for a in normalize_axes(attrs.get("axis"), len(shape)) if shape[a] != 1]
    total = _reducer("sum")(ctx, args, attrs, node)
    return f"{total} / ({'*'.join(count) or '1'})"


def _sum_of_squares(ctx, args, attrs, node):
    """sum or mean of a square the schedule folded into ``node``, from its operand."""
    total = f"{XP}.sum({XP}.square({args[0]}))"
    if ir.op_of(ctx.graph, node) == "sum":
        return total
    shape = ctx.graph.nodes[ir.operands(ctx.graph, ir.operands(ctx.graph, node)[0])[0]][ir.SHAPE]
    count = [ctx.dim(shape[a]) for a in normalize_axes(attrs.get("axis"), len(shape)) if shape[a] != 1]
    return f"{total} / ({'*'.join(count) or '1'})"


def _transpose(ctx, args, attrs, node):
    rank = len(ctx.graph.nodes[node][ir.SHAPE])
    axes = attrs.get("axes")
    if axes is None:
        return transposed(args[0], rank)
    return f"{XP}.permute_dims({args[0]}, {tuple(a % rank for a in axes)!r})"


def transposed(text: str, rank: int) -> str:
    """Axes reversed: ``.T`` is the standard's for a matrix only."""
    if rank < 2:
        return text
    if rank == 2:
        return f"{text}.T"
    return f"{XP}.permute_dims({text}, {tuple(reversed(range(rank)))!r})"


def _constant_indices(ctx, attrs, node) -> str:
    import numpy as np

    indices = np.asarray(attrs["indices"], dtype=np.int64)
    name = ctx.namespace.name(("const", "int64", indices.shape, indices.tobytes()), f"{node}_indices")
    ctx.constants.setdefault(name, f"numpy.array({indices.reshape(-1).tolist()!r}, dtype=numpy.int64)")
    return name


def _take(ctx, args, attrs, node):
    """``xp.take`` takes a 1-D index: a gather by an index array of any rank, then reshaped."""
    axis = attrs["axis"]
    taken = f"{XP}.take({args[0]}, {_constant_indices(ctx, attrs, node)}, axis={axis})"
    return f"{XP}.reshape({taken}, {ctx.shape(ctx.graph.nodes[node][ir.SHAPE])})"


def _product(ctx, dims) -> str:
    total = sympy.Integer(1)
    for d in dims:
        total *= d
    return ctx.dim(total)


def _take_grad(ctx, args, attrs, node):
    """The scatter-add of ``take`` as a product with a one-hot matrix: no write into an array.

    With the index flattened to K entries and the operand seen as (before, K, after), the
    result (before, D, after) is ``onehot(D, K) @ g``: entry d sums g where the index is d.
    """
    import numpy as np

    axis, target = attrs["axis"], tuple(attrs["shape"])
    indices = np.asarray(attrs["indices"])
    before, after = target[:axis], target[axis + 1:]
    dtype = ctx.graph.nodes[node][ir.DTYPE]
    flat = _constant_indices(ctx, attrs, node)
    onehot = (f"{XP}.astype({XP}.reshape({XP}.arange({ctx.dim(target[axis])}), ({ctx.dim(target[axis])}, 1)) "
              f"== {flat}, {XP}.{dtype})")
    seen = f"{XP}.reshape({args[0]}, ({_product(ctx, before)}, {indices.size}, {_product(ctx, after)}))"
    return f"{XP}.reshape({onehot} @ {seen}, {ctx.shape(target)})"


def _label_axis(ctx, node, rank_of) -> int:
    return normalize_axes(ctx.graph.nodes[node][ir.ATTRS].get("axis"), rank_of)[0]


def _pick(ctx, args, attrs, node):
    values = ctx.graph.nodes[ir.operands(ctx.graph, node)[0]][ir.SHAPE]
    axis = _label_axis(ctx, node, len(values))
    picked = f"{XP}.take_along_axis({args[0]}, {XP}.expand_dims({args[1]}, axis={axis}), axis={axis})"
    return f"{XP}.squeeze({picked}, axis={axis})"


def _pick_grad(ctx, args, attrs, node):
    """Zeros with each row's cotangent at its label, as a one-hot mask times the cotangent."""
    target = tuple(attrs["shape"])
    axis = normalize_axes(attrs.get("axis"), len(target))[0]
    dtype = ctx.graph.nodes[node][ir.DTYPE]
    classes = tuple(d if k == axis else 1 for k, d in enumerate(target))
    positions = f"{XP}.reshape({XP}.arange({ctx.dim(target[axis])}), {ctx.shape(classes)})"
    mask = f"{XP}.astype({XP}.expand_dims({args[1]}, axis={axis}) == {positions}, {XP}.{dtype})"
    return f"{mask} * {XP}.expand_dims({args[0]}, axis={axis})"


def _key(attrs, rank: int) -> str:
    """An index that names every axis: the standard has no numpy-style flat indexing, so
    an index of fewer axes than the value ends in ``...``."""
    from ..ops.indexing import _items

    items = _items(attrs)
    named = sum(1 for item in items if not (isinstance(item, tuple) and item[0] == "newaxis"))
    text = index_text(items)
    return f"{text.rstrip(',')}, ..." if items and named < rank else text


def _index(ctx, args, attrs, node):
    rank = len(ctx.graph.nodes[ir.operands(ctx.graph, node)[0]][ir.SHAPE])
    # a copy, as numpy's lowering makes: the caller owns what a program returns
    return f"{XP}.asarray({args[0]}[{_key(attrs, rank)}], copy=True)"


def _index_grad(ctx, args, attrs, node):
    from ..ops.indexing import _is_int, _items

    if any(not _is_int(item) and item[0] == "newaxis" for item in _items(attrs)):
        return _index_grad_without_writes(ctx, args, attrs, node)  # the standard's setitem takes no new axis
    dtype = ctx.graph.nodes[node][ir.DTYPE]
    return [f"{{out}} = {XP}.zeros({ctx.shape(attrs['shape'])}, dtype={XP}.{dtype})",
            f"{{out}}[{_key(attrs, len(attrs['shape']))}] = {args[0]}"]


def _index_grad_without_writes(ctx, args, attrs, node):
    """The VJP of ``x[index]`` for arrays that cannot be written (JAX): axis by axis, the
    cotangent is carried back to its place by products, never by item assignment.

    An int index puts the axis back, a one-hot vector along it; a slice multiplies the axis
    by a constant 0/1 matrix (positions taken x all positions); a new axis is squeezed out;
    a whole axis, or an axis the index does not reach, stays as it is.
    """
    import numpy as np

    from ..ops.indexing import _is_int, _items
    from .emit import const_source

    dtype = ctx.graph.nodes[node][ir.DTYPE]
    target = tuple(attrs["shape"])
    text, axis, rank = args[0], 0, len(ctx.graph.nodes[ir.operands(ctx.graph, node)[0]][ir.SHAPE])
    for item in _items(attrs):
        if not _is_int(item) and item[0] == "newaxis":
            text, rank = f"{XP}.squeeze({text}, axis={axis})", rank - 1
            continue
        size = target[axis]
        if _is_int(item):
            at = int(item) if int(item) >= 0 else ctx.dim(size + int(item))
            along = tuple(size if k == axis else 1 for k in range(rank + 1))
            where = f"{XP}.reshape({XP}.arange({ctx.dim(size)}) == {at}, {ctx.shape(along)})"
            onehot = f"{XP}.astype({where}, {XP}.{dtype})"
            text, rank = f"{XP}.expand_dims({text}, axis={axis}) * {onehot}", rank + 1
        elif tuple(item[1:]) != (None, None, None):  # a slice of a concrete axis
            positions = range(size)[slice(*item[1:])]
            matrix = np.zeros((len(positions), size), dtype=dtype)
            matrix[np.arange(len(positions)), list(positions)] = 1
            name = ctx.namespace.name(("const", dtype, matrix.shape, matrix.tobytes()), f"{node}_placed")
            ctx.constants.setdefault(name, const_source(matrix, dtype))
            text = f"{XP}.moveaxis({XP}.tensordot({text}, {name}, axes=(({axis},), (0,))), -1, {axis})"
        axis += 1
    return text


def _joined(function):
    def lower(ctx, args, attrs, node):
        axis = normalize_axes(attrs.get("axis"), len(ctx.graph.nodes[node][ir.SHAPE]))[0]
        return f"{XP}.{function}([{', '.join(args)}], axis={axis})"

    return lower


def _same_kind(ctx, args, node) -> list[str]:
    """Operands of mixed kinds (an int64 argmax against 0.0) with the ints cast to the float
    dtype: numpy promotes them, the standard refuses to."""
    import numpy as np

    dtypes = [ctx.graph.nodes[a][ir.DTYPE] for a in ir.operands(ctx.graph, node)]
    floats = [d for d in dtypes if np.dtype(d).kind == "f"]
    if not floats or len(floats) == len(dtypes):
        return args
    return [text if np.dtype(d).kind == "f" else f"{XP}.astype({text}, {XP}.{floats[0]})"
            for text, d in zip(args, dtypes)]


def _compare(symbol):
    def lower(ctx, args, attrs, node):
        first, second = _same_kind(ctx, args, node)
        return f"({first} {symbol} {second})"

    return lower


def _helper_call(name: str):
    """The op table's own form of ``name``, a call of a helper: the module carries the helper's
    twin over ``xp`` (ops/xp_windows.py), so the same call text serves."""
    from ..ops.base import get_op

    return get_op(name).lower


# ops whose numpy form is one call of a helper that has an array-API twin (XP_HELPERS)
HELPER_OPS = ("conv2d_patches", "conv2d_patches_grad", "conv2d_matmul", "conv2d_matmul_grad_patches",
              "conv2d_matmul_grad_kernel", "max_pool2d", "max_pool2d_grad", "avg_pool2d", "avg_pool2d_grad")

LOWERINGS = {
    **{name: _helper_call(name) for name in HELPER_OPS},
    "matmul": lambda ctx, args, attrs, node: f"{args[0]} @ {args[1]}",
    "transpose": _transpose,
    "reshape": lambda ctx, args, attrs, node: f"{XP}.reshape({args[0]}, {ctx.shape(attrs['shape'])})",
    "sum": _reducer("sum"), "max": _reducer("max"), "min": _reducer("min"), "mean": _mean,
    "sum_of_squares": _sum_of_squares,
    "broadcast": lambda ctx, args, attrs, node: f"{XP}.broadcast_to({args[0]}, {ctx.shape(attrs['shape'])})",
    "stop_gradient": lambda ctx, args, attrs, node: args[0],
    "zeros_like": lambda ctx, args, attrs, node: f"{XP}.zeros_like({args[0]})",
    "where": lambda ctx, args, attrs, node: f"{XP}.where({args[0]}, {args[1]}, {args[2]})",
    "argmax": lambda ctx, args, attrs, node: f"{XP}.argmax({args[0]}, axis={attrs['axis']})",
    "less": _compare("<"), "less_equal": _compare("<="), "greater": _compare(">"), "greater_equal": _compare(">="),
    "index": _index, "take": _take, "take_grad": _take_grad, "pick": _pick, "pick_grad": _pick_grad,
    "concat": _joined("concat"), "stack": _joined("stack"),
}


def _scalar(text: str, dtype: str) -> str:
    return f"{XP}.asarray({text}, dtype={XP}.{dtype})"


def _copy(text: str) -> str:
    return f"{XP}.asarray({text}, copy=True)"


def _array(text: str, dtype: str) -> str:
    return f"{XP}.asarray({text}, dtype={XP}.{dtype}, copy=True)"


ARRAY_API_IMMUTABLE = register_backend(Backend(
    "array-api-immutable", XP, print_xp, xp_kernel,
    lowerings={**LOWERINGS, "index_grad": _index_grad_without_writes}, scalar=_scalar, copy=_copy,
    array=_array, transposed=transposed, writes_in_place=False, bool_arithmetic=False,
))
ARRAY_API = register_backend(dataclasses.replace(
    ARRAY_API_IMMUTABLE, name="array-api", lowerings={**LOWERINGS, "index_grad": _index_grad},
))
