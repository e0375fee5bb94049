"""Label text: escaping, formulas in readable unicode, and compact value summaries.

Every piece of user text (node names, op names, attrs) goes through :func:`esc` before it
reaches an HTML-like Graphviz label, so any name draws as text:

>>> esc('a"; import os <b>&')
'a&quot;; import os &lt;b&gt;&amp;'
>>> summary(3.0), summary(float("nan"))
('3', 'nan')
"""

from __future__ import annotations

import functools
import html
import unicodedata

import numpy as np
import sympy

from .. import ir, shapes
from ..ops.base import definition, freeze, get_op

__all__ = ["esc", "formula", "node_formula", "node_expression", "summary", "is_bad", "shape_text"]

MAX_NAME = 40  # longer names are cut in the drawing (the full name is the node's tooltip)


def esc(text: object) -> str:
    """Text safe inside an HTML-like label: markup escaped, control characters made visible."""
    clean = "".join(ch if unicodedata.category(ch)[0] != "C" else f"\\x{ord(ch):02x}" if ord(ch) < 256
                    else f"\\u{ord(ch):04x}" for ch in str(text))
    # Graphviz treats a raw newline as a space; "&#39;" is the quote form every version knows.
    return html.escape(clean, quote=True).replace("&#x27;", "&#39;")


def short(name: str, limit: int = MAX_NAME) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


def shape_text(shape) -> str:
    return "scalar" if not shape else "×".join(str(d) for d in shape)


_SIGMA = sympy.Function("σ")


def _display(expr: sympy.Expr) -> sympy.Expr:
    """Names a reader knows: sigmoid as σ, softplus kept, Heaviside's value at 0 dropped."""
    from ..ops.functions import sigmoid

    return expr.replace(sigmoid, lambda a: _SIGMA(a)).replace(sympy.Max, lambda *a: _MAX(*a))


_MAX = sympy.Function("max")
_SUPERSCRIPT = str.maketrans("0123456789+-−()n.", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁻⁽⁾ⁿ·")


def _flatten_powers(lines: list[str]) -> list[str]:
    """Two-line pretty prints whose top line only holds exponents become one line: (g − y)²."""
    if len(lines) != 2:
        return lines
    top, bottom = lines[0], lines[1].ljust(len(lines[0]))
    if not top.strip() or any(ch not in " 0123456789+-−n." for ch in top):
        return lines
    merged = [t.translate(_SUPERSCRIPT) if t != " " else b for t, b in zip(top.ljust(len(bottom)), bottom)]
    return ["".join(merged).rstrip()]


@functools.lru_cache(maxsize=4096)
def formula(expr: sympy.Expr) -> tuple[str, ...]:
    """sympy's unicode pretty print of ``expr``, one string per line (fractions take three)."""
    text = sympy.pretty(_display(expr), use_unicode=True, wrap_line=False)
    lines = [line.rstrip() for line in text.split("\n") if line.strip()]
    return tuple(_flatten_powers(lines)) or ("",)


def _operand_symbol(graph, node: str) -> sympy.Expr:
    data = graph.nodes[node]
    if data.get(ir.OP) == "const" and np.ndim(data[ir.ATTRS]["value"]) == 0:
        value = float(data[ir.ATTRS]["value"])
        return sympy.Integer(int(value)) if value.is_integer() and abs(value) < 2**53 else sympy.Float(value, 4)
    return sympy.Symbol(short(node, 16), real=True)


def node_expression(graph, node: str) -> sympy.Expr | None:
    """An elementwise or fused node's formula over its operands' names, or None."""
    data = graph.nodes[node]
    args = ir.operands(graph, node)
    try:
        if ir.EXPR in data:
            expr, symbols = data[ir.EXPR]
            return expr.xreplace({s: _operand_symbol(graph, a) for s, a in zip(symbols, args)})
        op = get_op(data[ir.OP], node)
        if not op.elementwise:
            return None
        lam = definition(op.name, freeze(data.get(ir.ATTRS) or {}))
        return lam(*[_operand_symbol(graph, a) for a in args])
    except Exception:  # noqa: BLE001 - a formula is a nicety; the node still draws without it
        return None


def node_formula(graph, node: str) -> tuple[str, ...] | None:
    """The formula of an elementwise or fused node over its operands' names, or None."""
    expr = node_expression(graph, node)
    if expr is None:
        return None
    try:
        return formula(expr)
    except Exception:  # noqa: BLE001 - a formula is a nicety; the node still draws without it
        return None


def is_bad(value) -> bool:
    """True when a value holds NaN or Inf (drawn in red)."""
    array = np.asarray(value)
    return array.dtype.kind in "fc" and not np.isfinite(array).all()


def _num(x: float) -> str:
    if np.isnan(x):
        return "nan"
    if np.isinf(x):
        return "inf" if x > 0 else "−inf"
    text = f"{x + 0.0:.4g}"  # + 0.0 turns -0.0 into 0.0
    return text.replace("-", "−") if text.startswith("-") else text


def summary(value) -> str:
    """A scalar as a number; a small tensor by its entries; a larger one by shape and range."""
    array = np.asarray(value, dtype=np.float64)
    if array.ndim == 0:
        return _num(float(array))
    flat = array.ravel()
    if flat.size <= 4:
        entries = "[" + ", ".join(_num(float(v)) for v in flat) + "]"
        return entries if array.ndim == 1 else f"{entries} {shapes.fmt(array.shape)}"
    finite = flat[np.isfinite(flat)]
    head = shape_text(array.shape)
    if finite.size == 0:
        return f"{head}: all nan/inf"
    text = f"{head}: {_num(finite.min())}…{_num(finite.max())}, mean {_num(finite.mean())}"
    if finite.size < flat.size:
        text += f", {flat.size - finite.size} nan/inf"
    return text


def zero_count(value) -> tuple[int, int]:
    """(entries exactly zero, entries) of a gradient."""
    array = np.asarray(value)
    return int(np.count_nonzero(array == 0)), int(array.size)
