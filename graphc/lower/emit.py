"""Emit: a scheduled graph becomes straight-line numpy functions, one statement per node.

Statements are short templates over pieces that are already printed and already safe:
identifiers from the :class:`Namespace`, expressions from the printer, op templates from
the op table. Statements are grouped by dependency level (``# level k``), each commented
with the node and op it came from (the node's name through ``repr``, so no name can break
out of its comment).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

import networkx as nx
import numpy as np
import sympy

from .. import ir
from ..errors import GraphError, describe
from ..ops.base import definition, freeze, get_op
from .kernel import kernel_lines, repeats
from .naming import Namespace
from .printer import print_expr

__all__ = ["Module", "FunctionSpec", "literal", "const_number"]

SOURCES = ("input", "param", "const")  # values that exist before any statement runs
ALIASES = ("identity", "stop_gradient")  # ops whose value is their operand's: no statement
VIEWS = ("transpose", "reshape", "broadcast")  # ops whose value may share its operand's memory


def const_number(value) -> sympy.Expr:
    """A scalar const as a sympy number: integral values as Integer (so ``x**2`` stays so)."""
    number = float(value)
    if number.is_integer() and abs(number) < 2**53:
        return sympy.Integer(int(number))
    return sympy.Float(number)


def literal(value) -> str:
    """Python source for a const value (shortest exact float repr; arrays as literals)."""
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
    return f"numpy.array({body}, dtype=numpy.float64)"


_PLACEHOLDER = re.compile(r"\b__(?:a\d+|d\d+|target)\b")


@functools.lru_cache(maxsize=4096)
def _kernel_template(expr: sympy.Expr, leaves: tuple, donors: frozenset[str], numpy: str,
                     shape_text: str, shape: tuple) -> tuple[tuple[str, ...], str]:
    lines = kernel_lines(expr, "__target", dict(leaves), donors, numpy, shape_text, shape)
    return tuple(lines), print_expr(expr)


def _tuple(items: list[str]) -> str:
    return f"({', '.join(items)}{',' if len(items) == 1 else ''})"


def _note(kink: str) -> str:
    """A kink convention for a statement's comment (newlines cannot break out)."""
    return "; " + " ".join(kink.split()) if kink else ""  # split() knows every line break


@dataclass
class FunctionSpec:
    """What one generated function computes."""

    name: str
    params: list[str]  # node ids taken as arguments, in order
    body: list[list[str]]  # node ids to compute, by level
    returns: list[str]  # node ids returned, in order
    doc: str = ""
    returns_tuple: bool = True


