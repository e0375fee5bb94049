"""Emit: a scheduled graph becomes straight-line numpy functions, one statement per node.

Statements are short templates over pieces that are already printed and already safe:
identifiers from the :class:`Namespace`, expressions from the printer, op templates from
the op table. Statements are grouped by dependency level (``# level k``), each commented
with the node and op it came from (the node's name through ``repr``, so no name can break
out of its comment).
"""

from __future__ import annotations

import base64
import functools
import re
from dataclasses import dataclass, field

import networkx as nx
import numpy as np
import sympy

from .. import ir
from .. import schedule as plan
from ..errors import GraphError, describe
from ..ops.base import OPS, custom_ops, definition, freeze, op_for
from ..ops.functions import where
from ..ops.printing import guard_poles
from .backend import NUMPY, Backend
from .blocking import find_regions, print_region
from .kernel import repeats, shared_parts
from .naming import RESERVED, Namespace
from .parallel import print_group

__all__ = ["Module", "FunctionSpec", "literal", "const_number", "const_source", "UNPACK", "print_function",
           "print_sgd_step"]



def const_number(value) -> sympy.Expr:
    """A scalar const as a sympy number: integral values as Integer (so ``x**2`` stays so)."""
    number = float(value)
    if number.is_integer() and abs(number) < 2**53:
        return sympy.Integer(int(number))
    return sympy.Float(number)


def literal(value, dtype: str = "float64") -> str:
    """Python source for a const value (shortest exact float repr; arrays as literals of ``dtype``)."""
    array = np.asarray(value, dtype=np.float64)
    if array.ndim == 0:
        number = float(array)
        if np.isfinite(number):
            return repr(number)
        return "numpy.nan" if np.isnan(number) else ("numpy.inf" if number > 0 else "-numpy.inf")
    if np.isfinite(array).all():
        body = repr(array.tolist())  # floats print by their shortest exact repr
    else:
        body = np.array2string(array, separator=", ", threshold=np.inf, floatmode="unique", max_line_width=10**9)
        body = body.replace("inf", "numpy.inf").replace("nan", "numpy.nan")
    return f"numpy.array({body}, dtype=numpy.{dtype})"


LARGE = 256  # a const of more elements is stored as its bytes (base64), not as a list literal


def const_source(value, dtype: str = "float64") -> str:
    """Python source for a const array: a literal when small, else its bytes.

    A big constant as a list literal costs far more to print, parse and hold than its
    data (a 12.5M-entry list); its little-endian bytes in base64 cost 4/3 of its size and
    load with ``numpy.frombuffer`` (see ``UNPACK``).
    """
    array = np.asarray(value, dtype=dtype)
    if array.size <= LARGE:
        return literal(array, dtype)
    data = base64.b64encode(array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()).decode("ascii")
    return f'_unpack("{data}", {dtype!r}, {tuple(int(d) for d in array.shape)!r})'


UNPACK = '''
def _unpack(data, dtype, shape):
    """A big constant from its little-endian bytes in base64."""
    little = numpy.dtype(dtype).newbyteorder("<")
    return numpy.frombuffer(_base64.b64decode(data), dtype=little).reshape(shape).astype(dtype)
'''


_PLACEHOLDER = re.compile(r"\b(__(?:a\d+|d\d+|target))\b")


@functools.lru_cache(maxsize=4096)
def _fillable(line: str) -> str:
    """A template line as a ``str.format_map`` pattern over its placeholders (``{__a0} += {__a1}``):
    a kernel's few lines are filled in for every node printed with them, in one C call each."""
    parts = _PLACEHOLDER.split(line)  # text, placeholder, text, ...
    return "".join("{" + part + "}" if k % 2 else part.replace("{", "{{").replace("}", "}}")
                   for k, part in enumerate(parts))


@functools.lru_cache(maxsize=4096)
def _kernel_template(backend: Backend, expr: sympy.Expr, leaves: tuple, donors: frozenset[str],
                     shape_text: str, shape: tuple, dtype: str) -> tuple[tuple[str, ...], str]:
    lines = backend.kernel(expr, "__target", dict(leaves), donors, backend.module, shape_text, shape, dtype)
    return tuple(lines), backend.expression(expr, dtype)


_RANKED = re.compile(r"\b__r(\d{5})\b")
_HANDOVER = re.compile(r"__target = __a(\d+)")  # a kernel line leaving its result in an operand's buffer


def _real_formula(backend: Backend, canonical: sympy.Expr, names: dict[str, str], dtype: str) -> str:
    """``canonical`` printed over the real names of its placeholders.

    sympy orders the terms and factors it prints by comparing symbol names (sort keys,
    ``Basic.compare``), and by nothing else of them; so the printed form over symbols
    numbered in the order of the real names (equal names: one symbol) is the real one
    with the names put back, and it is printed once per expression and order of names,
    not once per node (a deep chain of identical layers prints one formula per layer kind).
    """
    # the operands' placeholders, then the dims' ("__a..." sorts before "__d...")
    placeholders = sorted(k for k in names if k.startswith(("__a", "__d")))
    values = [names[k] for k in placeholders]
    operands = {names[k] for k in placeholders if k.startswith("__a")}
    if len(names) >= 10**5 or any(names[k] in operands for k in placeholders if k.startswith("__d")):
        real = {}  # print them as they are
        for k, v in zip(placeholders, values):
            assumption = {"real": True} if k.startswith("__a") else {"positive": True}
            real[sympy.Symbol(k, **assumption)] = sympy.Symbol(v, **assumption)
        return (backend.formula or backend.expression)(canonical.xreplace(real), dtype)
    ranked = sorted(set(values))
    rank = {name: k for k, name in enumerate(ranked)}
    return _ranked_formula(backend, canonical, tuple(zip(placeholders, [rank[v] for v in values])),
                           dtype).format(*ranked)


