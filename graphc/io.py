"""Graph files: JSON in networkx's node-link form, and the safe expression parser.

A file holds the declared network: every node's ``op``, ``attrs``, ``shape`` and
``dtype``, every edge's operand position ``arg``, and the graph's ``name``, ``inputs``,
``params`` and ``outputs``. Keys that passes add (levels, phases) are not saved: the
compiler recomputes them. Custom elementwise ops travel in the file as expression text,
written by a tiny printer from their sympy definition and read back by walking a
whitelisted Python AST into sympy. Loading never runs code: no ``eval``, no ``sympify`` of
strings, no pickle. Anything unexpected is a :class:`~graphc.errors.GraphcError` naming
the node or field.

>>> import graphc as gc, tempfile, os
>>> g = gc.Graph("neuron"); x = g.input("x", shape=("N",)); w = g.param("w", shape=())
>>> _ = g.output("g", gc.relu(w * x))
>>> path = os.path.join(tempfile.mkdtemp(), "neuron.json")
>>> _ = gc.save(g, path)
>>> h = gc.load(path)
>>> h.outputs, h["g"].op, h["x"].shape
(['g'], 'relu', (N,))
"""

from __future__ import annotations

import ast
import json
import math
import os
import stat
from collections.abc import Mapping
from pathlib import Path

import networkx as nx
import numpy as np
import sympy
from sympy.codegen.cfunctions import log1p

from . import ir, shapes
from .builder import Graph
from .errors import FileError, GraphcError, GraphError, LimitError
from .files import replace_file
from .limits import LIMIT_NAMES, NUMPY_MAX_RANK, Limits  # noqa: F401 - the loader's limits, named here too
from .ops.base import OPS, OpRegistry, arg_symbols, definition, op_for
from .ops.functions import sigmoid, softplus

__all__ = ["save", "load", "loads", "to_data", "from_data", "print_expression", "parse_expression",
           "expression_cost", "Limits", "FORMAT"]

FORMAT = 1  # the graphc file format version this module writes and reads

# The functions a custom op's expression may call, by the name they have in the file.
FUNCTIONS: dict[str, type] = {
    "exp": sympy.exp, "log": sympy.log, "sqrt": sympy.sqrt, "sin": sympy.sin, "cos": sympy.cos,
    "tanh": sympy.tanh, "Abs": sympy.Abs, "Max": sympy.Max, "Min": sympy.Min,
    "sigmoid": sigmoid, "softplus": softplus, "log1p": log1p,
}
_NAMES = {cls: name for name, cls in FUNCTIONS.items() if name != "sqrt"}  # sqrt(x) is x ** (1/2)
_VARIADIC = {"Max", "Min"}

# Fixed limits of the expression parser: beyond them the text is not an expression a person wrote.
MAX_EXPR_CHARS = 20_000
MAX_EXPR_NODES = 2_000
MAX_EXPR_DEPTH = 60
MAX_INT = 10**15
MAX_POWER_BITS = 4_096
MAX_EXACT = 2**63  # the largest numerator or denominator an expression may hold after sympy computes it
MAX_ATTR_DEPTH = 32  # nesting of lists and tagged values inside one attr
MAX_KINK_CHARS = 200

MAX_FILE_BYTES = Limits().file_bytes

DTYPES = ("float16", "float32", "float64")
_SKIPPED_KEYS = frozenset({ir.OP, ir.ATTRS, ir.SHAPE, ir.DTYPE})


# ----------------------------------------------------------------------------------------
# Custom op expressions: sympy -> text (a tiny printer) and text -> sympy (an AST walker).