@dataclass
class Module:
    """Accumulates one generated module: constants, dims, functions."""

    graph: nx.MultiDiGraph
    namespace: Namespace = field(default_factory=Namespace)
    constants: dict[str, str] = field(default_factory=dict)  # identifier -> literal
    numpy: str = "numpy"
    _statements: dict = field(default_factory=dict)  # (node, donors) -> lines
    _dims_used: set = field(default_factory=set)  # the dims the function being written reads

    # -- atoms -----------------------------------------------------------------------------
    def is_scalar_const(self, node: str) -> bool:
        data = self.graph.nodes[node]
        return data[ir.OP] == "const" and np.ndim(data[ir.ATTRS]["value"]) == 0

    def atom(self, node: str) -> str:
        """How code refers to a node's value: its identifier, or a scalar's literal."""
        node = self.resolve(node)
        data = self.graph.nodes[node]
        if self.is_inline(node):  # x.T costs less written where it is used than as a statement
            return f"{self.tensor_atom(ir.operands(self.graph, node)[0])}.T"
        if data[ir.OP] == "const":
            value = data[ir.ATTRS]["value"]
            if np.ndim(value) == 0:
                return literal(value)
            # keyed by content: the forward and joint graphs may reuse a const's id
            name = self.namespace.name(("const", freeze(value)), node)
            self.constants.setdefault(name, literal(value))
            return name
        return self.namespace.name(node)

    def resolve(self, node: str) -> str:
        """The node whose statement computes ``node``'s value (aliases have none)."""
        while ir.op_of(self.graph, node) in ALIASES:
            node = ir.operands(self.graph, node)[0]
        return node

    def is_inline(self, node: str) -> bool:
        """A transpose of all axes is written ``x.T`` where it is read: no statement of its own."""
        data = self.graph.nodes[node]
        return data[ir.OP] == "transpose" and data[ir.ATTRS].get("axes") is None

    def base(self, node: str) -> str:
        """The node holding the array ``node``'s code reads (through aliases and ``.T``)."""
        node = self.resolve(node)
        while self.is_inline(node):
            node = self.resolve(ir.operands(self.graph, node)[0])
        return node

    def tensor_atom(self, node: str) -> str:
        """An operand of a tensor op's template: scalars as numpy scalars (they have .T, .reshape)."""
        if self.is_scalar_const(node):
            return f"{self.numpy}.float64({self.atom(node)})"
        return self.atom(node)

    def symbol(self, node: str) -> sympy.Expr:
        """A node's value inside an elementwise expression."""
        if self.is_scalar_const(node):
            return const_number(self.graph.nodes[node][ir.ATTRS]["value"])
        return sympy.Symbol(self.atom(node), real=True)

    # -- dims ------------------------------------------------------------------------------
    def dim(self, d) -> str:
        if isinstance(d, sympy.Symbol):
            self._dims_used.add(d)
            return self.namespace.name(("dim", d.name), d.name)
        if isinstance(d, sympy.Expr) and not d.is_Integer:
            return print_expr(d.subs({s: sympy.Symbol(self.dim(s)) for s in d.free_symbols}))
        return str(int(d))

    def shape(self, dims) -> str:
        printed = [self.dim(d) for d in dims]
        return f"({printed[0]},)" if len(printed) == 1 else f"({', '.join(printed)})"

    # -- statements ------------------------------------------------------------------------
    def expression(self, node: str) -> str:
        data = self.graph.nodes[node]
        op = get_op(data[ir.OP], node)
        args = ir.operands(self.graph, node)
        if op.elementwise:
            if ir.EXPR in data:  # a fused kernel: its expression over its operands
                expr = self.fused_expression(node, args)
            else:
                expr = definition(op.name, freeze(data[ir.ATTRS]))(*[self.symbol(a) for a in args])
            values = {self.atom(a) for a in args if not self.is_scalar_const(a)}
            if not any(s.name in values for s in expr.free_symbols):
                # a number (0, 1/N): a float64 scalar, as every other value is, never a Python int
                return f"{self.numpy}.float64({print_expr(expr)})"
            return print_expr(expr)
        if op.lower is not None:
            return op.lower(self, [self.tensor_atom(a) for a in args], data[ir.ATTRS], node)
        raise GraphError(
            f"{describe(node, op.name)} cannot be lowered: "
            + ("expand composite ops first (the pipeline's expand stage)" if op.composite else "it has no numpy form")
        )

    def _kernel(self, node: str, donors: frozenset[str], target: str) -> tuple[list[str], str]:
        """The kernel lines and formula of an elementwise node.

        Worked out once per expression shape: the expression is made canonical (operands
        and dims as placeholders ``__a0``, ``__d0``) and its template cached, so the fifty
        identical layers of a deep network cost one derivation; names are put in after.
        """
        data = self.graph.nodes[node]
        args = ir.operands(self.graph, node)
        if ir.EXPR in data:
            expr, symbols = data[ir.EXPR]
        else:
            lam = definition(data[ir.OP], freeze(data[ir.ATTRS]))
            expr, symbols = lam.expr, lam.variables
        mapping, leaves, names = {}, [], {}
        for k, (symbol, arg) in enumerate(zip(symbols, args)):
            if self.is_scalar_const(arg):
                mapping[symbol] = const_number(self.graph.nodes[arg][ir.ATTRS]["value"])
            else:
                placeholder = sympy.Symbol(f"__a{k}", real=True)
                mapping[symbol] = placeholder
                leaves.append((placeholder, tuple(self.graph.nodes[arg][ir.SHAPE])))
                names[placeholder.name] = self.atom(arg)
        for j, dim in enumerate(sorted(expr.free_symbols - set(symbols), key=lambda d: d.name)):
            mapping[dim] = sympy.Symbol(f"__d{j}", positive=True)
            names[f"__d{j}"] = self.dim(dim)
        once = [a for a in args if args.count(a) == 1]  # a value read twice must not be overwritten
        donated = frozenset(f"__a{k}" for k, a in enumerate(args) if a in donors and a in once)
        names["__target"] = target
        lines, formula = _kernel_template(expr.xreplace(mapping), tuple(leaves), donated, self.numpy,
                                          self.shape(data[ir.SHAPE]), tuple(data[ir.SHAPE]))

        def fill(text: str) -> str:
            return _PLACEHOLDER.sub(lambda m: names[m.group(0)], text)

        lines = [fill(line) for line in lines]
        if len(lines) > 1:  # the formula heads the kernel: printed over the real names, in their order
            real = {sympy.Symbol(k, real=True): sympy.Symbol(v, real=True) for k, v in names.items()
                    if k.startswith("__a")}
            real.update({sympy.Symbol(k, positive=True): sympy.Symbol(v, positive=True) for k, v in names.items()
                         if k.startswith("__d")})
            formula = print_expr(expr.xreplace(mapping).xreplace(real))
        return lines, formula

    def fused_expression(self, node: str, args: list[str]) -> sympy.Expr:
        expr, symbols = self.graph.nodes[node][ir.EXPR]
        mapping = {s: self.symbol(a) for s, a in zip(symbols, args)}
        # any other symbol is a symbolic dim (a mean's divisor N): the function binds it
        for dim in sorted(expr.free_symbols - set(symbols), key=lambda d: d.name):
            mapping[dim] = sympy.Symbol(self.dim(dim), positive=True)
        return expr.xreplace(mapping)

    def statement(self, node: str, donors: frozenset[str] = frozenset()) -> list[str]:
        """The line(s) computing ``node`` (cached: several functions compute the same node)."""
        key = (node, donors)
        if key not in self._statements:
            self._statements[key] = self._statement(node, donors)
        return self._statements[key]

    def _statement(self, node: str, donors: frozenset[str]) -> list[str]:
        """The line(s) computing ``node``.

        An elementwise node with an array result becomes a kernel of in-place ufunc calls
        (``kernel.py``), headed by its formula as a comment; ``donors`` are operands that
        die here, whose buffers the kernel may reuse.
        """
        data = self.graph.nodes[node]
        kink = data[ir.ATTRS].get("kink", "") if data[ir.OP] == "fused" else ""
        comment = f"  # {node!r} {data[ir.OP]}{_note(kink)}"
        target = self.namespace.name(node)
        op = get_op(data[ir.OP], node)
        if op.elementwise and data[ir.SHAPE]:
            lines, formula = self._kernel(node, donors, target)
            if len(lines) == 1:
                return [lines[0] + comment]
            return [f"# {target} = {formula}  ({node!r} {data[ir.OP]}{_note(kink)})"] + lines
        if ir.EXPR not in data or not repeats(data[ir.EXPR][0]):
            return [f"{target} = {self.expression(node)}{comment}"]
        expr = self.fused_expression(node, ir.operands(self.graph, node))
        shared, (reduced,) = sympy.cse(expr, symbols=sympy.numbered_symbols("_t"), optimizations=None)
        lines = [f"{name} = {print_expr(part)}" for name, part in shared]
        temporaries = ", ".join(str(name) for name, _ in shared)
        return lines + [f"{target} = {print_expr(reduced)}{comment}", f"del {temporaries}"]

    def function(self, spec: FunctionSpec, *, extra_params: tuple = (), dims_as_params: bool = False,
                 saved: list[str] | None = None, extra_returns: tuple = (),
                 updates: dict[str, str] | None = None) -> str:
        """One generated function.

        ``dims_as_params``: symbolic dims the body uses become parameters (after the
        spec's), listed in ``self.last_dims``; otherwise they are bound from the shapes of
        the parameters. ``saved``: return ``(outputs, saved + extra_returns)``.
        ``updates`` ({gradient node: param node}): apply ``param -= lr * gradient`` in
        place as soon as the gradient exists and nothing reads the param any more.

        Liveness: each temporary is deleted right after its last reader, so its memory
        goes back before the next statement runs.
        """
        self._dims_used = set(extra_returns)
        order = [n for level in spec.body for n in level
                 if ir.op_of(self.graph, n) not in SOURCES + ALIASES and not self.is_inline(n)]
        position = {n: i for i, n in enumerate(order)}
        # ordered (dict keys, not a set): the del lists must not follow hash order
        reads = {n: list(dict.fromkeys(self.resolve(a) for a in ir.operands(self.graph, n))) for n in order}
        last_use: dict[str, int] = {}
        for i, n in enumerate(order):
            for a in reads[n]:
                while True:  # a view keeps the array it looks into alive (and un-updated)
                    last_use[a] = i
                    if ir.op_of(self.graph, a) not in VIEWS:
                        break
                    a = self.resolve(ir.operands(self.graph, a)[0])
        keep = {self.base(n) for n in list(spec.returns) + list(saved or [])}
        due: dict[int, list[tuple[str, str]]] = {}
        watched: dict[str, list[str]] = {}  # param -> returned values that look into it
        for grad, param in (updates or {}).items():
            grad = self.resolve(grad)
            watched[param] = [r for r in spec.returns if self.base(r) == param]
            ready = max([position.get(grad, -1), last_use.get(param, -1)]
                        + [position.get(self.resolve(r), -1) for r in watched[param]])
            due.setdefault(ready, []).append((grad, param))
            keep.add(grad)
        snapshots: dict[str, str] = {}

        def update(g: str, p: str) -> list[str]:
            """The update, after copying what the function returns of the param's old value."""
            out = []
            for r in watched[p]:
                snapshots[r] = self.namespace.internal("returned")
                out.append(f"{snapshots[r]} = {self.atom(r)}.copy()  # returned as it was before the update")
            return out + self._update(g, p, position)

        dead: dict[int, list[str]] = {}
        for node, i in last_use.items():
            if node in position and node not in keep:
                dead.setdefault(i, []).append(node)
        lines: list[str] = [line for g, p in due.get(-1, []) for line in update(g, p)]
        level_of = {n: k for k, level in enumerate(spec.body) for n in level}
        current = None
        for i, n in enumerate(order):
            if level_of[n] != current:
                current = level_of[n]
                lines.append(f"# level {current}")
            viewed = {self.base(a) for a in ir.operands(self.graph, n) if self.base(a) != self.resolve(a)}
            donors = frozenset(d for d in dead.get(i, ()) if d in reads[n] and d not in viewed and self._owns(d, n))
            lines.extend(self.statement(n, donors))
            for g, p in due.get(i, []):
                lines.extend(update(g, p))
                if g in position:
                    dead.setdefault(i, []).append(g)
            if dead.get(i):
                lines.append("del " + ", ".join(self.namespace.name(d) for d in dead[i]))
        returned = _tuple([snapshots.get(r) or self.returned(r, spec.returns) for r in spec.returns])
        if saved is not None:
            kept = [self.atom(n) for n in saved] + [self.dim(d) for d in extra_returns]
            lines.append(f"return {returned}, {_tuple(kept)}")
        else:
            lines.append(f"return {returned}")
        dims = sorted(self._dims_used, key=lambda d: d.name)
        self.last_dims = tuple(dims)
        params = [self.namespace.name(p) for p in spec.params]
        if dims_as_params:
            params += [self.dim(d) for d in dims]
            binds = []
        else:
            binds = [self._bind_dim(d, spec.params) for d in dims]
        params += list(extra_params)
        header = [f"def {spec.name}({', '.join(params)}):"]
        if spec.doc:
            header.append(f'    """{spec.doc}"""')
        return "\n".join(header + ["    " + line for line in binds + lines]) + "\n"

    def _update(self, grad: str, param: str, position: dict) -> list[str]:
        """``param -= lr * grad``; a gradient that is a fresh array is scaled in place first,
        so the update allocates nothing."""
        name, value = self.namespace.name(param), self.atom(grad)
        data = self.graph.nodes[grad]
        if grad in position and data[ir.OP] not in VIEWS and tuple(data[ir.SHAPE]) == tuple(
                self.graph.nodes[param][ir.SHAPE]):
            return [f"{value} *= lr", f"{name} -= {value}  # SGD: {param!r}"]
        return [f"{name} -= lr * {value}  # SGD: {param!r}"]

    def _owns(self, operand: str, node: str) -> bool:
        """Whether ``operand``'s buffer is a fresh array of ``node``'s shape (not a view)."""
        data = self.graph.nodes[operand]
        return (data[ir.OP] not in SOURCES + ALIASES + VIEWS and tuple(data[ir.SHAPE]) == tuple(
            self.graph.nodes[node][ir.SHAPE]) and data[ir.DTYPE] == self.graph.nodes[node][ir.DTYPE])

    def returned(self, node: str, returns: list[str]) -> str:
        """A returned value: broadcast views are copied so callers own what they get."""
        atom = self.atom(node)
        if ir.op_of(self.graph, node) == "broadcast":
            return f"{atom}.copy()"
        return atom

    def _bind_dim(self, d: sympy.Symbol, params: list[str]) -> str:
        for p in params:
            shape = self.graph.nodes[p][ir.SHAPE]
            if d in shape:
                return f"{self.dim(d)} = {self.namespace.name(p)}.shape[{list(shape).index(d)}]"
        raise GraphError(
            f"symbolic dim {d} is used by the computation but no argument of the function has it; "
            "declare an input with this dim"
        )