@functools.lru_cache(maxsize=4096)
def _ranked_formula(backend: Backend, canonical: sympy.Expr, order: tuple, dtype: str) -> str:
    """``canonical`` printed with each placeholder replaced by ``__r<rank>`` (see _real_formula),
    as a ``str.format`` pattern over the ranks (``numpy.tanh({1} + {0})``): each node's formula
    is the pattern filled with its names in their order."""
    mapping = {}
    for placeholder, k in order:
        if placeholder.startswith("__d"):  # a dim
            mapping[sympy.Symbol(placeholder, positive=True)] = sympy.Symbol(f"__r{k:05d}", positive=True)
        else:
            mapping[sympy.Symbol(placeholder, real=True)] = sympy.Symbol(f"__r{k:05d}", real=True)
    text = (backend.formula or backend.expression)(canonical.xreplace(mapping), dtype)
    return "".join("{" + str(int(part)) + "}" if k % 2 else part.replace("{", "{{").replace("}", "}}")
                   for k, part in enumerate(_RANKED.split(text)))


def _tuple(items: list[str]) -> str:
    return f"({', '.join(items)}{',' if len(items) == 1 else ''})"


def _note(kink: str) -> str:
    """A kink convention for a statement's comment (newlines cannot break out)."""
    return "; " + " ".join(kink.split()) if kink else ""  # split() knows every line break


@dataclass(frozen=True)
class FunctionSpec:
    """What one generated function computes (planned by :func:`graphc.schedule.plan_function`)."""

    name: str
    params: list[str]  # node ids taken as arguments, in order
    body: list[list[str]]  # node ids to compute, by level
    returns: list[str]  # node ids returned, in order
    doc: str = ""