def print_expression(expr: sympy.Expr, arity: int, op: str = "?") -> str:
    """Write a whitelisted sympy expression over ``x0..`` as Python-expression text.

    >>> x0 = arg_symbols(1)[0]
    >>> print_expression(x0 / (1 + sympy.exp(-x0)), 1)
    '(x0 * ((1 + exp(((-1) * x0))) ** (-1)))'
    """
    names = {s: s.name for s in arg_symbols(arity)}

    def text(e: sympy.Basic) -> str:
        if e in names:
            return names[e]
        if e.is_Integer:
            return str(int(e)) if e >= 0 else f"({int(e)})"
        if e.is_Rational:
            return f"({e.p}/{e.q})"
        if e.is_Float:
            value = float(e)
            if not math.isfinite(value):
                raise GraphError(f"custom op {op!r}: its expression holds {value}, which a file cannot store")
            return repr(value) if value >= 0 else f"({value!r})"
        if e == sympy.E:
            return "exp(1)"
        if e.is_Add or e.is_Mul:
            joiner = " + " if e.is_Add else " * "
            return "(" + joiner.join(text(a) for a in e.args) + ")"
        if e.is_Pow:
            return f"({text(e.base)} ** {text(e.exp)})"
        if e.func in _NAMES and e.is_Function:
            return f"{_NAMES[e.func]}({', '.join(text(a) for a in e.args)})"
        raise GraphError(
            f"custom op {op!r}: {e} ({type(e).__name__}) cannot be saved to a file; an expression may use "
            f"numbers, its operands, + - * / **, and {', '.join(sorted(FUNCTIONS))}"
        )

    return text(sympy.sympify(expr))


def parse_expression(text: object, arity: int, where: str = "expression",
                     max_cost: int = Limits.expr_cost) -> sympy.Expr:
    """Read expression text back into sympy, allowing only whitelisted syntax.

    Numbers, the operand names ``x0..``, ``+ - * / **``, unary minus and calls of the
    functions in :data:`FUNCTIONS`. Nothing is evaluated by Python; anything else is a
    GraphError that says where it is. The syntax tree's :func:`expression_cost` is checked
    against ``max_cost`` before sympy builds anything, and the result must be real and
    finite (``sqrt(-1)``, ``log(0)`` and ``2.0 ** 10 ** 15`` are refused).

    >>> parse_expression("x0 * sigmoid(x0)", 1)
    x0*sigmoid(x0)
    >>> parse_expression("__import__('os')", 1)
    Traceback (most recent call last):
    ...
    graphc.errors.GraphError: expression: column 1: calls may only name exp, log, ...
    """
    return _parse(text, arity, where, max_cost)[0]


def _parse(text: object, arity: int, where: str, max_cost: int, spent: int = 0) -> tuple[sympy.Expr, int]:
    """(expression, its cost); ``spent``: the cost of the file's other expressions, counted in the limit."""
    if not isinstance(text, str):
        raise GraphError(f"{where}: expected expression text (a str), found {type(text).__name__}")
    if len(text) > MAX_EXPR_CHARS:
        raise GraphError(f"{where}: the expression has {len(text)} characters, more than {MAX_EXPR_CHARS}")
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as error:
        raise GraphError(f"{where}: not a valid expression ({type(error).__name__}: {error})") from None
    if sum(1 for _ in ast.walk(tree)) > MAX_EXPR_NODES:
        raise GraphError(f"{where}: the expression has more than {MAX_EXPR_NODES} syntax nodes")
    depth = _depth(tree.body)
    if depth > MAX_EXPR_DEPTH + 1:
        raise GraphError(f"{where}: the expression nests deeper than {MAX_EXPR_DEPTH} levels")
    cost = expression_cost(tree.body)
    if spent + cost > max_cost:
        others = f" (and {spent} for the file's other custom ops)" if spent else ""
        raise LimitError(f"{where}: the expression's cost (its size, with each Max/Min of k arguments costing "
                         f"k**2 times its arguments) is {cost}{others}, more than the limit expr_cost={max_cost}; "
                         f"if you trust the file, raise it: gc.load(path, limits={{'expr_cost': {spent + cost}}}) "
                         f"or the command-line option --limit expr_cost={spent + cost}")
    operands = {s.name: s for s in arg_symbols(arity)}
    expr = _Walker(operands, where).visit(tree.body, 0)
    _check_real(expr, where)
    return expr, cost


