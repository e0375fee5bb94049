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
from sympy.printing.precedence import PRECEDENCE
from sympy.printing.str import StrPrinter

from .. import ir, shapes
from ..ops.base import definition, freeze, op_for

__all__ = ["esc", "formula", "node_formula", "node_expression", "summary", "is_bad", "shape_text"]

MAX_NAME = 64  # longer names are cut in the drawing (with …); the explorer shows them whole


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
_SUPERSCRIPT = dict(zip(range(10), "⁰¹²³⁴⁵⁶⁷⁸⁹"))


class _OneLine(StrPrinter):
    """sympy's str printer, read as a textbook line: (g − y)², √(v), θ(z) for the step."""

    def _print_Pow(self, expr, rational=False):
        base, power = expr.as_base_exp()
        if power.is_Integer and 2 <= int(power) <= 9:
            return self.parenthesize(base, PRECEDENCE["Pow"], strict=True) + _SUPERSCRIPT[int(power)]
        if power == sympy.S.Half:
            return "√(" + self._print(base) + ")"
        return super()._print_Pow(expr, rational)

    def _print_Heaviside(self, expr):
        return "θ(" + self._print(expr.args[0]) + ")"


@functools.lru_cache(maxsize=4096)
def formula(expr: sympy.Expr) -> tuple[str, ...]:
    """``expr`` on one line, as a reader writes it (a one-element tuple).

    >>> x, y = sympy.symbols("x y")
    >>> formula((x - y) ** 2), formula(1 / x), formula(2 * x * sympy.Heaviside(y, 1) / x ** 3)
    (('(x − y)²',), ('1/x',), ('2·θ(y)/x²',))
    """
    text = _OneLine({"order": None}).doprint(_display(expr))
    text = "−" + text[1:] if text.startswith("-") else text
    return (text.replace("**", "^").replace("*", "·").replace(" - ", " − ").replace("(-", "(−"),)


def _operand_symbol(graph, node: str) -> sympy.Expr:
    data = graph.nodes[node]
    if data.get(ir.OP) == "const" and np.ndim(data[ir.ATTRS]["value"]) == 0:
        value = float(data[ir.ATTRS]["value"])
        return sympy.Integer(int(value)) if value.is_integer() and abs(value) < 2**53 else sympy.Float(value, 4)
    return sympy.Symbol(short(node, 32), real=True)  # operand names in formulas, rarely cut


def node_expression(graph, node: str) -> sympy.Expr | None:
    """An elementwise or fused node's formula over its operands' names, or None."""
    data = graph.nodes[node]
    args = ir.operands(graph, node)
    try:
        if ir.EXPR in data:
            expr, symbols = data[ir.EXPR]
            return expr.xreplace({s: _operand_symbol(graph, a) for s, a in zip(symbols, args)})
        op = op_for(graph, data[ir.OP], node)
        if not op.elementwise:
            return None
        lam = definition(op, freeze(data.get(ir.ATTRS) or {}))
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
    text = f"{head}: {_num(finite.min())}…{_num(finite.max())}, mean {_num(finite.mean())} {sparkline(finite)}"
    if finite.size < flat.size:
        text += f", {flat.size - finite.size} nan/inf"
    return text.rstrip()


_BARS = "▁▂▃▄▅▆▇█"


def sparkline(values, bins: int = 8) -> str:
    """A histogram in one line of text: how the entries spread between min and max.

    >>> sparkline([0, 0, 0, 1, 2, 3, 3, 3, 3])   # empty bins are blank
    '▆ ▃  ▃ █'
    >>> sparkline([2.0, 2.0])
    ''
    """
    array = np.asarray(values, dtype=np.float64).ravel()
    if array.size < 2 or array.min() == array.max():
        return ""
    counts, _ = np.histogram(array, bins=bins)
    top = counts.max()
    return "".join(_BARS[min(len(_BARS) - 1, int(round((len(_BARS) - 1) * c / top)))] if c else " " for c in counts)


def zero_count(value) -> tuple[int, int]:
    """(entries exactly zero, entries) of a gradient."""
    array = np.asarray(value)
    return int(np.count_nonzero(array == 0)), int(array.size)