@dataclass
class Module:
    """The printer of one generated module's functions: identifiers, constants, statements.

    It holds no state between functions but the namespace (identifiers are the module's)
    and the constants (a module global each): every function is printed from its plan.
    """

    graph: nx.MultiDiGraph
    namespace: Namespace = field(default_factory=Namespace)
    constants: dict[str, str] = field(default_factory=dict)  # identifier -> literal
    backend: Backend = NUMPY

    @property
    def numpy(self) -> str:
        """The array module the code calls (``numpy``)."""
        return self.backend.module
    # the function being printed: buffers handed from value to value carry one name, and
    # kink notes already given; print_function resets both for every function
    local: dict[str, str] = field(default_factory=dict)
    noted: set[str] = field(default_factory=set)
    # in a blocked loop (blocking.py): the names outside it, where ``local`` names blocks; a
    # view printed where it is read (x.T) is read whole, so it reads the whole array
    outside: dict[str, str] | None = None
    # (node, donors) and ("content", ...) -> a kernel's template (see _template): shared by the
    # modules printing one graph's nodes
    templates: dict[tuple, tuple] = field(default_factory=dict)
    # per node: how atom prints it, whether it is a scalar const, its operands (facts of the
    # node and what it reads, never of its readers)
    atoms: dict[str, tuple[str, str]] = field(default_factory=dict)
    scalars: dict[str, bool] = field(default_factory=dict)
    operand_lists: dict[str, list[str]] = field(default_factory=dict)
    groups: tuple = ()  # the statements that run together on a pool (graphc.together.Group)
    folded: frozenset[str] = frozenset()  # the function's squares that their reader computes
    blocking: str | int = "off"  # cache-blocked regions (blocking.py): "auto", "off" or rows per block
    wide_rows: frozenset[str] | None = None  # the graph's nodes with rows wide enough to block (blocking.py)

    def ident(self, node: str) -> str:
        """A computed value's identifier (in this function: its buffer's name)."""
        return self.local.get(node) or self.namespace.name(node)

    # -- atoms -----------------------------------------------------------------------------
    def operands(self, node: str) -> list[str]:
        """``ir.operands``, remembered (see ``atoms``)."""
        found = self.operand_lists.get(node)
        if found is None:
            found = self.operand_lists[node] = ir.operands(self.graph, node)
        return found

    def is_scalar_const(self, node: str) -> bool:
        found = self.scalars.get(node)
        if found is None:
            data = self.graph._node[node]
            found = self.scalars[node] = data[ir.OP] == "const" and np.ndim(data[ir.ATTRS]["value"]) == 0
        return found

    def atom(self, node: str) -> str:
        """How code refers to a node's value: its identifier, or a scalar's literal."""
        found = self.atoms.get(node)
        if found is None:
            found = self.atoms[node] = self._atom_kind(node)
        kind, value = found
        if kind == "value":  # its name in this function (ident, inline: atoms are most of printing's calls)
            return self.local.get(value) or self.namespace.name(value)
        if kind == "inline":  # x.T costs less written where it is used than as a statement
            if self.outside is not None:
                return self._whole_view(value)
            return self.backend.transposed(self.tensor_atom(value), len(self.graph._node[value][ir.SHAPE]))
        return value  # a const's literal or global: the same in every function

    def _whole_view(self, operand: str) -> str:
        """``operand.T`` in a blocked loop: over the whole array (its name outside the loop),
        never over its block (blocking.py reads a view that broadcasts along the rows whole)."""
        local, outside = self.local, self.outside
        self.local, self.outside = outside, None
        try:
            return self.backend.transposed(self.tensor_atom(operand), len(self.graph._node[operand][ir.SHAPE]))
        finally:
            self.local, self.outside = local, outside

    def _atom_kind(self, node: str) -> tuple[str, str]:
        """How ``atom`` prints ``node``: ("value", the node computing it), ("inline", the operand
        of a transpose written ``x.T``) or ("fixed", a const's text)."""
        node = self.resolve(node)
        data = self.graph._node[node]
        if self.is_inline(node):
            return "inline", self.operands(node)[0]
        if data[ir.OP] == "const":
            value = data[ir.ATTRS]["value"]
            if np.ndim(value) == 0:
                return "fixed", literal(value)
            # keyed by content: the forward and joint graphs may reuse a const's id
            dtype = self.const_dtype(node)
            name = self.namespace.name(("const", dtype, freeze(value)), node)
            self.constants.setdefault(name, const_source(value, dtype))
            return "fixed", name
        return "value", node

    def const_dtype(self, node: str) -> str:
        """The dtype a const array is written in: its readers' when they compute in fewer bits
        (the IR gives an op its first operand's dtype; a float64 constant must not widen a
        float32 computation)."""
        readers = self.graph.successors(node)
        dtypes = [self.graph.nodes[node][ir.DTYPE]] + [self.graph.nodes[r][ir.DTYPE] for r in readers
                                                        if np.dtype(self.graph.nodes[r][ir.DTYPE]).kind == "f"]
        return min(dtypes, key=lambda d: (np.dtype(d).itemsize, d))

    def resolve(self, node: str) -> str:
        """The node whose statement computes ``node``'s value (aliases have none)."""
        return plan.resolve(self.graph, node)

    def is_inline(self, node: str) -> bool:
        """A transpose of all axes is written ``x.T`` where it is read: no statement of its own."""
        return plan.is_inline(self.graph, node)

    def tensor_atom(self, node: str) -> str:
        """An operand of a tensor op's template: scalars as numpy scalars (they have .T, .reshape)."""
        if self.is_scalar_const(node):
            return self.backend.scalar(self.atom(node), self.const_dtype(node))
        return self.atom(node)

    def symbol(self, node: str) -> sympy.Expr:
        """A node's value inside an elementwise expression."""
        if self.is_scalar_const(node):
            return const_number(self.graph.nodes[node][ir.ATTRS]["value"])
        return self.real(node, sympy.Symbol(self.atom(node), real=True))

    def real(self, node: str, symbol: sympy.Symbol) -> sympy.Expr:
        """``symbol`` as a number in arithmetic: a bool value (a kink mask) is 0 or 1 where the
        backend cannot multiply by bools."""
        if self.backend.bool_arithmetic or self.graph.nodes[node][ir.DTYPE] != "bool":
            return symbol
        return where(symbol, sympy.Integer(1), sympy.Integer(0))

    # -- dims ------------------------------------------------------------------------------
    def dim(self, d) -> str:
        if isinstance(d, sympy.Symbol):
            return self.namespace.name(("dim", d.name), d.name)
        if isinstance(d, sympy.Expr) and not d.is_Integer:
            return self.backend.expression(d.subs({s: sympy.Symbol(self.dim(s)) for s in d.free_symbols}))
        return str(int(d))

    def shape(self, dims) -> str:
        printed = [self.dim(d) for d in dims]
        return f"({printed[0]},)" if len(printed) == 1 else f"({', '.join(printed)})"

    # -- statements ------------------------------------------------------------------------
    def expression(self, node: str) -> str:
        data = self.graph.nodes[node]
        op = op_for(self.graph, data[ir.OP], node)
        args = self.operands(node)
        if op.elementwise:
            if ir.EXPR in data:  # a fused kernel: its expression over its operands
                expr = self.fused_expression(node, args)
            else:
                expr = definition(op, freeze(data[ir.ATTRS]))(*[self.symbol(a) for a in args])
            values = {self.atom(a) for a in args if not self.is_scalar_const(a)}
            if not any(s.name in values for s in expr.free_symbols):
                # a number (0, 1/N): a numpy scalar of the node's dtype, never a Python int
                return self.backend.scalar(self.backend.expression(expr, data[ir.DTYPE]), data[ir.DTYPE])
            return self.backend.expression(expr, data[ir.DTYPE])
        if args and args[0] in self.folded:  # sum or mean of a square: the operand's dot product with itself
            args, lower = self.operands(args[0]), self.backend.lowerings.get("sum_of_squares")
        else:
            lower = self.backend.lowering(op)
        if lower is not None:
            return lower(self, [self.tensor_atom(a) for a in args], data[ir.ATTRS], node)
        raise GraphError(
            f"{describe(node, op.name)} cannot be lowered: "
            + ("expand composite ops first (the pipeline's expand stage)" if op.composite
               else f"backend {self.backend.name!r} has no form of it")
        )

    def _canonical(self, node: str, donors: frozenset[str]):
        """An elementwise node's expression over placeholders, its kernel template, and the
        real names of its placeholders (in this function)."""
        canonical, lines, formula, slots, _ = self._template(node, donors)
        names = {placeholder: self.atom(arg) if dim is None else self.dim(dim) for placeholder, arg, dim in slots}
        return canonical, names, lines, formula

    def _template(self, node: str, donors: frozenset[str]) -> tuple:
        """(canonical expression, kernel lines, formula, placeholders, the handed-over operand):
        everything of an elementwise node's kernel but the names, remembered per node and donors.

        Worked out once per expression shape: the expression is made canonical (operands
        and dims as placeholders ``__a0``, ``__d0``) and its template derived once per
        content (the expression, each operand's shape and dtype or scalar value, the
        donated positions, the result's shape and dtype), so the fifty identical layers of
        a deep network cost one derivation; names are put in after (``slots``: placeholder,
        operand or None, dim or None). A node is printed by several functions (handover,
        then statement; backward_pass and forward_backward), all of which share ``templates``.
        """
        key = (node, donors)
        found = self.templates.get(key)
        if found is not None:
            return found
        nodes, args = self.graph._node, self.operands(node)
        data = nodes[node]
        once = [a for a in args if args.count(a) == 1]  # a value read twice must not be overwritten
        donated = tuple([k for k, a in enumerate(args) if a in donors and a in once])
        kinds = tuple([("const", float(nodes[a][ir.ATTRS]["value"])) if self.is_scalar_const(a)
                       else (tuple(nodes[a][ir.SHAPE]), nodes[a][ir.DTYPE]) for a in args])
        source = ((data[ir.EXPR][0], tuple(data[ir.EXPR][1])) if ir.EXPR in data
                  else (data[ir.OP], freeze(data[ir.ATTRS])))
        content = ("content", source, kinds, donated, tuple(data[ir.SHAPE]), data[ir.DTYPE])
        derived = self.templates.get(content)
        if derived is None:
            derived = self.templates[content] = self._derive(node, donated)
        canonical, lines, formula, slots, handed = derived
        slots = tuple([(placeholder, None if k is None else args[k], dim) for placeholder, k, dim in slots])
        found = self.templates[key] = (canonical, lines, formula, slots, None if handed is None else args[handed])
        return found

    def _derive(self, node: str, donated: tuple[int, ...]) -> tuple:
        """``_template``'s work for one content: placeholders and dims as operand positions."""
        data, args = self.graph._node[node], self.operands(node)
        if ir.EXPR in data:
            expr, symbols = data[ir.EXPR]
        else:
            lam = definition(op_for(self.graph, data[ir.OP], node), freeze(data[ir.ATTRS]))
            expr, symbols = lam.expr, lam.variables
        mapping, leaves, slots = {}, [], []
        for k, (symbol, arg) in enumerate(zip(symbols, args)):
            if self.is_scalar_const(arg):
                mapping[symbol] = const_number(self.graph._node[arg][ir.ATTRS]["value"])
            else:
                placeholder = sympy.Symbol(f"__a{k}", real=True)
                mapping[symbol] = self.real(arg, placeholder)
                leaves.append((placeholder, tuple(self.graph._node[arg][ir.SHAPE])))
                slots.append((placeholder.name, k, None))
        for j, dim in enumerate(sorted(expr.free_symbols - set(symbols), key=lambda d: d.name)):
            mapping[dim] = sympy.Symbol(f"__d{j}", positive=True)
            slots.append((f"__d{j}", None, dim))
        canonical = _replaced(expr, tuple(mapping.items()))
        lines, formula = _kernel_template(self.backend, canonical, tuple(leaves), frozenset(f"__a{k}" for k in donated),
                                          self.shape(data[ir.SHAPE]), tuple(data[ir.SHAPE]), data[ir.DTYPE])
        handed = None  # the operand position whose buffer the kernel leaves its result in
        for line in lines:
            match = _HANDOVER.fullmatch(line)
            if match:
                handed = int(match.group(1))
                break
        return canonical, lines, formula, tuple(slots), handed

    def handover(self, node: str, donors: frozenset[str]) -> str | None:
        """The dying operand whose buffer ``node``'s kernel leaves its result in, if any."""
        if not donors:  # no operand dies here (asked of every step by _buffer_names)
            return None
        data = self.graph._node[node]
        if not (data[ir.SHAPE] and op_for(self.graph, data[ir.OP], node).elementwise):
            return None
        return self._template(node, donors)[4]

    def _kernel(self, node: str, donors: frozenset[str], target: str) -> tuple[list[str], str]:
        """The kernel lines and formula of an elementwise node, over the real names."""
        canonical, names, lines, formula = self._canonical(node, donors)
        names = {**names, "__target": target}
        lines = [_fillable(line).format_map(names) for line in lines]
        if len(lines) > 1:  # the formula heads the kernel: printed over the real names, in their order
            formula = _real_formula(self.backend, canonical, names, self.graph.nodes[node][ir.DTYPE])
        return lines, formula

    def fused_expression(self, node: str, args: list[str]) -> sympy.Expr:
        expr, symbols = self.graph.nodes[node][ir.EXPR]
        mapping = {s: self.symbol(a) for s, a in zip(symbols, args)}
        # any other symbol is a symbolic dim (a mean's divisor N): the function binds it
        for dim in sorted(expr.free_symbols - set(symbols), key=lambda d: d.name):
            mapping[dim] = sympy.Symbol(self.dim(dim), positive=True)
        return expr.xreplace(mapping)

    def passed_through(self, node: str) -> str | None:
        """The operand an elementwise node's expression is, unchanged (``a * 1.0``), if any."""
        data, args = self.graph._node[node], self.operands(node)
        if ir.EXPR in data:
            expr, symbols = data[ir.EXPR]
        else:
            lam = definition(op_for(self.graph, data[ir.OP], node), freeze(data[ir.ATTRS]))
            expr, symbols = lam.expr, lam.variables
        consts = {s: self.symbol(a) for s, a in zip(symbols, args) if self.is_scalar_const(a)}
        if consts:
            expr = expr.xreplace(consts)
        if not expr.is_Symbol:  # an operation or a number: no operand is passed on (the usual answer)
            return None
        return next((a for s, a in zip(symbols, args) if expr == s and s not in consts), None)

    def statement(self, node: str, donors: frozenset[str]) -> list[str]:
        """The line(s) computing ``node``.

        An elementwise node with an array result becomes a kernel of in-place ufunc calls
        (``kernel.py``), headed by its formula as a comment; ``donors`` are operands that
        die here, whose buffers the kernel may reuse.

        Printed afresh at every call: a cache by the node, its donors, its kink note and the
        names it and its operands have costs more to key than it saves (measured on the zoo,
        the benchmark nets and 300 corpus nets: 9 of 5,365 statements printed again; none of
        the 8,000 of a 5,000-node chain).
        """
        data = self.graph._node[node]
        kink = data[ir.ATTRS].get("kink", "") if data[ir.OP] == "fused" else ""
        if kink in self.noted:  # a convention is said once per function
            kink = ""
        else:
            self.noted.add(kink)
        return self._statement(node, donors, kink)

    def _statement(self, node: str, donors: frozenset[str], kink: str) -> list[str]:
        data = self.graph._node[node]
        comment = f"  # {node!r} {data[ir.OP]}{_note(kink)}"
        target = self.ident(node)
        op = op_for(self.graph, data[ir.OP], node)
        through = self.passed_through(node) if op.elementwise else None
        if through is not None and self.graph.nodes[through][ir.DTYPE] != data[ir.DTYPE]:
            # argmax(x) * 1.0 is argmax's value in the node's dtype: a converted copy, not argmax's array
            dtype = f"{self.numpy}.{data[ir.DTYPE]}"
            return [f"{target} = {self.numpy}.array({self.atom(through)}, dtype={dtype}){comment}"]
        if op.elementwise and data[ir.SHAPE]:
            lines, formula = self._kernel(node, donors, target)
            lines = [line for line in lines if line != f"{target} = {target}"]  # the buffer keeps its name
            if len(lines) == 1:
                return [lines[0] + comment]
            own = self.namespace.name(node)  # the value's name; the buffer may be an argument's
            into = f"in {target}'s buffer: " if own != target else ""
            return [f"# {own} = {formula}  ({into}{node!r} {data[ir.OP]}{_note(kink)})"] + lines
        if ir.EXPR not in data or not repeats(data[ir.EXPR][0]):
            text = self.expression(node)
            if isinstance(text, list):  # an op that fills its result (a scatter): lines over {out}
                lines = [line.replace("{out}", target) for line in text]
                return [lines[0] + comment] + lines[1:]
            return [f"{target} = {text}{comment}"]
        expr = guard_poles(self.fused_expression(node, ir.operands(self.graph, node)))  # before cse splits a clamp
        shared, reduced = shared_parts(expr)
        lines = [f"{name} = {self.backend.expression(part, data[ir.DTYPE])}" for name, part in shared]
        temporaries = ", ".join(str(name) for name, _ in shared)
        lines.append(f"{target} = {self.backend.expression(reduced, data[ir.DTYPE])}{comment}")
        return lines + ([f"del {temporaries}"] if shared else [])


    # -- functions -------------------------------------------------------------------------
    def function(self, spec: FunctionSpec) -> str:
        """A function computing ``spec``'s body (planned here; the pipeline plans its own)."""
        return print_function(self, plan.plan_function(self.graph, spec.name, spec.params, spec.body,
                                                       spec.returns, doc=spec.doc))

    def returned(self, item: plan.Returned) -> str:
        """A returned value, copied when the plan says the caller would not own it otherwise."""
        atom = self.atom(item.node)
        if not item.copy:
            return atom
        if ir.op_of(self.graph, self.resolve(item.node)) == "const":  # in its own dtype, not its readers'
            dtype = self.graph.nodes[item.node][ir.DTYPE]
            return self.backend.array(atom, dtype)
        return self.backend.copy(atom)