def expression_cost(tree: ast.AST) -> int:
    """An estimate of the symbolic work an expression's syntax tree causes, before sympy sees it.

    Every node costs the size of the subtree it heads: the derivative of a nested
    expression repeats its inner parts once per level (``exp(exp(x0))`` differentiates to
    ``exp(x0) exp(exp(x0))``). A Max or Min of k arguments costs k**2 times its subtree:
    sympy compares the arguments pairwise when it builds one, and the derivative holds k
    Max/Min of k - 1 arguments each.

    >>> expression_cost(ast.parse("x0", mode="eval").body), expression_cost(ast.parse("exp(x0)", mode="eval").body)
    (1, 5)
    >>> expression_cost(ast.parse("Max(x0, 0, 1)", mode="eval").body)
    81
    """
    sizes: dict[int, tuple[int, int]] = {}  # id(node) -> (size, cost), filled children first
    stack: list[tuple[ast.AST, bool]] = [(tree, False)]
    while stack:  # iterative post-order: the tree may be deeper than Python's recursion limit
        node, expanded = stack.pop()
        children = [c for c in ast.iter_child_nodes(node) if isinstance(c, ast.expr)]
        if not expanded:
            stack.append((node, True))
            stack.extend((c, False) for c in children)
            continue
        size = 1 + sum(sizes[id(c)][0] for c in children)
        cost = size + sum(sizes[id(c)][1] for c in children)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _VARIADIC:
            cost *= len(node.args) ** 2
        sizes[id(node)] = (size, cost)
    return sizes[id(tree)][1]


def _depth(tree: ast.AST) -> int:
    """The nesting depth of a syntax tree's expression nodes (iterative: trees may be deep)."""
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((c, depth + 1) for c in ast.iter_child_nodes(node) if isinstance(c, ast.expr))
    return deepest


def _check_real(expr: sympy.Expr, where: str) -> None:
    """Refuse infinities, NaN, non-real numbers and exact numbers numpy cannot hold, anywhere in ``expr``."""
    if expr.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo) or any(
            not math.isfinite(float(f)) for f in expr.atoms(sympy.Float)):
        raise GraphError(f"{where}: the expression holds an infinity or NaN; write finite numbers only")
    if any(f != 0 and float(f) == 0 for f in expr.atoms(sympy.Float)):
        raise GraphError(f"{where}: the expression holds a number too small for float64 (it would be 0); "
                         "write 0 or a float64 number")
    for number in expr.atoms(sympy.Rational):
        if max(abs(number.p), number.q) > MAX_EXACT:
            raise GraphError(f"{where}: the expression holds the exact number {number!s:.60}, beyond what "
                             "float64 arithmetic holds; write it as a float")
    stack = [expr]
    while stack:  # the largest subexpressions without operands must be real numbers
        e = stack.pop()
        if e.is_number:
            if e.is_extended_real is False or e.has(sympy.I):
                raise GraphError(f"{where}: the expression holds {e}, which is not a real number; "
                                 "an op computes with real numbers only")
        else:
            stack.extend(e.args)


