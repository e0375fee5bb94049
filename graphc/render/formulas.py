"""Gradient formulas as math, for scalar graphs: the loss as one sympy expression per example,
its derivative by each param, printed as MathML (browsers render it, no network needed).

A graph qualifies when every value holds one number per example (int dims all 1; a
symbolic batch dim such as N is read per example, so means and sums over it drop out) and
every op is elementwise or a shape-only op on such values: the lecture's neuron, its wide
ReLU net and the residual net.

>>> import graphc as gc
>>> g = gc.Graph("neuron"); x, w = g.input("x"), g.param("w")
>>> _ = g.output("loss", (w * x - 6) ** 2)
>>> [(name, str(expr)) for name, expr in gradient_formulas(g.nx)]
[('loss', '(w*x - 6)**2'), ('w', '2*x*(w*x - 6)')]
"""

from __future__ import annotations

import html
import re

import networkx as nx
import sympy
from sympy.printing.mathml import mathml

from .. import ir
from ..ops.base import definition, freeze, op_for
from ..verify import topological_order

__all__ = ["gradient_formulas", "to_mathml"]

PASS_THROUGH = ("identity", "reshape", "transpose", "sum", "mean", "broadcast", "stop_gradient")


def _per_example(shape) -> bool:
    return all(isinstance(d, sympy.Symbol) or int(d) == 1 for d in shape)


def _expression(graph: nx.MultiDiGraph, output: str) -> sympy.Expr | None:
    exprs: dict[str, sympy.Expr] = {}
    for node in topological_order(graph):
        data = graph.nodes[node]
        if not _per_example(data.get(ir.SHAPE, ())):
            return None
        op = op_for(graph, data[ir.OP], node)
        args = [exprs[a] for a in ir.operands(graph, node)]
        if op.name in ("input", "param"):
            exprs[node] = sympy.Symbol(node, real=True)
        elif op.name == "const":
            exprs[node] = sympy.nsimplify(_scalar(data))
        elif op.elementwise:
            exprs[node] = definition(op, freeze(data.get(ir.ATTRS) or {}))(*args)
        elif op.name == "matmul":
            exprs[node] = args[0] * args[1]
        elif op.name in PASS_THROUGH:
            exprs[node] = args[0]
        else:
            return None  # composite or unknown: no closed form drawn
    return exprs.get(output)


def _scalar(data) -> float:
    import numpy as np

    return float(np.asarray(data[ir.ATTRS]["value"]).ravel()[0])


def gradient_formulas(graph: nx.MultiDiGraph, of: str | None = None) -> list[tuple[str, sympy.Expr]]:
    """[(output, its expression), (param, d output / d param), ...], or [] when not scalar."""
    outputs = graph.graph.get(ir.OUTPUTS) or []
    target = of or next((o for o in outputs if not graph.nodes[o].get(ir.SHAPE)), outputs[0] if outputs else None)
    if target is None:
        return []
    try:
        loss = _expression(graph, target)
    except Exception:  # noqa: BLE001 - a formula is a nicety of the report
        return []
    if loss is None:
        return []
    out = [(target, loss)]
    for name in graph.graph.get(ir.PARAMS) or []:
        partial = sympy.diff(loss, sympy.Symbol(name, real=True))
        # the lecture's (and graphc's) ReLU convention: the step is 1 at 0
        out.append((name, partial.replace(sympy.Heaviside, lambda arg, *_: sympy.Heaviside(arg, 1))))
    return out


def _placeholder(k: int) -> str:
    letters = ""
    while True:  # letters only: the MathML printer would turn digits into subscripts
        letters = "abcdefghijklmnopqrstuvwxyz"[k % 26] + letters
        k //= 26
        if not k:
            return "gcname" + letters


def to_mathml(lhs: str, expr: sympy.Expr) -> str:
    """``<math>`` presentation markup for ``lhs = expr``.

    sympy's MathML printer writes symbol names as they are, so each name is swapped for a
    placeholder before printing and put back escaped after.
    """
    names = sorted(expr.free_symbols, key=lambda s: s.name)
    swap = {s: sympy.Symbol(_placeholder(k), real=True) for k, s in enumerate(names)}
    body = mathml(expr.xreplace(swap), printer="presentation")
    back = {stand_in.name: original.name for original, stand_in in swap.items()}
    # one pass: a name may itself look like a placeholder ("gcnameb"), so nothing put back is read again
    body = re.sub(r"<mi>(gcname[a-z]+)</mi>", lambda m: f"<mi>{html.escape(back.get(m[1], m[1]))}</mi>", body)
    head = f"<mi>{html.escape(lhs)}</mi><mo>=</mo>"
    return f'<math xmlns="http://www.w3.org/1998/Math/MathML" display="block"><mrow>{head}{body}</mrow></math>'