@functools.lru_cache(maxsize=4096)
def _replaced(expr: sympy.Expr, mapping: tuple) -> sympy.Expr:
    """``expr.xreplace(dict(mapping))``, remembered: the layers of a deep network hold equal
    expressions over equal operand symbols, whose placeholders are the same too."""
    return expr.xreplace(dict(mapping))


def _uses(name: str, text: str) -> bool:
    """Whether ``text`` (a function's lines, joined) reads identifier ``name``."""
    return re.search(rf"\b{re.escape(name)}\b", text) is not None


_DELETES = re.compile(r"del \w+(?:, \w+)*")  # a del of names, nothing after it on its line

UPDATING = "update is not None"  # backward_pass asked to update the params (its ``update`` argument)

# backward_pass's docstring when it can update (its update steps: schedule.plan_function)
UPDATE_DOC = """

    Given update, a tuple of the params the saved values do not hold (in GRADS order), it
    updates every param in place instead: p -= its gradient, as soon as nothing reads the
    param's old value (each gradient is freed there), and returns (). sgd_step calls it so,
    with lr as the cotangent."""


def print_function(module: Module, fn: plan.FunctionPlan) -> str:
    """The source of one planned function.

    Steps are printed in order, grouped under ``# level k`` comments; after each step the
    values it was the last reader of are deleted, so their memory goes back before the
    next statement runs. A dim the plan binds is printed where the body reads it. The
    update steps of a level (backward_pass's) are printed together under ``if update is
    not None:``, with the gradients they free; what they free in either mode after them.
    """
    module.local, module.noted, module.folded = _buffer_names(module, fn), set(), fn.folded
    lines: list[str] = []
    current = None
    sizes = fn.level_sizes
    together = {g.nodes[0]: g for g in module.groups if g.function == fn.name}  # printed at their first
    later = {n for g in together.values() for n in g.nodes[1:]}
    steps = {step.node: step for step in fn.steps if step.grad is None}
    blocked = find_regions(module, fn, set(together) | later)  # loops over blocks of rows, by first step
    k = 0
    while k < len(fn.steps):
        step = fn.steps[k]
        if k in blocked:
            lines.extend(print_region(module, fn, blocked[k]))
            current = None  # the next step heads its level again
            k = blocked[k].stop
            continue
        if step.level != current:
            current = step.level
            if sizes[current] > 1:  # a level of one statement needs no heading
                lines.append(f"# level {current}")
        if step.grad is not None:  # the level's updates, one after the other
            stop = k
            while stop < len(fn.steps) and fn.steps[stop].grad is not None and fn.steps[stop].level == current:
                stop += 1
            lines.extend(_print_updates(module, fn.steps[k:stop]))
            k = stop
            continue
        if step.node in together:  # a group runs where its first statement stood ...
            lines.extend(print_group(module, together[step.node], steps))
        elif step.node not in later:
            lines.extend(module.statement(step.node, step.donates))
        # ... and each value is freed where its last reader stood: a statement between two
        # of the group may read what the later one was the last to read
        own = module.ident(step.node)
        frees = [name for name in map(module.ident, step.frees) if name != own]
        if frees and lines and _DELETES.fullmatch(lines[-1]):  # the statement ended freeing its scratch: one del
            lines[-1] += ", " + ", ".join(frees)
        elif frees:
            lines.append("del " + ", ".join(frees))
        k += 1
    returned = _tuple([module.returned(r) for r in fn.returns])
    if fn.split is not None:  # forward_backward: (outputs, gradients)
        returned = (f"{_tuple([module.returned(r) for r in fn.returns[:fn.split]])}, "
                    f"{_tuple([module.returned(r) for r in fn.returns[fn.split:]])}")
    if fn.saved or fn.name == "train_forward":
        kept = [module.atom(n) for n in fn.saved] + [module.dim(d) for d in fn.saved_dims]
        lines.append(f"return {returned}, [{', '.join(kept)}]")
    elif fn.updates:  # updated in place: every gradient is gone
        lines.append(f"return () if {UPDATING} else {returned}")
    else:
        lines.append(f"return {returned}")
    text = "\n".join(lines) if fn.binds else ""  # one regex search over it per bind, not one per line
    binds = [f"{module.dim(d)} = {module.namespace.name(arg)}.shape[{axis}]" for d, arg, axis in fn.binds
             if _uses(module.dim(d), text)]
    if fn.update_args:  # the params backward_pass reads nowhere else
        unread = _tuple([module.namespace.name(p) for p in fn.update_args])
        binds = [f"if {UPDATING}:", f"    {unread} = update"] + binds
    params = [module.namespace.name(a) for a in fn.args]
    params += [module.dim(d) for d in fn.dim_args]
    trailing = [module.namespace.name(a) if a in module.graph else a for a in fn.trailing]
    if fn.packed:  # one list the function empties: the caller holds no saved value while it runs
        unpack = [f"{_tuple(params)} = saved"] if params else []
        binds = unpack + ["saved.clear()  # each value is freed after its last use"] + binds
        params = ["saved"]
    params += trailing
    if fn.updates:
        params.append("update=None")
    header = [f"def {fn.name}({', '.join(params)}):"]
    if fn.doc:
        header.append(f'    """{fn.doc}{UPDATE_DOC if fn.updates else ""}"""')
    module.local, module.noted, module.folded = {}, set(), frozenset()
    return "\n".join(header + ["    " + line for line in binds + lines]) + "\n"