class _Walker:
    """Turn a whitelisted Python AST into sympy, node by node; reject everything else."""

    def __init__(self, operands: dict[str, sympy.Symbol], where: str):
        self.operands = operands
        self.where = where

    def fail(self, node: ast.AST, what: str) -> GraphError:
        column = getattr(node, "col_offset", -1) + 1
        return GraphError(f"{self.where}: column {column}: {what}")

    def visit(self, node: ast.AST, depth: int) -> sympy.Expr:
        if depth > MAX_EXPR_DEPTH:
            raise self.fail(node, f"the expression nests deeper than {MAX_EXPR_DEPTH} levels")
        if isinstance(node, ast.Constant):
            return self.number(node)
        if isinstance(node, ast.Name):
            if node.id in self.operands:
                return self.operands[node.id]
            raise self.fail(node, f"name {node.id!r} is not an operand; the operands are {', '.join(self.operands)}")
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            value = self.visit(node.operand, depth + 1)
            return -value if isinstance(node.op, ast.USub) else value
        if isinstance(node, ast.BinOp):
            return self.binary(node, depth)
        if isinstance(node, ast.Call):
            return self.call(node, depth)
        raise self.fail(node, f"{type(node).__name__} is not allowed; use numbers, operands, + - * / ** and calls")

    def number(self, node: ast.Constant) -> sympy.Expr:
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(node, f"constant {value!r} is not allowed; only real numbers are")
        if isinstance(value, int):
            if abs(value) > MAX_INT:
                raise self.fail(node, f"integer {value} is larger than {MAX_INT}")
            return sympy.Integer(value)
        if not math.isfinite(value):
            raise self.fail(node, f"constant {value!r} is not finite")
        return sympy.Float(value)

    def binary(self, node: ast.BinOp, depth: int) -> sympy.Expr:
        left, right = self.visit(node.left, depth + 1), self.visit(node.right, depth + 1)
        try:
            return self.in_range(node, self.arithmetic(node, left, right))
        except ArithmeticError as error:  # sympy's numbers: 0.0 / 0.0, mpmath's InvalidOperation
            raise self.fail(node, f"the numbers cannot be computed ({type(error).__name__}); "
                                  "write finite, real arithmetic") from None

    def in_range(self, node: ast.AST, value: sympy.Expr) -> sympy.Expr:
        """``value`` if, as a number, float64 holds it: sympy's floats have no exponent limit, and
        one far outside float64's (``exp(-1e308)``) makes later steps work with giant integers."""
        if value.is_Float:
            number = float(value)
            if not math.isfinite(number) or number == 0 and value != 0:
                raise self.fail(node, f"the number {value} is outside float64's range; write finite float64 numbers")
        elif value.is_Rational and max(abs(value.p), value.q) > MAX_EXACT:
            raise self.fail(node, f"the exact number {value!s:.60} is beyond float64's exact integers; "
                                  "write it as a float")
        elif value.is_number and value.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo):
            raise self.fail(node, f"{value} is an infinity or NaN; write finite numbers only")
        elif value.is_number and (value.is_extended_real is False or value.has(sympy.I)):
            # at once: Max and Min cannot even compare a non-real number (sqrt(-561)) with others
            raise self.fail(node, f"{value} is not a real number; an op computes with real numbers only")
        return value

    def arithmetic(self, node: ast.BinOp, left: sympy.Expr, right: sympy.Expr) -> sympy.Expr:
        if isinstance(node.op, ast.Add):
            return left + right
        if isinstance(node.op, ast.Sub):
            return left - right
        if isinstance(node.op, ast.Mult):
            return left * right
        if isinstance(node.op, ast.Div):
            return left / right
        if isinstance(node.op, ast.Pow):
            if left.is_Rational and right.is_Integer:
                bits = abs(int(right)) * max(abs(left.p).bit_length(), left.q.bit_length())
                if bits > MAX_POWER_BITS:
                    raise self.fail(node, f"the power {left} ** {right} is too large to compute")
            if left.is_number and left.is_negative and not right.is_integer:
                raise self.fail(node, f"a negative base ({left}) needs an integer exponent, found {right}: "
                                      "its power and derivative are not real")
            result = left**right
            if result.is_Float and not math.isfinite(float(result)):
                raise self.fail(node, f"the power {left} ** {right} is not a finite float64")
            return result
        raise self.fail(node, f"operator {type(node.op).__name__} is not allowed; use + - * / **")

    def call(self, node: ast.Call, depth: int) -> sympy.Expr:
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name not in FUNCTIONS:
            raise self.fail(node, f"calls may only name {', '.join(FUNCTIONS)}")
        if node.keywords:
            raise self.fail(node, f"{name}() takes no keyword arguments")
        if any(isinstance(a, ast.Starred) for a in node.args):
            raise self.fail(node, f"{name}() takes no *arguments")
        count = len(node.args)
        if (name in _VARIADIC and count < 2) or (name not in _VARIADIC and count != 1):
            wanted = "two or more arguments" if name in _VARIADIC else "one argument"
            raise self.fail(node, f"{name}() takes {wanted}, found {count}")
        args = [self.visit(a, depth + 1) for a in node.args]
        try:
            return self.in_range(node, FUNCTIONS[name](*args))
        except (ArithmeticError, ValueError, TypeError) as error:  # sympy's own refusals, e.g. Max of I
            raise self.fail(node, f"{name}() of these numbers cannot be computed ({type(error).__name__})") from None


# ----------------------------------------------------------------------------------------
# Attribute values: JSON has no tuples, arrays, symbols or infinities, so those are tagged
# objects with one key. Every other JSON object in an attrs value is an error.

def _encode(value: object, where: str) -> object:
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else {"float": repr(value)}
    if isinstance(value, sympy.Symbol):
        return {"dim": value.name}
    if isinstance(value, sympy.Integer):
        return int(value)
    if isinstance(value, tuple):
        return {"tuple": [_encode(v, where) for v in value]}
    if isinstance(value, list):
        return [_encode(v, where) for v in value]
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        flat = [_encode(float(v), where) for v in value.astype(np.float64).ravel()]
        return {"array": {"dtype": value.dtype.name, "shape": list(value.shape), "data": flat}}
    raise GraphError(f"{where}: {type(value).__name__} value {value!r} cannot be saved; use numbers, tuples, arrays")