def _print_updates(module: Module, steps: tuple[plan.Step, ...]) -> list[str]:
    """Update steps of one level: each ``p -= g`` under the guard, then the gradients they free
    (one ``del``); then what they free in either mode (a param the backward pass read)."""
    lines = [f"if {UPDATING}:"]
    freed: list[str] = []
    after: list[str] = []
    for step in steps:
        # one subtraction into the param (numpy's subtract(p, g, out=p)): the same arithmetic
        # as p - g computed elsewhere, so the param ends bit-identical to sgd_step_atomic's
        lines.append(f"    {module.ident(step.node)} -= {module.atom(step.grad)}  # {step.node!r} update")
        freed += [module.ident(d) for d in step.frees_updating]
        after += [module.ident(d) for d in step.frees]
    if freed:  # one del after the subtractions: they write into the params and allocate nothing
        lines.append("    del " + ", ".join(freed))
    if after:
        lines.append("del " + ", ".join(after))
    return lines


def _buffer_names(module: Module, fn: plan.FunctionPlan) -> dict[str, str]:
    """One name per buffer: a kernel that leaves its result in a dying operand's buffer
    hands that buffer on, and the buffer carries the name of the last value it holds
    from its first statement on (``h1 = x @ W1; numpy.maximum(h1, 0, out=h1)``, not
    ``relu = matmul; del matmul``)."""
    chain: dict[str, list[str]] = {}
    for step in fn.steps:
        if step.grad is not None:  # an update computes no value
            continue
        donor = module.handover(step.node, step.donates)
        members = chain.pop(donor, [donor]) if donor is not None else []
        members.append(step.node)  # in place: a deep net hands one buffer down the whole chain
        chain[step.node] = members
    names = {}
    args = set(fn.args)  # a set: a deep net has thousands of arguments and of chains
    for members in chain.values():
        if len(members) > 1:  # a name the user gave (h1, d_h1) over one made from an op (add_2, d_add_1)
            best = next((m for m in reversed(members) if not _made_from_an_op(module.graph, m)), members[-1])
            if members[0] in args:  # an argument is bound under its own name on entry
                best = members[0]
            names.update({m: module.namespace.name(best) for m in members})
    return names


_MADE = re.compile(r"(?:d_)?([A-Za-z_]+?)(?:_\d+)?")


def _made_from_an_op(graph, node: str) -> bool:
    """Whether a node id looks made by the compiler from an op's name (``add_2``, ``d_matmul_1``)."""
    match = _MADE.fullmatch(node)
    return bool(match) and (match.group(1) in OPS or match.group(1) in custom_ops(graph))


def print_sgd_step(module: Module, step: plan.StepPlan, fused: bool = False,
                   update_args: tuple[str, ...] = ()) -> str:
    """``sgd_step``: the training forward, the backward pass from cotangent ``lr``, the updates.

    The backward pass is linear in its cotangent, so seeding it with ``lr`` instead of 1
    returns ``lr * grad`` directly: the update is one subtraction per param, as by hand.
    With an eager plan (see :class:`graphc.schedule.StepPlan`) ``sgd_step`` runs
    ``backward_pass`` asked to update (``update=``, the params ``update_args`` it does not
    otherwise read), which updates each param as soon as nothing reads it, unless a
    floating-point error could stop the step midway (``_could_stop``, lower/stoppable.py):
    then it runs ``sgd_step_atomic``, which computes every new value before the first
    param changes, so an error leaves every param as it was. ``fused``: the module has
    ``forward_backward`` (both passes in one, schedule.plan_forward_backward), which both strategies
    run; the eager one then updates every param after it.
    """
    atomic = _print_atomic_step(module, step, "sgd_step_atomic" if step.eager else "sgd_step", fused)
    if not step.eager:
        return atomic
    args = [module.namespace.name(a) for a in step.args]
    dtype = module.graph.nodes[step.seed][ir.DTYPE]
    lines = [f"def sgd_step({', '.join(args + ['lr'])}):",
             '    """One step of SGD: the outputs, with every param updated in place (p -= lr * grad).',
             ""]
    if fused:
        lines += ["    Every param is updated once both passes are done (forward_backward); when a floating-point",
                  "    error could stop the step midway (numpy raises on one, calls a handler, or a warnings",
                  "    filter makes its RuntimeWarning an error), sgd_step_atomic runs instead: every new",
                  '    value first, so an error leaves every param unchanged."""']
    else:
        lines += ["    Each param is updated as soon as its gradient is final and nothing reads its old value;",
                  "    when a floating-point error could stop the step midway (numpy raises on one, calls a",
                  "    handler, or a warnings filter makes its RuntimeWarning an error), sgd_step_atomic runs",
                  '    instead: every new value first, so an error leaves every param unchanged."""']
    lines += ["    if _could_stop():",
              f"        return sgd_step_atomic({', '.join(args + ['lr'])})"]
    if fused:
        local = _step_locals(module, args)
        params, grads = local.name(("tuple", "params"), "params"), local.name(("tuple", "grads"), "grads")
        call = f"forward_backward({', '.join(args + [f'{module.numpy}.{dtype}(lr)'])})"
        lines.append(f"    outputs, {grads} = {call}  # lr * each gradient, in GRADS order")
        pairs = [(u, module.namespace.name(u.param), k) for k, u in enumerate(step.updates)]
        param, grad = local.name(("loop", "param"), "param"), local.name(("loop", "grad"), "grad")
        runs = _runs(pairs)
        lines += ["    " + line for line in _params_tuple(runs, params, pairs)]
        for in_place, run in runs:
            if in_place:
                lines += ["    " + line for line in _each(run, len(pairs), (params, grads), (param, grad), [
                    (f"{module.numpy}.subtract({{p}}, {{g}}, out={{p}})", "{name} - lr * its gradient")])]
            else:  # a 0-d param: its gradient may be a numpy scalar
                lines += [f"    {p}[...] = {p} - {grads}[{k}]  # {u.param!r} - lr * its gradient" for u, p, k in run]
        lines.append("    return outputs")
        return atomic + "\n\n" + "\n".join(lines) + "\n"
    unread = _tuple([module.namespace.name(a) for a in update_args])
    lines += [f"    outputs, saved = train_forward({', '.join(args)})",
              f"    backward_pass(saved, {module.numpy}.{dtype}(lr), update={unread})"
              "  # lr * each gradient, each param updated",
              "    del saved  # emptied by backward_pass",
              "    return outputs"]
    return atomic + "\n\n" + "\n".join(lines) + "\n"