def _decode(value: object, where: str, depth: int = 0) -> object:
    if depth > MAX_ATTR_DEPTH:
        raise GraphError(f"{where}: the value nests deeper than {MAX_ATTR_DEPTH} levels of lists and tags")
    if isinstance(value, str):
        return _text(value, where)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, list):
        return [_decode(v, where, depth + 1) for v in value]
    if not isinstance(value, dict) or len(value) != 1:
        raise GraphError(f"{where}: expected a number, str, list or one-key tagged object, found {value!r:.80}")
    (tag, body), = value.items()
    if tag == "tuple" and isinstance(body, list):
        return tuple(_decode(v, where, depth + 1) for v in body)
    if tag == "dim" and isinstance(body, str) and body:
        return shapes.dim(_text(body, where))
    if tag == "float" and body in ("inf", "-inf", "nan"):
        return float(body)
    if tag == "array" and isinstance(body, dict):
        return _decode_array(body, where, depth + 1)
    raise GraphError(f"{where}: unknown or malformed tagged value {value!r:.80}; tags are tuple, dim, float, array")


def _decode_array(body: dict, where: str, depth: int) -> np.ndarray:
    extra = sorted(set(body) - {"dtype", "shape", "data"})
    if extra:
        raise GraphError(f"{where}: unknown field(s) {', '.join(map(repr, extra))} in an array")
    dtype, shape, data = body.get("dtype"), body.get("shape"), body.get("data")
    if dtype not in DTYPES + ("int64", "int32", "bool"):
        raise GraphError(f"{where}: array dtype must be a numeric dtype name, found {dtype!r}")
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                              for d in shape):
        raise GraphError(f"{where}: array shape must be a list of non-negative ints, found {shape!r:.80}")
    if not isinstance(data, list) or len(data) != math.prod(shape):
        raise GraphError(f"{where}: array data must be a flat list of {math.prod(shape)} numbers")
    values = [v if type(v) is float else _decode(v, where, depth + 1) for v in data]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        raise GraphError(f"{where}: array data must hold numbers only")
    return np.array(values, dtype=np.float64).reshape(shape).astype(dtype)


# ----------------------------------------------------------------------------------------
# Graph <-> node-link data.

def _nx_graph(graph: Graph | nx.DiGraph) -> nx.MultiDiGraph:
    if isinstance(graph, Graph):
        return graph.nx
    if isinstance(graph, nx.DiGraph):
        return graph
    raise GraphError(f"gc.save takes a gc.Graph or a networkx graph, found {type(graph).__name__}")


def to_data(graph: Graph | nx.DiGraph) -> dict:
    """The JSON-ready node-link form of a declared network (see :func:`save`)."""
    from .verify import verify

    G = verify(_nx_graph(graph))
    nodes, custom = [], {}
    for node, data in G.nodes(data=True):
        op = op_for(G, data[ir.OP], node)
        where = f"node {node!r}"
        nodes.append({
            "id": node, "op": op.name, "dtype": data.get(ir.DTYPE, ir.DEFAULT_DTYPE),
            "shape": [str(d) if isinstance(d, sympy.Symbol) else int(d) for d in data[ir.SHAPE]],
            "attrs": {str(k): _encode(v, f"{where}, attr {k!r}") for k, v in sorted(data.get(ir.ATTRS, {}).items())},
        })
        if not op.builtin and op.name not in custom:
            custom[op.name] = _custom_entry(op)
    edges = [{"source": u, "target": v, "key": k, "arg": d[ir.ARG]} for u, v, k, d in G.edges(keys=True, data=True)]
    return {
        "graphc": FORMAT, "directed": True, "multigraph": True,
        "graph": {key: G.graph[key] for key in (ir.NAME, ir.INPUTS, ir.PARAMS, ir.OUTPUTS)},
        "custom_ops": custom, "nodes": nodes, "edges": edges,
    }