def _step_locals(module: Module, args: list[str]) -> Namespace:
    """sgd_step's own locals: clear of the module's names and of its arguments."""
    return Namespace(RESERVED | set(module.constants) | set(args) | {"outputs"})


def _print_atomic_step(module: Module, step: plan.StepPlan, name: str, fused: bool = False) -> str:
    """The all-or-nothing step: backward_pass (or forward_backward), every new value, then every param written.

    The gradients stay in the tuple backward_pass returns (``grads``, in GRADS order) and the
    params go in a tuple once (``params``): loops over the two take a name per param, not a
    statement, and no name is written more often than it must be (CPython parses a name
    of a long tuple in ~4 us; a deep chain has thousands of params)."""
    graph, np_ = module.graph, module.numpy
    args = [module.namespace.name(a) for a in step.args]
    dtype = graph.nodes[step.seed][ir.DTYPE] if step.seed in graph else "float64"
    local = _step_locals(module, args)
    params, grads = local.name(("tuple", "params"), "params"), local.name(("tuple", "grads"), "grads")
    # a joint graph whose cotangent is the constant 1 (SEED "scalar") ignores the one passed
    seeded = step.seed in graph
    if fused:  # seeded, with gradients (schedule.plan_forward_backward)
        lines = [f"outputs, {grads} = forward_backward({', '.join(args + [f'{np_}.{dtype}(lr)'])})"
                 "  # lr * each gradient, in GRADS order",
                 "# the new values first: an error (a floating-point error) leaves every param unchanged"]
    else:
        lines = [f"outputs, saved = train_forward({', '.join(args)})"]
    if step.updates and not fused:  # a numpy scalar: arithmetic on it costs less than on a 0-d array
        cotangent, note = (f"{np_}.{dtype}(lr)", "lr * each gradient, ") if seeded else (f"{np_}.{dtype}(1.0)", "")
        lines.append(f"{grads} = backward_pass(saved, {cotangent})  # {note}in GRADS order")
        lines.append("del saved  # emptied by backward_pass")
        lines.append("# the new values first: an error (a floating-point error) leaves every param unchanged")
    pairs = [(u, module.namespace.name(u.param), k) for k, u in enumerate(step.updates)]
    # a 0-d param's gradient may be a numpy scalar (no buffer to write into): its new value is a fresh one
    fresh = {u.param: local.name(("new", u.param), f"new_{p}") for u, p, _ in pairs if not u.in_place}
    param, grad, value = (local.name(("loop", k), k) for k in ("param", "grad", "new"))
    # backward_pass returns arrays the caller owns: an array param's new value goes into its gradient's
    into_grad = ([(f"{np_}.multiply({{g}}, lr, out={{g}})", "")] if not seeded else []) + [
        (f"{np_}.subtract({{p}}, {{g}}, out={{g}})", "{name} - lr * its gradient")]
    runs = _runs(pairs)
    lines += _params_tuple(runs, params, pairs)
    for in_place, run in runs:
        if in_place:
            lines += _each(run, len(pairs), (params, grads), (param, grad), into_grad)
        else:
            lines += [f"{fresh[u.param]} = {p} - {f'{grads}[{k}]' if seeded else f'lr * {grads}[{k}]'}"
                      f"  # {u.param!r} - lr * its gradient" for u, p, k in run]
    for in_place, run in runs:
        if in_place:
            lines += _each(run, len(pairs), (params, grads), (param, value), [("{p}[...] = {g}", "")])
        else:
            lines += [f"{p}[...] = {fresh[u.param]}" for u, p, _ in run]
    lines.append("return outputs")
    header = [f"def {name}({', '.join(args + ['lr'])}):",
              '    """One step of SGD: the outputs, with every param updated in place (p -= lr * grad)."""']
    return "\n".join(header + ["    " + line for line in lines]) + "\n"