def _custom_entry(op) -> dict:
    if not op.elementwise or op.attrs:
        raise GraphError(f"op {op.name!r} is neither built in nor a custom elementwise op without attrs; "
                         "a file cannot hold it")
    expr = definition(op, ()).expr
    return {"arity": op.arity, "expr": print_expression(expr, op.arity, op.name), "kink": op.kink}


def save(graph: Graph | nx.DiGraph, path: str | Path) -> Path:
    """Write ``graph`` to ``path`` as graphc JSON (byte-identical for the same graph).

    The bytes go to a new file in the same folder, which then replaces ``path`` in one
    rename: a write that fails (a full disk, a name UTF-8 cannot hold) leaves the old file.
    """
    path = Path(path)
    text = json.dumps(to_data(graph), indent=1, sort_keys=True, allow_nan=False, ensure_ascii=False)
    try:
        data = (text + "\n").encode("utf-8")
    except UnicodeEncodeError as error:
        raise GraphError(f"gc.save: the graph holds the text {text[max(0, error.start - 20):error.end + 20]!r}, "
                         "with a lone surrogate that UTF-8 cannot hold; rename it") from None
    replace_file(path, data)
    return path


def read_file(path: str | Path, limit: int) -> str:
    """The text of a regular file of at most ``limit`` bytes, read through a bounded read.

    The size is what is read, not what ``stat`` says; devices (``/dev/zero``), FIFOs and
    folders are refused before any read, and opening never blocks (a FIFO without writer).
    """
    shown = str(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        descriptor = os.open(path, flags)
    except OSError as error:
        raise FileError(f"cannot read graph file {shown!r}: {error.strerror or error}") from None
    mode = os.fstat(descriptor).st_mode
    if not stat.S_ISREG(mode):
        os.close(descriptor)
        kind = "a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else \
            "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file"
        raise FileError(f"graph file {shown!r} is {kind}; give the path of a graphc JSON file")
    with os.fdopen(descriptor, "rb") as stream:
        try:
            data = stream.read(limit + 1)
        except OSError as error:
            raise FileError(f"cannot read graph file {shown!r}: {error.strerror or error}") from None
    if len(data) > limit:
        raise Limits(file_bytes=limit).refuse("file_bytes", os.path.getsize(path), f"graph file {shown!r}'s size")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise FileError(f"graph file {shown!r} is not UTF-8 text; is it a graphc JSON file?") from None


def load(path: str | Path, limits: Limits | Mapping | None = None) -> Graph:
    """Read a graph file written by :func:`save`; a bad file is a GraphcError, never code run.

    ``limits`` (a :class:`Limits`, or a dict of the limits to raise) bounds what the file may
    cost; the defaults suit files of up to ten thousand nodes.
    """
    limits = Limits.of(limits)
    return loads(read_file(path, limits.file_bytes), source=str(path), limits=limits)


def loads(text: str, source: str = "<string>", limits: Limits | Mapping | None = None) -> Graph:
    """Like :func:`load`, from JSON text."""
    limits = Limits.of(limits)
    if len(text) > limits.file_bytes:
        raise limits.refuse("file_bytes", len(text), f"graph text {source!r}'s size")
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant,
                          parse_float=_finite_float)
    except (ValueError, RecursionError) as error:
        raise GraphcError(f"graph file {source!r} is not valid JSON: {error}") from None
    try:
        return from_data(data, limits)
    except GraphcError as error:
        raise type(error)(f"graph file {source!r}: {error}") from None


def _no_duplicates(pairs: list) -> dict:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        repeated = next(k for k in keys if keys.count(k) > 1)
        raise ValueError(f"key {repeated!r} appears twice in one object")
    return dict(pairs)


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON; non-finite numbers are written as {{\"float\": \"inf\"}}")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999: JSON has no infinities, so a number that overflows is refused too
        raise ValueError(f"{text:.40} is beyond float64's range; non-finite numbers are written as "
                         "{\"float\": \"inf\"}")
    return value


def _text(value: str, where: str) -> str:
    """``value`` if it can be written as UTF-8 (JSON's \\ud800 escapes give lone surrogates)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise GraphError(f"{where}: the text {value!r:.60} holds a lone surrogate "
                         f"{value[error.start]!r}, which UTF-8 cannot hold") from None
    return value


def _field(data: dict, key: str, kind: type | tuple, where: str):
    if key not in data:
        raise GraphError(f"{where}: missing field {key!r}")
    value = data[key]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise GraphError(f"{where}: field {key!r} must be a {getattr(kind, '__name__', kind)}, found {value!r:.80}")
    return _text(value, f"{where}, field {key!r}") if isinstance(value, str) else value


def from_data(data: object, limits: Limits | Mapping | None = None) -> Graph:
    """Build a :class:`Graph` from node-link data, checking every field on the way."""
    limits = Limits.of(limits)
    if not isinstance(data, dict):
        raise GraphError(f"the top level must be a JSON object, found {type(data).__name__}")
    version = data.get("graphc")
    if version != FORMAT:
        raise GraphError(f"field 'graphc' must be the format version {FORMAT}, found {version!r}"
                         + ("; a newer graphc wrote it" if isinstance(version, int) and version > FORMAT else ""))
    if data.get("directed") is not True:
        raise GraphError("field 'directed' must be true: a computational graph is directed")
    nodes, edges = _field(data, "nodes", list, "the file"), _field(data, "edges", list, "the file")
    if len(nodes) > limits.nodes:
        raise limits.refuse("nodes", len(nodes), "the number of nodes")
    if len(edges) > limits.edges:
        raise limits.refuse("edges", len(edges), "the number of edges")
    custom = _parse_custom_ops(_field(data, "custom_ops", dict, "the file") if "custom_ops" in data else {}, limits)
    G = nx.MultiDiGraph()
    for k, item in enumerate(nodes):
        _add_node(G, item, k, custom, limits)
    _check_elements(G, limits)
    for k, item in enumerate(edges):
        _add_edge(G, item, k)
    G.graph.update(_graph_attrs(_field(data, "graph", dict, "the file")))
    G.graph[ir.CUSTOM_OPS] = _custom_registry(custom)
    return _checked(G)


def _check_elements(G: nx.MultiDiGraph, limits: Limits) -> None:
    """Consts and params together, and every node alone, within ``limits.elements`` (fixed dims)."""
    total = 0
    for node, data in G.nodes(data=True):
        count = math.prod(d for d in data[ir.SHAPE] if isinstance(d, int))
        if count > limits.elements:
            raise limits.refuse("elements", count, f"node {node!r} (op {data[ir.OP]})'s number of entries")
        if data[ir.OP] in ("const", "param"):
            total += count
    if total > limits.elements:
        raise limits.refuse("elements", total, "the number of entries of all consts and params")


CUSTOM_FIELDS = ("arity", "expr", "kink")


def _parse_custom_ops(entries: dict, limits: Limits) -> dict[str, tuple[int, sympy.Expr, str]]:
    parsed, spent = {}, 0
    for name, entry in entries.items():
        where = f"custom op {name!r}"
        if not _text(name, where).isidentifier():
            raise GraphError(f"{where}: a custom op name must be a Python identifier")
        if name in OPS:
            raise GraphError(f"{where}: the name is a built-in op; a file cannot redefine it")
        if not isinstance(entry, dict):
            raise GraphError(f"{where}: expected an object with arity, expr, kink")
        extra = sorted(set(entry) - set(CUSTOM_FIELDS))
        if extra:
            raise GraphError(f"{where}: unknown field(s) {', '.join(map(repr, extra))}; "
                             f"an entry holds {', '.join(CUSTOM_FIELDS)}")
        arity = _field(entry, "arity", int, where)
        if not 1 <= arity <= 8:
            raise GraphError(f"{where}: field 'arity' must be between 1 and 8, found {arity}")
        kink = _field(entry, "kink", str, where) if "kink" in entry else ""
        if len(kink) > MAX_KINK_CHARS or not kink.isprintable():
            raise GraphError(f"{where}: field 'kink' must be one line of at most {MAX_KINK_CHARS} printable "
                             f"characters, found {kink!r:.80}")
        expr, cost = _parse(_field(entry, "expr", str, where), arity, f"{where}, field 'expr'", limits.expr_cost, spent)
        spent += cost
        parsed[name] = (arity, expr, kink)
    return parsed


def _add_node(G: nx.MultiDiGraph, item: object, k: int, custom: dict, limits: Limits) -> None:
    if not isinstance(item, dict):
        raise GraphError(f"nodes[{k}] must be an object, found {item!r:.80}")
    node = _field(item, "id", str, f"nodes[{k}]")
    where = f"node {node!r}"
    if not node or node in G:
        raise GraphError(f"{where}: node ids must be non-empty and unique")
    op = _field(item, "op", str, where)
    known = OPS.get(op)
    if op not in custom and known is None:
        raise GraphError(f"{where}: unknown op {op!r}; use a built-in op or define it under 'custom_ops'")
    extra = sorted(set(item) - {"id", "op", "attrs", "shape", "dtype"})
    if extra:
        raise GraphError(f"{where}: unknown field(s) {', '.join(map(repr, extra))}")
    dtype = item.get("dtype", ir.DEFAULT_DTYPE)
    # ops with a dtype rule of their own (a comparison is bool, argmax int64) may hold those;
    # sources and every other op hold floats
    if dtype not in DTYPES and not (known is not None and known.dtype is not None and dtype in ("bool", "int64")) \
            and not (op == "input" and dtype == "int64"):  # class labels; ops that read them say so
        raise GraphError(f"{where} (op {op}): field 'dtype' must be one of {', '.join(DTYPES)}, found {dtype!r:.40}")
    raw_shape = _field(item, "shape", list, where)
    if len(raw_shape) > limits.rank:
        raise limits.refuse("rank", len(raw_shape), f"{where} (op {op})'s number of dims")
    try:
        shape = shapes.normalize([_text(d, where) if isinstance(d, str) else _int_dim(d) for d in raw_shape])
    except GraphcError as error:
        raise GraphError(f"{where} (op {op}): field 'shape': {error}") from None
    attrs = {_text(key, where): _decode(v, f"{where} (op {op}), attr {key!r}")
             for key, v in _field(item, "attrs", dict, where).items()}
    G.add_node(node, **{ir.OP: op, ir.ATTRS: attrs, ir.SHAPE: shape, ir.DTYPE: dtype})


def _int_dim(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise GraphError(f"a dim must be a positive int or a name, found {value!r:.40}")
    return value


def _add_edge(G: nx.MultiDiGraph, item: object, k: int) -> None:
    where = f"edges[{k}]"
    if not isinstance(item, dict):
        raise GraphError(f"{where} must be an object, found {item!r:.80}")
    source, target = _field(item, "source", str, where), _field(item, "target", str, where)
    where = f"edge {source!r} -> {target!r}"
    for end in (source, target):
        if end not in G:
            raise GraphError(f"{where}: {end!r} is not a node of the file")
    arg = _field(item, "arg", int, where)
    key = item.get("key")
    if key is not None and (isinstance(key, bool) or not isinstance(key, int) or G.has_edge(source, target, key)):
        raise GraphError(f"{where}: field 'key' must be an int unique among the edges {source!r} -> {target!r}")
    G.add_edge(source, target, key=key, **{ir.ARG: arg})


def _graph_attrs(attrs: dict) -> dict:
    name = _field(attrs, ir.NAME, str, "graph")
    out = {ir.NAME: name}
    for key in (ir.INPUTS, ir.PARAMS, ir.OUTPUTS):
        listed = _field(attrs, key, list, "graph")
        if not all(isinstance(n, str) for n in listed):
            raise GraphError(f"graph: field {key!r} must be a list of node ids (str)")
        if len(set(listed)) != len(listed):
            raise GraphError(f"graph: field {key!r} names a node twice: {listed!r:.120}")
        out[key] = list(listed)
    return out


def _custom_registry(custom: dict) -> OpRegistry:
    """The file's custom ops, for the loaded graph alone (no other graph, no global table)."""
    from .functional import elementwise

    ops = []
    for name, (arity, expr, kink) in custom.items():
        symbols = arg_symbols(arity)
        made = elementwise(name, lambda *xs, e=expr, s=symbols: e.xreplace(dict(zip(s, xs))), arity, kink=kink)
        ops.append(made.op)
    return OpRegistry(ops)


def _checked(G: nx.MultiDiGraph) -> Graph:
    from .verify import verify

    try:
        verify(G)
    except GraphcError:
        raise
    except Exception as error:  # noqa: BLE001 - a shape rule fed odd attrs; say so, as a GraphcError
        raise GraphError(f"the graph does not check: {type(error).__name__}: {error}") from None
    return Graph(G.graph[ir.NAME], nx_graph=G)