def _runs(pairs: list) -> list[tuple[bool, list]]:
    """``(update, param, value)`` triples in runs of consecutive params alike in ``in_place``
    (the params' order kept: the order of their arithmetic, so of any floating-point error)."""
    runs: list[tuple[bool, list]] = []
    for triple in pairs:
        if runs and runs[-1][0] == triple[0].in_place:
            runs[-1][1].append(triple)
        else:
            runs.append((triple[0].in_place, [triple]))
    return runs


def _params_tuple(runs: list, params: str, pairs: list) -> list[str]:
    """``params = (W1, b1, ...)`` when a loop of ``_each`` reads it (a run of several in place)."""
    if not any(in_place and len(run) > 1 for in_place, run in runs):
        return []
    return [f"{params} = {_tuple([p for _, p, _ in pairs])}  # as the gradients come"]


def _each(run: list, count: int, tuples: tuple[str, str], names: tuple[str, str],
          body: list[tuple[str, str]]) -> list[str]:
    """``body`` (lines as ``str.format`` patterns over ``p`` and ``g``, each with a comment
    pattern over ``name``) for every ``(update, param, position)`` of ``run``, a run of
    consecutive positions of the ``count`` params in ``tuples`` (the params' and the values'
    tuple): one line for a single param, else one loop over the params and values (slices
    of the tuples for a run of some of them): a name more per param, not a statement
    (CPython compiles a statement in ~10-19 us; a deep chain has thousands of params)."""
    params, values = tuples
    if len(run) == 1:
        (u, p, k), = run
        return [line.format(p=p, g=f"{values}[{k}]") + (f"  # {comment.format(name=repr(u.param))}" if comment else "")
                for line, comment in body]
    first, stop = run[0][2], run[-1][2] + 1
    if (first, stop) != (0, count):
        params, values = f"{params}[{first}:{stop}]", f"{values}[{first}:{stop}]"
    p, g = names
    loop = [f"for {p}, {g} in zip({params}, {values}):"]
    return loop + [f"    {line.format(p=p, g=g)}" + (f"  # {comment.format(name=p)}" if comment else "")
                   for line, comment in body]
